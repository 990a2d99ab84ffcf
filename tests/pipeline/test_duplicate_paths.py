"""Duplicates by local file: every spelling of one file is one video; ids do not move.

``plan_entries(entries, base_dir)`` compares local paths by the file they name (relative
to the list's directory, ``.``/``..``/symlinks resolved); remote URLs and every id keep
their identity (``default_video_id`` still hashes the URL as written).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.ingest import plan_entries
from pipeline.url_list import UrlEntry
from pipeline.video_ids import default_video_id, duplicate_key, resolve_local

# ids of already published data, computed before duplicate_key existed: they must not move
KNOWN_IDS = {
    "http://example.com/a.mp4": "vcead771c398cf74b",
    "https://Example.COM:443/x/b.mp4?q=1#frag": "v342e7e588963a7fc",
    "/data/videos/a.mp4": "v45afff5d19a56483",
    "file:///data/videos/a.mp4": "v45afff5d19a56483",
    "clips/a.mp4": "veb0d610e77baa477",
}


def _entries(urls: list[str]) -> list[UrlEntry]:
    return [UrlEntry(u, None, None, i) for i, u in enumerate(urls, start=1)]


def test_default_ids_are_unchanged() -> None:
    for url, vid in KNOWN_IDS.items():
        assert default_video_id(url) == vid, url


def test_every_spelling_of_one_local_file_is_a_duplicate(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    (lists / "sub").mkdir(parents=True)
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.mp4").write_bytes(b"a")
    (media / "b.mp4").write_bytes(b"b")
    (lists / "link.mp4").symlink_to(media / "a.mp4")
    a = str(media / "a.mp4")
    urls = [
        "../media/a.mp4",  # line 1: fetched
        "./../media/a.mp4",
        "sub/../../media/a.mp4",
        a,
        "file://" + a,
        "file://../media/a.mp4",  # relative file:// is relative to the list, as plain paths
        str(lists / ".." / "media" / "a.mp4"),
        "link.mp4",  # a symlink to the same file
        "../media/b.mp4",  # another file
        "http://example.com/a.mp4",  # remote: never a local file
    ]
    plan = plan_entries(_entries(urls), base_dir=str(lists))
    first = default_video_id("../media/a.mp4")
    assert [p.action for p in plan] == ["fetch"] + ["duplicate"] * 7 + ["fetch", "fetch"]
    assert plan[0].video_id == first
    assert all(p.duplicate_of == first for p in plan[1:8])
    # a duplicate without a given id is keyed <default id of its own URL>-L<line>
    assert [p.video_id for p in plan[1:8]] == [
        f"{default_video_id(u)}-L{i}" for i, u in enumerate(urls[1:8], start=2)
    ]
    assert plan[8].video_id == default_video_id("../media/b.mp4")
    assert plan[9].video_id == KNOWN_IDS["http://example.com/a.mp4"]
    assert len({p.video_id for p in plan}) == len(plan)
    # where the fetch stage reads them from: one file for every spelling
    for u in urls[:8]:
        read_from = resolve_local(u, str(lists)).removeprefix("file://")
        assert os.path.samefile(read_from, a), u


def test_lists_without_duplicates_plan_exactly_as_before(tmp_path: Path) -> None:
    """No entry that is not a duplicate changes id or action."""
    urls = [*KNOWN_IDS][:3] + ["clips/a.mp4", "./clips/b.mp4", "/elsewhere/clips/a.mp4"]
    entries = _entries(urls)
    assert plan_entries(entries, base_dir=str(tmp_path)) == plan_entries(entries)
    assert [p.video_id for p in plan_entries(entries, base_dir=str(tmp_path))][:3] == [
        KNOWN_IDS[u] for u in urls[:3]
    ]


def test_same_name_in_another_directory_is_not_a_duplicate(tmp_path: Path) -> None:
    plan = plan_entries(_entries(["a.mp4", "/other/dir/a.mp4"]), base_dir=str(tmp_path))
    assert [p.action for p in plan] == ["fetch", "fetch"]


def test_remote_urls_keep_their_identity(tmp_path: Path) -> None:
    """Remote paths are not resolved: ``/./`` and ``/../`` may mean something to a server."""
    base = str(tmp_path)
    for url in ("http://h/x/../a.mp4", "http://H:80/./a.mp4#f", "s3://bucket/k/../a.mp4"):
        assert duplicate_key(url, base) == duplicate_key(url)
    plan = plan_entries(_entries(["http://h/a.mp4", "http://h/./a.mp4"]), base_dir=base)
    assert [p.action for p in plan] == ["fetch", "fetch"]
    plan = plan_entries(_entries(["http://h/a.mp4", "HTTP://H:80/a.mp4#t"]), base_dir=base)
    assert [p.action for p in plan] == ["fetch", "duplicate"]
    # without base_dir, local paths compare as written (the old behaviour)
    assert duplicate_key("./a.mp4") != duplicate_key("a.mp4")
