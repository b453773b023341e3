"""One validated file to the compact rows the StateVector step needs (pure pandas).

Validation decodes every raw file anyway, so the same Python task also
reduces it: the file's verdict as one row, its GPS fixes as they are (1 Hz),
and its 10 Hz IMU samples as per-second *partial* statistics (count, mean,
population std, first and last time). That is about a tenth of the rows the
raw file holds, so the 10 Hz samples never travel between Python and the JVM
and each file is decoded once.

A second can straddle two files; the StateVector step pools the partials of
one machine and second exactly (:func:`pool_imu_partials`). Partials must not
count one sample twice, so files whose samples may repeat in another file
(overlapping time ranges) are not reduced but read raw and de-duplicated by
Spark, which aggregates their IMU seconds itself.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from etl.preprocess.grid import imu_second_arrays
from etl.preprocess.schema import (
    GPS_COLUMNS,
    GPS_INPUT_COLUMNS,
    IMU_AXES,
    IMU_SECONDS_COLUMNS,
    IMU_SECONDS_DTYPES,
    REDUCED_DTYPES,
)
from etl.preprocess.validate import SAMPLE_COLUMNS, Verdict

KIND_VERDICT = "verdict"
KIND_GPS = "gps"
KIND_IMU = "imu"

# SAMPLE_COLUMNS: the time, the GPS channels (GPS_INPUT_COLUMNS is its head), the axes
_FIX_TEST = [SAMPLE_COLUMNS.index(c) for c in ("latitude", "longitude", "speed")]
_IMU_SLICE = [0, *(SAMPLE_COLUMNS.index(axis) for axis in IMU_AXES)]


def _jsonable(value: Any) -> Any:
    """Plain JSON values for numpy scalars (the quality report's counts) as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def verdict_to_json(verdict: Verdict) -> str:
    """The verdict without its samples, as one JSON string (non-finite numbers as null)."""
    quality = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in verdict.quality.items()
    }
    return json.dumps(
        {
            "accepted": verdict.accepted,
            "reason": verdict.reason,
            "warnings": verdict.warnings,
            "quality": quality,
        },
        default=_jsonable,
    )


def verdict_from_json(text: str) -> Verdict:
    """The inverse of :func:`verdict_to_json` (``samples`` stays None)."""
    data = json.loads(text)
    return Verdict(
        accepted=data["accepted"],
        reason=data["reason"],
        warnings=list(data["warnings"]),
        quality=dict(data["quality"]),
    )


def reduce_columns(
    batch_id: int, machine_uuid: str, verdict: Verdict, values: np.ndarray | None
) -> dict[str, np.ndarray]:
    """:func:`reduce_batch` as numpy columns (one dict per file, no pandas objects).

    A validation task reduces about a hundred files: assembling each file's rows
    in numpy and building one frame per task (:func:`reduced_frame`) costs about
    3 ms per file, against ~6 ms for a pandas frame per file.

    Args:
        batch_id: the state store's id of the file.
        machine_uuid: its machine.
        verdict: what validation made of it.
        values: its clean samples as :func:`etl.preprocess.validate.validate_arrays`
            returns them (columns in :data:`etl.preprocess.validate.SAMPLE_COLUMNS`
            order), None for a rejected file.
    """
    parts: list[tuple[str, dict[str, np.ndarray], int]] = [
        (KIND_VERDICT, {"verdict": np.array([verdict_to_json(verdict)], dtype=object)}, 1)
    ]
    if verdict.accepted and values is not None:
        fix = ~np.isnan(values[:, _FIX_TEST]).all(axis=1)
        fixes = values[fix][:, : 1 + len(GPS_COLUMNS)]
        parts.append((KIND_GPS, dict(zip(GPS_INPUT_COLUMNS, fixes.T, strict=True)), len(fixes)))
        seconds = imu_second_arrays(values[:, _IMU_SLICE])
        parts.append((KIND_IMU, seconds, len(seconds["ts"])))
    total = sum(size for _, _, size in parts)
    columns: dict[str, np.ndarray] = {
        "batch_id": np.full(total, batch_id, dtype=np.int64),
        "machine_uuid": np.full(total, machine_uuid, dtype=object),
        "kind": np.concatenate([np.full(size, kind, dtype=object) for kind, _, size in parts]),
    }
    for name, dtype in list(REDUCED_DTYPES.items())[3:]:
        blank = None if dtype == "object" else np.nan
        columns[name] = np.concatenate(
            [
                values[name].astype(object if blank is None else np.float64)
                if name in values
                else np.full(size, blank, dtype=object if blank is None else np.float64)
                for _, values, size in parts
            ]
        )
    return columns


def reduced_frame(files: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """One frame of the reduced rows of several files (:data:`REDUCED_DTYPES`)."""
    columns: dict[str, Any] = {}
    for name, dtype in REDUCED_DTYPES.items():
        if not files:
            columns[name] = pd.Series(dtype=dtype)
            continue
        joined = np.concatenate([file[name] for file in files])
        columns[name] = pd.array(joined, dtype="Int64") if dtype == "Int64" else joined
    return pd.DataFrame(columns)


def reduce_batch(batch_id: int, machine_uuid: str, verdict: Verdict) -> pd.DataFrame:
    """The verdict row, and for an accepted file its fixes and per-second IMU partials.

    Args:
        batch_id: the state store's id of the file.
        machine_uuid: its machine.
        verdict: what :func:`etl.preprocess.validate.validate_batch` made of it.

    Returns:
        Rows with the columns of :data:`etl.preprocess.schema.REDUCED_DTYPES`;
        ``kind`` says which columns are set.
    """
    samples = verdict.samples
    values = (
        None
        if samples is None
        else samples.loc[:, list(SAMPLE_COLUMNS)].to_numpy(dtype=np.float64, na_value=np.nan)
    )
    return reduced_frame([reduce_columns(batch_id, machine_uuid, verdict, values)])


def imu_partials(frame: pd.DataFrame) -> pd.DataFrame:
    """The IMU partial rows of reduced frames (for tests and the pandas side)."""
    rows = frame.loc[frame["kind"] == KIND_IMU, ["machine_uuid", *IMU_SECONDS_COLUMNS]]
    return rows.reset_index(drop=True)


def pool_imu_partials(partials: pd.DataFrame) -> pd.DataFrame:
    """Per second, the IMU statistics of several disjoint sets of samples, pooled.

    Each input row holds the statistics of one file's samples in one second
    (:func:`reduce_batch`) or of de-duplicated raw rows (Spark's
    :func:`etl.preprocess.spark.imu_second_stats_spark`); no sample may be
    counted by two rows. A second with one part keeps its values bit for bit;
    a second straddling two files gets the pooled count, mean and population
    variance. Parts are summed in a fixed order (by first sample time), so the
    result does not depend on the order rows arrive in.

    Args:
        partials: rows with the columns of :data:`IMU_SECONDS_COLUMNS`, any order.

    Returns:
        One row per second, sorted by ``ts``, with the same columns.
    """
    if partials.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype=IMU_SECONDS_DTYPES[c]) for c in IMU_SECONDS_COLUMNS}
        )
    ts = partials["ts"].to_numpy(dtype=np.int64)
    t_first = partials["t_first"].to_numpy(dtype=np.float64)
    order = np.lexsort((t_first, ts))
    ts = ts[order]
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    single = np.diff(np.r_[starts, len(ts)]) == 1
    counts = partials["n"].to_numpy(dtype=np.float64)[order]
    n = np.add.reduceat(counts, starts)
    pooled: dict[str, np.ndarray] = {"ts": ts[starts], "n": n.astype(np.int64)}
    for axis in IMU_AXES:
        mean = partials[f"{axis}_mean"].to_numpy(dtype=np.float64)[order]
        std = partials[f"{axis}_std"].to_numpy(dtype=np.float64)[order]
        total_mean = np.add.reduceat(counts * mean, starts) / n
        variance = np.add.reduceat(counts * (std * std + mean * mean), starts) / n
        variance -= total_mean * total_mean
        pooled[f"{axis}_mean"] = np.where(single, mean[starts], total_mean)
        pooled[f"{axis}_std"] = np.where(single, std[starts], np.sqrt(np.maximum(variance, 0.0)))
    t_last = partials["t_last"].to_numpy(dtype=np.float64)[order]
    pooled["t_first"] = np.minimum.reduceat(t_first[order], starts)
    pooled["t_last"] = np.maximum.reduceat(t_last, starts)
    return pd.DataFrame(pooled, columns=list(IMU_SECONDS_COLUMNS))
