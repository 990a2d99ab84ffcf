"""Report: one HTML page per run (funnel, failures, timing, montages, links)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tasks.report import Report
from tests.conftest import build
from tests.data_manifests.fakerun import test_tables  # noqa: F401
from tests.tasks.minirun import _Graph

pytestmark = pytest.mark.usefixtures("test_tables")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _mined(luigi_config, tmp_path: Path) -> Path:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"file:///videos/v{i}.mp4\n" for i in range(6)))
    root = luigi_config(video_list=str(urls), videos_per_shard=3)
    assert build([_Graph()]).scheduling_succeeded
    return root


def _page(task: Report) -> tuple[Path, str]:
    page = Path(task.output().path) / "index.html"
    return page, page.read_text()


def test_report_page_has_funnel_failures_montages_and_links(luigi_config, tmp_path: Path) -> None:
    root = _mined(luigi_config, tmp_path)
    task = Report()
    assert build([task]).scheduling_succeeded
    page, text = _page(task)
    assert page.parent.parent == root / "Report"
    rows = {
        m.group(1): m.group(0) for m in re.finditer(r"<tr><td>([^<]+)</td>.*?</tr>", text, re.S)
    }
    assert set(rows) == {"_Fetch", "_Graph"}
    assert (
        "<td>2 / 2</td>" in rows["_Fetch"]
        and "failed: 1" in rows["_Fetch"]
        and "ok: 5" in rows["_Fetch"]
    )
    assert "videos: 6" in rows["_Fetch"] and "pairs: 60" in rows["_Graph"]
    assert re.search(r"\d+\.\d s total", rows["_Graph"])
    assert "<h3>_Fetch / videos: 1 rows</h3>" in text
    assert "1 &times; status=failed: corrupt: moov atom not found" in text
    assert text.count('<img src="data:image/png;base64,') == 1  # the graph stage's montage
    links = re.findall(r'<a href="([^"]+)">', text)
    assert len(links) == 3
    for href in links:
        assert (page.parent / href / "_SUCCESS").exists(), href


def test_new_stage_output_gives_a_new_report(luigi_config, tmp_path: Path) -> None:
    _mined(luigi_config, tmp_path)
    first = Report()
    assert build([first]).scheduling_succeeded
    first_path = first.output().path
    assert build([_Graph(n_shards=1)]).scheduling_succeeded
    second = Report()
    assert second.output().path != first_path and not second.complete()
    assert build([second]).scheduling_succeeded
    assert (Path(first_path) / "index.html").exists()  # the old report is kept
    _, text = _page(second)
    assert "<td>2 / 2</td>" in text and text.count("<img") == 2


def test_report_of_an_empty_root_fails_clearly(luigi_config, tmp_path: Path) -> None:
    root = luigi_config()
    root.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no stage outputs under"):
        Report().run()


@pytest.mark.slow
def test_report_renders_in_headless_chromium(luigi_config, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    _mined(luigi_config, tmp_path)
    task = Report()
    assert build([task]).scheduling_succeeded
    page, _ = _page(task)
    shot = Path("/tmp") / f"videomine-report-{tmp_path.name}.png"
    r = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1200,900",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000, len(data)
    from pipeline.imaging import decode_png

    img = decode_png(data)
    assert img.shape[:2] == (900, 1200)
    # the page drew something beyond a blank canvas: many distinct colours (text, montage)
    assert len({tuple(p) for p in img.reshape(-1, img.shape[-1])[::37]}) > 50
