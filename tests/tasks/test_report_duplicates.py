"""Report: a ``duplicate`` row of ``videos`` names the row it repeats (``duplicate_of``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from data_manifests.runs import scan_run
from pipeline.video_ids import default_video_id
from tasks.fetch import FetchVideos
from tasks.report import Report, failure_reasons
from tests import media_fixtures as mf
from tests.conftest import build


def test_duplicate_rows_name_the_video_they_repeat(
    tmp_path: Path, luigi_config: Callable[..., Path]
) -> None:
    mf.good_video(tmp_path / "a.mp4")
    urls = tmp_path / "urls.txt"
    # line 1 fetched; lines 2 and 3 repeat it; line 4 is a missing file (a real failure)
    urls.write_text("a.mp4\na.mp4\na.mp4\nmissing.mp4\n")
    luigi_config(video_list=str(urls), videos_per_shard=10, max_failure_rate=1.0)
    fetch, report = FetchVideos(shard=0), Report()
    assert build([fetch]).scheduling_succeeded
    assert build([report]).scheduling_succeeded

    first = default_video_id("a.mp4")
    (stage,) = [s for s in scan_run(luigi_config()).stages if s.family == "FetchVideos"]
    reasons = failure_reasons(stage, "videos")
    assert reasons[f"status=duplicate: duplicate of {first}"] == 2
    assert sum(reasons.values()) == 3  # two duplicates and the missing file
    assert not any("(no reason given)" in r for r in reasons)

    page = (Path(report.output().path) / "index.html").read_text()
    assert f"2 &times; status=duplicate: duplicate of {first}" in page
    assert "(no reason given)" not in page
