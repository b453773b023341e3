"""The report ``make demo`` ends with: a static HTML page and a short terminal table.

Both read the same two sources: the results database (``machine_activity`` and
``machine_cycle``, shared/contracts/results.md) and the state as ``etl status
--json`` prints it. The state is an argument, not read here, so the report
works the same whether the caller holds a state store, a JSON file or a fake.

Example::

    state = read_status(ctx.state_engine, ctx.config.pipeline.name)
    assets = [(a.uuid, a.type) for a in config.assets]
    page = build_report(url, "mining_insights", "demo", state, Path("reports/demo"),
                        assets=assets)
    print(terminal_summary(url, "mining_insights", "demo", state, assets=assets))
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etl.report.data import ReportData, load_report_data
from etl.report.summary import (
    MachineSummary,
    fleet_summaries,
    models_used,
    short_ids,
    time_range,
    top_activities,
)

__all__ = [
    "MachineSummary",
    "ReportData",
    "build_report",
    "load_report_data",
    "render_terminal",
    "terminal_summary",
    "write_report",
]

log = logging.getLogger(__name__)

REPORT_FILE = "index.html"


def write_report(data: ReportData, out_dir: Path) -> Path:
    """Render the page for already loaded data into ``out_dir/index.html``."""
    from etl.report.html import render_page  # matplotlib only when a page is drawn

    summaries = fleet_summaries(data)
    page = render_page(data, summaries, models_used(data), time_range(data))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a page
    log.info("report: %s (%d machines, %.0f kB)", path, len(summaries), len(page) / 1024)
    return path


def build_report(
    results_url: str | None,
    schema: str,
    pipeline: str,
    state: Mapping[str, Any],
    out_dir: Path,
    *,
    assets: list[tuple[str, str]],
) -> Path:
    """Write the pipeline's report to ``out_dir/index.html`` and return that path.

    Args:
        results_url: SQLAlchemy URL of the results database (``results.url``);
            None when none is configured: the page then shows the state only.
        schema: Schema of the results tables (``results.schema``).
        pipeline: Pipeline whose rows are reported (``pipeline.name``).
        state: The dict ``etl status --json`` prints.
        out_dir: Folder of the page; created when missing.
        assets: ``(machine_uuid, machine_type)`` of the configured machines, so
            that a machine without any result still gets its section.

    Returns:
        The path of the written ``index.html``.

    """
    data = load_report_data(results_url, schema, pipeline, state, assets)
    return write_report(data, out_dir)


def render_terminal(data: ReportData) -> str:
    """A short plain-text table of the fleet, for the end of a terminal session."""
    summaries = fleet_summaries(data)
    first, last = time_range(data)
    span = (
        f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
        if first is not None and last is not None
        else "no results rows"
    )
    lines = [f"report {data.pipeline}: {span}, {len(summaries)} machines"]
    if not data.has_results:
        lines.append(
            "  the results database holds no activity or cycle rows for this pipeline"
            f" (schema {data.schema}{'' if data.tables_found else ', tables missing'})"
        )
    ids = short_ids([s.machine_uuid for s in summaries])
    width = max([len(v) for v in ids.values()] + [7])
    lines.append(
        f"  {'machine':<{width}}  {'type':<12} {'hours':>6} {'cycles':>6} {'median':>9}"
        f"  {'files ok/rej':>12}  activity shares"
    )
    for s in summaries:
        median = f"{s.median_cycle_min:.1f} min" if s.median_cycle_min is not None else "-"
        files = f"{s.accepted}/{s.rejected_count}"
        lines.append(
            f"  {ids[s.machine_uuid]:<{width}}  {s.machine_type:<12} {s.hours:>6.1f}"
            f" {s.cycles:>6,} {median:>9}  {files:>12}  {top_activities(s.shares) or '-'}"
        )
    return "\n".join(lines)


def terminal_summary(
    results_url: str | None,
    schema: str,
    pipeline: str,
    state: Mapping[str, Any],
    *,
    assets: list[tuple[str, str]],
) -> str:
    """The terminal table for the same inputs as :func:`build_report` (no page written)."""
    return render_terminal(load_report_data(results_url, schema, pipeline, state, assets))
