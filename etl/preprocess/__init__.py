"""Preprocessing: raw samples of one machine to exactly-1 Hz StateVectors.

Pure pandas and numpy; the Spark step (:mod:`etl.preprocess.spark`) runs
:mod:`etl.preprocess.files` in a grouped ``applyInPandas``: each group validates
its raw files and resamples them with :func:`resample_machine`.
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
    "resample_machine",
    "statevector_struct",
]
