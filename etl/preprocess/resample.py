"""One machine's raw samples to exactly-1 Hz StateVectors (pure pandas and numpy).

:func:`resample_machine` runs inside Spark's grouped ``applyInPandas`` (one
call per machine, or per machine and time slice). It is a function of the
*set* of samples it gets: input order and duplicated rows do not matter, and
every output row depends only on samples within :func:`context_seconds` of
it, so a slice recomputed with that margin on both sides equals the same
seconds computed from all data at once.

Steps: clean and order the fixes; de-noise them (reject multipath jumps,
smooth with a local quadratic, hold speed at standstills, see
:mod:`etl.preprocess.denoise`); build the grid of covered seconds from GPS
and IMU sample times; interpolate the fixes onto it and join the per-second
IMU statistics (see :mod:`etl.preprocess.grid` for the exact rules).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from etl.preprocess.denoise import DenoiseParams, denoise_fixes, wrap_degrees
from etl.preprocess.grid import (
    bracket,
    covered_seconds,
    imu_on_grid,
    imu_second_stats,
    interpolate_heading,
    interpolate_linear,
    nearest_distance,
    second_of,
)
from etl.preprocess.schema import (
    GPS_COLUMNS,
    GPS_INPUT_COLUMNS,
    IMU_SECONDS_COLUMNS,
    STATEVECTOR_COLUMNS,
    STATEVECTOR_DTYPES,
)

__all__ = [
    "CONTEXT_S",
    "DEFAULT_MAX_GAP_S",
    "GPS_OBSERVED_S",
    "context_seconds",
    "imu_second_stats",
    "resample_machine",
]

DEFAULT_MAX_GAP_S = 10.0
"""The contract's default ``preprocess.max_gap_s``."""
GPS_OBSERVED_S = 1.0
"""``gps_filled`` is false where a raw fix lies strictly closer than this to ``ts``.

Raw means validated, before de-noising: a rejected multipath fix still
observes its second, although the value there is bridged over it. With
fixes every second, every second is observed (a fix at ``ts +- 0.5`` is
0.5 s away); a single lost fix leaves its second observed or not depending
on the jitter of its neighbours (they sit about 1 s away); longer dropouts
flag every second more than 1 s from both ends.
"""


def context_seconds(max_gap_s: float, params: DenoiseParams) -> float:
    """How far a raw sample can reach: the margin a recomputed slice needs.

    Row ``ts`` reads de-noised fixes up to ``max_gap_s`` away (interpolation
    and the coverage rule), which read kept fixes up to the widest smoothing
    window further, whose outlier vote reads fixes up to ``outlier_window_s``
    further (:attr:`DenoiseParams.horizon_s`). IMU seconds are read up to
    ``max_gap_s + 1`` away and reach half a second into raw time. One second
    of slack on top.

    Args:
        max_gap_s: The configured ``preprocess.max_gap_s``.
        params: The de-noising parameters in use.

    Returns:
        A whole number of seconds ``C``: rows in ``[a, b)`` computed from the
        samples in ``[a - C, b + C]`` equal those computed from all samples.
    """
    return float(math.ceil(max(max_gap_s + params.horizon_s, max_gap_s + 1.5) + 1.0))


CONTEXT_S = context_seconds(DEFAULT_MAX_GAP_S, DenoiseParams())
"""The margin for the default ``max_gap_s`` and :class:`DenoiseParams` (31 s)."""


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=np.float64, na_value=np.nan)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks columns {missing}")


def clean_fixes(gps: pd.DataFrame) -> np.ndarray:
    """Valid fixes as a ``(6, n)`` array sorted by time, one fix per timestamp.

    Fixes with a missing or non-finite field are dropped (validation should
    have removed them already). Of several fixes with the same timestamp
    (re-uploads, merged logger rows) the lexicographically smallest is kept,
    a choice that does not depend on the input order.
    """
    _require(gps, GPS_INPUT_COLUMNS, "GPS")
    fixes = np.vstack([_column(gps, c) for c in GPS_INPUT_COLUMNS])
    fixes = fixes[:, np.isfinite(fixes).all(axis=0)]
    fixes[5] = wrap_degrees(fixes[5])
    fixes = fixes[:, np.argsort(fixes[0], kind="stable")]
    if np.any(np.diff(fixes[0]) == 0):
        fixes = fixes[:, np.lexsort(fixes[::-1])]
        fixes = fixes[:, np.r_[True, np.diff(fixes[0]) > 0]]
    return fixes


def _gps_on_grid(smoothed: np.ndarray, ts: np.ndarray, max_gap_s: float) -> dict[str, np.ndarray]:
    """Smoothed fixes interpolated at the grid seconds; NaN across long GPS gaps."""
    if smoothed.shape[1] == 0:
        return {name: np.full(ts.size, np.nan) for name in GPS_COLUMNS}
    before, after, share, valid = bracket(smoothed[0], ts, max_gap_s)
    linear = interpolate_linear(smoothed[1:5], before, after, share, valid)
    heading = interpolate_heading(smoothed[5], before, after, share, valid)
    return dict(zip(GPS_COLUMNS, (*linear, heading), strict=True))


def _count_per_second(times: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """How many of ``times`` fall into each grid second's window."""
    seconds = np.sort(second_of(times))
    return np.searchsorted(seconds, ts, side="right") - np.searchsorted(seconds, ts, side="left")


def _imu_events(imu_seconds: pd.DataFrame) -> np.ndarray:
    """Raw IMU times that matter for coverage: the first and last of each window."""
    with_samples = _column(imu_seconds, "n") > 0
    return np.concatenate(
        [
            _column(imu_seconds, "t_first")[with_samples],
            _column(imu_seconds, "t_last")[with_samples],
        ]
    )


def _in_range(ts: np.ndarray, ts_from: int | None, ts_to: int | None) -> np.ndarray:
    keep = np.ones(ts.size, dtype=bool)
    if ts_from is not None:
        keep &= ts >= ts_from
    if ts_to is not None:
        keep &= ts < ts_to
    return ts[keep]


def resample_machine(
    gps: pd.DataFrame,
    imu_seconds: pd.DataFrame,
    *,
    machine_uuid: str,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    params: DenoiseParams | None = None,
    ts_from: int | None = None,
    ts_to: int | None = None,
) -> pd.DataFrame:
    """StateVectors of one machine from its raw GPS fixes and per-second IMU statistics.

    Args:
        gps: Validated raw GPS fixes of the machine: ``timestamp``,
            ``latitude``, ``longitude``, ``altitude``, ``speed``, ``heading``
            (other columns ignored), in any order, possibly duplicated.
        imu_seconds: Per-second IMU statistics of the same machine, columns
            :data:`~etl.preprocess.schema.IMU_SECONDS_COLUMNS` (see
            :func:`imu_second_stats`).
        machine_uuid: Written into every row.
        max_gap_s: Longest gap between raw samples that is bridged; at least 1.
        params: De-noising parameters; defaults when omitted.
        ts_from: First second to return (inclusive), or unbounded.
        ts_to: Second to stop before (exclusive), or unbounded. Seconds near
            either bound are exact when the inputs hold the samples within
            :func:`context_seconds` beyond it.

    Returns:
        One row per covered second in ``[ts_from, ts_to)``, sorted by ``ts``,
        with the columns and dtypes of
        :data:`~etl.preprocess.schema.STATEVECTOR_DTYPES`.

    Raises:
        ValueError: On a missing input column, ``max_gap_s < 1`` (a one-second
            IMU window could then hide a gap) or duplicate IMU seconds.
    """
    if not max_gap_s >= 1.0:
        raise ValueError(f"max_gap_s must be >= 1 s, got {max_gap_s}")
    _require(imu_seconds, IMU_SECONDS_COLUMNS, "IMU seconds")
    params = params or DenoiseParams()
    fixes = clean_fixes(gps)
    events = np.concatenate([fixes[0], _imu_events(imu_seconds)])
    ts = _in_range(covered_seconds(events, max_gap_s), ts_from, ts_to)
    smoothed, outliers = denoise_fixes(fixes, params)
    imu, imu_filled, imu_samples = imu_on_grid(imu_seconds, ts, max_gap_s)
    columns = {
        "machine_uuid": np.full(ts.size, machine_uuid, dtype=object),
        "ts": ts,
        **_gps_on_grid(smoothed, ts, max_gap_s),
        **imu,
        "gps_filled": nearest_distance(fixes[0], ts.astype(np.float64)) >= GPS_OBSERVED_S,
        "imu_filled": imu_filled,
        "imu_samples": imu_samples,
        "gps_outliers": _count_per_second(fixes[0][outliers], ts),
    }
    frame = pd.DataFrame(columns, columns=list(STATEVECTOR_COLUMNS))
    return frame.astype(STATEVECTOR_DTYPES)
