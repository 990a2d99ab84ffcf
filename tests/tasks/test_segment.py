"""SegmentMotion under luigi.build: masks + mask_shots tables, failures as rows, overlay."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import luigi
import numpy as np
import pyarrow as pa
import pytest

from data_manifests import schema as S
from pipeline.imaging import decode_jpeg, decode_png
from pipeline.synthetic import SyntheticConfig, generate, write_video
from tasks import common
from tasks.segment import SegmentMotion, usable_videos
from tests.conftest import build

# Until FetchVideos lands, a minimal upstream ``videos`` table with the columns we read.
VIDEOS = S.TableSchema(
    name="videos",
    version=1,
    description="test videos for SegmentMotion",
    fields=pa.schema(
        [
            pa.field("video_id", pa.string(), nullable=False),
            pa.field("local_path", pa.string()),
            pa.field("status", pa.string(), nullable=False),
        ]
    ),
    key=("video_id",),
)


class _Videos(common.ShardTask):
    video_dir = luigi.Parameter()

    def produce(self, out: common.StageOutput) -> None:
        d = Path(self.video_dir)
        rows: list[dict[str, Any]] = [
            {"video_id": "moving", "local_path": str(d / "moving.mp4"), "status": "ok"},
            {"video_id": "still", "local_path": str(d / "still.mp4"), "status": "ok"},
            {"video_id": "broken", "local_path": str(d / "broken.mp4"), "status": "ok"},
            {"video_id": "gone", "local_path": None, "status": "failed"},
        ]
        out.write("videos", rows)


class _Segment(SegmentMotion):
    video_dir = luigi.Parameter()

    def requires(self) -> luigi.Task:
        return _Videos(shard=self.shard, video_dir=self.video_dir)


@pytest.fixture
def videos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    S.all_schemas()
    monkeypatch.setitem(S.SCHEMAS, "videos", VIDEOS)
    d = tmp_path / "videos"
    d.mkdir()
    moving = generate(
        SyntheticConfig(
            height=120, width=160, n_frames=30, object_size=48, camera_pan=(1.5, 0.0), seed=1
        )
    )
    write_video(d / "moving.mp4", moving.frames, 25.0)
    still = generate(SyntheticConfig(height=120, width=160, n_frames=20, mode="static", seed=2))
    write_video(d / "still.mp4", still.frames, 25.0)
    (d / "broken.mp4").write_bytes(b"not a video at all")
    return d


def test_segment_motion_build(videos: Path, luigi_config: Callable[..., Path]) -> None:
    luigi_config()
    task = _Segment(shard=0, video_dir=str(videos), n_superpixels=150)
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    target = task.output()
    masks = common.read_stage_table(target, "masks")
    shots = common.read_stage_table(target, "mask_shots").to_pylist()
    by_video = {r["video_id"]: r for r in shots}
    assert by_video["moving"]["status"] == "segmented"
    assert by_video["still"]["status"] == "rejected" and by_video["still"]["reason"] == "static"
    assert by_video["broken"]["status"] == "failed" and by_video["broken"]["shot"] == -1
    assert "gone" not in by_video  # FetchVideos already reported it
    assert masks.num_rows == 30 and set(masks.column("video_id").to_pylist()) == {"moving"}
    rows = masks.to_pylist()
    assert sum(r["kept"] for r in rows) >= 5  # the object bounces off the edges: some pruned
    for r in rows:
        assert (r["reason"] == "") == r["kept"]
        if r["reason"] == "touches_border":
            assert r["border_share"] > 0.1
    r = rows[10]
    frame, soft = decode_jpeg(r["frame_jpeg"]), decode_png(r["mask_png"])
    assert frame.shape == (r["height"], r["width"], 3) == (120, 160, 3)
    assert soft.shape == (120, 160) and soft.dtype == np.uint8
    assert abs(float((soft > 0.7 * 255).mean()) - r["fg_share"]) < 1e-6
    assert (Path(target.path) / "overlay.png").is_file()
    meta = json.loads((Path(target.path) / "_meta.json").read_text())
    assert meta["counts"]["frames_segmented"] == 30 and meta["counts"]["videos_failed"] == 1


def test_usable_videos_needs_a_path_column() -> None:
    t = pa.table(
        {"video_id": ["a", "b"], "local_path": ["/x.mp4", "/y.mp4"], "status": ["ok", "failed"]}
    )
    assert usable_videos(t) == [("a", "/x.mp4")]
    with pytest.raises(KeyError, match="path"):
        usable_videos(pa.table({"video_id": ["a"]}))
