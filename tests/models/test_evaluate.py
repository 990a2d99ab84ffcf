"""Retrieval scores on a hand case; mask evaluation on a DAVIS-layout folder; CLI output."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.config import TrainConfig
from models.evaluate import evaluate_masks, main, retrieval_scores
from models.synthetic import SyntheticPatchConfig, write_labelled_folder, write_mask_manifest
from models.train import train


def test_retrieval_scores_by_hand() -> None:
    # 4 images, 2 classes; image 3 (class 1) sits next to class 0's images
    f = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.9, 0.43]], dtype=np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    s = retrieval_scores(f, np.array([0, 0, 1, 1]), k=1)
    # nearest: 0->1 (right), 1->0 (right), 2->3 (right), 3->1 (wrong)
    assert s["precision_at_k"] == pytest.approx(0.75) and s["hit_at_k"] == pytest.approx(0.75)
    s2 = retrieval_scores(f, np.array([0, 0, 1, 1]), k=20)
    assert s2["k"] == 3  # capped at N - 1


def test_retrieval_cli_writes_metrics_and_prints_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_labelled_folder(
        tmp_path / "data", SyntheticPatchConfig(n_classes=3, size=32), per_class=4
    )
    main(["retrieval", "--data-root", str(tmp_path / "data"), "--out-dir", str(tmp_path / "out"),
          "--k", "3"])  # fmt: skip
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'out' / 'metrics.json'}" in out and "| random_init |" in out
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(m["methods"]) == {"random_init", "hog"} and m["n_images"] == 12
    with pytest.raises(ValueError, match="one sub-folder per class"):
        main(["retrieval", "--data-root", str(tmp_path / "out"), "--out-dir", str(tmp_path / "o2")])


def _davis(root: Path, n: int = 3) -> None:
    from models.synthetic import object_frame

    rng = np.random.default_rng(0)
    for i in range(n):
        frame, soft = object_frame(60, 80, rng)
        (root / "JPEGImages" / "480p" / "seq").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / "480p" / "seq").mkdir(parents=True, exist_ok=True)
        (root / "unlc" / "seq").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "JPEGImages" / "480p" / "seq" / f"{i:05d}.jpg"), frame[:, :, ::-1])
        cv2.imwrite(
            str(root / "Annotations" / "480p" / "seq" / f"{i:05d}.png"),
            (soft > 127).astype(np.uint8) * 255,
        )
        cv2.imwrite(str(root / "unlc" / "seq" / f"{i:05d}.png"), soft)  # a perfect "uNLC" mask


def test_mask_evaluation_next_to_unlc(tmp_path: Path) -> None:
    data = write_mask_manifest(tmp_path / "masks", n=8)
    train(TrainConfig(
        task="mask", data=[str(data)], out_dir=str(tmp_path / "m"), steps=2, batch_size=4,
        workers=0, tensorboard=False, val_fraction=0.0, trunk="vgg16",
        trunk_options={"widths": [8, -1, 8, -1, 8, -1, 8, -1, 8, -1]},
        crop={"input_size": 64, "mask_size": 16},
        network={"input_size": 64, "mask_size": 16, "reduce_channels": 4, "hidden": 8},
    ))  # fmt: skip
    _davis(tmp_path / "davis")
    m = evaluate_masks(tmp_path / "davis", tmp_path / "ev", tmp_path / "m" / "checkpoint.pt",
                       unlc_root=tmp_path / "davis" / "unlc")  # fmt: skip
    unlc, net = m["methods"]["unlc"], m["methods"]["mask_network"]
    assert unlc["frames"] == net["frames"] == 3
    assert unlc["iou"] == pytest.approx(1.0)  # the uNLC masks here are the annotations
    assert 0.0 <= net["iou"] <= 1.0 and 0.0 <= net["recall"] <= 1.0
    assert "| mask_network |" in (tmp_path / "ev" / "metrics.md").read_text()
    with pytest.raises(ValueError, match="not a mask network"):
        ranking = tmp_path / "m" / "checkpoint.pt"
        import torch

        ck = torch.load(ranking, weights_only=True)
        ck["network"]["kind"] = "ranking"
        torch.save(ck, tmp_path / "r.pt")
        evaluate_masks(tmp_path / "davis", tmp_path / "ev2", tmp_path / "r.pt")
