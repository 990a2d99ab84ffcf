"""FetchVideos on a shard holding every bad input of issue 2, next to good videos."""

from __future__ import annotations

import csv
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.url_list import UrlListError
from tasks.common import SUCCESS, read_stage_table
from tasks.fetch import FetchAllVideos, FetchVideos
from tests import http_fixture as hf
from tests import media_fixtures as mf
from tests.conftest import build

FAST = {"retries": 1, "backoff": 0.01, "connect_timeout": 2.0, "read_timeout": 0.5}


@pytest.fixture()
def server() -> Iterator[hf.Server]:
    s = hf.Server()
    yield s
    s.close()


def write_list(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["url", "video_id", "licence"])
        w.writeheader()
        w.writerows(rows)
    return path


def rows_by_line(task: FetchVideos) -> dict[int, dict[str, Any]]:
    return {r["line"]: r for r in read_stage_table(task, "videos").to_pylist()}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def bad_shard(
    tmp_path: Path, server: hf.Server, luigi_config: Callable[..., Path]
) -> tuple[Path, list[dict[str, str]]]:
    media = tmp_path / "media"
    media.mkdir()
    good = mf.good_video(media / "good.mp4").read_bytes()
    server.routes["/good.mp4"] = hf.serve_bytes(good)
    server.routes["/flaky.mp4"] = hf.fail_then(hf.status(500), 1, hf.serve_bytes(good))
    server.routes["/stall.mp4"] = hf.stall(server, 30.0)
    server.routes["/cut.mp4"] = hf.cut(good, len(good) // 3)
    server.routes["/huge.mp4"] = hf.serve_bytes(good + b"\0" * 200_000)
    server.routes["/page.mp4"] = hf.serve_bytes(b"<html>moved</html>", ctype="text/html")
    rows = [
        {"url": server.url("/good.mp4"), "video_id": "good", "licence": "CC0"},
        {"url": server.url("/missing.mp4"), "video_id": "", "licence": ""},
        {"url": server.url("/flaky.mp4"), "video_id": "flaky", "licence": ""},
        {"url": server.url("/stall.mp4"), "video_id": "stall", "licence": ""},
        {"url": server.url("/cut.mp4"), "video_id": "cut", "licence": ""},
        {"url": server.url("/huge.mp4"), "video_id": "huge", "licence": ""},
        {"url": server.url("/page.mp4"), "video_id": "page", "licence": ""},
        {"url": str(mf.truncated_tail(media / "trunc.mp4")), "video_id": "trunc", "licence": ""},
        {"url": str(mf.zero_frame_video(media / "zero.mp4")), "video_id": "zero", "licence": ""},
        {
            "url": str(mf.good_video(media / "one.mp4", n_frames=1)),
            "video_id": "one",
            "licence": "",
        },
        {"url": str(mf.grayscale_video(media / "grey.mkv")), "video_id": "grey", "licence": ""},
        {"url": server.url("/good.mp4"), "video_id": "", "licence": ""},  # duplicate URL
        {"url": "media/good.mp4", "video_id": "a/b", "licence": ""},
        {"url": "media/good.mp4", "video_id": "..", "licence": ""},
        {"url": "media/good.mp4", "video_id": "my clip", "licence": ""},
        {"url": "gopher://example.com/v.mp4", "video_id": "", "licence": ""},
        {"url": f"http://127.0.0.1:{closed_port()}/v.mp4", "video_id": "", "licence": ""},
        {"url": str(mf.lying_avi(media / "lie.avi")), "video_id": "lie", "licence": ""},
        {"url": "media/good.mp4", "video_id": "local_rel", "licence": "CC-BY"},
    ]
    lst = write_list(tmp_path / "list.csv", rows)
    luigi_config(video_list=str(lst), videos_per_shard=len(rows), max_failure_rate=1.0)
    luigi_config(section="FetchVideos", max_bytes=len(good) + 100_000, **FAST)
    return lst, rows


def test_every_bad_input_is_a_row_and_good_ones_pass(bad_shard: Any, server: hf.Server) -> None:
    task = FetchVideos(shard=0)
    assert build([task]).scheduling_succeeded
    r = rows_by_line(task)
    assert len(r) == 19 and sorted(r) == list(range(2, 21))
    expect = {  # line -> (status, retryable, error fragment)
        2: ("ok", False, None),
        3: ("failed", False, "HTTP 404"),
        4: ("ok", False, None),  # 500 then 200
        5: ("failed", True, "timed out"),
        6: ("failed", True, "download cut off after"),
        7: ("failed", False, "larger than the size cap"),
        8: ("failed", False, "not a video"),
        9: ("failed", False, "corrupt or truncated MP4/MOV"),
        10: ("failed", False, "zero decodable video frames"),
        11: ("failed", False, "only 1 frame(s)"),
        12: ("ok", False, None),  # grayscale
        13: ("duplicate", False, None),
        14: ("failed", False, "path separator"),
        15: ("failed", False, "contains '..'"),
        16: ("failed", False, "whitespace"),
        17: ("failed", False, "unknown URL scheme 'gopher'"),
        18: ("failed", True, "ConnectionError"),
        19: ("ok", False, None),  # header lies about its frame count
        20: ("ok", False, None),  # relative path: relative to the list's directory
    }
    for line, (status, retryable, fragment) in expect.items():
        row = r[line]
        assert (row["status"], row["retryable"]) == (status, retryable), (line, row["error"])
        if fragment:
            assert fragment in row["error"], (line, row["error"])
            assert row["traceback"] or "line" in row["error"]
    assert r[4]["attempts"] == 2 and r[2]["attempts"] == 1
    assert r[13]["duplicate_of"] == "good" and server.count("/good.mp4") == 1
    assert r[12]["pix_fmt"] == "gray" and r[12]["n_frames"] == 20
    assert (
        r[19]["n_frames"] == 20 and r[19]["header_frames"] == 50 and "claims 50" in r[19]["warning"]
    )
    ok = [x for x in r.values() if x["status"] == "ok"]
    assert all(x["sha256"] and x["n_frames"] == 20 and x["width"] == 160 for x in ok)
    assert r[2]["owned"] and not r[20]["owned"] and r[20]["licence"] == "CC-BY"
    assert Path(r[2]["local_path"]).is_file() and Path(r[2]["local_path"]).name == "good.mp4"
    assert len({x["video_id"] for x in r.values()}) == 19
    meta = json.loads((Path(task.output().path) / "_meta.json").read_text())
    assert meta["counts"]["ok"] == 5 and meta["counts"]["failed"] == 13
    assert meta["counts"]["duplicate"] == 1 and meta["counts"]["retryable"] == 3


def test_malformed_list_fails_before_any_work(
    tmp_path: Path, server: hf.Server, luigi_config: Callable[..., Path]
) -> None:
    server.routes["/good.mp4"] = hf.serve_bytes(b"x")
    lst = tmp_path / "bad.csv"
    lst.write_text(f"url,video_id\n{server.url('/good.mp4')},a\nonly,too,many\n")
    root = luigi_config(video_list=str(lst))
    with pytest.raises(UrlListError, match=r"bad\.csv:3: 3 fields"):
        FetchVideos(shard=0).output()
    assert not build([FetchAllVideos()]).scheduling_succeeded
    assert server.hits == [] and not (root / "FetchVideos").exists()


def test_failure_rate_over_threshold_fails_the_shard(
    tmp_path: Path, server: hf.Server, luigi_config: Callable[..., Path]
) -> None:
    good = mf.good_video(tmp_path / "g.mp4")
    rows = [{"url": str(good), "video_id": "", "licence": ""}]
    rows += [{"url": server.url(f"/gone{i}.mp4"), "video_id": "", "licence": ""} for i in range(2)]
    lst = write_list(tmp_path / "l.csv", rows)
    luigi_config(video_list=str(lst), max_failure_rate=0.5)
    task = FetchVideos(shard=0)
    assert not build([task]).scheduling_succeeded
    assert not task.complete() and not (Path(task.output().path) / SUCCESS).exists()
    luigi_config(max_failure_rate=0.7)
    assert build([FetchVideos(shard=0)]).scheduling_succeeded


def test_retry_attempt_refetches_only_failed(
    tmp_path: Path,
    server: hf.Server,
    luigi_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reports: list[tuple[int, int, str]] = []  # what FetchVideos reports to the scheduler
    original = FetchVideos.progress

    def spy(self: FetchVideos, done: int, total: int, message: str = "") -> None:
        reports.append((done, total, message))
        original(self, done, total, message)

    monkeypatch.setattr(FetchVideos, "progress", spy)
    data = mf.good_video(tmp_path / "g.mp4").read_bytes()
    server.routes["/ok.mp4"] = hf.serve_bytes(data)
    server.routes["/later.mp4"] = hf.fail_then(hf.status(503), 2, hf.serve_bytes(data))
    rows = [
        {"url": server.url("/ok.mp4"), "video_id": "ok", "licence": ""},
        {"url": server.url("/later.mp4"), "video_id": "later", "licence": ""},
        {"url": server.url("/gone.mp4"), "video_id": "gone", "licence": ""},
    ]
    luigi_config(video_list=str(write_list(tmp_path / "l.csv", rows)), max_failure_rate=1.0)
    luigi_config(section="FetchVideos", **{**FAST, "retries": 1})
    first = FetchVideos(shard=0)
    assert build([first]).scheduling_succeeded
    r1 = rows_by_line(first)
    assert [(d, t) for d, t, _ in reports] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert "later" in reports[1][2] and reports[-1][2] == "shard 0: 2 failed"
    assert [r1[i]["status"] for i in (2, 3, 4)] == ["ok", "failed", "failed"]
    assert r1[3]["retryable"] and not r1[4]["retryable"]
    second = FetchVideos(shard=0, attempt=2)
    assert build([second]).scheduling_succeeded
    assert second.output().path != first.output().path
    r2 = rows_by_line(second)
    assert [r2[i]["status"] for i in (2, 3, 4)] == ["ok", "ok", "failed"]
    assert r2[2]["attempt_of_run"] == 1 and r2[2]["attempts"] == 0 and r2[2]["reused"]
    assert r2[2]["sha256"] == r1[2]["sha256"] and r2[3]["attempt_of_run"] == 2
    assert server.count("/ok.mp4") == 1 and server.count("/gone.mp4") == 1  # not refetched
    assert server.count("/later.mp4") == 3
    third = FetchVideos(shard=0, attempt=3, retry_permanent=True)
    assert build([third]).scheduling_succeeded
    assert server.count("/gone.mp4") == 2 and rows_by_line(third)[4]["attempt_of_run"] == 3
