"""``python -m data_manifests list | show NAME[@VERSION] | verify NAME@VERSION | pull NAME@VERSION DEST``.

The registry is ``--registry URL``, else ``$VIDEOMINE_REGISTRY``, else ``[videomine]
registry`` in luigi.cfg. Exit status (docs/datasets.md):

- 0: fine (``list`` of an empty registry directory included);
- 1: ``verify`` or ``pull`` found problems in the dataset;
- 2: bad input: unknown dataset or version, malformed NAME@VERSION, no registry
  configured, a non-empty pull destination;
- 3: the registry cannot be used: it does not exist (a mistyped path), is a file, is a
  directory that is not a registry, or cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from tqdm import tqdm

from data_manifests.manifest import ManifestError
from data_manifests.registry import (
    DatasetMissingError,
    Registry,
    RegistryUnavailableError,
    UnknownDatasetError,
    parse_ref,
)
from data_manifests.storage import open_store, sha256_bytes
from data_manifests.verify import verify

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT, EXIT_REGISTRY = 0, 1, 2, 3


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1000  # type: ignore[assignment]
    return str(n)


def _bar(total: int, what: str) -> tqdm:
    """A byte progress bar on stderr, shown on terminals only."""
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc=what,
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        leave=False,
    )


def cmd_list(reg: Registry, args: argparse.Namespace) -> int:
    entries = reg.entries()
    if args.json:
        print(json.dumps([json.loads(e.to_json()) for e in entries], indent=2))
        return EXIT_OK
    if not entries:
        print(f"no datasets in {reg.url}")
        return EXIT_OK
    print(f"{'dataset':<32} {'owner':<12} {'created':<25} {'size':>10}  location")
    for e in entries:
        print(
            f"{e.ref:<32} {e.owner:<12} {e.created_at:<25} {_size(e.total_bytes):>10}  "
            f"{reg.dataset_store(e).url}"
        )
    return EXIT_OK


def cmd_show(reg: Registry, args: argparse.Namespace) -> int:
    entry = reg.entry(args.ref)
    m = reg.manifest(entry)
    if args.json:
        print(m.to_json().decode(), end="")
        return EXIT_OK
    print(f"{entry.ref}  (versions: {', '.join(reg.versions(entry.name))})")
    print(f"  owner       {entry.owner}")
    print(f"  created     {entry.created_at}")
    print(f"  location    {reg.dataset_store(entry).url}")
    print(f"  size        {_size(entry.total_bytes)} in {entry.n_files} files")
    print(f"  code        {m.code_version}")
    print(f"  input list  sha256 {m.input_url_list_sha256}")
    print(f"  parents     {', '.join(m.parents) or '-'}")
    print(f"  licences    {', '.join(f'{k}: {v}' for k, v in sorted(m.licences.items())) or '-'}")
    if m.description:
        print(f"  description {m.description}")
    print("  tables")
    for name, t in sorted(m.tables.items()):
        print(
            f"    {name:<14} {t.schema_name} v{t.schema_version:<3} {t.rows:>10} rows "
            f"{len(t.files):>4} files {_size(t.bytes):>10}"
        )
    if m.pair_types:
        print("  pairs by type  " + ", ".join(f"{k}: {v}" for k, v in sorted(m.pair_types.items())))
    return EXIT_OK


def cmd_verify(reg: Registry, args: argparse.Namespace) -> int:
    parse_ref(args.ref, require_version=True)
    total = reg.entry(args.ref).total_bytes
    with _bar(total, "verify") as bar:
        report = verify(args.ref, reg, progress=bar.update)
    print(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def cmd_pull(reg: Registry, args: argparse.Namespace) -> int:
    """Copy a dataset to DEST, checking each file's sha256 on the way; never overwrites."""
    parse_ref(args.ref, require_version=True)
    entry = reg.entry(args.ref)
    m = reg.manifest(entry)
    src = reg.dataset_store(entry)
    dest = open_store(args.dest)
    if dest.exists() and dest.listdir():
        print(
            f"error: {dest.url} exists and is not empty; pull into a new directory", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    bad = []
    with _bar(entry.total_bytes, "pull") as bar:
        for f in m.all_files():
            bar.update(f.bytes)
            try:
                data = src.read_bytes(f.path)
            except FileNotFoundError:
                bad.append(f"{f.path}: missing at the source")
                continue
            if len(data) != f.bytes or sha256_bytes(data) != f.sha256:
                bad.append(f"{f.path}: {len(data)} bytes, sha256 differs from the manifest")
                continue
            dest.write_bytes(f.path, data)
    dest.write_bytes("manifest.json", src.read_bytes("manifest.json"))
    if bad:
        print(
            "pulled with problems (bad files were not copied):\n  " + "\n  ".join(bad),
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    print(
        f"pulled {entry.ref}: {len(m.all_files()) + 1} files, {_size(entry.total_bytes)} to {dest.url}"
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_manifests", description=__doc__.split("\n")[2])
    p.add_argument("--registry", help="registry URL (default $VIDEOMINE_REGISTRY or luigi.cfg)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("list", help="datasets and versions")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("show", help="one dataset version (the newest without @VERSION)")
    s.add_argument("ref", metavar="NAME[@VERSION]")
    s.add_argument("--json", action="store_true", help="print the whole manifest")
    s = sub.add_parser("verify", help="re-hash every file and check every schema")
    s.add_argument("ref", metavar="NAME@VERSION")
    s = sub.add_parser("pull", help="copy a dataset into DEST (checked)")
    s.add_argument("ref", metavar="NAME@VERSION")
    s.add_argument("dest", metavar="DEST")
    args = p.parse_args(argv)
    commands = {"list": cmd_list, "show": cmd_show, "verify": cmd_verify, "pull": cmd_pull}
    try:
        reg = Registry(args.registry)
        reg.check_readable()  # a mistyped registry is an error, not an empty one
        return commands[args.cmd](reg, args)
    except RegistryUnavailableError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_REGISTRY
    except (UnknownDatasetError, DatasetMissingError, ManifestError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
