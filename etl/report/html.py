"""The report page: one self-contained static HTML file (inline CSS and PNGs, no JavaScript).

Layout: a header (pipeline, time range, machines, models and their macro-F1),
one section per machine (activity timeline, cycle-time distribution, data
quality), then a fleet table. Every value taken from data is escaped.

Timeline decision: one row per UTC day, the last :data:`TIMELINE_DAYS` days
drawn (the captions say how many of how many). A single bar over weeks would
squeeze a two-minute loading into less than a pixel; a row per day keeps the
rhythm of shifts and cycles visible, and the hours-per-day chart under data
quality covers every day.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from html import escape

import pandas as pd

from etl.report import plots
from etl.report.data import ReportData
from etl.report.summary import (
    MachineSummary,
    ModelUse,
    reasons_by_kind,
    split_by_day,
    taxonomy_order,
    top_activities,
    unassigned_batches,
)

Span = tuple[pd.Timestamp | None, pd.Timestamp | None]

TIMELINE_DAYS = 7
"""Days drawn in a machine's activity timeline (the most recent ones)."""

MAX_REJECTED_LISTED = 25
"""Rejected files listed one by one per machine; the rest are counted by reason."""

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1080px; margin: 0 auto; padding: 1.5em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #e3e3e3; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .3em; color: #444; }
.meta, figcaption, .note { color: #666; font-size: .9em; }
.notice { background: #fff6d6; border: 1px solid #ecd27a; padding: .6em .9em; border-radius: 4px; }
.chips span { display: inline-block; background: #f2f4f7; border-radius: 4px;
              padding: .15em .55em; margin: 0 .35em .35em 0; }
.chips b { font-weight: 600; }
table { border-collapse: collapse; margin: .4em 0; font-size: .92em; }
th, td { border-bottom: 1px solid #e6e6e6; padding: .25em .7em; text-align: left; }
th { background: #f6f7f9; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: .3em 0 .8em; }
figure img { max-width: 100%; }
.pair { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
code { font-size: .9em; }
nav a { margin-right: .8em; }
"""


def _num(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _time(value: pd.Timestamp | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _img(png: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{png}" alt="{escape(alt)}">'


def _anchor(machine_uuid: str) -> str:
    return f"machine-{escape(machine_uuid)}"


def _chips(items: list[tuple[str, str]]) -> str:
    spans = "".join(f"<span>{escape(k)} <b>{escape(v)}</b></span>" for k, v in items)
    return f'<p class="chips">{spans}</p>'


def _table(header: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()

    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="num"' if i in numeric else ""
        return f"<{tag}{cls}>{escape(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plural_types(machines: list[tuple[str, str]]) -> str:
    counts = Counter(t for _, t in machines)
    return ", ".join(f"{n} {t.replace('_', ' ')}{'s' if n > 1 else ''}" for t, n in counts.items())


def render_header(
    data: ReportData, summaries: list[MachineSummary], uses: list[ModelUse], span: Span
) -> str:
    """Title, time range, machines, models used with their macro-F1, and links."""
    first, last = span
    parts = [
        f"<h1>Fleet report: pipeline <code>{escape(data.pipeline)}</code></h1>",
        '<p class="meta">'
        f"data {_time(first)} &ndash; {_time(last)} UTC · {len(data.machines)} machines"
        f"{' (' + escape(_plural_types(data.machines)) + ')' if data.machines else ''}"
        f" · results from schema <code>{escape(data.schema)}</code>"
        f" · generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
    ]
    if uses:
        rows = [
            [
                u.machine_type,
                u.model_version,
                _num(u.macro_f1, 3),
                u.status or "not in the state store",
                f"{u.segments:,}",
            ]
            for u in uses
        ]
        parts.append("<h3>Models that produced these results</h3>")
        parts.append(
            _table(
                ["machine type", "model version", "macro-F1", "status", "segments"], rows, {2, 4}
            )
        )
    if not data.has_results:
        if not data.results_configured:
            why = "no results database is configured (results.url)"
        elif not data.tables_found:
            why = "the results tables do not exist yet"
        else:
            why = f"the results tables hold no rows for pipeline {data.pipeline}"
        parts.append(
            f'<p class="notice">No activity or cycle results to show: {escape(why)} '
            f"(schema <code>{escape(data.schema)}</code>). Run <code>etl infer</code> and "
            "<code>etl export</code>; the data quality of the raw files is shown below.</p>"
        )
    if summaries:
        links = "".join(
            f'<a href="#{_anchor(s.machine_uuid)}">{escape(s.machine_type)} '
            f"{escape(s.machine_uuid[-8:])}</a>"
            for s in summaries
        )
        parts.append(f'<nav>{links}<a href="#fleet">fleet table</a></nav>')
    return "<header>" + "".join(parts) + "</header>"


def render_timeline(summary: MachineSummary, pieces: pd.DataFrame) -> str:
    """The activity timeline of one machine (its segments cut per day), or a line saying none."""
    if pieces.empty:
        return '<p class="note">No activity segments for this machine.</p>'
    activities = taxonomy_order(summary.machine_type, list(pieces["activity"].unique()))
    png = plots.timeline_png(pieces, activities, TIMELINE_DAYS)
    total = int(pieces["day"].nunique())
    shown = min(TIMELINE_DAYS, total)
    which = f"the last {shown} of {total} days" if total > shown else f"{total} of {total} days"
    shares = ", ".join(f"{a.replace('_', ' ')} {s:.0%}" for a, s in summary.shares.items())
    return (
        f"<figure>{_img(png, 'activity timeline')}<figcaption>One row per UTC day ({which}); "
        f"white is time without data. Share of time: {escape(shares)}.</figcaption></figure>"
    )


def render_cycles(data: ReportData, summary: MachineSummary) -> str:
    """Cycle-time histogram with the median, and the mean seconds per phase."""
    cycles = data.cycles[data.cycles["machine_uuid"] == summary.machine_uuid]
    if cycles.empty:
        return '<p class="note">No cycles for this machine.</p>'
    png, beyond, cap = plots.cycle_histogram_png(cycles, summary.median_cycle_min)
    longer = (
        f" {beyond} cycle{'s' if beyond > 1 else ''} longer than {cap:.1f} min "
        f"{'are' if beyond > 1 else 'is'} counted in the last bar."
        if beyond
        else ""
    )
    figures = [
        f"<figure>{_img(png, 'cycle-time histogram')}<figcaption>{summary.cycles:,} cycles, "
        f"{summary.complete_cycles:,} complete; median {_num(summary.median_cycle_min)} min over "
        f"complete cycles.{longer}</figcaption></figure>"
    ]
    if summary.phase_means_s and sum(summary.phase_means_s.values()) > 0:
        png = plots.phase_bar_png(summary.phase_means_s)
        figures.append(
            f"<figure>{_img(png, 'phases')}<figcaption>Where a complete cycle's time goes "
            "(mean seconds per activity).</figcaption></figure>"
        )
    return '<div class="pair">' + "".join(figures) + "</div>"


def _rejected_table(rejected: list[tuple[str, str]]) -> str:
    kinds = reasons_by_kind(rejected)
    parts = []
    if len(kinds) < len(rejected):  # counting by kind says something the list does not
        parts += [
            "<p>Rejected files by reason:</p>",
            _table(["reason", "files"], [[k, str(n)] for k, n in kinds], {1}),
        ]
    listed = rejected[:MAX_REJECTED_LISTED]
    parts.append(_table(["rejected file", "reason"], [[k, r] for k, r in listed]))
    if len(rejected) > len(listed):
        parts.append(f'<p class="note">… and {len(rejected) - len(listed)} more.</p>')
    return "".join(parts)


def render_quality(summary: MachineSummary, pieces: pd.DataFrame) -> str:
    """Raw files by status, rejected files with reasons, incomplete cycles, coverage."""
    chips = [(status, str(n)) for status, n in summary.batches.items()] or [("raw files", "0")]
    parts = [
        "<p>Raw files in the state store, by status:</p>",
        _chips(chips),
        _chips(
            [
                ("cycles interrupted by data gaps", _pct(summary.incomplete_share)),
                ("mean data coverage of cycles", _pct(summary.cycle_coverage)),
                ("time with data over the machine's span", _pct(summary.coverage)),
            ]
        ),
    ]
    if summary.rejected:
        parts.append(_rejected_table(summary.rejected))
    else:
        parts.append('<p class="note">No rejected files.</p>')
    if pieces["day"].nunique() > 1:  # one day: the timeline shows its coverage already
        parts.append(
            f"<figure>{_img(plots.hours_per_day_png(pieces), 'hours per day')}"
            "<figcaption>Hours of activity data per UTC day (dashed: 24 h).</figcaption></figure>"
        )
    return "".join(parts)


def render_machine(data: ReportData, summary: MachineSummary) -> str:
    """One machine's section."""
    pieces = split_by_day(data.activity[data.activity["machine_uuid"] == summary.machine_uuid])
    figures = [
        ("data", f"{_time(summary.first)} to {_time(summary.last)} UTC"),
        ("hours of data", _num(summary.hours, 1, "h")),
        ("cycles", f"{summary.cycles:,}"),
        ("median cycle", _num(summary.median_cycle_min, 1, "min")),
        ("models", ", ".join(summary.model_versions) or "-"),
    ]
    return (
        f'<section class="machine" id="{_anchor(summary.machine_uuid)}">'
        f"<h2>{escape(summary.machine_type.replace('_', ' '))} "
        f"<code>{escape(summary.machine_uuid)}</code></h2>"
        + _chips(figures)
        + "<h3>Activity timeline</h3>"
        + render_timeline(summary, pieces)
        + "<h3>Cycle time</h3>"
        + render_cycles(data, summary)
        + "<h3>Data quality</h3>"
        + render_quality(summary, pieces)
        + "</section>"
    )


def render_fleet(data: ReportData, summaries: list[MachineSummary]) -> str:
    """The fleet table, and the raw files that belong to no reported machine."""
    rows = [
        [
            s.machine_uuid,
            s.machine_type,
            _num(s.hours),
            top_activities(s.shares) or "-",
            f"{s.cycles:,}",
            _num(s.median_cycle_min),
            _pct(s.incomplete_share),
            _pct(s.coverage),
            str(s.accepted),
            str(s.rejected_count),
            str(s.pending),
        ]
        for s in summaries
    ]
    header = [
        "machine",
        "type",
        "hours",
        "top activities",
        "cycles",
        "median cycle (min)",
        "interrupted cycles",
        "coverage",
        "files accepted",
        "rejected",
        "pending",
    ]
    parts = ['<section id="fleet"><h2>Fleet</h2>', _table(header, rows, {2, 4, 5, 6, 7, 8, 9, 10})]
    others = unassigned_batches(data)
    if not others.empty:
        rejected = [
            (str(k), str(r) if pd.notna(r) else "no reason recorded")
            for k, r, s in others[["key", "reason", "status"]].itertuples(index=False, name=None)
            if s == "rejected"
        ]
        parts.append(
            f"<h3>Raw files of no configured machine</h3><p>{len(others)} files "
            "(for example announcements without a valid machine UUID).</p>"
        )
        if rejected:
            parts.append(_rejected_table(rejected))
    parts.append("</section>")
    return "".join(parts)


def render_page(
    data: ReportData, summaries: list[MachineSummary], uses: list[ModelUse], span: Span
) -> str:
    """The whole page as one string."""
    body = (
        render_header(data, summaries, uses, span)
        + "".join(render_machine(data, s) for s in summaries)
        + (render_fleet(data, summaries) if summaries else "")
    )
    if not summaries:
        body += '<p class="notice">No machines: no assets configured and no results rows.</p>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Fleet report &ndash; {escape(data.pipeline)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )
