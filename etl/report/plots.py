"""The report's pictures: matplotlib figures rendered by Agg to base64 PNG strings.

Figures are built with :class:`matplotlib.figure.Figure` and an Agg canvas,
never through ``pyplot``: no global figure state, no GUI backend, safe to call
from a CLI or a worker thread. The PNGs go inline into the page so that the
report is one file that opens anywhere, offline.

Colours are fixed per activity name (not per position in a taxonomy), so the
same activity has the same colour on every machine and in every report.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

ACTIVITY_COLOURS: dict[str, str] = {
    "idle": "#b3b3b3",
    "queuing": "#e6c229",
    "loading": "#1f77b4",
    "hauling": "#d62728",
    "dumping": "#2ca02c",
    "returning": "#ff7f0e",
    "digging": "#17becf",
    "swinging_loaded": "#9467bd",
    "swinging_empty": "#c5b0d5",
    "traveling": "#8c564b",
    "carrying": "#e377c2",
}
"""One colour per activity of any machine type (shared/contracts/raw-data.md)."""

UNKNOWN_COLOUR = "#404040"
"""An activity outside every taxonomy: visible, and visibly not one of ours."""

DPI = 90


def colour(activity: str) -> str:
    """The activity's colour, the same on every machine."""
    return ACTIVITY_COLOURS.get(activity, UNKNOWN_COLOUR)


def to_base64_png(figure: Figure) -> str:
    """The figure as a base64 PNG, ready for ``<img src="data:image/png;base64,...">``."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def timeline_png(pieces: pd.DataFrame, activities: list[str], max_days: int) -> str:
    """Broken horizontal bars of activities, one row per UTC day (the last ``max_days``).

    Splitting per day keeps a bar of one minute visible however long the range;
    white is time without data.

    Args:
        pieces: Segments cut at midnights (:func:`etl.report.summary.split_by_day`).
        activities: The legend's activities, in order.
        max_days: Most recent days drawn.

    """
    days = sorted(pieces["day"].unique())[-max_days:]
    figure = Figure(figsize=(10, 0.42 * len(days) + 1.3))
    axes = figure.subplots()
    for row, day in enumerate(days):
        of_day = pieces[pieces["day"] == day]
        for name, bars in of_day.groupby("activity"):
            axes.broken_barh(
                list(zip(bars["start_h"], bars["hours"], strict=True)),
                (row - 0.4, 0.8),
                facecolors=colour(str(name)),
                linewidth=0,
            )
    axes.set_yticks(range(len(days)), [pd.Timestamp(d).strftime("%a %d %b") for d in days])
    axes.set_ylim(len(days) - 0.5, -0.5)
    axes.set_xlim(0, 24)
    axes.set_xticks(range(0, 25, 2))
    axes.set_xlabel("hour of day (UTC)")
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    handles = [Patch(facecolor=colour(a), label=a.replace("_", " ")) for a in activities]
    figure.legend(
        handles=handles,
        loc="upper center",
        ncol=min(len(handles), 6),
        frameon=False,
        bbox_to_anchor=(0.5, 1.0),
        fontsize=9,
    )
    figure.subplots_adjust(top=1 - 0.55 / figure.get_figheight())
    return to_base64_png(figure)


def histogram_cap(minutes: pd.Series) -> float | None:
    """Where the histogram's x-axis ends: 1.5 times the 95th percentile, if data lie beyond.

    A few cycles that span a lunch break would otherwise squeeze the typical
    cycles into one bar; they are counted in the last bar instead.
    """
    values = minutes.dropna()
    if len(values) < 20:
        return None
    cap = float(values.quantile(0.95)) * 1.5
    return cap if cap > 0 and float(values.max()) > cap else None


def cycle_histogram_png(cycles: pd.DataFrame, median_min: float | None) -> tuple[str, int, float]:
    """Cycle durations in minutes, complete and interrupted cycles stacked, median marked.

    Returns:
        The PNG, the number of cycles counted in the last bar because they are
        longer than the cap, and the cap in minutes (``inf`` when there is none).

    """
    minutes = cycles["duration_s"].astype(float) / 60.0
    cap = histogram_cap(minutes)
    shown = minutes.clip(upper=cap) if cap is not None else minutes
    complete = shown[cycles["is_complete"]].dropna()
    interrupted = shown[~cycles["is_complete"]].dropna()
    edges = np.histogram_bin_edges(shown.dropna(), bins=min(30, max(5, len(shown) // 3)))
    figure = Figure(figsize=(6, 3))
    axes = figure.subplots()
    axes.hist(
        [complete, interrupted],
        bins=edges,
        stacked=True,
        color=["#4c72b0", "#c9d3e6"],
        label=["complete", "interrupted by data gaps"],
    )
    if median_min is not None:
        axes.axvline(median_min, color="#d62728", linewidth=1.5)
        axes.annotate(
            f"median {median_min:.1f} min",
            (median_min, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            color="#d62728",
            fontsize=9,
        )
    axes.set_xlabel("cycle time (min)" + (f", last bar: {cap:.1f} min or more" if cap else ""))
    axes.set_ylabel("cycles")
    axes.legend(frameon=False, fontsize=8, loc="upper right")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    beyond = int((minutes > cap).sum()) if cap is not None else 0
    return to_base64_png(figure), beyond, cap if cap is not None else float("inf")


def phase_bar_png(phase_means_s: dict[str, float]) -> str:
    """One stacked bar: mean seconds per activity within a complete cycle."""
    figure = Figure(figsize=(6, 1.5))
    axes = figure.subplots()
    total = sum(phase_means_s.values()) or 1.0
    left = 0.0
    for name, seconds in phase_means_s.items():
        axes.barh(0, seconds, left=left, color=colour(name), label=name.replace("_", " "))
        if seconds / total >= 0.07:
            axes.text(left + seconds / 2, 0, f"{seconds:.0f}", ha="center", va="center", fontsize=8)
        left += seconds
    axes.set_yticks([])
    axes.set_xlabel("mean seconds per complete cycle")
    axes.legend(
        frameon=False,
        fontsize=8,
        ncol=min(len(phase_means_s), 6),
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
    )
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    return to_base64_png(figure)


def hours_per_day_png(pieces: pd.DataFrame) -> str:
    """Hours of activity data per UTC day (segments cut at midnights), against 24."""
    per_day = pieces.groupby("day")["hours"].sum().sort_index()
    per_day = per_day.reindex(
        pd.date_range(per_day.index.min(), per_day.index.max(), freq="D"), fill_value=0.0
    )
    figure = Figure(figsize=(5, 1.8))
    axes = figure.subplots()
    labels = [pd.Timestamp(d).strftime("%d %b") for d in per_day.index]
    axes.bar(range(len(per_day)), per_day.to_numpy(), color="#4c72b0", width=0.7)
    axes.axhline(24, color="#999999", linewidth=0.8, linestyle="--")
    axes.set_ylim(0, 25)
    axes.set_ylabel("hours of data")
    step = max(1, len(labels) // 14)
    axes.set_xticks(range(0, len(labels), step), labels[::step], fontsize=8)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return to_base64_png(figure)
