"""StateVectors of a stretch of time from the raw files that hold it (pure numpy and pandas).

What one Spark group computes (:func:`etl.preprocess.spark.statevectors_from_files`):
read each file it is given, validate it (:func:`etl.preprocess.validate.validate_arrays`),
put the samples of all of them together, per second the IMU statistics of
every sample, and resample the requested seconds. A group is handed every file
with samples within the resampler's context of its seconds, so a second near a
file boundary sees the samples on both sides, whatever order the files came in.

Files whose time ranges overlap may repeat samples; their rows are
de-duplicated exactly (the same rule as within one file) before anything is
counted, so a sample sent twice counts once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from etl.preprocess.denoise import DenoiseParams
from etl.preprocess.grid import imu_second_arrays
from etl.preprocess.resample import resample_machine
from etl.preprocess.schema import (
    GPS_INPUT_COLUMNS,
    IMU_AXES,
    IMU_SECONDS_COLUMNS,
    STATEVECTOR_COLUMNS,
    STATEVECTOR_DTYPES,
)
from etl.preprocess.validate import (
    SAMPLE_COLUMNS,
    ValidationLimits,
    Verdict,
    distinct_rows,
    validate_arrays,
)

# SAMPLE_COLUMNS: the time, the GPS channels (GPS_INPUT_COLUMNS is its head), the three axes
_FIX_TEST = [SAMPLE_COLUMNS.index(c) for c in ("latitude", "longitude", "speed")]
_IMU_SLICE = [0, *(SAMPLE_COLUMNS.index(axis) for axis in IMU_AXES)]


class UnusableFileError(RuntimeError):
    """A file handed over as accepted no longer validates (changed, or gone)."""


def empty_statevectors() -> pd.DataFrame:
    """No rows, the StateVector columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in STATEVECTOR_DTYPES.items()})


def merged_samples(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The validated samples of files in time order as one array, repeats counted once.

    Each array is one file's samples as :func:`validate_arrays` returns them
    (sorted, without repeats). Files that do not overlap concatenate in order;
    overlapping ones are merged and de-duplicated row by row.
    """
    if not arrays:
        return np.empty((0, len(SAMPLE_COLUMNS)), dtype=np.float64)
    samples = np.concatenate(arrays)
    latest = -np.inf
    for values in arrays:
        if values[0, 0] <= latest:
            return distinct_rows(samples)
        latest = max(latest, values[-1, 0])
    return samples


def statevectors_of_files(
    files: Sequence[tuple[str, bytes]],
    parts: Sequence[tuple[int, int]],
    *,
    machine_uuid: str,
    limits: ValidationLimits,
    now_s: float,
    max_gap_s: float,
    params: DenoiseParams,
    verdicts: list[Verdict] | None = None,
) -> pd.DataFrame:
    """StateVectors of the seconds ``[ts_from, ts_to)`` of each part, from these raw files.

    Args:
        files: ``(key, bytes)`` of every accepted file of the machine with samples
            within the resampler's context of a part, by first sample time.
        parts: disjoint ``(ts_from, ts_to)`` ranges of seconds to compute.
        machine_uuid: the machine (written into every row).
        limits: validation thresholds, as the files were accepted with.
        now_s: the present for validation's clock check.
        max_gap_s: the configured ``preprocess.max_gap_s``.
        params: de-noising parameters.
        verdicts: when given, the files are not known to be accepted: each file's
            verdict is appended here, in order, and a rejected file is left out.

    Returns:
        Rows with :data:`etl.preprocess.schema.STATEVECTOR_COLUMNS`, by part then ``ts``.

    Raises:
        UnusableFileError: without ``verdicts``, a file no longer validates (its
            data would be missing).
    """
    arrays = []
    for key, data in files:
        verdict, values = validate_arrays(
            data, key=key, machine_uuid=machine_uuid, limits=limits, now_s=now_s
        )
        if verdicts is not None:
            verdicts.append(verdict)
        if values is not None:
            arrays.append(values)
        elif verdicts is None:
            raise UnusableFileError(f"{key}: {verdict.reason}")
    samples = merged_samples(arrays)
    fix = ~np.isnan(samples[:, _FIX_TEST]).all(axis=1)
    gps = pd.DataFrame(samples[fix, : len(GPS_INPUT_COLUMNS)], columns=list(GPS_INPUT_COLUMNS))
    imu = pd.DataFrame(imu_second_arrays(samples[:, _IMU_SLICE]), columns=list(IMU_SECONDS_COLUMNS))
    out = [
        resample_machine(
            gps,
            imu,
            machine_uuid=machine_uuid,
            max_gap_s=max_gap_s,
            params=params,
            ts_from=ts_from,
            ts_to=ts_to,
        )[list(STATEVECTOR_COLUMNS)]
        for ts_from, ts_to in parts
    ]
    if not out:
        return empty_statevectors()
    return out[0] if len(out) == 1 else pd.concat(out, ignore_index=True)
