"""FetchVideos: one local file named by a relative path, ``./``, ``..``, an absolute path
and a ``file://`` URL is fetched once; the other lines are ``duplicate`` rows."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from pipeline.video_ids import default_video_id
from tasks.common import read_stage_table
from tasks.fetch import FetchVideos
from tests import media_fixtures as mf
from tests.conftest import build


def test_one_file_under_several_spellings_is_fetched_once(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    media, lists = tmp_path / "media", tmp_path / "lists"
    media.mkdir()
    lists.mkdir()
    a = mf.good_video(media / "a.mp4")
    b = mf.good_video(media / "b.mp4", seed=1)
    urls = [
        "../media/a.mp4",  # line 2: fetched
        str(a),  # absolute
        "file://" + str(a),
        "./../media/a.mp4",
        "../lists/../media/a.mp4",
        str(b),  # another file: fetched, id unchanged
    ]
    video_list = lists / "videos.csv"
    with open(video_list, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["url"])
        w.writerows([u] for u in urls)
    luigi_config(video_list=str(video_list), videos_per_shard=3)  # two shards

    tasks = [FetchVideos(shard=0), FetchVideos(shard=1)]
    assert build(tasks).scheduling_succeeded
    rows = {r["line"]: r for t in tasks for r in read_stage_table(t, "videos").to_pylist()}

    first = default_video_id("../media/a.mp4")
    assert [rows[n]["status"] for n in range(2, 8)] == ["ok"] + ["duplicate"] * 4 + ["ok"]
    assert rows[2]["video_id"] == first and rows[2]["local_path"] == str(a.resolve())
    for n in range(3, 7):  # duplicates across the shard boundary too (lines 5, 6)
        assert rows[n]["duplicate_of"] == first, rows[n]
        assert rows[n]["video_id"] == f"{default_video_id(urls[n - 2])}-L{n}"
        assert rows[n]["url"] == urls[n - 2] and rows[n]["local_path"] is None
    assert rows[7]["video_id"] == default_video_id(str(b)) and rows[7]["duplicate_of"] is None
    counts = [
        json.loads((Path(t.output().path) / "_meta.json").read_text())["counts"] for t in tasks
    ]
    assert (counts[0]["ok"], counts[0]["duplicate"]) == (1, 2)
    assert (counts[1]["ok"], counts[1]["duplicate"]) == (1, 2)
