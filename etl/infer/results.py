"""Per-machine results from per-second class probabilities: pure pandas, one machine at a time.

These functions run inside ``applyInPandas`` (one machine's rows per call) and
in unit tests on inline frames. Spark never sees a Python object: it hands a
machine's seconds in, gets rows of the Delta schemas in
:mod:`etl.infer.schema` back.

Stitching across batches works through the *cut* (:func:`find_cut`): when new
StateVectors arrive for a machine, everything from the start of the last work
cycle before them is recomputed, so a segment or a cycle that spans a batch
boundary, or that a late batch completes, is rebuilt whole and replaces the
rows it supersedes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.config import ACTIVITIES
from etl.infer.schema import (
    DUMP_ACTIVITY,
    EMPTY_ACTIVITIES,
    LOAD_ACTIVITY,
    LOADED_ACTIVITIES,
    PHASE_COLUMNS,
)
from etl.preprocess.validate import haversine_m
from etl.train.model import Smoothing
from etl.train.segments import CYCLE_START, activity_segments, build_cycles
from etl.train.smoothing import smooth_activities


def smooth_seconds(
    frame: pd.DataFrame, classes: tuple[str, ...], smoothing: Smoothing, keep_from: int
) -> pd.DataFrame:
    """Smoothed activity and confidence per second of one machine.

    The whole frame (including the warm-up seconds before ``keep_from``) is
    decoded so that the first kept seconds are decoded with their past, then
    only ``ts >= keep_from`` is returned.

    Args:
        frame: ``ts`` and ``probabilities`` (one array of class scores per second).
        classes: The machine type's taxonomy, in the model's label order.
        smoothing: The model's stay probabilities and minimum segments per class.
        keep_from: First second to return (the machine's cut).

    Returns:
        ``ts``, ``activity`` (smoothed), ``confidence`` (the model's probability of
        the smoothed activity), ``raw_activity`` (the unsmoothed argmax) and
        ``probabilities``, ordered by ``ts``.
    """
    frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    names = np.asarray(classes, dtype=object)
    if frame.empty:
        proba = np.zeros((0, len(classes)))
    else:
        proba = np.vstack([np.asarray(p, dtype=float) for p in frame["probabilities"]])
    ts = frame["ts"].to_numpy(np.int64)
    codes = smooth_activities(
        ts,
        proba,
        stay=np.asarray(smoothing.stays),
        min_segment_s=np.asarray(smoothing.min_segments_s),
    )
    keep = ts >= keep_from
    rows = np.flatnonzero(keep)
    return pd.DataFrame(
        {
            "ts": ts[keep],
            "activity": names[codes[keep]],
            "confidence": proba[rows, codes[keep]] if rows.size else np.zeros(0),
            "raw_activity": names[proba[rows].argmax(axis=1)] if rows.size else names[:0],
            "probabilities": frame["probabilities"].to_numpy()[keep],
        }
    )


def segments_with_confidence(seconds: pd.DataFrame) -> pd.DataFrame:
    """Activity segments of one machine with the mean confidence of their seconds.

    A segment never spans a gap in the StateVectors (a step of more than one
    second): the StateVectors already bridge gaps up to ``max_gap_s``, so a
    missing second is an outage longer than that.

    Args:
        seconds: ``ts``, ``activity``, ``confidence`` of one machine, sorted by ``ts``.

    Returns:
        ``start``, ``end`` (exclusive), ``activity``, ``duration_s``, ``confidence``.
    """
    ts = seconds["ts"].to_numpy(np.int64)
    segments = activity_segments(ts, seconds["activity"].to_numpy(dtype=object), max_gap_s=1)
    if segments.empty:
        return segments.assign(confidence=pd.Series(dtype=float))
    first = np.searchsorted(ts, segments["start"].to_numpy())
    last = np.searchsorted(ts, segments["end"].to_numpy())
    sums = np.concatenate(([0.0], np.cumsum(seconds["confidence"].to_numpy(float))))
    return segments.assign(confidence=(sums[last] - sums[first]) / (last - first))


def _step_distances(seconds: pd.DataFrame) -> np.ndarray:
    """Metres travelled into each second from the previous one (0 after a gap or without a fix)."""
    ts = seconds["ts"].to_numpy(np.int64)
    lat = seconds["latitude"].to_numpy(float)
    lon = seconds["longitude"].to_numpy(float)
    out = np.zeros(ts.size)
    if ts.size > 1:
        step = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
        ok = (np.diff(ts) == 1) & np.isfinite(step)
        out[1:] = np.where(ok, step, 0.0)
    return out


def _mean_or_none(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def cycles_with_travel(seconds: pd.DataFrame, machine_type: str, max_gap_s: float) -> pd.DataFrame:
    """Work cycles of one machine, with distances, speeds and load/dump positions.

    Args:
        seconds: ``ts``, ``activity``, ``latitude``, ``longitude``, ``speed`` (m/s) of
            one machine, sorted by ``ts``.
        machine_type: Key of :data:`etl.config.ACTIVITIES`.
        max_gap_s: Longest data gap inside a cycle that still counts as complete.

    Returns:
        The columns of :func:`etl.infer.schema.cycles_schema` without provenance:
        ``cycle_start``, ``cycle_end``, ``duration_s``, every ``PHASE_COLUMNS``
        (null outside the type's taxonomy), ``distance_loaded_m``,
        ``distance_empty_m``, ``avg_speed_loaded_kmh``, ``avg_speed_empty_kmh``,
        ``load_lat``/``load_lon``/``dump_lat``/``dump_lon``, ``is_complete``,
        ``data_coverage``.
    """
    ts = seconds["ts"].to_numpy(np.int64)
    activity = seconds["activity"].to_numpy(dtype=object)
    segments = activity_segments(ts, activity, max_gap_s=1)
    cycles = build_cycles(segments, machine_type, max_gap_s=int(max_gap_s))
    own = [f"{a}_s" for a in ACTIVITIES[machine_type]]
    out = cycles[["cycle_start", "cycle_end", "duration_s"]].copy()
    for column in PHASE_COLUMNS:
        out[column] = cycles[column].astype(float) if column in own else np.nan
    travel = _step_distances(seconds)
    speed = seconds["speed"].to_numpy(float)
    lat = seconds["latitude"].to_numpy(float)
    lon = seconds["longitude"].to_numpy(float)
    loaded = np.isin(activity, LOADED_ACTIVITIES[machine_type])
    empty = np.isin(activity, EMPTY_ACTIVITIES[machine_type])
    at_load = activity == LOAD_ACTIVITY[machine_type]
    at_dump = activity == DUMP_ACTIVITY[machine_type]
    travels = bool(LOADED_ACTIVITIES[machine_type])
    extra: dict[str, list[float | None]] = {
        k: []
        for k in (
            "distance_loaded_m",
            "distance_empty_m",
            "avg_speed_loaded_kmh",
            "avg_speed_empty_kmh",
            "load_lat",
            "load_lon",
            "dump_lat",
            "dump_lon",
        )
    }
    first = np.searchsorted(ts, cycles["cycle_start"].to_numpy(np.int64))
    last = np.searchsorted(ts, cycles["cycle_end"].to_numpy(np.int64))
    for a, b in zip(first, last, strict=True):
        part = slice(a, b)
        for name, mask in (("loaded", loaded[part]), ("empty", empty[part])):
            if travels:
                extra[f"distance_{name}_m"].append(float(travel[part][mask].sum()))
                mean = _mean_or_none(speed[part][mask])
                extra[f"avg_speed_{name}_kmh"].append(None if mean is None else mean * 3.6)
            else:
                extra[f"distance_{name}_m"].append(None)
                extra[f"avg_speed_{name}_kmh"].append(None)
        for name, mask in (("load", at_load[part]), ("dump", at_dump[part])):
            extra[f"{name}_lat"].append(_mean_or_none(lat[part][mask]))
            extra[f"{name}_lon"].append(_mean_or_none(lon[part][mask]))
    for key, values in extra.items():
        out[key] = pd.Series(values, index=out.index, dtype=float)
    out["is_complete"] = cycles["is_complete"].astype(bool)
    out["data_coverage"] = cycles["data_coverage"].astype(float)
    return out


def find_cut(old_segments: pd.DataFrame, machine_type: str, first_new: int) -> int:
    """Where a machine's results must be recomputed from, when data from ``first_new`` on changed.

    The cut is the start of the last cycle-opening segment before
    ``first_new`` (so the cycle that the new data continues, or a late batch
    completes, is rebuilt whole), or, with no cycle start in sight, the start
    of the earliest known segment there (a segment boundary, so no old segment
    straddles the cut). Without earlier segments it is ``first_new`` itself.

    Args:
        old_segments: The machine's stored segments (``start``, ``end``,
            ``activity``) that end at or after the look-back horizon and start
            before ``first_new``.
        machine_type: Key of :data:`CYCLE_START`.
        first_new: First second whose inputs may have changed.

    Returns:
        The cut, in epoch seconds, ``<= first_new``.
    """
    seg = old_segments[old_segments["start"] < first_new].sort_values("start", kind="stable")
    if seg.empty:
        return int(first_new)
    acts = seg["activity"].to_numpy(dtype=object)
    opens = acts == CYCLE_START[machine_type]
    opens[1:] &= acts[:-1] != CYCLE_START[machine_type]
    starts = seg["start"].to_numpy(np.int64)
    return int(starts[opens][-1] if opens.any() else starts[0])
