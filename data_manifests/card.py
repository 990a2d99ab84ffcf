"""The dataset card: a README.md generated from a manifest and example montages.

Montages are PNGs rendered by the caller (``tasks/publish.py`` renders them with
``pipeline.imaging.montage`` and collects the PNGs the stages wrote); ``data_manifests``
sits below ``pipeline`` in the dependency order, so it only checks that the bytes are PNGs
and links them from the card.
"""

from __future__ import annotations

from collections.abc import Mapping

from data_manifests.manifest import Manifest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

__all__ = ["PNG_SIGNATURE", "check_png", "render_card"]


def check_png(name: str, data: bytes) -> None:
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33:
        raise ValueError(f"card image {name!r} is not a PNG ({len(data)} bytes)")


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _mb(n: int) -> str:
    """Human size: kB below a megabyte, so small tables do not read as 0.00 MB."""
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def known_limits(m: Manifest) -> list[str]:
    """Caveats a consumer should know, derived from the manifest."""
    out = []
    if m.input_url_list_sha256 is None:
        out.append("The input URL list was not available: its hash is not recorded.")
    if not m.licences:
        out.append("No `videos` table in the run: licences are unknown; check before use.")
    elif "unknown" in m.licences:
        out.append(
            f"{m.licences['unknown']} videos have no licence recorded; treat them as "
            "all rights reserved."
        )
    for name, t in sorted(m.tables.items()):
        if t.rows == 0:
            out.append(f"Table `{name}` is empty.")
    if m.code_version is None:
        out.append("The producing code version is unknown (no git sha in the stage sidecars).")
    out.append(
        "Pairs are mined automatically (tracking and clustering): some inter-instance pairs "
        "join different objects, and intra-instance pairs can drift when a track slips."
    )
    out.append("Negatives are not stored: draw them at training time from another parent.")
    return out


def render_card(m: Manifest, images: Mapping[str, str]) -> str:
    """README.md text. ``images`` maps a caption to the PNG's path inside the dataset."""
    parts = [
        f"# {m.name} @ {m.version}",
        "",
        m.description.strip() or "A dataset of related image pairs mined from unlabeled video.",
        "",
        f"Published by **{m.owner}** on {m.created_at}. Code version `{m.code_version}`. "
        f"{sum(t.rows for t in m.tables.values())} rows in {len(m.tables)} tables, "
        f"{_mb(m.total_bytes)}.",
        "",
        "## Use",
        "",
        "```python",
        "import data_manifests",
        f'ds = data_manifests.load("{m.ref}", "{next(iter(sorted(m.tables)), "pairs")}")',
        "df = ds.to_table().to_pandas()",
        "```",
        "",
        f"Check every byte first: `python -m data_manifests verify {m.ref}`.",
        "",
        "## How it was mined",
        "",
        "Moving objects are found by motion filtering (SURF points moving against the "
        "camera motion, Wang & Gupta 2015), tracked with KCF for 30 frames, clustered in two "
        "stages (parents by spherical k-means, children of 4 mutual neighbours) and joined "
        "into a graph whose one-hop transitive pairs are the positives (Wang, He & Gupta "
        "2017); motion masks come from uNLC (Pathak et al. 2017). The stages and their full "
        "parameters are in `manifest.json` (`config`, `sources`).",
        "",
    ]
    if m.sources:
        rows: list[list[object]] = []
        by_family: dict[str, int] = {}
        for s in m.sources:
            by_family[str(s["task_family"])] = by_family.get(str(s["task_family"]), 0) + 1
        for family, n in sorted(by_family.items()):
            counts = ", ".join(f"{k}={v}" for k, v in sorted(m.counts.get(family, {}).items()))
            rows.append([family, n, counts or "-"])
        parts += [_table(["stage", "outputs", "counts"], rows), ""]
    parts += ["## Tables", ""]
    parts += [
        _table(
            ["table", "schema", "rows", "files", "size", "what it holds"],
            [
                [
                    name,
                    f"{t.schema_name} v{t.schema_version}",
                    t.rows,
                    len(t.files),
                    _mb(t.bytes),
                    t.description.replace("|", "/").replace("\n", " ") or "-",
                ]
                for name, t in sorted(m.tables.items())
            ],
        ),
        "",
    ]
    if m.pair_types:
        parts += ["## Pairs by type", ""]
        parts += [_table(["type", "pairs"], [[k, v] for k, v in sorted(m.pair_types.items())]), ""]
    parts += ["## Licences", ""]
    if m.licences:
        parts += [_table(["licence", "videos"], [[k, v] for k, v in sorted(m.licences.items())])]
    else:
        parts += ["Unknown (no `videos` table in the run)."]
    parts += [""]
    if m.parents:
        parts += ["## Parent datasets", "", *[f"- `{p}`" for p in m.parents], ""]
    parts += ["## Known limits", "", *[f"- {line}" for line in known_limits(m)], ""]
    if images:
        parts += ["## Examples", ""]
        for caption, path in images.items():
            parts += [f"### {caption}", "", f"![{caption}]({path})", ""]
    return "\n".join(parts)
