from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import fsspec
import pytest

from pipeline import download as dl
from pipeline.download import DownloadConfig, DownloadError, download, route, ytdlp_options
from pipeline.ingest import Planned, ProbeConfig, Rejected, fetch_one, plan_entries
from pipeline.url_list import UrlEntry
from pipeline.video_ids import default_video_id, id_problem, normalise_url
from pipeline.video_io import VideoError
from tests import http_fixture as hf
from tests import media_fixtures as mf

CFG = DownloadConfig(retries=2, backoff=0.01, connect_timeout=2.0, read_timeout=0.4)


@pytest.fixture()
def server() -> Iterator[hf.Server]:
    s = hf.Server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return mf.good_video(tmp_path_factory.mktemp("src") / "v.mp4").read_bytes()


class Sleeps(list[float]):
    def __call__(self, s: float) -> None:
        self.append(s)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_local_path_and_file_url_are_read_in_place(tmp_path: Path, video_bytes: bytes) -> None:
    src = tmp_path / "in.mp4"
    src.write_bytes(video_bytes)
    for url in (str(src), src.as_uri()):
        got = download(url, tmp_path / "dest" / "x", CFG)
        assert got.path == src.resolve() and not got.owned and got.method == "local"
        assert got.sha256 == sha(video_bytes) and got.n_bytes == len(video_bytes)
    with pytest.raises(DownloadError, match="no such file") as e:
        download(str(tmp_path / "missing.mp4"), tmp_path / "x", CFG)
    assert not e.value.retryable


def test_http_download_hashes_and_is_reused(
    tmp_path: Path, server: hf.Server, video_bytes: bytes
) -> None:
    server.routes["/v.mp4"] = hf.serve_bytes(video_bytes)
    got = download(server.url("/v.mp4"), tmp_path / "vid1", CFG)
    assert got.path == tmp_path / "vid1.mp4" and got.path.read_bytes() == video_bytes
    assert got.sha256 == sha(video_bytes) and got.attempts == 1 and got.owned
    assert not list(tmp_path.glob("*.part"))
    again = download(server.url("/v.mp4"), tmp_path / "vid1", CFG)
    assert again.method == "cached" and again.sha256 == got.sha256 and server.count("/v.mp4") == 1
    # the same id for another URL is not taken from the cache
    server.routes["/w.mp4"] = hf.serve_bytes(video_bytes[:-10])
    other = download(server.url("/w.mp4"), tmp_path / "vid1", CFG)
    assert other.method == "http" and other.n_bytes == len(video_bytes) - 10


def test_http_404_is_permanent_and_not_retried(tmp_path: Path, server: hf.Server) -> None:
    sleeps = Sleeps()
    with pytest.raises(DownloadError, match="HTTP 404") as e:
        download(server.url("/gone.mp4"), tmp_path / "a", CFG, sleep=sleeps)
    assert not e.value.retryable and e.value.attempts == 1 and sleeps == []
    assert server.count("/gone.mp4") == 1 and not list(tmp_path.iterdir())


def test_http_403_is_permanent(tmp_path: Path, server: hf.Server) -> None:
    server.routes["/secret.mp4"] = hf.status(403)
    with pytest.raises(DownloadError, match="HTTP 403") as e:
        download(server.url("/secret.mp4"), tmp_path / "a", CFG, sleep=Sleeps())
    assert not e.value.retryable


def test_http_500_then_200_succeeds_with_backoff(
    tmp_path: Path, server: hf.Server, video_bytes: bytes
) -> None:
    server.routes["/flaky.mp4"] = hf.fail_then(hf.status(500), 2, hf.serve_bytes(video_bytes))
    sleeps = Sleeps()
    got = download(server.url("/flaky.mp4"), tmp_path / "f", CFG, sleep=sleeps)
    assert got.attempts == 3 and got.sha256 == sha(video_bytes)
    assert sleeps == [pytest.approx(0.01), pytest.approx(0.02)]  # exponential


def test_http_500_forever_gives_up_retryable(tmp_path: Path, server: hf.Server) -> None:
    server.routes["/down.mp4"] = hf.status(503)
    with pytest.raises(DownloadError, match=r"HTTP 503.*gave up after 3 attempts") as e:
        download(server.url("/down.mp4"), tmp_path / "d", CFG, sleep=Sleeps())
    assert e.value.retryable and e.value.attempts == 3 and server.count("/down.mp4") == 3


def test_http_429_honours_retry_after(
    tmp_path: Path, server: hf.Server, video_bytes: bytes
) -> None:
    server.routes["/busy.mp4"] = hf.fail_then(
        hf.status(429, {"Retry-After": "7"}), 1, hf.serve_bytes(video_bytes)
    )
    sleeps = Sleeps()
    got = download(server.url("/busy.mp4"), tmp_path / "b", replace(CFG, backoff_max=60), sleeps)
    assert got.attempts == 2 and sleeps == [7.0]


def test_stalled_server_times_out(tmp_path: Path, server: hf.Server) -> None:
    server.routes["/stall.mp4"] = hf.stall(server, 30.0, head=b"\x00" * 100)
    cfg = replace(CFG, retries=1, read_timeout=0.3)
    with pytest.raises(DownloadError, match=r"timed out|Read timed out") as e:
        download(server.url("/stall.mp4"), tmp_path / "s", cfg, sleep=Sleeps())
    assert e.value.retryable and e.value.attempts == 2


def test_cut_download_resumes_with_range(
    tmp_path: Path, server: hf.Server, video_bytes: bytes
) -> None:
    half = len(video_bytes) // 2
    server.routes["/cut.mp4"] = hf.fail_then(
        hf.cut(video_bytes, half), 1, hf.serve_bytes(video_bytes)
    )
    got = download(server.url("/cut.mp4"), tmp_path / "c", CFG, sleep=Sleeps())
    assert got.attempts == 2 and got.path.read_bytes() == video_bytes
    assert got.sha256 == sha(video_bytes)  # hash spans the resumed part
    assert server.hits[-1] == ("/cut.mp4", f"bytes={half}-")


def test_cut_download_restarts_when_range_is_ignored(
    tmp_path: Path, server: hf.Server, video_bytes: bytes
) -> None:
    server.routes["/norange.mp4"] = hf.fail_then(
        hf.cut(video_bytes, 1000), 1, hf.serve_bytes(video_bytes, ranges=False)
    )
    got = download(server.url("/norange.mp4"), tmp_path / "n", CFG, sleep=Sleeps())
    assert got.path.read_bytes() == video_bytes and got.sha256 == sha(video_bytes)


def test_always_cut_fails_retryable_and_keeps_part(
    tmp_path: Path, server: hf.Server, video_bytes: bytes
) -> None:
    server.routes["/short.mp4"] = hf.cut(video_bytes, 1000)  # ignores Range: always 1000 bytes
    with pytest.raises(
        DownloadError, match=r"download cut off after 1000 bytes|closed after 1000 of"
    ) as e:
        download(server.url("/short.mp4"), tmp_path / "t", CFG, sleep=Sleeps())
    assert e.value.retryable
    assert (tmp_path / "t.mp4.part").exists() and not (tmp_path / "t.mp4").exists()


def test_larger_than_cap_is_permanent(
    tmp_path: Path, server: hf.Server, video_bytes: bytes
) -> None:
    cfg = replace(CFG, max_bytes=len(video_bytes) - 1)
    server.routes["/big.mp4"] = hf.serve_bytes(video_bytes)
    with pytest.raises(DownloadError, match="larger than the size cap") as e:
        download(server.url("/big.mp4"), tmp_path / "g", cfg, sleep=Sleeps())
    assert not e.value.retryable and server.count("/big.mp4") == 1
    server.routes["/big2.mp4"] = hf.chunked(video_bytes)  # no Content-Length: caught mid-stream
    with pytest.raises(DownloadError, match="larger than the size cap"):
        download(server.url("/big2.mp4"), tmp_path / "h", replace(cfg, chunk_size=4096))
    assert not list(tmp_path.glob("*.part"))


def test_unreachable_host_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(DownloadError, match="ConnectionError") as e:
        download(f"http://127.0.0.1:{port}/v.mp4", tmp_path / "u", CFG, sleep=sleeps)
    assert e.value.retryable and e.value.attempts == 3 and len(sleeps) == 2


def test_routing_and_unknown_scheme(tmp_path: Path) -> None:
    assert route("/data/a.mp4") == "local" and route("file:///data/a.mp4") == "local"
    assert route("https://example.com/a.mp4") == "http"
    assert route("https://www.youtube.com/watch?v=dQw4w9WgXcQ") == "ytdlp"
    assert route("s3://bucket/a.mp4") == "fsspec" and route("memory://a.mp4") == "fsspec"
    with pytest.raises(DownloadError, match="unknown URL scheme 'gopher'") as e:
        download("gopher://example.com/a.mp4", tmp_path / "x", CFG)
    assert not e.value.retryable


def test_fsspec_memory_store(tmp_path: Path, video_bytes: bytes) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/clip.webm", video_bytes)
    got = download("memory://bucket/clip.webm", tmp_path / "m", CFG)
    assert got.path.name == "m.webm" and got.sha256 == sha(video_bytes)
    with pytest.raises(DownloadError, match="FileNotFoundError") as e:
        download("memory://bucket/none.mp4", tmp_path / "n", CFG)
    assert not e.value.retryable


def test_ytdlp_downloads_and_passes_options(
    tmp_path: Path, server: hf.Server, video_bytes: bytes
) -> None:
    server.routes["/y.mp4"] = hf.serve_bytes(video_bytes)
    path = dl._ytdlp_once(server.url("/y.mp4"), tmp_path / "yt", CFG)  # generic extractor
    assert path.read_bytes() == video_bytes and path.name.startswith("yt.")
    opts = ytdlp_options(
        replace(CFG, cookies="c.txt", proxy="socks5://p:1", rate_limit="2M"), tmp_path / "z"
    )
    assert opts["cookiefile"] == "c.txt" and opts["proxy"] == "socks5://p:1"
    assert opts["ratelimit"] == 2 * 1024**2 and opts["outtmpl"] == f"{tmp_path / 'z'}.%(ext)s"
    with pytest.raises(dl._Permanent, match="HTTP Error 404"):
        dl._ytdlp_once(server.url("/missing.mp4"), tmp_path / "yt2", CFG)


@pytest.mark.parametrize(
    "vid,why",
    [
        ("a/b", "path separator"),
        ("..", "'..'"),
        ("x..y", "'..'"),
        ("my clip", "whitespace"),
        ("a\x07b", "control"),
        (".hidden", "starts with"),
        ("é", "contains"),
        ("x" * 129, "long"),
    ],
)
def test_unsafe_ids_are_rejected_with_reason(vid: str, why: str) -> None:
    problem = id_problem(vid)
    assert problem is not None and why in problem


def test_default_ids_are_stable_and_normalised() -> None:
    assert id_problem("clip_01.v2-a") is None
    a = default_video_id("HTTP://Example.COM:80/a.mp4#t=3")
    assert a == default_video_id("http://example.com/a.mp4") and id_problem(a) is None
    assert a != default_video_id("http://example.com/a.mp4?x=1")
    assert normalise_url("/x/a.mp4") == normalise_url("file:///x/a.mp4")
    assert len(a) == 17 and a.startswith("v")


def test_plan_entries_duplicates_invalid_ids_and_conflicts() -> None:
    e = [
        UrlEntry("http://h/a.mp4", "clip", None, 2),
        UrlEntry("http://H/a.mp4", None, None, 3),  # same URL, normalised
        UrlEntry("http://h/b.mp4", "clip", None, 4),  # id taken by another URL
        UrlEntry("http://h/c.mp4", "../etc", None, 5),
        UrlEntry("http://h/d.mp4", None, "CC-BY", 6),
    ]
    p = plan_entries(e)
    assert [x.action for x in p] == ["fetch", "duplicate", "id_conflict", "invalid_id", "fetch"]
    assert p[0].video_id == "clip" and p[1].duplicate_of == "clip"
    assert p[1].video_id == default_video_id("http://H/a.mp4") + "-L3"
    assert "already used by line 2" in (p[2].error or "") and "separator" in (p[3].error or "")
    assert p[4].video_id == default_video_id("http://h/d.mp4") and p[4].licence == "CC-BY"
    assert len({x.video_id for x in p}) == 5
    assert plan_entries(e) == p  # deterministic


def _planned(url: str, vid: str) -> Planned:
    return Planned(1, url, None, None, vid, "fetch")


def test_fetch_one_probes_and_rejects(
    tmp_path: Path, server: hf.Server, video_bytes: bytes
) -> None:
    server.routes["/v.mp4"] = hf.serve_bytes(video_bytes)
    row = fetch_one(_planned(server.url("/v.mp4"), "good"), tmp_path, CFG, ProbeConfig())
    assert (
        row["status"] == "ok"
        and row["n_frames"] == 20
        and (row["width"], row["height"]) == (160, 120)
    )
    assert row["sha256"] == sha(video_bytes) and row["codec"] == "h264" and row["warning"] is None
    server.routes["/page.mp4"] = hf.serve_bytes(b"<html>no</html>", ctype="text/html")
    with pytest.raises(VideoError, match="not a video"):
        fetch_one(_planned(server.url("/page.mp4"), "page"), tmp_path, CFG, ProbeConfig())
    assert not (tmp_path / "page.mp4").exists()  # a downloaded non-video is not kept
    one = mf.good_video(tmp_path / "one.mp4", n_frames=1)
    with pytest.raises(Rejected, match=r"only 1 frame\(s\); min_frames=2"):
        fetch_one(_planned(str(one), "one"), tmp_path, CFG, ProbeConfig())
    assert one.exists()  # local sources are never deleted
    with pytest.raises(Rejected, match="exceeds max_pixels"):
        fetch_one(
            _planned(server.url("/v.mp4"), "good"), tmp_path, CFG, ProbeConfig(max_pixels=100)
        )
    lie = mf.lying_avi(tmp_path / "lie.avi", claim=50)
    row = fetch_one(_planned(str(lie), "lie"), tmp_path, CFG, ProbeConfig())
    assert row["status"] == "ok" and row["n_frames"] == 20 and row["header_frames"] == 50
    assert "header claims 50 frames, 20 found" in row["warning"]


def test_s3_url_through_fsspec_and_moto(
    tmp_path: Path, video_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        for k, v in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        endpoint = {"client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"}}
        monkeypatch.setitem(fsspec.config.conf, "s3", endpoint)  # as FSSPEC_S3_* env would
        fs = fsspec.filesystem("s3", skip_instance_cache=True, **endpoint)
        fs.mkdir("clips")
        fs.pipe("clips/a.mp4", video_bytes)
        got = download("s3://clips/a.mp4", tmp_path / "a", CFG)
        assert got.method == "fsspec" and got.path.read_bytes() == video_bytes
        assert got.sha256 == sha(video_bytes)
        with pytest.raises(DownloadError, match="FileNotFoundError") as e:
            download("s3://clips/none.mp4", tmp_path / "b", CFG)
        assert not e.value.retryable
    finally:
        moto.stop()
