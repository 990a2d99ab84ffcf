"""FetchVideos -> SegmentMotion under luigi.build: masks + mask_shots, failures as rows."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.imaging import decode_jpeg, decode_png
from pipeline.synthetic import SyntheticConfig, generate, write_video
from tasks import common
from tasks.fetch import FetchVideos, usable_videos
from tasks.segment import SegmentMotion
from tests.conftest import build


@pytest.fixture
def video_list(tmp_path: Path) -> Path:
    d = tmp_path / "videos"
    d.mkdir()
    small = dict(height=120, width=160)
    clips = {
        "moving": SyntheticConfig(
            **small, n_frames=30, object_size=48, camera_pan=(1.5, 0.0), seed=1
        ),
        "still": SyntheticConfig(**small, n_frames=20, mode="static", seed=2),
        "pan": SyntheticConfig(
            **small, n_frames=20, mode="pan_only", camera_pan=(2.0, 1.0), seed=3
        ),
        "vanish": SyntheticConfig(**small, n_frames=20, seed=4),
    }
    for name, cfg in clips.items():
        write_video(d / f"{name}.mp4", generate(cfg).frames, 25.0)
    (d / "broken.mp4").write_bytes(b"not a video at all")
    lst = tmp_path / "list.csv"
    with open(lst, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["url", "video_id"])
        w.writeheader()
        for name in [*clips, "broken"]:
            w.writerow({"url": str(d / f"{name}.mp4"), "video_id": name})
    return lst


def test_segment_motion_build(video_list: Path, luigi_config: Callable[..., Path]) -> None:
    luigi_config(video_list=str(video_list), videos_per_shard=5)
    assert build([FetchVideos(shard=0)]).scheduling_succeeded
    # A file that disappears between the stages fails alone, as a row.
    (video_list.parent / "videos" / "vanish.mp4").write_bytes(b"truncated")
    task = SegmentMotion(shard=0, n_superpixels=150)
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text
    target = task.output()
    masks = common.read_stage_table(target, "masks")
    shots = {r["video_id"]: r for r in common.read_stage_table(target, "mask_shots").to_pylist()}
    assert set(shots) == {"moving", "still", "pan", "vanish"}  # broken failed in FetchVideos
    assert shots["moving"]["status"] == "segmented" and shots["moving"]["n_segmented"] == 30
    assert (shots["still"]["status"], shots["still"]["reason"]) == ("rejected", "static")
    assert (shots["pan"]["status"], shots["pan"]["reason"]) == ("rejected", "camera_motion_only")
    assert shots["vanish"]["status"] == "failed" and shots["vanish"]["shot"] == -1
    assert "Error" in shots["vanish"]["reason"] and shots["vanish"]["detail"]
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
    # fg_share is uNLC's own foreground (> 0.7) the frame was judged on; the stored mask keeps
    # only the confident part of it (> confident_positive 0.9) as trimap positive
    stored_fg = float((soft > 0.7 * 255).mean())
    assert 0 < stored_fg <= r["fg_share"] + 1e-6
    assert stored_fg == float((soft > 0.9 * 255).mean())
    assert (Path(target.path) / "overlay.png").is_file()
    meta = json.loads((Path(target.path) / "_meta.json").read_text())
    assert meta["counts"]["frames_segmented"] == 30 and meta["counts"]["videos_failed"] == 1
    assert meta["counts"]["shots_rejected"] == 2


def test_usable_videos() -> None:
    t = pa.table(
        {
            "video_id": ["a", "b", "c"],
            "local_path": ["/x.mp4", "/y.mp4", None],
            "status": ["ok", "failed", "ok"],
        }
    )
    assert usable_videos(t) == [{"video_id": "a", "local_path": "/x.mp4", "status": "ok"}]
    with pytest.raises(KeyError, match="local_path"):
        usable_videos(pa.table({"video_id": ["a"], "status": ["ok"]}))
