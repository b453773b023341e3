"""Preprocessing: raw samples of one machine to exactly-1 Hz StateVectors.

Pure pandas and numpy; the Spark step wraps :func:`resample_machine` in a
grouped ``applyInPandas`` and feeds it the per-second IMU statistics it
aggregates natively (specified by :func:`imu_second_stats`).
"""

from __future__ import annotations

from etl.preprocess.denoise import DenoiseParams
from etl.preprocess.grid import covered_seconds, imu_second_stats
from etl.preprocess.resample import (
    CONTEXT_S,
    DEFAULT_MAX_GAP_S,
    context_seconds,
    resample_machine,
)
from etl.preprocess.schema import (
    IMU_SECONDS_COLUMNS,
    STATEVECTOR_COLUMNS,
    STATEVECTOR_DTYPES,
    imu_seconds_struct,
    statevector_struct,
)

__all__ = [
    "CONTEXT_S",
    "DEFAULT_MAX_GAP_S",
    "IMU_SECONDS_COLUMNS",
    "STATEVECTOR_COLUMNS",
    "STATEVECTOR_DTYPES",
    "DenoiseParams",
    "context_seconds",
    "covered_seconds",
    "imu_second_stats",
    "imu_seconds_struct",
    "resample_machine",
    "statevector_struct",
]
