"""Registry lookups and ``python -m data_manifests list | show | verify | pull``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_manifests.__main__ import main
from data_manifests.publish import publish
from data_manifests.registry import (
    Registry,
    RegistryUnavailableError,
    UnknownDatasetError,
    parse_ref,
    registry_url,
)
from tests.data_manifests.fakerun import iter_files, make_run, test_tables  # noqa: F401

pytestmark = pytest.mark.usefixtures("test_tables")


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    run = make_run(tmp_path / "run")
    r = Registry(str(tmp_path / "reg"))
    publish(run, "mined-pairs", "1", ["pairs"], r, owner="team-a")
    publish(run, "mined-pairs", "2", ["pairs", "videos"], r, owner="team-a")
    publish(run, "mined-masks", "1", ["videos"], r, owner="team-b")
    return r


def test_catalog_lists_versions_owners_sizes(reg: Registry) -> None:
    entries = reg.entries()
    assert [e.ref for e in entries] == ["mined-masks@1", "mined-pairs@1", "mined-pairs@2"]
    assert reg.versions("mined-pairs") == ["1", "2"]
    assert reg.entry("mined-pairs").version == "2"
    e = reg.entry("mined-pairs@2")
    assert e.owner == "team-a" and e.rows == {"pairs": 60, "videos": 6}
    d = Path(reg.dataset_store(e).root)
    assert e.total_bytes == sum(p.stat().st_size for p in iter_files(d))
    assert e.n_files == len(list(iter_files(d)))


def test_unknown_names_answer_with_close_matches(reg: Registry) -> None:
    with pytest.raises(UnknownDatasetError, match="did you mean mined-pairs, mined-masks"):
        reg.entry("mined-pair@1")
    with pytest.raises(UnknownDatasetError, match="no version '3'.*versions: \\['1', '2'\\]"):
        reg.entry("mined-pairs@3")
    with pytest.raises(ValueError, match="give a version as NAME@VERSION"):
        parse_ref("mined-pairs", require_version=True)


def test_registry_url_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDEOMINE_REGISTRY", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(tmp_path / "none.cfg"))
    with pytest.raises(ValueError, match="no registry given"):
        registry_url()
    (tmp_path / "luigi.cfg").write_text("[videomine]\nregistry = s3://bucket/reg\n")
    assert registry_url() == "s3://bucket/reg"
    monkeypatch.setenv("VIDEOMINE_REGISTRY", "/shared/reg")
    assert registry_url() == "/shared/reg"
    assert registry_url("file:///x") == "file:///x"


def test_cli_list_show_verify_pull(
    reg: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--registry", reg.url, "list"]) == 0
    out = capsys.readouterr().out
    assert "mined-pairs@2" in out and "team-b" in out
    assert main(["--registry", reg.url, "list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert main(["--registry", reg.url, "show", "mined-pairs"]) == 0
    out = capsys.readouterr().out
    assert "mined-pairs@2  (versions: 1, 2)" in out and "cc-by: 3" in out and "intra: 30" in out
    assert main(["--registry", reg.url, "verify", "mined-pairs@2"]) == 0
    assert capsys.readouterr().out.strip().endswith("OK")
    dest = tmp_path / "pulled"
    assert main(["--registry", reg.url, "pull", "mined-pairs@2", str(dest)]) == 0
    src = Path(reg.dataset_store(reg.entry("mined-pairs@2")).root)
    assert {p.relative_to(dest): p.read_bytes() for p in iter_files(dest)} == {
        p.relative_to(src): p.read_bytes() for p in iter_files(src)
    }
    capsys.readouterr()
    assert main(["--registry", reg.url, "pull", "mined-pairs@2", str(dest)]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_cli_verify_names_the_bad_file_and_fails(
    reg: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    d = Path(reg.dataset_store(reg.entry("mined-pairs@1")).root)
    (d / "pairs" / "part-00000.parquet").write_bytes(b"PAR1")
    assert main(["--registry", reg.url, "verify", "mined-pairs@1"]) == 1
    assert "pairs/part-00000.parquet: truncated" in capsys.readouterr().out


def test_cli_pull_refuses_to_copy_a_tampered_file(
    reg: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = Path(reg.dataset_store(reg.entry("mined-masks@1")).root)
    victim = d / "videos" / "part-00000.parquet"
    data = bytearray(victim.read_bytes())
    data[50] ^= 1
    victim.write_bytes(bytes(data))
    assert main(["--registry", reg.url, "pull", "mined-masks@1", str(tmp_path / "p")]) == 1
    assert "videos/part-00000.parquet" in capsys.readouterr().err
    assert not (tmp_path / "p" / "videos" / "part-00000.parquet").exists()


def test_cli_unknown_name_in_a_subprocess(reg: Registry) -> None:
    """The real entry point: exit status 2 and the close matches on stderr."""
    r = subprocess.run(
        [sys.executable, "-m", "data_manifests", "--registry", reg.url, "show", "mined-pairz"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "did you mean mined-pairs" in r.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    cmd = [sys.executable, "-m", "data_manifests", *args]
    return subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=60)


def test_cli_registry_that_is_not_a_registry(reg: Registry, tmp_path: Path) -> None:
    """A file, a mistyped path and a directory that is no registry: a clear error and
    exit 3 (distinct from 1, verify found problems, and 2, an unknown dataset), never a
    traceback or an empty listing with exit 0."""
    a_file = tmp_path / "registry.txt"
    a_file.write_text("not a registry\n")
    typo = tmp_path / "regsitry"
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("x")
    cases = [(a_file, "is a file, not a registry directory"), (typo, "does not exist"),
             (stray, "is not a videomine registry")]  # fmt: skip
    for where, why in cases:
        for args in (["list"], ["show", "mined-pairs"], ["verify", "mined-pairs@1"]):
            r = _cli("--registry", str(where), *args)
            assert r.returncode == 3, (where, args, r.stdout, r.stderr)
            assert "Traceback" not in r.stderr and r.stdout == ""
            assert r.stderr.startswith("error: ") and why in r.stderr, r.stderr
    empty = tmp_path / "new-registry"
    empty.mkdir()
    r = _cli("--registry", str(empty), "list")
    assert (r.returncode, r.stdout.strip()) == (0, f"no datasets in {empty}")
    assert _cli("--registry", reg.url, "list").returncode == 0


def test_registry_errors_reach_python_readers(tmp_path: Path) -> None:
    """load() and verify() look datasets up through Registry.entry."""
    with pytest.raises(UnknownDatasetError, match="the registry does not exist: a mistyped"):
        Registry(str(tmp_path / "nope")).entry("mined-pairs@1")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RegistryUnavailableError, match="is a file, not a registry"):
        Registry(str(tmp_path / "file")).entry("mined-pairs@1")
