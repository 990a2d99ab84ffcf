"""EmbedPatches -> ClusterParents -> ChildClusters -> BuildGraph under luigi.build.

Upstream is a stand-in TrackObjects over two shards writing the real ``tracks`` /
``patches`` tables, whose kept tracks show synthetic objects of four kinds (A and A' are two
looks of one kind), so the known answer is which pairs may join which kinds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tasks.graph as tg
from pipeline import imaging
from pipeline.shapes import ShapeConfig, shape_patches
from tasks import common
from tests.conftest import build

KINDS = ("disc", "cross", "bars", "triangle")
PER_SHARD = 48  # tracks per shard (12 per kind)


def kind_of(track_id: str) -> int:
    return int(track_id.split("k")[1].split(":")[0])


def _track_row(tid: str, video: str, kept: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "track_id": tid, "seed_id": tid.split(":")[0], "video_id": video,
        "frame_a": 5, "frame_b": 35, "kept": kept, "reason": "ok" if kept else "fb_fail",
        "confidence": 0.9, "fb_iou": 0.9, "min_inside": 1.0, "min_step_similarity": 0.9,
        "end_similarity": 0.9, "copy_ncc": 0.5, "kcf_failures": 0, "frozen_tail": 0,
        "boxes": [1.0, 2.0, 227.0, 227.0] * 31,
        "patch_a": f"{tid}:A" if kept else None, "patch_b": f"{tid}:A'" if kept else None,
    }  # fmt: skip
    row.update(
        {f"{p}_{c}": v for p in "ab" for c, v in zip("xywh", (1.0, 2.0, 227.0, 227.0), strict=True)}
    )
    return row


class _Tracks(common.ShardTask):
    """Stand-in TrackObjects writing the real ``tracks`` / ``patches`` tables."""

    def produce(self, out: common.StageOutput) -> None:
        cfg = ShapeConfig(n_per_kind=2 * PER_SHARD // len(KINDS), kinds=KINDS, seed=self.shard)
        imgs, labels = shape_patches(cfg)
        tracks, patches = [], []
        per_kind = cfg.n_per_kind // 2
        for k in range(len(KINDS)):
            own = np.flatnonzero(labels == k)
            for i in range(per_kind):
                tid = f"s{self.shard}i{i:02d}k{k}:t30"
                video = f"v{self.shard}{i % 3}"
                tracks.append(_track_row(tid, video, True))
                for view, img in (("A", imgs[own[i]]), ("A'", imgs[own[per_kind + i]])):
                    patches.append(
                        {"node_id": f"{tid}:{view}", "track_id": tid, "seed_id": tid[:-4],
                         "video_id": video, "view": view, "frame": 5 + 30 * (view == "A'"),
                         "x": 1.0, "y": 2.0, "w": 227.0, "h": 227.0, "size": 96,
                         "jpeg": imaging.encode_jpeg(img)}
                    )  # fmt: skip
        tracks.append(_track_row(f"s{self.shard}lostk0:t30", "v", False))
        out.write("tracks", tracks)
        out.write("patches", patches)
        out.count("tracks", len(tracks))
        out.count("kept", len(tracks) - 1)


@pytest.fixture
def fake_mining(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tg, "_tracking_task", lambda shard: _Tracks(shard=shard))
    lst = tmp_path / "videos.txt"
    lst.write_text("".join(f"file:///nowhere/v{i}.mp4\n" for i in range(4)))
    return lst


PARAMS: dict[str, Any] = {"k": 8, "points_per_parent": 10, "min_parent_size": 5}


def _run(luigi_config: Callable[..., Path], lst: Path, root: Path, **extra: Any) -> tg.BuildGraph:
    luigi_config(video_list=str(lst), videos_per_shard=2, root=str(root))
    task = tg.BuildGraph(**PARAMS, **extra)
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    return task


def test_build_graph_end_to_end(fake_mining: Path, luigi_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    task = _run(luigi_config, fake_mining, tmp_path / "run1")
    out = task.output()
    nodes = common.read_stage_table(out, "nodes")
    pairs = common.read_stage_table(out, "pairs").to_pylist()
    edges = common.read_stage_table(out, "edges").to_pylist()
    n_tracks = 2 * PER_SHARD
    assert nodes.num_rows == 2 * n_tracks  # the lost track has no node
    by_type: dict[str, int] = {}
    for p in pairs:
        by_type[p["pair_type"]] = by_type.get(p["pair_type"], 0) + 1
        if p["pair_type"] == "intra":
            assert p["a_track"] == p["b_track"]
            assert (p["a"], p["b"]) == (p["a_track"] + ":A", p["a_track"] + ":A'")
        else:  # inter and transitive pairs join two tracks of one kind (pure children)
            assert kind_of(p["a_track"]) == kind_of(p["b_track"])
            assert p["a_track"] != p["b_track"]
            assert p["a_parent"] == p["b_parent"] >= 0  # children live inside one kept parent
    inter = [e for e in edges if e["edge_type"] == "inter"]
    assert by_type["intra"] == n_tracks
    assert by_type["inter"] == len(inter) > 10
    assert by_type["transitive_1"] == 2 * len(inter)
    assert by_type["transitive_2"] == len(inter)
    assert [p["pair_id"] for p in pairs] == list(range(len(pairs)))
    # every inter pair is an edge of the children table: one hop only
    children = common.read_stage_table(task.requires()["children"], "children").to_pylist()
    groups: dict[int, set[str]] = {}
    for r in children:
        groups.setdefault(r["child_id"], set()).add(r["track_id"])
    for p in pairs:
        if p["pair_type"] != "intra":
            assert any({p["a_track"], p["b_track"]} <= g for g in groups.values())
    meta = json.loads((Path(out.path) / "_meta.json").read_text())
    funnel = meta["notes"]["funnel"]
    assert funnel["parents_kept"] >= 4 and funnel["children"] == len(groups)
    assert funnel["pairs_intra"] == n_tracks and funnel["kept_tracks"] == n_tracks
    assert funnel["upstream"]["_Tracks"] == {"tracks": n_tracks + 2, "kept": n_tracks}
    for png in ("clusters.png", "pairs.png"):
        img = imaging.decode_png((Path(out.path) / png).read_bytes())
        assert img.ndim == 3 and img.shape[0] > 96
    emb = common.read_stage_table(tg.EmbedPatches(shard=0, **{}), "embeddings")
    assert emb.num_rows == PER_SHARD and all(v.endswith(":A") for v in emb["node_id"].to_pylist())


def test_rerun_same_seed_gives_identical_manifests(
    fake_mining: Path, luigi_config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    a = _run(luigi_config, fake_mining, tmp_path / "a", pca_dim=16)  # and the PCA path
    b = _run(luigi_config, fake_mining, tmp_path / "b", pca_dim=16)
    pca = np.load(Path(a.requires()["parents"].output().path) / "pca.npz")
    assert pca["matrix"].shape == (16, 4356)
    cents = common.read_stage_table(a.requires()["parents"], "parent_centroids")
    assert len(cents["centroid"][0]) == 16
    for task_a, task_b in (
        (a, b),
        (a.requires()["children"], b.requires()["children"]),
        (a.requires()["parents"], b.requires()["parents"]),
    ):
        pa_, pb_ = Path(task_a.output().path), Path(task_b.output().path)
        files = sorted(p.name for p in pa_.glob("*.parquet"))
        assert files
        for name in files:
            assert (pa_ / name).read_bytes() == (pb_ / name).read_bytes(), name


def test_nodes_from_tables_keeps_kept_tracks_in_order() -> None:
    import pyarrow as pa

    from tasks.graph_io import feature_matrix, nodes_from_tables

    tracks = pa.table({"track_id": ["b", "a", "c"], "kept": [True, True, False]})
    patches = pa.table(
        {
            "node_id": ["b:A'", "b:A", "a:A", "a:A'", "c:A"],
            "track_id": ["b", "b", "a", "a", "c"],
            "video_id": ["v"] * 5,
            "view": ["A'", "A", "A", "A'", "A"],
            "frame": [30, 0, 0, 30, 0],
            **{k: [1.0] * 5 for k in "xywh"},
            "jpeg": [b"j"] * 5,
        }
    )
    nodes = nodes_from_tables(tracks, patches)
    assert nodes["node_id"].to_pylist() == ["a:A", "a:A'", "b:A", "b:A'"]
    bad = patches.set_column(
        patches.column_names.index("view"), "view", pa.array(["A2", "A", "A", "A'", "A"])
    )
    with pytest.raises(ValueError, match="view"):
        nodes_from_tables(tracks, bad)
    empty = pa.table({"feature": pa.array([], pa.list_(pa.float16()))})
    assert feature_matrix(empty).shape[0] == 0
    f = np.arange(12, dtype=np.float16).reshape(4, 3)
    parts = [pa.table({"feature": pa.array(list(f[i : i + 2]), pa.list_(pa.float16()))})
             for i in (0, 2)]  # fmt: skip
    assert (feature_matrix(pa.concat_tables(parts)) == f).all()


def test_trained_sources_require_their_training_task(luigi_config) -> None:  # type: ignore[no-untyped-def]
    luigi_config()
    ctx = tg.EmbedPatches(shard=0, source="context").requires()
    assert ctx["model"].task_family == "TrainContext"
    trk = tg.EmbedPatches(shard=0, source="tracking").requires()
    assert trk["model"].task_family == "TrainTracking"
    assert "model" not in tg.EmbedPatches(shard=0).requires()  # hog: no network
    given = tg.EmbedPatches(shard=0, source="context", checkpoint="/x/ckpt.pt").requires()
    assert "model" not in given  # an explicit checkpoint replaces training


class _NoTracks(common.ShardTask):
    """Stand-in TrackObjects of a shard whose videos gave no seed."""

    may_be_empty = ("tracks", "patches")

    def produce(self, out: common.StageOutput) -> None:
        out.write("tracks", [])
        out.write("patches", [])


def test_a_run_without_any_kept_track_is_refused_as_empty(
    tmp_path: Path, luigi_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards without tracks are fine; a run with none at all is the one empty output."""
    monkeypatch.setattr(tg, "_tracking_task", lambda shard: _NoTracks(shard=shard))
    lst = tmp_path / "videos.txt"
    lst.write_text("".join(f"file:///nowhere/v{i}.mp4\n" for i in range(4)))
    luigi_config(video_list=str(lst), videos_per_shard=2)
    parents = tg.ClusterParents(**PARAMS)
    assert build(parents.requires()).scheduling_succeeded  # empty shards: complete
    with pytest.raises(common.EmptyOutputError, match="no kept track in any of the run's 2"):
        parents.run()
