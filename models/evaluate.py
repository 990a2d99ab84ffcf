"""Evaluation: retrieval on a labelled image folder, mask IoU on a DAVIS-layout folder.

    python -m models.evaluate retrieval --data-root DIR --out-dir OUT [--checkpoint CKPT]
    python -m models.evaluate masks --data-root DAVIS --out-dir OUT --checkpoint CKPT [--unlc-root U]

Retrieval (Wang & Gupta 2015): every image queries all others by cosine on L2-normalised
flattened pool5; the score is the share of the top-k (k = 20) that share the query's class,
averaged over queries (``precision_at_k``), plus the share of queries with at least one
correct image in the top k (``hit_at_k``). Rows: the checkpoint, a random-init trunk of the
same architecture and config, and HOG; chance is the class prior.

Masks: the network sees the whole frame resized to its input (w x w), predicts s x s logits,
upsampled to the frame; foreground = logit > 0, against annotation > 0. uNLC masks of the same
frames (soft PNGs, foreground >= 128) are scored beside it when given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
from skimage.feature import hog

from models import checkpoint as ckpt_io
from models.images import decode_gray, decode_rgb, resize
from models.methods import build_network, network_config
from models.trunks import (
    Trunk,
    build_trunk,
    load_checkpoint_trunk,
    pool5_features,
    preprocess,
    trunk_spec,
)

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp")


def image_paths(root: str | Path) -> tuple[list[Path], list[int], list[str]]:
    """``root/<class>/<image>`` -> (image paths, their class index, class names), sorted."""
    root = Path(root)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    paths, labels = [], []
    for k, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() in IMAGE_EXT:
                paths.append(f)
                labels.append(k)
    if len(classes) < 2 or not paths:
        raise ValueError(f"{root}: expected one sub-folder per class (>= 2) with images in them")
    return paths, labels, classes


def load_image_folder(
    root: str | Path, size: int = 96
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], list[str]]:
    """``root/<class>/<image>`` -> ((N, size, size, 3) uint8, (N,) labels, class names)."""
    paths, labels, classes = image_paths(root)
    images = [resize(decode_rgb(f.read_bytes()), size) for f in paths]
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def retrieval_scores(
    features: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], k: int = 20
) -> dict[str, float]:
    """precision@k and hit@k by cosine (features are L2-normalised), the query excluded."""
    f = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    sim = f @ f.T
    sim.fill_diagonal_(float("-inf"))
    k = min(k, len(labels) - 1)
    top = torch.topk(sim, k, dim=1).indices.numpy()
    same = labels[top] == labels[:, None]
    return {
        "precision_at_k": float(same.mean()),
        "hit_at_k": float(same.any(axis=1).mean()),
        "k": k,
    }


def hog_features(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Dalal-Triggs HOG (9 orientations, 8x8 cells, 2x2 blocks) of the gray image, L2-normed."""
    feats = [
        hog(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), orientations=9, pixels_per_cell=(8, 8),
            cells_per_block=(2, 2), block_norm="L2-Hys", feature_vector=True)
        for im in images
    ]  # fmt: skip
    f = np.asarray(feats, dtype=np.float32)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def _table(rows: dict[str, dict[str, Any]], cols: list[str]) -> str:
    lines = ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in rows.items():
        cells = [f"{m[c]:.3f}" if isinstance(m.get(c), float) else str(m.get(c, "")) for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write(out_dir: Path, metrics: dict[str, Any], table: str) -> Path:
    """The table, then metrics.json atomically (its presence marks a finished evaluation)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.md").write_text(table)
    tmp = out_dir / ".metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=1, sort_keys=True))
    tmp.replace(out_dir / "metrics.json")
    return out_dir / "metrics.json"


def evaluate_retrieval(
    data_root: str | Path,
    out_dir: str | Path,
    checkpoint: str | Path | None = None,
    trunk: str = "vgg16",
    k: int = 20,
    size: int = 96,
    device: str = "cpu",
) -> dict[str, Any]:
    """Retrieval of the checkpoint's trunk, the random-init trunk and HOG; writes metrics."""
    if checkpoint is not None:
        size = int(ckpt_io.load(checkpoint)["network"]["config"].get("input_size", size))
    images, labels, classes = load_image_folder(data_root, size)
    methods: dict[str, dict[str, Any]] = {}
    random_trunk: Trunk = build_trunk(trunk)
    if checkpoint is not None:
        trained = load_checkpoint_trunk(checkpoint)
        methods["checkpoint"] = retrieval_scores(
            pool5_features(trained, images, device=device), labels, k
        )
        spec = trunk_spec(trained)
        random_trunk = build_trunk(spec["name"], **spec["config"])  # same arch + init
    methods["random_init"] = retrieval_scores(
        pool5_features(random_trunk, images, device=device), labels, k
    )
    methods["hog"] = retrieval_scores(hog_features(images), labels, k)
    prior = np.bincount(labels) / len(labels)
    chance = float((prior * (np.bincount(labels) - 1) / max(len(labels) - 1, 1)).sum())
    metrics = {
        "data_root": str(data_root),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "n_images": int(len(labels)),
        "classes": classes,
        "chance_precision": chance,
        "methods": methods,
    }
    path = _write(Path(out_dir), metrics, _table(methods, ["precision_at_k", "hit_at_k", "k"]))
    metrics["metrics_path"] = str(path)
    return metrics


def _davis_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    """(sequence/frame, image, annotation) for a DAVIS layout (JPEGImages/[res/]seq/*.jpg)."""
    img_root, ann_root = root / "JPEGImages", root / "Annotations"
    for res in ("480p", "Full-Resolution"):
        if (img_root / res).is_dir():
            img_root, ann_root = img_root / res, ann_root / res
            break
    if not img_root.is_dir() or not ann_root.is_dir():
        raise ValueError(f"{root}: expected DAVIS layout JPEGImages/[480p/]<seq>/ and Annotations/")
    out = []
    for seq in sorted(p for p in img_root.iterdir() if p.is_dir()):
        for img in sorted(seq.glob("*.jpg")):
            ann = ann_root / seq.name / (img.stem + ".png")
            if ann.is_file():
                out.append((f"{seq.name}/{img.stem}", img, ann))
    if not out:
        raise ValueError(f"{root}: no frame has an annotation")
    return out


def _prf(pred: npt.NDArray[np.bool_], gt: npt.NDArray[np.bool_]) -> dict[str, float]:
    inter, union = float((pred & gt).sum()), float((pred | gt).sum())
    return {
        "iou": inter / union if union else 1.0,
        "precision": inter / float(pred.sum()) if pred.any() else float(not gt.any()),
        "recall": inter / float(gt.sum()) if gt.any() else 1.0,
    }


@torch.no_grad()
def evaluate_masks(
    data_root: str | Path,
    out_dir: str | Path,
    checkpoint: str | Path,
    unlc_root: str | Path | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Mask network vs annotations (and uNLC masks of the same frames when given)."""
    ck = ckpt_io.load(checkpoint)
    if ck["network"]["kind"] != "mask":
        raise ValueError(f"{checkpoint} is a {ck['network']['kind']!r} network, not a mask network")
    model = build_network(network_config("mask", **ck["network"]["config"]))
    model.load_state_dict(ck["model"])
    model.eval().to(device)
    w = int(ck["network"]["config"]["input_size"])
    frames = _davis_pairs(Path(data_root))
    per: dict[str, list[dict[str, float]]] = {"mask_network": [], "unlc": []}
    preds: dict[str, Any] = {}
    for key, img_path, ann_path in frames:
        img = decode_rgb(img_path.read_bytes())
        gt = decode_gray(ann_path.read_bytes()) > 0
        x = preprocess(resize(img, w, cv2.INTER_LINEAR)[None]).to(device)
        logits = model(x)[0].float().cpu().numpy()
        up = cv2.resize(logits, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        pred = up > 0
        per["mask_network"].append(_prf(pred, gt))
        preds[key] = float(pred.mean())
        if unlc_root is not None:
            u = Path(unlc_root) / (key + ".png")
            if u.is_file():
                um = decode_gray(u.read_bytes())
                um = cv2.resize(um, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST)
                per["unlc"].append(_prf(um >= 128, gt))
    methods = {
        name: {m: float(np.mean([r[m] for r in rows])) for m in ("iou", "precision", "recall")}
        | {"frames": len(rows)}
        for name, rows in per.items()
        if rows
    }
    metrics = {
        "data_root": str(data_root),
        "checkpoint": str(checkpoint),
        "unlc_root": str(unlc_root) if unlc_root else None,
        "methods": methods,
        "foreground_share": preds,
    }
    path = _write(Path(out_dir), metrics, _table(methods, ["iou", "precision", "recall", "frames"]))
    metrics["metrics_path"] = str(path)
    return metrics


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser("models.evaluate")
    p.add_argument("kind", choices=["retrieval", "masks"])
    p.add_argument("--data-root", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--unlc-root", default=None)
    p.add_argument("--trunk", default="vgg16", help="random-init trunk when no checkpoint")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    if a.kind == "retrieval":
        m = evaluate_retrieval(a.data_root, a.out_dir, a.checkpoint, a.trunk, a.k, device=a.device)
    else:
        if not a.checkpoint:
            raise SystemExit("models.evaluate masks: --checkpoint is required")
        m = evaluate_masks(a.data_root, a.out_dir, a.checkpoint, a.unlc_root, a.device)
    print((Path(a.out_dir) / "metrics.md").read_text())
    print(f"models.evaluate: wrote {m['metrics_path']} and {Path(a.out_dir) / 'metrics.md'}")


if __name__ == "__main__":
    main()
