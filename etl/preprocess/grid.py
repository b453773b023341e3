"""The 1 Hz grid: covered seconds, per-second IMU windows, interpolation onto the grid.

Coverage rule (the contract's "covered interval", made exact):

* The *events* of a machine are the times of its raw GPS fixes and raw IMU
  samples (after validation, before de-noising). Sorted, they split into
  *runs* wherever two consecutive events are more than ``max_gap_s`` apart.
* A run covers the closed interval ``[first event, last event]``. Its rows
  are the integer seconds inside it: ``ceil(first) .. floor(last)``. A run
  shorter than a second that contains no integer yields no row.

Equivalently, second ``ts`` has a row iff the last event at or before ``ts``
and the first event at or after it both exist and are at most ``max_gap_s``
apart. That form is what makes the grid local: it depends on events within
``max_gap_s`` of ``ts`` only.

IMU samples reach the grid as per-second statistics (:func:`imu_second_arrays`
aggregates the 10 Hz rows). Second ``ts`` holds the samples with
``ts - 0.5 <= timestamp < ts + 0.5``, i.e. ``ts = floor(timestamp + 0.5)``,
and carries the first and last sample time of its window (``t_first``,
``t_last``). For ``max_gap_s >= 1`` those two stand in exactly for all the
samples of the window: a window spans less than a second, so no gap longer
than ``max_gap_s`` can hide inside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.preprocess.schema import (
    IMU_AXES,
    IMU_MEAN_COLUMNS,
    IMU_SECOND_VALUE_COLUMNS,
    IMU_SECONDS_COLUMNS,
    IMU_SECONDS_DTYPES,
    IMU_STD_COLUMNS,
)

IMU_RAW_COLUMNS = ("timestamp", *IMU_AXES)


def second_of(timestamp: np.ndarray) -> np.ndarray:
    """The grid second whose window ``[ts - 0.5, ts + 0.5)`` holds each timestamp."""
    return np.floor(timestamp + 0.5).astype(np.int64)


def imu_second_stats(imu: pd.DataFrame) -> pd.DataFrame:
    """Per-second IMU statistics from raw IMU rows.

    Rows with a missing time or acceleration are ignored and exact duplicate
    rows count once (the same batch can arrive twice): per second ``count``,
    mean, population standard deviation, first and last sample time.

    Args:
        imu: Raw IMU rows with ``timestamp``, ``acc_x``, ``acc_y``, ``acc_z``;
            other columns are ignored.

    Returns:
        One row per second with at least one sample, sorted by ``ts``, with
        the columns of :data:`etl.preprocess.schema.IMU_SECONDS_COLUMNS`.
    """
    values = imu.loc[:, list(IMU_RAW_COLUMNS)].to_numpy(dtype=np.float64, na_value=np.nan)
    stats = imu_second_arrays(values)
    if not len(stats["ts"]):
        return pd.DataFrame(
            {c: pd.Series(dtype=IMU_SECONDS_DTYPES[c]) for c in IMU_SECONDS_COLUMNS}
        )
    return pd.DataFrame(stats, columns=list(IMU_SECONDS_COLUMNS))


def imu_second_arrays(values: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`imu_second_stats` on a ``(rows, 4)`` array of time and the three axes.

    Numpy in, numpy out: the Spark groups call it on the samples of their raw
    files (:mod:`etl.preprocess.files`), where pandas' groupby would cost ~10 ms of
    fixed overhead per call.
    """
    values = values[np.isfinite(values).all(axis=1)]
    # A fixed row order makes the sums, hence the last bits, independent of arrival.
    # Strictly increasing times (a validated file) are that order already, without repeats.
    if not np.all(np.diff(values[:, 0]) > 0):
        values = values[np.lexsort(values.T[::-1])]
        distinct = np.ones(len(values), dtype=bool)
        distinct[1:] = np.any(values[1:] != values[:-1], axis=1)
        values = values[distinct]
    if not len(values):
        empty = np.empty(0, dtype=np.float64)
        return {
            c: empty.astype(np.int64) if IMU_SECONDS_DTYPES[c] == "int64" else empty
            for c in IMU_SECONDS_COLUMNS
        }
    # Sorted by time, each second's rows are contiguous: numpy segment sums (a
    # pandas groupby costs ~10 ms of fixed overhead per 10-minute file).
    seconds = second_of(values[:, 0])
    starts = np.flatnonzero(np.r_[True, seconds[1:] != seconds[:-1]])
    counts = np.diff(np.r_[starts, len(values)])
    axes = values[:, 1:]
    means = np.add.reduceat(axes, starts, axis=0) / counts[:, None]
    deviations = axes - np.repeat(means, counts, axis=0)
    stds = np.sqrt(np.add.reduceat(deviations * deviations, starts, axis=0) / counts[:, None])
    stats: dict[str, np.ndarray] = {"ts": seconds[starts], "n": counts.astype(np.int64)}
    stats.update(zip(IMU_MEAN_COLUMNS, means.T, strict=True))
    stats.update(zip(IMU_STD_COLUMNS, stds.T, strict=True))
    stats["t_first"] = values[starts, 0]
    stats["t_last"] = values[starts + counts - 1, 0]
    return stats


def covered_seconds(events: np.ndarray, max_gap_s: float) -> np.ndarray:
    """The grid seconds of the covered intervals spanned by some event times.

    Args:
        events: Raw sample times (GPS and IMU), any order, duplicates allowed.
        max_gap_s: Longest gap between consecutive events that is bridged.

    Returns:
        Sorted unique int64 seconds, see the module docstring for the rule.
    """
    times = np.unique(events[np.isfinite(events)])
    if times.size == 0:
        return np.empty(0, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(times) > max_gap_s)
    first = np.ceil(times[np.r_[0, breaks + 1]]).astype(np.int64)
    last = np.floor(times[np.r_[breaks, times.size - 1]]).astype(np.int64)
    lengths = np.maximum(last - first + 1, 0)
    run_start = np.cumsum(lengths) - lengths
    return np.repeat(first - run_start, lengths) + np.arange(lengths.sum(), dtype=np.int64)


def nearest_distance(times: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Distance from each ``ts`` to the nearest of sorted ``times`` (inf if none)."""
    if times.size == 0:
        return np.full(ts.size, np.inf)
    right = np.searchsorted(times, ts, side="left")
    after = np.where(right < times.size, times[np.minimum(right, times.size - 1)] - ts, np.inf)
    before = np.where(right > 0, ts - times[np.maximum(right - 1, 0)], np.inf)
    return np.minimum(after, before)


def bracket(
    times: np.ndarray, ts: np.ndarray, max_gap_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The samples around each grid second and the interpolation share between them.

    Args:
        times: Sample times, strictly increasing.
        ts: Grid seconds.
        max_gap_s: Samples farther apart than this are not interpolated.

    Returns:
        ``(before, after, share, valid)``: indices of the last sample at or
        before ``ts`` and the first at or after it, the share of the way from
        one to the other, and whether the pair exists and is close enough. A
        sample exactly at ``ts`` is its own bracket with share 0.
    """
    grid = ts.astype(np.float64)
    after = np.searchsorted(times, grid, side="left")
    before = np.searchsorted(times, grid, side="right") - 1
    valid = (before >= 0) & (after < times.size)
    before = np.clip(before, 0, max(times.size - 1, 0))
    after = np.clip(after, 0, max(times.size - 1, 0))
    if times.size == 0:
        return before, after, np.zeros(ts.size), valid
    span = times[after] - times[before]
    valid &= span <= max_gap_s
    share = np.where(span > 0, (grid - times[before]) / np.where(span > 0, span, 1.0), 0.0)
    return before, after, share, valid


def interpolate_linear(
    values: np.ndarray, before: np.ndarray, after: np.ndarray, share: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Linear interpolation of channels ``(channels, samples)``; NaN where not valid."""
    low, high = values[:, before], values[:, after]
    return np.where(valid, low + share * (high - low), np.nan)


def interpolate_heading(
    heading: np.ndarray, before: np.ndarray, after: np.ndarray, share: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Interpolation on the circle: along the shorter arc, result in [0, 360)."""
    low = heading[before]
    turn = np.mod(heading[after] - low + 180.0, 360.0) - 180.0
    angle = np.mod(low + share * turn, 360.0)
    return np.where(valid, np.where(angle >= 360.0, 0.0, angle), np.nan)


def _imu_arrays(imu_seconds: pd.DataFrame) -> dict[str, np.ndarray]:
    """Seconds with samples, sorted by ``ts``, as arrays; rejects duplicate seconds."""
    seconds = imu_seconds[imu_seconds["n"].to_numpy(dtype=np.float64, na_value=np.nan) > 0]
    order = np.argsort(seconds["ts"].to_numpy(dtype=np.int64), kind="stable")
    arrays = {
        name: seconds[name].to_numpy(dtype=np.float64, na_value=np.nan)[order]
        for name in ("t_first", "t_last", *IMU_SECOND_VALUE_COLUMNS)
    }
    arrays["ts"] = seconds["ts"].to_numpy(dtype=np.int64)[order]
    arrays["n"] = seconds["n"].to_numpy(dtype=np.int64)[order]
    if np.any(np.diff(arrays["ts"]) == 0):
        raise ValueError("imu_seconds must hold one row per second")
    return arrays


def imu_on_grid(
    imu_seconds: pd.DataFrame, ts: np.ndarray, max_gap_s: float
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """IMU statistics at each grid second, bridging seconds without samples.

    A second whose window held no sample takes its means and standard
    deviations by linear interpolation (in ``ts``) between the nearest
    seconds with samples, provided the raw samples around the hole (the last
    before, the first after) are at most ``max_gap_s`` apart: the same rule
    as coverage. Longer IMU holes (GPS still covering) are NaN.

    Args:
        imu_seconds: Output of :func:`imu_second_stats` or its Spark twin.
        ts: Grid seconds, sorted.
        max_gap_s: Longest bridged gap between raw samples.

    Returns:
        ``(values, filled, counts)``: channel arrays by column name, the
        ``imu_filled`` flags and the number of samples of each second.
    """
    imu = _imu_arrays(imu_seconds)
    known = imu["ts"]
    if known.size == 0:
        values = {name: np.full(ts.size, np.nan) for name in IMU_SECOND_VALUE_COLUMNS}
        return values, np.ones(ts.size, dtype=bool), np.zeros(ts.size, dtype=np.int64)
    after = np.searchsorted(known, ts, side="left")
    nxt = np.minimum(after, known.size - 1)
    before = np.maximum(after - 1, 0)
    hit = known[nxt] == ts
    bridged = (after > 0) & (after < known.size)
    bridged &= imu["t_first"][nxt] - imu["t_last"][before] <= max_gap_s
    low = np.where(hit, nxt, before)
    span = (known[nxt] - known[low]).astype(np.float64)
    share = np.where(span > 0, (ts - known[low]) / np.where(span > 0, span, 1.0), 0.0)
    values = {}
    for name in IMU_SECOND_VALUE_COLUMNS:
        channel = imu[name]
        values[name] = np.where(
            hit | bridged, channel[low] + share * (channel[nxt] - channel[low]), np.nan
        )
    return values, ~hit, np.where(hit, imu["n"][nxt], 0)
