"""Activity segments and work cycles from per-second activity labels.

Cycle counts and cycle times are what a site manager reads, so they are
derived from segments (runs of one activity) rather than from seconds: a
cycle starts at each start-of-cycle activity and ends where the next one
starts. Gaps in the data are kept visible instead of being papered over, via
``is_complete`` and ``data_coverage``, so a cycle that straddles an outage is
not mistaken for a slow one.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from etl.config import ACTIVITIES

CYCLE_START: dict[str, str] = {
    "dumper": "loading",
    "excavator": "digging",
    "wheel_loader": "loading",
}
"""Machine type to the activity whose segments open a work cycle."""

SEGMENT_COLUMNS = ("start", "end", "activity", "duration_s")
"""Columns of :func:`activity_segments`, in order."""


def activity_segments(ts: np.ndarray, activity: np.ndarray, *, max_gap_s: int = 1) -> pd.DataFrame:
    """Runs of one activity over sorted per-second timestamps.

    A segment ends where the activity changes or where the step between two
    timestamps exceeds ``max_gap_s``, so a gap in the data is never silently
    absorbed into a segment. With ``max_gap_s > 1`` shorter gaps are bridged on
    purpose and count towards the segment's span.

    Args:
        ts: Sorted integer epoch seconds, shape (n,).
        activity: Activity label per second, aligned with ``ts``.
        max_gap_s: Largest step between consecutive seconds inside one segment.

    Returns:
        One row per segment: ``start`` (first second), ``end`` (last second + 1),
        ``activity`` and ``duration_s`` (``end - start``), ordered by ``start``.

    Raises:
        ValueError: If ``ts`` and ``activity`` differ in length.
    """
    ts = np.asarray(ts, dtype=np.int64)
    activity = np.asarray(activity)
    if ts.shape != activity.shape:
        raise ValueError(f"ts shape {ts.shape} does not match activity shape {activity.shape}")
    if ts.size == 0:
        return pd.DataFrame(
            {
                "start": pd.Series(dtype="int64"),
                "end": pd.Series(dtype="int64"),
                "activity": pd.Series(dtype=activity.dtype if activity.size else object),
                "duration_s": pd.Series(dtype="int64"),
            }
        )
    breaks = (activity[1:] != activity[:-1]) | (np.diff(ts) > max_gap_s)
    first = np.concatenate(([0], np.flatnonzero(breaks) + 1))
    last = np.concatenate((first[1:] - 1, [ts.size - 1]))
    start = ts[first]
    end = ts[last] + 1
    return pd.DataFrame(
        {"start": start, "end": end, "activity": activity[first], "duration_s": end - start}
    )


def _cycle_columns(machine_type: str) -> list[str]:
    """Output columns of :func:`build_cycles` for one machine type."""
    return [
        "cycle_start",
        "cycle_end",
        "duration_s",
        *(f"{a}_s" for a in ACTIVITIES[machine_type]),
        "is_complete",
        "data_coverage",
    ]


def build_cycles(segments: pd.DataFrame, machine_type: str, *, max_gap_s: int = 10) -> pd.DataFrame:
    """Work cycles of one machine from its activity segments.

    A cycle runs from the start of one start-of-cycle segment (see
    :data:`CYCLE_START`) to the start of the next. Seconds before the first
    start belong to no cycle, and the stretch after the last start is not a
    cycle because its end is unknown.

    Choice on repeated start segments: a start-activity segment opens a new
    cycle only if some other activity came between it and the previous
    start-activity segment. Two ``loading`` segments separated only by a data
    gap (or split by ``max_gap_s`` in :func:`activity_segments`) are one loading
    phase interrupted by an outage, not two cycles; counting them twice would
    inflate cycle counts exactly when data quality is worst. Such a cycle is
    still flagged through ``is_complete`` when the gap is long.

    Args:
        segments: Output of :func:`activity_segments` (``start``, ``end``,
            ``activity``; ``duration_s`` is recomputed from them).
        machine_type: Key of :data:`etl.config.ACTIVITIES`.
        max_gap_s: Longest gap between consecutive segments (or between the
            last segment and the cycle end) for the cycle to count as complete.

    Returns:
        One row per cycle: ``cycle_start``, ``cycle_end``, ``duration_s``, one
        ``<activity>_s`` column per taxonomy activity (seconds of it inside the
        cycle), ``is_complete`` and ``data_coverage`` (share of the cycle's
        seconds covered by segments, 0..1).

    Raises:
        ValueError: If the machine type is unknown or segments hold activities
            outside its taxonomy.
    """
    if machine_type not in ACTIVITIES:
        raise ValueError(f"unknown machine type {machine_type!r}")
    activities = ACTIVITIES[machine_type]
    columns = _cycle_columns(machine_type)
    seg = segments.sort_values("start", kind="stable").reset_index(drop=True)
    unknown = sorted(set(seg["activity"]) - set(activities))
    if unknown:
        raise ValueError(f"activities not in the {machine_type} taxonomy: {unknown}")
    start_act = CYCLE_START[machine_type]
    acts = seg["activity"].to_numpy()
    starts = seg["start"].to_numpy(dtype=np.int64)
    ends = seg["end"].to_numpy(dtype=np.int64)
    is_start = acts == start_act
    prev_is_start = np.concatenate(([False], is_start[:-1]))
    openers = np.flatnonzero(is_start & ~prev_is_start)

    rows = []
    for i, j in itertools.pairwise(openers):
        c0, c1 = int(starts[i]), int(starts[j])
        s, e = starts[i:j], np.minimum(ends[i:j], c1)
        dur = e - s
        # Gaps between consecutive segments and from the last one to the cycle end.
        gaps = np.concatenate((s[1:] - e[:-1], [c1 - e[-1]]))
        row: dict[str, object] = {"cycle_start": c0, "cycle_end": c1, "duration_s": c1 - c0}
        for act in activities:
            row[f"{act}_s"] = int(dur[acts[i:j] == act].sum())
        row["is_complete"] = bool((gaps <= max_gap_s).all())
        row["data_coverage"] = float(dur.sum() / (c1 - c0))
        rows.append(row)
    out = pd.DataFrame(rows, columns=columns)
    int_cols = ["cycle_start", "cycle_end", "duration_s", *(f"{a}_s" for a in activities)]
    return out.astype(
        {**dict.fromkeys(int_cols, "int64"), "is_complete": bool, "data_coverage": float}
    )
