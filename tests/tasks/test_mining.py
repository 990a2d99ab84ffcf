"""FetchVideos -> DetectMotion -> TrackObjects under luigi.build on a tiny synthetic shard."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.imaging import decode_jpeg
from pipeline.motion import MotionConfig
from pipeline.synthetic import write_video
from pipeline.tracking import TrackingConfig
from tasks.common import read_stage_table
from tasks.mining import DetectMotion, TrackObjects
from tests.conftest import build
from tests.mining_fixtures import clip, iou


def test_detect_and_track_build(tmp_path: Path, luigi_config: Callable[..., Path]) -> None:
    media = tmp_path / "media"
    media.mkdir()
    moving, gt, _ = clip(n_frames=40, object_size=120, speed=1.0, seed=1,
                         object_textures=("noise", "checker"))  # fmt: skip
    write_video(media / "moving.mp4", moving, 25.0)
    still, _, _ = clip(n_frames=20, mode="static", seed=2)
    write_video(media / "still.mp4", still, 25.0)
    lst = tmp_path / "videos.csv"
    lst.write_text(f"url,video_id\n{media / 'moving.mp4'},moving\n{media / 'still.mp4'},still\n")
    luigi_config(video_list=str(lst), videos_per_shard=2)
    luigi_config(section="DetectMotion", frame_step=3, track_length=12, min_seed_gap=8)
    luigi_config(section="TrackObjects", track_length=12)
    task = TrackObjects(shard=0)
    res = build([task])
    assert res.scheduling_succeeded, res.summary_text

    motion = DetectMotion(shard=0)
    seeds = read_stage_table(motion, "seeds").to_pylist()
    status = {r["video_id"]: r for r in read_stage_table(motion, "seed_videos").to_pylist()}
    assert status["moving"]["status"] == status["still"]["status"] == "ok"
    assert status["still"]["n_seeds"] == 0 and status["still"]["n_kept_frames"] == 0
    assert status["moving"]["n_frames"] == 40
    assert seeds and {s["video_id"] for s in seeds} == {"moving"}
    for s in seeds:
        assert s["frame"] + 12 < 40
        assert s["seed_id"] == f"moving:f{s['frame']:07d}"
        # Boxes are in original pixels: 227 at 448 high is ~121.6 px at 240 high.
        assert abs(s["w"] - 227 * 240 / 448) < 1.0
        assert iou((s["x"], s["y"], s["w"], s["h"]), gt[s["frame"], 0]) >= 0.5
        # The moving points' own box, inside the seed box, is on the object too.
        tx, ty, tw, th = (s[f"target_{c}"] for c in "xywh")
        assert s["x"] - 0.01 <= tx and tx + tw <= s["x"] + s["w"] + 0.01 and tw <= s["w"]
        assert iou((tx, ty, tw, th), gt[s["frame"], 0]) >= 0.5

    tracks = read_stage_table(task, "tracks").to_pylist()
    patches = read_stage_table(task, "patches").to_pylist()
    assert len(tracks) == len(seeds)  # every seed gets a row, kept or not
    kept = [t for t in tracks if t["kept"]]
    assert kept, [(t["reason"], t["fb_iou"]) for t in tracks]
    assert len(patches) == 2 * len(kept)
    by_node = {p["node_id"]: p for p in patches}
    for t in kept:
        a, b = by_node[t["patch_a"]], by_node[t["patch_b"]]
        assert (a["view"], b["view"]) == ("A", "A'")
        assert b["frame"] - a["frame"] == 12 == t["frame_b"] - t["frame_a"]
        assert decode_jpeg(a["jpeg"]).shape == (96, 96, 3)
        assert len(t["boxes"]) == 13 * 4
        assert abs(t["b_w"] - t["a_w"]) < 1e-3  # A' is the seed box moved, not resized
        assert iou((t["b_x"], t["b_y"], t["b_w"], t["b_h"]), gt[t["frame_b"], 0]) >= 0.3
    for t in tracks:
        assert t["kept"] == (t["reason"] == "ok")
        assert (t["patch_a"] is None) == (not t["kept"])
    out = Path(task.output().path)
    assert (out / "pairs.png").stat().st_size > 0
    meta = json.loads((out / "_meta.json").read_text())
    assert meta["counts"]["kept"] == len(kept)
    dmeta = json.loads((Path(motion.output().path) / "_meta.json").read_text())
    assert dmeta["counts"]["frames_kept"] == sum(s["n_kept_frames"] for s in status.values())
    videos = {r["video_id"]: r for r in read_stage_table(task, "track_videos").to_pylist()}
    assert videos["moving"]["n_seeds"] == len(seeds)
    assert videos["still"]["status"] == "ok" and videos["still"]["n_seeds"] == 0
    # Same parameters, same outputs: rerunning is a no-op that finds the task complete.
    assert build([TrackObjects(shard=0)]).scheduling_succeeded
    assert np.array_equal(
        read_stage_table(task, "tracks")["boxes"].to_pylist(), [t["boxes"] for t in tracks]
    )


def test_track_video_workers_give_the_same_rows(tmp_path: Path) -> None:
    from pipeline.tracking import TrackingConfig
    from tasks.mining import track_video

    frames, gt, _ = clip(n_frames=40, object_size=120, speed=1.0, seed=1,
                         object_textures=("noise", "checker"))  # fmt: skip
    path = str(write_video(tmp_path / "m.mp4", frames, 25.0))
    seeds = [
        {"seed_id": f"m:f{f:07d}", "frame": f, "video_id": "m",
         **{c: float(v) for c, v in zip("xywh", gt[f, 0], strict=True)}}
        for f in (0, 9, 18, 28)  # the last one is too close to the end (28 + 12 = 40)
    ]  # fmt: skip
    cfg = TrackingConfig(track_length=12)
    one = track_video("m", path, seeds, cfg, 240)
    two = track_video("m", path, seeds, cfg, 240, workers=2)
    assert sorted(t["reason"] for t in one[0]) == ["ok", "ok", "ok", "too_short"]
    assert one[0] == two[0] and one[1] == two[1]


def test_a_failing_video_is_a_row(
    tmp_path: Path, luigi_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.mining as tm

    media = tmp_path / "media"
    media.mkdir()
    for name, seed in (("a", 1), ("b", 2)):
        frames, _, _ = clip(n_frames=12, object_size=120, speed=1.0, seed=seed)
        write_video(media / f"{name}.mp4", frames, 25.0)
    lst = tmp_path / "videos.csv"
    lst.write_text(f"url,video_id\n{media / 'a.mp4'},a\n{media / 'b.mp4'},b\n")
    luigi_config(video_list=str(lst), videos_per_shard=2)
    luigi_config(section="DetectMotion", frame_step=3, track_length=6, min_seed_gap=4)
    real = tm.detect_video

    def flaky(video_id: str, path: str, cfg: MotionConfig, workers: int = 1, **kw: Any) -> Any:
        if video_id == "b":
            raise RuntimeError("decoder exploded")
        return real(video_id, path, cfg, workers, **kw)

    monkeypatch.setattr(tm, "detect_video", flaky)
    task = DetectMotion(shard=0)
    assert build([task]).scheduling_succeeded
    rows = {r["video_id"]: r for r in read_stage_table(task, "seed_videos").to_pylist()}
    assert rows["a"]["status"] == "ok" and rows["a"]["error"] is None
    assert rows["b"]["status"] == "failed" and "decoder exploded" in rows["b"]["error"]
    assert "RuntimeError" in rows["b"]["traceback"]
    meta = json.loads((Path(task.output().path) / "_meta.json").read_text())
    assert meta["counts"]["videos_failed"] == 1


def test_on_demand_reading_gives_the_same_seeds_and_tracks(tmp_path: Path) -> None:
    """Issue 11 speed-up: frames converted to RGB only for the screened pairs and the
    tracking windows, and non-reference frames between the windows not decoded at all,
    give the rows that converting every frame gives (same PyAV source)."""
    from pipeline.video_io import VideoReader
    from tasks.mining import detect_video, track_video

    frames, _, _ = clip(n_frames=60, object_size=120, speed=1.5, camera_pan=(1.0, 0.5), seed=1,
                        object_textures=("noise", "checker"))  # fmt: skip
    path = str(write_video(tmp_path / "m.mp4", frames, 25.0))
    mcfg = MotionConfig(frame_step=3, track_length=8, min_seed_gap=20)
    tcfg = TrackingConfig(track_length=8)
    rows: dict[bool, Any] = {}
    for lazy in (True, False):
        seeds, stat = detect_video("m", path, mcfg, backend="pyav", on_demand=lazy)
        tracks, patches = track_video(
            "m", path, seeds, tcfg, mcfg.frame_height, backend="pyav", on_demand=lazy
        )
        rows[lazy] = (seeds, stat, tracks, patches)
    seeds, stat, tracks, patches = rows[True]
    assert len(seeds) >= 2 and any(t["kept"] for t in tracks)
    assert (seeds, stat, tracks, patches) == rows[False]  # patches: the same JPEG bytes
    # the case exercises the skipping: frames between the windows go undecoded
    need = np.zeros(60, bool)
    for s in seeds:
        need[s["frame"] : s["frame"] + 9] = True
    first, last = seeds[0]["frame"], seeds[-1]["frame"] + 8
    with VideoReader(path, height=448, backend="pyav") as r:
        got = {i for i, _ in r.iter_decoded(first, last + 1, wanted=lambda i: bool(need[i]))}
    assert set(np.flatnonzero(need)) <= got and len(got) < last + 1 - first


def test_targets_fall_back_to_the_seed_box() -> None:
    """Seeds v1 rows (no target_*) and track_target "box" track the seed box itself;
    v2 rows track the moving points' box with the seed box as the patch."""
    from pipeline.tracking import TrackingConfig
    from tasks.mining import _targets

    v1 = {"x": 10.0, "y": 20.0, "w": 100.0, "h": 100.0}
    v2 = {**v1, "target_x": 40.0, "target_y": 50.0, "target_w": 30.0, "target_h": 20.0}
    cfg = TrackingConfig()
    assert _targets(v1, 0.5, cfg) == ((5.0, 10.0, 50.0, 50.0), None)
    assert _targets({**v1, **{f"target_{c}": None for c in "xywh"}}, 1.0, cfg)[1] is None
    assert _targets(v2, 0.5, cfg) == ((20.0, 25.0, 15.0, 10.0), (5.0, 10.0, 50.0, 50.0))
    assert _targets(v2, 1.0, TrackingConfig(track_target="box")) == (
        (10.0, 20.0, 100.0, 100.0),
        None,
    )
