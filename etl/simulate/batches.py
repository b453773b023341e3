"""Raw batch files: which seconds each file holds, its long table, its parquet bytes.

The logger cuts a file every ``batch_seconds`` of nominal sample time and
restarts that grid when it powers up after a gap. A file is one long table
sorted by timestamp: GPS rows with null IMU columns, IMU rows with null GPS
columns, and now and then a merged row carrying both.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from etl.simulate.machines import ACC_COLUMNS, GPS_COLUMNS, GYRO_COLUMNS, LoggerProfile
from etl.simulate.sensors import SensorWindow
from etl.simulate.timeline import Timeline

WINDOW_BATCHES = 6
"""Batches rendered together: an hour of samples keeps the arrays cache-sized."""


@dataclass(frozen=True)
class PlannedBatch:
    """The nominal seconds ``[start, end)`` one raw file covers.

    Attributes:
        number: Position in the machine's sequence of files.
        start: First nominal second from the simulation start.
        end: One past the last nominal second.
        after_gap: Whether the logger just powered up (first file of an
            on-period other than the very first).
    """

    number: int
    start: int
    end: int
    after_gap: bool


def plan_batches(timeline: Timeline, batch_seconds: int) -> list[PlannedBatch]:
    """Cut every switched-on period into files of ``batch_seconds``."""
    on_periods: list[tuple[int, int]] = []
    cursor = 0
    for start, end in timeline.off_periods():
        if start > cursor:
            on_periods.append((cursor, start))
        cursor = end
    if cursor < timeline.duration:
        on_periods.append((cursor, timeline.duration))
    plan: list[PlannedBatch] = []
    for period, (start, end) in enumerate(on_periods):
        first = start
        while first < end:
            last = min(first + batch_seconds, end)
            after_gap = period > 0 and first == start and start > 0
            plan.append(PlannedBatch(len(plan), first, last, after_gap))
            first = last
    return plan


def windows(plan: list[PlannedBatch]) -> list[list[PlannedBatch]]:
    """Group consecutive planned files into render windows."""
    return [plan[i : i + WINDOW_BATCHES] for i in range(0, len(plan), WINDOW_BATCHES)]


def batch_table(
    window: SensorWindow,
    start_s: int,
    end_s: int,
    *,
    imu_hz: int,
    gps_hz: int,
    logger: LoggerProfile,
) -> pa.Table:
    """The long table of one file: samples with nominal time in ``[start_s, end_s)``.

    Args:
        window: Rendered sensors covering the file.
        start_s: First nominal second.
        end_s: One past the last nominal second.
        imu_hz: IMU rate (nominal sample ``k`` is at ``k / imu_hz``).
        gps_hz: GPS rate.
        logger: Which columns the logger writes, and in which order.

    Returns:
        The table, sorted by timestamp, columns in the logger's order.
    """
    i0, i1 = np.searchsorted(window.imu_k, [start_s * imu_hz, end_s * imu_hz])
    g0, g1 = np.searchsorted(window.gps_j, [start_s * gps_hz, end_s * gps_hz])
    imu_k = window.imu_k[i0:i1]
    merged = window.gps_merged[g0:g1].copy()
    target = window.gps_j[g0:g1] * (imu_hz // gps_hz)
    slot = np.clip(np.searchsorted(imu_k, target), 0, max(len(imu_k) - 1, 0))
    if len(imu_k):
        merged &= imu_k[slot] == target
    else:
        merged[:] = False
    alone = ~merged
    n_imu, n_alone = len(imu_k), int(alone.sum())
    total = n_imu + n_alone
    timestamp = np.concatenate([window.imu_ts[i0:i1], window.gps_ts[g0:g1][alone]])
    order = np.argsort(timestamp, kind="stable")

    def gps_column(values: np.ndarray, fill: object = np.nan) -> tuple[np.ndarray, np.ndarray]:
        out = np.full(total, fill, dtype=values.dtype)
        valid = np.zeros(total, dtype=bool)
        out[slot[merged]] = values[merged]
        valid[slot[merged]] = True
        out[n_imu:] = values[alone]
        valid[n_imu:] = True
        return out[order], ~valid[order]

    def imu_column(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.full(total, np.nan)
        out[:n_imu] = values
        mask = np.ones(total, dtype=bool)
        mask[:n_imu] = False
        return out[order], mask[order]

    arrays: dict[str, pa.Array] = {"timestamp": pa.array(timestamp[order], type=pa.float64())}
    for name in (*GPS_COLUMNS, "hdop"):
        values, mask = gps_column(window.gps[name][g0:g1])
        arrays[name] = pa.array(values, mask=mask, type=pa.float64())
    for axis, name in enumerate(ACC_COLUMNS):
        values, mask = imu_column(window.acc[i0:i1, axis])
        arrays[name] = pa.array(values, mask=mask, type=pa.float64())
    if window.gyro is not None:
        for axis, name in enumerate(GYRO_COLUMNS):
            values, mask = imu_column(window.gyro[i0:i1, axis])
            arrays[name] = pa.array(values, mask=mask, type=pa.float64())
    for name, column in window.extras.items():
        is_text = column.dtype == object
        values, mask = gps_column(column[g0:g1], fill=None if is_text else np.nan)
        arrays[name] = pa.array(values, mask=mask, type=pa.string() if is_text else pa.float64())
    return pa.table({name: arrays[name] for name in logger.column_order})


def parquet_bytes(table: pa.Table) -> bytes:
    """Encode a table the way the converter does: one row group, snappy."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy", use_dictionary=False, write_statistics=True)
    return sink.getvalue()
