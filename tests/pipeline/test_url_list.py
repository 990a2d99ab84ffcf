"""The URL list reader (pipeline/url_list.py): formats, and every malformed list is a clear
error naming the file and the line."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.url_list import UrlEntry, UrlListError, list_digest, read_url_list, shard_slice


def test_csv_text_and_parquet(tmp_path: Path) -> None:
    csv = tmp_path / "l.csv"
    csv.write_text("url,video_id,licence\nhttp://h/a.mp4,a,CC0\n\nhttp://h/b.mp4,,\n")
    assert read_url_list(csv) == [
        UrlEntry("http://h/a.mp4", "a", "CC0", 2),
        UrlEntry("http://h/b.mp4", None, None, 4),
    ]
    txt = tmp_path / "l.txt"
    txt.write_text("# comment\nhttp://h/a.mp4\n\n  /data/b.mp4  \n")
    assert [(e.url, e.line) for e in read_url_list(txt)] == [
        ("http://h/a.mp4", 2),
        ("/data/b.mp4", 4),
    ]
    pqf = tmp_path / "l.parquet"
    pq.write_table(pa.table({"url": ["s3://b/a.mp4", "x.mp4"], "licence": ["CC0", None]}), pqf)
    assert read_url_list(pqf) == [
        UrlEntry("s3://b/a.mp4", None, "CC0", 1),
        UrlEntry("x.mp4", None, None, 2),
    ]


@pytest.mark.parametrize(
    "name,content,match",
    [
        (
            "a.csv",
            "url,video_id\nhttp://h/a.mp4,a\nhttp://h/b.mp4,b,extra\n",
            r"a\.csv:3: 3 fields",
        ),
        ("b.csv", "link\nhttp://h/a.mp4\n", r"b\.csv:1: .*no 'url' column"),
        ("c.csv", "url,title\nhttp://h/a.mp4,x\n", r"c\.csv:1: unknown columns \['title'\]"),
        ("d.csv", "url,video_id\n,a\n", r"d\.csv:2: empty url"),
        ("e.txt", "http://h/a.mp4\nhttp://h/my clip.mp4\n", r"e\.txt:2: .*whitespace"),
    ],
)
def test_malformed_lists_name_file_and_line(
    tmp_path: Path, name: str, content: str, match: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UrlListError, match=match):
        read_url_list(path)
    assert issubclass(UrlListError, ValueError)


def test_malformed_parquet_binary_and_missing(tmp_path: Path) -> None:
    no_url = tmp_path / "n.parquet"
    pq.write_table(pa.table({"link": ["x"]}), no_url)
    with pytest.raises(UrlListError, match=r"n\.parquet: .*no 'url' column"):
        read_url_list(no_url)
    fake = tmp_path / "f.parquet"
    fake.write_text("url\nx\n")
    with pytest.raises(UrlListError, match=r"f\.parquet: not a readable Parquet file"):
        read_url_list(fake)
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UrlListError, match=r"b\.txt: not UTF-8"):
        read_url_list(binary)
    with pytest.raises(UrlListError, match="not found"):
        read_url_list(tmp_path / "missing.csv")


def test_shards_and_digest() -> None:
    assert shard_slice(5, 2, 0) == slice(0, 2) and shard_slice(5, 2, 2) == slice(4, 5)
    with pytest.raises(ValueError, match="out of range"):
        shard_slice(5, 2, 3)
    a = [UrlEntry("u", None, None, 1)]
    assert list_digest(a) == list_digest(list(a))
    assert list_digest(a) != list_digest([UrlEntry("u", "x", None, 1)])


def test_utf8_bom_is_accepted_in_csv_and_text(tmp_path: Path) -> None:
    """Excel and Notepad write a byte-order mark: the list must read as without it."""
    bom = "\ufeff"
    csv = tmp_path / "bom.csv"
    csv.write_text(bom + "url,video_id\nhttp://h/a.mp4,a\n", encoding="utf-8")
    assert read_url_list(csv) == [UrlEntry("http://h/a.mp4", "a", None, 2)]
    txt = tmp_path / "bom.txt"
    txt.write_text(bom + "http://h/a.mp4\nhttp://h/b.mp4\n", encoding="utf-8")
    assert [e.url for e in read_url_list(txt)] == ["http://h/a.mp4", "http://h/b.mp4"]


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("dup.csv", "url,video_id,url\nhttp://h/a.mp4,a,http://h/b.mp4\n", r"dup\.csv:1: .*\['url'\] more than once"),
        ("ids.csv", "url,video_id,video_id\nhttp://h/a.mp4,a,b\n", r"ids\.csv:1: .*\['video_id'\] more than once"),
        ("rep.csv", "url,video_id\nhttp://h/a.mp4,a\nurl,video_id\nhttp://h/b.mp4,b\n", r"rep\.csv:3: looks like a header"),
        ("case.csv", "url\nhttp://h/a.mp4\n URL \n", r"case\.csv:3: looks like a header"),
        ("hdr.txt", "url\nhttp://h/a.mp4\n", r"hdr\.txt:1: looks like a header"),
        ("csvhdr.txt", "http://h/a.mp4\nurl,video_id\n", r"csvhdr\.txt:2: looks like a header"),
    ],
)  # fmt: skip
def test_duplicate_columns_and_header_rows_are_refused(
    tmp_path: Path, name: str, content: str, match: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UrlListError, match=match):
        read_url_list(path)


def test_parquet_duplicate_column_and_header_row(tmp_path: Path) -> None:
    dup = tmp_path / "dup.parquet"
    t = pa.Table.from_arrays([pa.array(["http://h/a.mp4"]), pa.array(["b"])], names=["url", "url"])
    pq.write_table(t, dup)
    with pytest.raises(UrlListError, match=r"dup\.parquet: .*\['url'\] more than once"):
        read_url_list(dup)
    hdr = tmp_path / "hdr.parquet"
    pq.write_table(pa.table({"url": ["http://h/a.mp4", "url"]}), hdr)
    with pytest.raises(UrlListError, match=r"hdr\.parquet:2: looks like a header"):
        read_url_list(hdr)
