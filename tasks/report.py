"""``Report``: one self-contained HTML page describing the run under ``[videomine] root``.

    luigi --module tasks Report --local-scheduler

The page shows the funnel per stage (outputs, rows per table, the stage's counters, and the
failure reasons found in ``status`` / ``error`` / ``reason`` columns; a ``duplicate`` row
of ``videos`` shows the ``video_id`` it repeats, from ``duplicate_of``), timing per stage
(from the ``_meta.json`` sidecars), every PNG montage the stages wrote into their output
directories (tracks, clusters, pairs, masks; embedded, so the page also works from an
object store), and links to the outputs. The report is itself a stage output
(``<root>/Report/<task_id>-<lineage8>/index.html``) whose lineage hashes the list of
completed outputs, so a new or rerun stage gives a new report.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import time
from collections import Counter

import pyarrow.parquet as pq

from data_manifests.runs import RunOutput, StageDir, scan_run
from tasks.common import StageOutput, StageTask, videomine

REASON_COLUMNS = ("error", "reason", "drop_reason", "status_reason")
DUPLICATE_COLUMN = "duplicate_of"  # videos: video_id of the earlier row a duplicate repeats
STATUS_COLUMNS = ("status", "kept", "ok")
SUCCESS_VALUES = (True, "ok", "kept", "success", "segmented", "done")
TOP_REASONS = 8  # failure reasons listed per table; the rest are summed as "other"

__all__ = ["Report", "failure_reasons", "render_report"]


def _h(x: object) -> str:
    return html.escape(str(x))


def failure_reasons(stage: StageDir, table: str) -> Counter[str]:
    """(status: reason) -> rows, over the rows of ``table`` that did not succeed."""
    out: Counter[str] = Counter()
    for name in stage.tables.get(table, []):
        with stage.store.fs.open(stage.store.path(name), "rb") as f:
            pf = pq.ParquetFile(f)
            names = pf.schema_arrow.names
            status = next((c for c in STATUS_COLUMNS if c in names), None)
            reason = next((c for c in REASON_COLUMNS if c in names), None)
            dup = DUPLICATE_COLUMN if DUPLICATE_COLUMN in names else None
            if status is None and reason is None:
                continue
            t = pf.read(columns=[c for c in (status, reason, dup) if c])
        st = t.column(status).to_pylist() if status else [None] * t.num_rows
        rs = t.column(reason).to_pylist() if reason else [None] * t.num_rows
        ds = t.column(dup).to_pylist() if dup else [None] * t.num_rows
        for s, r, d in zip(st, rs, ds, strict=True):
            if s in SUCCESS_VALUES or (s is None and not r):
                continue
            if not r and d:  # a duplicate is not an error: its reason is the row it repeats
                r = f"duplicate of {d}"
            first = str(r).strip().splitlines()[0][:120] if r else "(no reason given)"
            label = f"{status}={s}: {first}" if status else first
            out[label] += 1
    return out


def _order(s: StageDir) -> tuple[str, int, str]:
    """Family, then shard number (not the hashed directory name), then directory."""
    shard = s.params.get("shard")
    return (s.family, int(shard) if str(shard).lstrip("-").isdigit() else -1, s.dirname)


def _link(stage: StageDir, report_dir: str | None) -> str:
    url = stage.store.url
    if report_dir is not None and stage.store.is_local:
        return os.path.relpath(stage.store.root, report_dir)
    return url


def _stage_rows(run: RunOutput, report_dir: str | None) -> tuple[str, list[str]]:
    """The funnel table (one row per task family) and the failure-reason sections."""
    fams: dict[str, list[StageDir]] = {}
    for s in run.stages:
        fams.setdefault(s.family, []).append(s)
    rows, failures = [], []
    for family, stages in sorted(fams.items(), key=lambda kv: _first_start(kv[1])):
        done = sorted((s for s in stages if s.complete), key=_order)
        tables: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        for s in done:
            for t, info in (s.meta.get("tables") or {}).items():
                tables[t] += int(info.get("rows", 0)) if isinstance(info, dict) else 0
            counts.update(s.counts)
        walls = [s.wall_s for s in done if s.wall_s is not None]
        timing = f"{sum(walls):.1f} s total, {max(walls):.1f} s max" if walls else "-"
        links = " ".join(
            f'<a href="{_h(_link(s, report_dir))}">{_h(s.params.get("shard", i))}</a>'
            for i, s in enumerate(done)
        )
        rows.append(
            "<tr>"
            f"<td>{_h(family)}</td><td>{len(done)} / {len(stages)}</td>"
            f"<td>{'<br>'.join(f'{_h(t)}: {n}' for t, n in sorted(tables.items())) or '-'}</td>"
            f"<td>{'<br>'.join(f'{_h(k)}: {v}' for k, v in sorted(counts.items())) or '-'}</td>"
            f"<td>{timing}</td><td>{links}</td></tr>"
        )
        for t in sorted(tables):
            reasons: Counter[str] = Counter()
            for s in done:
                reasons.update(failure_reasons(s, t))
            if reasons:
                top = reasons.most_common(TOP_REASONS)
                other = sum(reasons.values()) - sum(n for _, n in top)
                items = [f"<li>{n} &times; {_h(r)}</li>" for r, n in top]
                if other:
                    items.append(f"<li>{other} &times; other reasons</li>")
                failures.append(
                    f"<h3>{_h(family)} / {_h(t)}: {sum(reasons.values())} rows</h3>"
                    f"<ul>{''.join(items)}</ul>"
                )
    return "".join(rows), failures


def _first_start(stages: list[StageDir]) -> float:
    starts = [
        float(s.meta["started"]) for s in stages if isinstance(s.meta.get("started"), int | float)
    ]
    return min(starts) if starts else float("inf")


def render_report(run: RunOutput, report_dir: str | None = None) -> str:
    """The HTML page for ``run``; ``report_dir`` (local) makes output links relative."""
    funnel, failures = _stage_rows(run, report_dir)
    figures = []
    for s in sorted(run.complete_stages(), key=_order):
        for png in s.pngs:
            data = base64.b64encode(s.store.read_bytes(png)).decode("ascii")
            caption = f"{s.family} {s.params.get('shard', '')} &middot; {_h(png)}"
            figures.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{_h(png)}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
    versions = sorted({s.code_version for s in run.stages if s.code_version})
    incomplete = run.incomplete_stages()
    warn = (
        f'<p class="warn">{len(incomplete)} output(s) without _SUCCESS: '
        + ", ".join(_h(f"{s.family}/{s.dirname}") for s in incomplete)
        + "</p>"
        if incomplete
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>videomine run report</title>
<style>
body {{ font: 14px/1.4 sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #bbb; padding: 4px 8px; vertical-align: top; text-align: left; }}
th {{ background: #eef; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }}
figure img {{ max-width: 900px; border: 1px solid #ccc; image-rendering: pixelated; }}
.warn {{ color: #a00; font-weight: bold; }}
</style></head><body>
<h1>videomine run report</h1>
<p>Run root <code>{_h(run.root.url)}</code> &middot; generated
{_h(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))} &middot; code
{_h(", ".join(versions) or "unknown")}</p>
{warn}
<h2>Funnel per stage</h2>
<table><tr><th>stage</th><th>complete outputs</th><th>rows per table</th><th>counts</th>
<th>time</th><th>outputs</th></tr>
{funnel}
</table>
<h2>Failure reasons</h2>
{"".join(failures) or "<p>No failed rows.</p>"}
<h2>Montages</h2>
{"".join(figures) or "<p>No montages written by the stages.</p>"}
</body></html>
"""


class Report(StageTask):
    """One HTML page per run: funnel, failures, timing, montages, links."""

    def _run(self) -> RunOutput:
        run = scan_run(videomine().root)
        run.stages = [s for s in run.stages if s.family != self.task_family]
        return run

    def input_digest(self) -> str:
        """The completed outputs under the root: a new or rerun stage gives a new report."""
        try:
            run = self._run()
        except FileNotFoundError:
            return ""
        names = sorted(f"{s.family}/{s.dirname}:{s.complete}" for s in run.stages)
        return hashlib.sha256("\n".join(names).encode()).hexdigest()

    def produce(self, out: StageOutput) -> None:
        run = self._run()
        if not run.stages:
            raise FileNotFoundError(f"no stage outputs under {run.root.url}: nothing to report")
        target = self.output()
        page = render_report(run, target.path if target.is_local else None)
        (out.path / "index.html").write_text(page, encoding="utf-8")
        out.count("stages", len({s.family for s in run.stages}))
        out.count("outputs", len(run.stages))
        if callable(self.set_status_message):  # None when run outside a luigi worker
            self.set_status_message(f"report: {target.url}/index.html")
