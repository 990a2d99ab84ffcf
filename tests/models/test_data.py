"""Datasets over the registered manifests: both pair layouts, masks, context, bad rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.manifests import read_table
from models.methods.context import OFFSETS, ContextConfig, ContextDataset, context_pair, load_frames
from models.methods.masks import (
    IGNORE,
    MaskCropConfig,
    MaskDataset,
    jittered_crop,
    load_masks,
    trimap,
)
from models.methods.ranking_pairs import PairDataset, collate_pairs, load_pairs
from models.synthetic import SyntheticPatchConfig, write_mask_manifest, write_pair_manifest

CFG = SyntheticPatchConfig(n_classes=3, instances_per_class=4, size=32)


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pair_manifest(tmp_path_factory.mktemp("pairs"), CFG, bad_rows=1)


def test_pairs_layout_reads_types_parents_and_videos(pair_dir: Path) -> None:
    data = load_pairs(pair_dir)
    assert len(data) == 12
    assert data.parent.tolist() == [c for c in range(3) for _ in range(4)]
    assert len(set(data.video.tolist())) == 12
    assert data.weights({"intra": 3.0}, None).tolist() == [3.0] * 12
    assert data.weights({}, ["inter"]).sum() == 0


def test_tracks_layout_used_without_pairs_table(pair_dir: Path, tmp_path: Path) -> None:
    for name in ("tracks", "patches"):
        (tmp_path / f"{name}.parquet").write_bytes((pair_dir / f"{name}.parquet").read_bytes())
    data = load_pairs(tmp_path)
    assert len(data) == 12 and (data.parent == -1).all()
    assert set(data.pair_type.tolist()) == {"intra"}


def test_undecodable_rows_are_skipped_and_reported(pair_dir: Path) -> None:
    ds = PairDataset(load_pairs(pair_dir), size=32)
    item = ds[(0, 0)]  # row 0's A patch is truncated JPEG bytes
    assert item["row"] == 1 and item["skipped"] == [0]
    batch = collate_pairs([ds[(r, r)] for r in range(4)])
    assert batch["a"].shape == (4, 32, 32, 3) and batch["a"].dtype.is_floating_point is False
    assert batch["skipped"] == [0]


def test_missing_table_and_bad_source_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has no table 'pairs'"):
        read_table(tmp_path, "pairs")
    with pytest.raises(ValueError, match="neither a file"):
        read_table(tmp_path / "nope", "pairs")


def test_mask_crops_and_trimaps(tmp_path: Path) -> None:
    table = load_masks(write_mask_manifest(tmp_path, n=16, bad_rows=1))
    assert table.num_rows == 14  # rows 7 and 15 are not kept
    ds = MaskDataset(table, MaskCropConfig())
    item = ds[(0, 5)]
    assert item["skipped"] == [0] and item["image"].shape == (227, 227, 3)
    tri = item["trimap"]
    assert tri.shape == (56, 56) and set(np.unique(tri).tolist()) <= {0, 1, IGNORE}
    # the object is centred up to the jitter: the crop centre is foreground
    assert tri[24:32, 24:32].mean() > 0.5
    again = ds[(0, 5)]
    assert np.array_equal(again["image"], item["image"])  # jitter is a function of the seed


def test_trimap_thresholds() -> None:
    # 0.4 x 255 = 102, 0.7 x 255 = 178.5
    soft = np.array([[0, 101, 102, 178, 179, 255]], dtype=np.uint8)
    assert trimap(soft, 0.7, 0.4).tolist() == [[0, 0, IGNORE, IGNORE, 1, 1]]


def test_jitter_moves_and_scales_the_crop() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    soft = np.zeros((100, 100), np.uint8)
    soft[40:60, 40:60] = 255
    cfg = MaskCropConfig(input_size=40, mask_size=40, context=2.0, jitter_pos=0.0, jitter_scale=1.0)
    _, tri = jittered_crop(frame, soft, cfg, np.random.default_rng(0))
    assert tri[10:30, 10:30].all() and (tri[:9] == 0).all()  # 20 px object in a 40 px crop
    shifts = {
        jittered_crop(frame, soft, MaskCropConfig(40, 40, 2.0, 0.2, 1.3), np.random.default_rng(s))[
            1
        ].sum()
        for s in range(5)
    }
    assert len(shifts) > 1


def test_context_pairs_follow_the_label_geometry() -> None:
    # a frame whose pixel value encodes its coordinates: the neighbour's offset is recoverable
    h = w = 3 * 32 + 2 * 16 + 2
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.stack([xx, yy, np.zeros_like(xx)], -1).astype(np.uint8)
    cfg = ContextConfig(patch_size=32, patch=32, gap=16, jitter=1)
    for seed in range(8):
        a, b, label = context_pair(frame, cfg, np.random.default_rng(seed))
        dx = (float(b[..., 0].mean()) - float(a[..., 0].mean())) / 48
        dy = (float(b[..., 1].mean()) - float(a[..., 1].mean())) / 48
        assert (round(dx), round(dy)) == OFFSETS[label]


def test_context_dataset_from_masks_table(tmp_path: Path) -> None:
    frames = load_frames(write_mask_manifest(tmp_path, n=4, bad_rows=1))
    ds = ContextDataset(frames, ContextConfig())
    item = ds[(0, 3)]
    assert item["skipped"] == [0] and item["a"].shape == (96, 96, 3) and 0 <= item["label"] < 8


def test_published_dataset_is_read_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from data_manifests.publish import publish

    stage = tmp_path / "run" / "BuildGraph" / "BuildGraph__99914b932b-0123abcd"
    write_pair_manifest(stage, CFG)
    meta = {"task_family": "BuildGraph", "task_id": "BuildGraph__99914b932b",
            "lineage": "0123abcd" * 8, "params": {}, "tables": {}}  # fmt: skip
    (stage / "_meta.json").write_text(json.dumps(meta))
    (stage / "_SUCCESS").write_text("{}")
    publish(str(tmp_path / "run"), "synth", "1", ["pairs", "nodes"], str(tmp_path / "reg"))
    monkeypatch.setenv("VIDEOMINE_REGISTRY", str(tmp_path / "reg"))
    data = load_pairs("synth@1")
    assert len(data) == 12 and data.parent.tolist() == [c for c in range(3) for _ in range(4)]
    with pytest.raises(KeyError, match="synth"):
        load_pairs("synth@2")
