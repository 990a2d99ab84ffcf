"""PublishDataset and Report on a real FetchVideos run (real ``videos`` table declaration)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from data_manifests.registry import Registry
from data_manifests.verify import verify
from tasks.fetch import FetchAllVideos
from tasks.publish import PublishDataset
from tasks.report import Report
from tests import media_fixtures as mf
from tests.conftest import build


def test_publish_and_report_a_real_fetch_run(
    luigi_config: Callable[..., Path], tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    rows = [
        {"url": str(mf.good_video(media / "a.mp4")), "video_id": "a", "licence": "CC0"},
        {"url": str(mf.good_video(media / "b.mp4")), "video_id": "b", "licence": "CC-BY"},
        {"url": str(media / "gone.mp4"), "video_id": "gone", "licence": "CC-BY"},
    ]
    lst = tmp_path / "list.csv"
    with open(lst, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["url", "video_id", "licence"])
        w.writeheader()
        w.writerows(rows)
    reg = tmp_path / "reg"
    luigi_config(video_list=str(lst), videos_per_shard=2, max_failure_rate=1.0, registry=str(reg))
    assert build([FetchAllVideos()]).scheduling_succeeded

    report = Report()
    assert build([report]).scheduling_succeeded
    page = (Path(report.output().path) / "index.html").read_text()
    assert "<td>FetchVideos</td><td>2 / 2</td>" in page
    assert "gone.mp4" in page  # the missing file's error is listed as a failure reason

    task = PublishDataset(name="fetched", version="1", tables=["videos"], owner="team-a")
    assert build([task]).scheduling_succeeded
    m = Registry(str(reg)).manifest("fetched@1")
    assert m.licences == {"CC0": 1, "CC-BY": 2}
    assert m.tables["videos"].rows == 3
    assert m.input_url_list_sha256 is not None
    assert m.counts["FetchVideos"]["ok"] == 2
    assert verify("fetched@1", str(reg)).ok


@pytest.fixture(autouse=True)
def _no_registry_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDEOMINE_REGISTRY", raising=False)
