"""Synthetic manifests with known answers, for tests, benchmarks and the demo.

Patch *classes* are textures (stripe orientation and frequency); every *instance* of a class
has its own stripe phase, and a pair is two views of one instance with independent random
colours (plus shift, noise, brightness). Colour dominates an untrained network's pool5 but
is no cue for the pairs, so a ranking network trained on them (negatives from other classes
= other parents) must learn the texture: retrieval by class rises clearly above random init.

Tables are written with the schemas registered in ``data_manifests.tables``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from data_manifests import schema

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


def random_colours(rng: np.random.Generator) -> U8:
    """Two stripe colours: a random gray level each, tinted a little (brightness, contrast and
    polarity vary freely, which an untrained network's pool5 follows and texture does not)."""
    gray = rng.integers(0, 256, (2, 1))
    tint = rng.integers(-20, 21, (2, 3))
    return np.clip(gray + tint, 0, 255).astype(np.uint8)


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
            colours = random_colours(rng)
            out.append((c, colours, int(rng.integers(0, 2**31))))
    return out, rng


def _write(table: str, rows: list[dict[str, Any]], path: Path) -> None:
    ts = schema.get(table)
    schema.write_parquet(
        schema.table_from_rows(rows, ts), path, ts, {"producer": "models.synthetic"}
    )


def write_pair_manifest(
    out_dir: str | Path, cfg: SyntheticPatchConfig = SyntheticPatchConfig(), bad_rows: int = 0
) -> Path:
    """Registered-schema tables in out_dir: ``patches`` + ``tracks`` (the TrackObjects layout)
    and ``nodes`` + ``pairs`` (the BuildGraph layout: type intra, parent = class).

    Instance i is video ``vid<i>``, track ``t<i>``, nodes ``t<i>-A`` / ``t<i>-A'``.
    ``bad_rows`` A patches get truncated JPEG bytes (undecodable) to exercise skipping.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inst, rng = patch_instances(cfg)
    patches, nodes, tracks, pairs = [], [], [], []
    for i, (c, colours, ph) in enumerate(inst):
        track, video = f"t{i:05d}", f"vid{i:05d}"
        ids = []
        for v, view in enumerate(("A", "A'")):
            if v:  # the second view gets its own colours: colour is not what pairs share
                colours = random_colours(rng)
            blob = jpeg(patch_view(c, cfg.n_classes, colours, ph, cfg.size, cfg.noise, rng))
            if v == 0 and i < bad_rows:
                blob = blob[:20]
            node = f"{track}-{view}"
            ids.append(node)
            box = {
                "frame": 30 * v,
                "x": 10.0,
                "y": 10.0,
                "w": float(cfg.size),
                "h": float(cfg.size),
            }
            common = {"node_id": node, "track_id": track, "video_id": video, "view": view, **box}
            patches.append({**common, "seed_id": f"s{i:05d}", "size": cfg.size, "jpeg": blob})
            nodes.append({**common, "parent_id": c, "jpeg": blob})
        tracks.append(
            {
                "track_id": track, "seed_id": f"s{i:05d}", "video_id": video, "frame_a": 0,
                "frame_b": 30, "kept": True, "reason": "", "confidence": 1.0, "fb_iou": 1.0,
                "min_inside": 1.0, "min_step_similarity": 1.0, "end_similarity": 1.0,
                "copy_ncc": 0.0, "kcf_failures": 0, "frozen_tail": 0, "boxes": [10.0] * 8,
                "patch_a": ids[0], "patch_b": ids[1],
                **{f"{p}_{k}": 10.0 for p in "ab" for k in "xywh"},
            }
        )  # fmt: skip
        pairs.append(
            {
                "pair_id": i, "a": ids[0], "b": ids[1], "pair_type": "intra", "a_track": track,
                "b_track": track, "a_video": video, "b_video": video, "a_parent": c, "b_parent": c,
            }
        )  # fmt: skip
    _write("patches", patches, out / "patches.parquet")
    _write("nodes", nodes, out / "nodes.parquet")
    _write("tracks", tracks, out / "tracks.parquet")
    _write("pairs", pairs, out / "pairs.parquet")
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
            colours = random_colours(rng)
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
    """``masks`` table (registered schema); every 8th row is not kept; the first
    ``bad_rows`` frames are undecodable bytes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        f, m = object_frame(h, w, rng)
        rows.append(
            {
                "video_id": f"vid{i // 8:03d}", "shot": 0, "frame": i, "width": w, "height": h,
                "frame_jpeg": jpeg(f) if i >= bad_rows else b"not a jpeg",
                "mask_png": bytes(cv2.imencode(".png", m)[1].tobytes()),
                "fg_share": float((m > 127).mean()), "border_share": 0.0,
                "kept": i % 8 != 7, "reason": "" if i % 8 != 7 else "fg_too_small",
            }
        )  # fmt: skip
    _write("masks", rows, out / "masks.parquet")
    return out


def write_frames_manifest(
    out_dir: str | Path,
    cfg: SyntheticPatchConfig = SyntheticPatchConfig(),
    frames_per_instance: int = 2,
    labels: bool = False,
) -> Path:
    """``frames`` (the SampleFrames layout) of textured frames, (size, 4/3 size) RGB; instance
    i is video ``vid<i>`` with ``frames_per_instance`` frames (independent colours). With
    ``labels``, also ``pseudo_labels`` whose label is the planted texture class (k =
    n_classes): a student must learn texture, since colour changes within a class."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inst, rng = patch_instances(cfg)
    h, w = cfg.size, cfg.size * 4 // 3
    frames, plabels = [], []
    for i, (c, _colours, ph) in enumerate(inst):
        for f in range(frames_per_instance):
            img = patch_view(c, cfg.n_classes, random_colours(rng), ph, w, cfg.noise, rng)[:h]
            blob = jpeg(img)
            video = f"vid{i:05d}"
            frames.append(
                {
                    "video_id": video, "shot": 0, "frame": 10 * f, "width": w, "height": h,
                    "jpeg": blob, "sha256": hashlib.sha256(blob).hexdigest(),
                }
            )  # fmt: skip
            plabels.append(
                {
                    "item": f"{video}:{10 * f}", "video_id": video, "frame": 10 * f,
                    "teacher": "planted", "layer": "class", "k": cfg.n_classes, "label": c,
                    "distance": 0.0, "cluster_size": cfg.instances_per_class * frames_per_instance,
                }
            )  # fmt: skip
    _write("frames", frames, out / "frames.parquet")
    if labels:
        _write("pseudo_labels", plabels, out / "pseudo_labels.parquet")
    return out
