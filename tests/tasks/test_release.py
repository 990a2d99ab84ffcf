"""ReleaseVideos / MineAll: downloads deleted after a shard's stages when keep_videos=false,
local inputs never; a rerun that needs a released file says so; attempt N+1 gets it back."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.synthetic import write_video
from tasks.common import read_stage_table
from tasks.fetch import FetchVideos, video_path
from tasks.graph import BuildGraph
from tasks.mining import DetectMotion
from tasks.release import MineAll, ReleaseVideos, release_video
from tests import http_fixture as hf
from tests.conftest import build
from tests.mining_fixtures import clip


@pytest.fixture()
def server() -> Iterator[hf.Server]:
    s = hf.Server()
    yield s
    s.close()


def _shard(tmp_path: Path, server: hf.Server) -> tuple[Path, Path]:
    """Two clips served over HTTP (owned downloads) and one local input; the list."""
    media = tmp_path / "media"
    media.mkdir()
    for k, name in enumerate(("dl1", "dl2", "local")):
        frames, _, _ = clip(height=120, width=160, n_frames=24, object_size=60, speed=1.0,
                            seed=k + 1, object_textures=("noise", "checker"))  # fmt: skip
        write_video(media / f"{name}.mp4", frames, 25.0)
    for name in ("dl1", "dl2"):
        server.routes[f"/{name}.mp4"] = hf.serve_bytes((media / f"{name}.mp4").read_bytes())
    lst = tmp_path / "videos.csv"
    lst.write_text(
        "url,video_id\n"
        f"{server.url('/dl1.mp4')},dl1\n{server.url('/dl2.mp4')},dl2\n"
        f"{media / 'local.mp4'},local\n"
    )
    return lst, media / "local.mp4"


def _released(task: ReleaseVideos) -> dict[str, dict[str, object]]:
    return {r["video_id"]: r for r in read_stage_table(task, "released_videos").to_pylist()}


def test_keep_then_release_then_rerun_and_refetch(
    tmp_path: Path, server: hf.Server, luigi_config: Callable[..., Path]
) -> None:
    lst, local = _shard(tmp_path, server)
    local_bytes = local.read_bytes()
    root = luigi_config(video_list=str(lst), videos_per_shard=3, keep_videos=True)
    luigi_config(section="DetectMotion", frame_step=3, track_length=6, min_seed_gap=4)
    luigi_config(section="TrackObjects", track_length=6)
    luigi_config(section="SegmentMotion", n_superpixels=100)

    # keep_videos=true: every stage runs, nothing is deleted, the table says why.
    kept = ReleaseVideos(shard=0)
    res = build([kept])
    assert res.scheduling_succeeded, res.summary_text
    videos = {
        r["video_id"]: r for r in read_stage_table(FetchVideos(shard=0), "videos").to_pylist()
    }
    assert {v: videos[v]["owned"] for v in videos} == {"dl1": True, "dl2": True, "local": False}
    files = {v: Path(videos[v]["local_path"]) for v in videos}
    assert files["dl1"].parent == root / "videos" and files["local"] == local.resolve()
    rows = _released(kept)
    assert {v: (r["released"], r["reason"]) for v, r in rows.items()} == {
        v: (False, "keep_videos") for v in ("dl1", "dl2", "local")
    }
    assert all(p.is_file() for p in files.values())
    assert all(files[v].with_name(files[v].name + ".url").is_file() for v in ("dl1", "dl2"))

    # keep_videos=false: a new ReleaseVideos output (the setting is part of its identity)
    # deletes the downloads and their .url notes; the upstream stages are not rerun.
    kept_path = kept.output().path
    luigi_config(keep_videos=False)
    released = ReleaseVideos(shard=0)
    assert released.output().path != kept_path
    res = build([released])
    assert res.scheduling_succeeded, res.summary_text
    rows = _released(released)
    for v in ("dl1", "dl2"):
        assert (rows[v]["released"], rows[v]["reason"]) == (True, "released")
        assert rows[v]["bytes"] == videos[v]["bytes"] > 0
        assert not files[v].exists()
        assert not files[v].with_name(files[v].name + ".url").exists()
    assert (rows["local"]["released"], rows["local"]["reason"]) == (False, "local_input")
    assert local.read_bytes() == local_bytes  # a user's input is untouched
    meta = json.loads((Path(released.output().path) / "_meta.json").read_text())
    assert meta["counts"]["released"] == 2 and meta["counts"]["local_input"] == 1
    assert meta["counts"]["bytes_released"] == videos["dl1"]["bytes"] + videos["dl2"]["bytes"]
    assert server.count("/dl1.mp4") == 1

    # A rerun with new parameters needs the released files: each fails as a row that
    # says why and how to get it back (failure rate raised so the rows are committed).
    luigi_config(max_failure_rate=1.0)
    luigi_config(section="DetectMotion", frame_step=4)
    rerun = DetectMotion(shard=0)
    assert build([rerun]).scheduling_succeeded
    status = {r["video_id"]: r for r in read_stage_table(rerun, "seed_videos").to_pylist()}
    assert status["local"]["status"] == "ok"
    for v in ("dl1", "dl2"):
        assert status[v]["status"] == "failed"
        assert "keep_videos=false" in status[v]["error"]
        assert "--FetchVideos-attempt" in status[v]["error"]

    # The way back: the next FetchVideos attempt downloads the released files again.
    luigi_config(max_failure_rate=0.5)
    rerun_path = rerun.output().path
    luigi_config(section="FetchVideos", attempt=2)
    again = DetectMotion(shard=0)
    assert again.output().path != rerun_path
    assert build([again]).scheduling_succeeded
    status = {r["video_id"]: r for r in read_stage_table(again, "seed_videos").to_pylist()}
    assert {v: r["status"] for v, r in status.items()} == dict.fromkeys(status, "ok")
    assert server.count("/dl1.mp4") == server.count("/dl2.mp4") == 2
    assert files["dl1"].is_file() and files["dl2"].is_file()
    refetched = read_stage_table(FetchVideos(shard=0), "videos").to_pylist()
    by_id = {r["video_id"]: r for r in refetched}
    assert by_id["dl1"]["attempt_of_run"] == 2 and by_id["dl1"]["sha256"] == videos["dl1"]["sha256"]
    assert by_id["local"]["attempt_of_run"] == 1  # local inputs are copied, not refetched


def test_release_video_deletes_only_owned_files_in_video_dir(tmp_path: Path) -> None:
    vdir = tmp_path / "videos"
    vdir.mkdir()
    other = tmp_path / "elsewhere"
    other.mkdir()
    owned = vdir / "a.mp4"
    owned.write_bytes(b"x" * 10)
    owned.with_name("a.mp4.url").write_text("http://h/a.mp4")
    outside = other / "b.mp4"
    outside.write_bytes(b"y" * 7)
    link = vdir / "c.mp4"
    link.symlink_to(outside)
    local = other / "d.mp4"
    local.write_bytes(b"z" * 3)

    def row(vid: str, path: Path, owned: bool) -> dict[str, object]:
        return {"video_id": vid, "local_path": str(path), "owned": owned}

    keep = release_video(row("a", owned, True), keep=True, video_dir=vdir)
    assert (keep["released"], keep["reason"], keep["bytes"]) == (False, "keep_videos", 10)
    assert owned.exists()
    for r, reason in (
        (row("b", outside, True), "outside_video_dir"),
        (row("c", link, True), "outside_video_dir"),
        (row("d", local, False), "local_input"),
        (row("e", vdir / "gone.mp4", True), "already_gone"),
        (row("a", owned, True), "released"),
    ):
        got = release_video(r, keep=False, video_dir=vdir)
        assert got["reason"] == reason and got["released"] == (reason == "released")
    assert not owned.exists() and not owned.with_name("a.mp4.url").exists()
    assert outside.read_bytes() == b"y" * 7 and link.is_symlink() and local.exists()
    # No local video_dir: nothing owned can be deleted.
    outside2 = release_video(row("b", outside, True), keep=False, video_dir=None)
    assert outside2["reason"] == "outside_video_dir" and outside.exists()


def test_video_path_messages(tmp_path: Path, luigi_config: Callable[..., Path]) -> None:
    root = luigi_config()
    here = tmp_path / "here.mp4"
    here.write_bytes(b"v")
    assert video_path({"video_id": "h", "local_path": str(here), "owned": True}) == str(here)
    with pytest.raises(FileNotFoundError, match="keep_videos=false.*--FetchVideos-attempt"):
        video_path({"video_id": "a", "local_path": str(tmp_path / "a.mp4"), "owned": True})
    with pytest.raises(FileNotFoundError, match="local input .* never deletes"):
        video_path({"video_id": "b", "local_path": str(tmp_path / "b.mp4"), "owned": False})
    # `owned` unknown (a table without it): a file in video_dir was a download.
    in_dir = os.path.join(root, "videos", "c.mp4")
    with pytest.raises(FileNotFoundError, match="keep_videos=false"):
        video_path({"video_id": "c", "local_path": in_dir})
    with pytest.raises(FileNotFoundError, match="local input"):
        video_path({"video_id": "d", "local_path": str(tmp_path / "d.mp4")})


def test_mine_all_requires_every_shard_and_the_graph(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"/data/v{i}.mp4\n" for i in range(5)))
    luigi_config(video_list=str(lst), videos_per_shard=2)
    reqs = MineAll().requires()
    assert [r for r in reqs if isinstance(r, ReleaseVideos)] == [
        ReleaseVideos(shard=s) for s in range(3)
    ]
    assert [r for r in reqs if isinstance(r, BuildGraph)] == [BuildGraph()]
    deps = ReleaseVideos(shard=1).requires()
    assert {type(t).__name__ for t in deps.values()} == {
        "FetchVideos",
        "TrackObjects",
        "SegmentMotion",
    }
