"""EvaluateSegmentation on a synthetic DAVIS-layout folder written here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipeline.imaging import decode_png, encode_jpeg, encode_png
from pipeline.synthetic import SyntheticConfig, generate
from tasks.segment_eval import EvaluateSegmentation, find_sequences
from tests.conftest import build

_CLIPS = {
    "objpan": SyntheticConfig(
        height=120, width=160, n_frames=24, object_size=56, camera_pan=(1.5, 0.0), seed=1
    ),
    "cutclip": SyntheticConfig(
        height=120, width=160, n_frames=30, object_size=56, cut_frames=(14,), seed=4
    ),
}


def _write_davis(root: Path, level: bool) -> None:
    sub = ("480p",) if level else ()
    for name, cfg in _CLIPS.items():
        v = generate(cfg)
        img_dir = root.joinpath("JPEGImages", *sub, name)
        ann_dir = root.joinpath("Annotations", *sub, name)
        img_dir.mkdir(parents=True)
        ann_dir.mkdir(parents=True)
        for i, (f, m) in enumerate(zip(v.frames, v.masks, strict=True)):
            (img_dir / f"{i:05d}.jpg").write_bytes(encode_jpeg(f, 95))
            (ann_dir / f"{i:05d}.png").write_bytes(encode_png((m > 0).astype(np.uint8) * 255))


def test_evaluate_segmentation(
    tmp_path: Path, luigi_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    luigi_config()
    data, out = tmp_path / "davis", tmp_path / "eval"
    _write_davis(data, level=True)
    assert set(find_sequences(data)) == {"objpan", "cutclip"}
    task = EvaluateSegmentation(data_root=str(data), out_dir=str(out), n_superpixels=150)
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    assert str(out / "metrics.json") in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    for mode in ("one_shot", "shot_detection"):
        seqs = {s["sequence"]: s for s in m[mode]["sequences"]}
        assert set(seqs) == {"objpan", "cutclip"}
        assert seqs["objpan"]["segmented_share"] == 1.0
        assert seqs["objpan"]["soft"]["iou"] >= 0.6
        assert 0 <= m[mode]["overall"]["kept_share"] <= 1
        for key in ("soft", "trimap_positive"):
            for v in m[mode]["overall"][key].values():
                assert 0 <= v <= 1
    # With shot detection the cut clip is split and each half is segmented on its own.
    cut = {s["sequence"]: s for s in m["shot_detection"]["sequences"]}["cutclip"]
    assert cut["segmented_share"] == 1.0 and cut["soft"]["iou"] >= 0.5
    for sub in ("", "shot_detection"):
        preds = sorted((out / sub / "objpan").glob("*.png"))
        assert [p.name for p in preds] == [f"{i:05d}.png" for i in range(24)]
        assert decode_png(preds[3].read_bytes()).shape == (120, 160)
    table = (out / "metrics.md").read_text()
    assert "objpan" in table and "**overall**" in table and "above the floor" in table
    # Baselines under their own names, scored on the same frames: the centre rectangle's
    # IoU is known from the truth alone.
    v = generate(_CLIPS["objpan"])
    centre = np.zeros((120, 160), bool)
    centre[30:90, 40:120] = True
    centre_ious = [(centre & (g > 0)).sum() / (centre | (g > 0)).sum() for g in v.masks]
    want = np.mean(centre_ious)
    assert m["centre"]["sequences"]["objpan"]["iou"] == pytest.approx(want, abs=1e-4)
    assert 0 <= m["flow_floor"]["overall"]["iou"] <= 1
    assert m["preset"] == "ours"
    # Kept-frame quality: count, share and precisions over the frames pruning kept.
    for mode in ("one_shot", "shot_detection"):
        for s in m[mode]["sequences"]:
            k = s["kept"]
            assert k["frames"] == round(s["kept_share"] * s["segmented_share"] * s["frames"])
            c = k["counts"]
            if c["positive"]:
                assert k["positive_precision"] == pytest.approx(
                    c["positive_object"] / c["positive"], abs=1e-4
                )
            if k["frames"]:  # the baselines scored on the same kept frames
                assert 0 <= k["iou_flow_floor"] <= 1 and 0 <= k["iou_centre"] <= 1
        assert m[mode]["overall"]["above_floor"] in range(3)
    # objpan is a known answer for the centre rectangle on the kept frames too
    objpan = {s["sequence"]: s for s in m["one_shot"]["sequences"]}["objpan"]
    assert objpan["kept"]["frames"] > 0
    assert min(centre_ious) - 1e-4 <= objpan["kept"]["iou_centre"] <= max(centre_ious) + 1e-4


def test_layout_without_480p_level(tmp_path: Path) -> None:
    _write_davis(tmp_path, level=False)
    seqs = find_sequences(tmp_path)
    frames, anns = seqs["objpan"]
    assert len(frames) == 24 and set(anns) == {f"{i:05d}" for i in range(24)}


def test_missing_layout(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        find_sequences(tmp_path)


def test_videoseg_preset_and_unknown_preset(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    luigi_config()
    data, out = tmp_path / "davis", tmp_path / "eval"
    _write_davis(data, level=False)
    task = EvaluateSegmentation(
        data_root=str(data),
        out_dir=str(out),
        n_superpixels=150,
        preset="videoseg",
        modes=["one_shot"],  # as `python -m benchmarks unlc` scores
    )
    assert build([task]).scheduling_succeeded
    m = json.loads((out / "metrics.json").read_text())
    assert m["preset"] == "videoseg"
    assert "one_shot" in m and "shot_detection" not in m
    assert not (out / "shot_detection").exists()
    assert "shot_detection" not in (out / "metrics.md").read_text()
    with pytest.raises(ValueError, match="videoseg"):
        EvaluateSegmentation(data_root=str(data), out_dir=str(out), preset="nope")
