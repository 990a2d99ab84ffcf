"""Synthetic manifests with known answers, for tests, benchmarks and the demo.

Patch *classes* are textures (stripe orientation and frequency); every *instance* of a class
gets random colours and phase, and a pair is two views (shift, noise, brightness) of one
instance. Colour dominates an untrained network's pool5, texture does not, so a ranking
network trained on the pairs (negatives from other classes = other parents) must learn the
texture: retrieval by class rises clearly above random init.

Tables are written with the column names ``models.data_*`` read by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class SyntheticPatchConfig:
    n_classes: int = 4
    instances_per_class: int = 24
    size: int = 96
    noise: float = 12.0  # pixel noise std per view
    seed: int = 0


def _texture(
    cls: int, n_classes: int, size: int, rng: np.random.Generator, shift: tuple[float, float]
) -> npt.NDArray[np.float64]:
    angle = np.pi * cls / n_classes
    freq = 2 * np.pi / (10.0 + 4.0 * (cls % 2))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    xx, yy = xx + shift[0], yy + shift[1]
    u = np.cos(angle) * xx + np.sin(angle) * yy
    return 0.5 + 0.5 * np.sign(np.sin(freq * u + rng.uniform(0, 2 * np.pi)))


def patch_view(
    cls: int,
    n_classes: int,
    colours: U8,
    phase_seed: int,
    size: int,
    noise: float,
    rng: np.random.Generator,
) -> U8:
    """One (size, size, 3) uint8 view of an instance (its colours and stripe phase fixed)."""
    shift = (float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3)))
    t = _texture(cls, n_classes, size, np.random.default_rng(phase_seed), shift)[..., None]
    img = colours[0] * (1 - t) + colours[1] * t
    img = img * rng.uniform(0.85, 1.15) + rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg(img: U8, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


def patch_instances(
    cfg: SyntheticPatchConfig,
) -> tuple[list[tuple[int, U8, int]], np.random.Generator]:
    rng = np.random.default_rng(cfg.seed)
    out = []
    for c in range(cfg.n_classes):
        for _ in range(cfg.instances_per_class):
            colours = rng.integers(0, 256, (2, 3)).astype(np.uint8)
            out.append((c, colours, int(rng.integers(0, 2**31))))
    return out, rng


def write_pair_manifest(
    out_dir: str | Path, cfg: SyntheticPatchConfig = SyntheticPatchConfig(), bad_rows: int = 0
) -> Path:
    """``patches``, ``pairs`` (type intra, parent = class) and ``tracks`` tables in out_dir.

    ``bad_rows`` patches get truncated JPEG bytes (undecodable) to exercise skipping.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inst, rng = patch_instances(cfg)
    node_id, video, blobs = [], [], []
    for i, (c, colours, ph) in enumerate(inst):
        for v in range(2):
            node_id.append(2 * i + v)
            video.append(f"vid{i:05d}")
            blobs.append(jpeg(patch_view(c, cfg.n_classes, colours, ph, cfg.size, cfg.noise, rng)))
    for k in range(bad_rows):
        blobs[2 * k] = blobs[2 * k][:20]
    patches = pa.table(
        {
            "node_id": pa.array(node_id, pa.int64()),
            "video_id": video,
            "jpeg": pa.array(blobs, pa.binary()),
        }
    )
    n = len(inst)
    cls = np.array([c for c, _, _ in inst], dtype=np.int64)
    pairs = pa.table(
        {
            "node_a": pa.array(np.arange(n) * 2, pa.int64()),
            "node_b": pa.array(np.arange(n) * 2 + 1, pa.int64()),
            "pair_type": ["intra"] * n,
            "parent_a": pa.array(cls, pa.int64()),
            "parent_b": pa.array(cls, pa.int64()),
        }
    )
    tracks = pa.table(
        {
            "patch_a": pa.array(np.arange(n) * 2, pa.int64()),
            "patch_b": pa.array(np.arange(n) * 2 + 1, pa.int64()),
            "video_id": [f"vid{i:05d}" for i in range(n)],
        }
    )
    pq.write_table(patches, out / "patches.parquet")
    pq.write_table(pairs, out / "pairs.parquet")
    pq.write_table(tracks, out / "tracks.parquet")
    return out


def write_labelled_folder(
    out_dir: str | Path, cfg: SyntheticPatchConfig = SyntheticPatchConfig(), per_class: int = 10
) -> Path:
    """``out_dir/class_<k>/<i>.png``: held-out instances (another seed) for retrieval."""
    out = Path(out_dir)
    rng = np.random.default_rng(cfg.seed + 1000)
    for c in range(cfg.n_classes):
        d = out / f"class_{c}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            colours = rng.integers(0, 256, (2, 3)).astype(np.uint8)
            img = patch_view(
                c, cfg.n_classes, colours, int(rng.integers(0, 2**31)), cfg.size, cfg.noise, rng
            )
            cv2.imwrite(str(d / f"{i:03d}.png"), img[:, :, ::-1])
    return out


def object_frame(h: int, w: int, rng: np.random.Generator) -> tuple[U8, npt.NDArray[np.uint8]]:
    """A frame with a textured ellipse on a textured background, and its soft mask (uint8)."""
    bg = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    frame = cv2.resize(bg, (w, h), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    ax = (int(rng.uniform(0.1, 0.2) * w), int(rng.uniform(0.1, 0.2) * h))
    cv2.ellipse(mask, (int(cx), int(cy)), ax, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    obj = np.zeros_like(frame)
    obj[..., :] = rng.integers(0, 256, 3).astype(np.uint8)
    obj[::4] = 255 - obj[::4]
    frame = np.where(mask[..., None] > 0, obj, frame)
    soft = cv2.GaussianBlur(mask, (5, 5), 0)
    return frame, soft


def write_mask_manifest(
    out_dir: str | Path, n: int = 32, h: int = 120, w: int = 160, seed: int = 0, bad_rows: int = 0
) -> Path:
    """``masks`` table: frame_jpeg, mask_png, kept (every 8th row not kept)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frames, masks, kept = [], [], []
    for i in range(n):
        f, m = object_frame(h, w, rng)
        frames.append(jpeg(f) if i >= bad_rows else b"not a jpeg")
        masks.append(bytes(cv2.imencode(".png", m)[1].tobytes()))
        kept.append(i % 8 != 7)
    t = pa.table(
        {
            "frame_jpeg": pa.array(frames, pa.binary()),
            "mask_png": pa.array(masks, pa.binary()),
            "kept": kept,
        }
    )
    pq.write_table(t, out / "masks.parquet")
    return out
