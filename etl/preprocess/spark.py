"""StateVectors in Spark: per-second IMU statistics, then ``applyInPandas``.

Spark does what it does natively: filtering, the per-second IMU aggregates of
raw rows it reads itself (:func:`imu_second_stats_spark`), pooling the
per-file partial statistics that validation tasks hand over
(:func:`combine_imu_seconds`), the window joins and the shuffle. Only the GPS
de-noising and the grid, which need the ordered samples of one machine, run
in Python, one group per machine and window. A *window* is a range of seconds
``[ts_from, ts_to)`` to (re)compute; its group receives the samples up to
``context_s`` beyond each bound so that seconds near a batch boundary see the
samples on both sides.

Frames in, frames out: no storage, no ``collect``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from etl.preprocess.denoise import DenoiseParams
from etl.preprocess.resample import resample_machine
from etl.preprocess.schema import (
    GPS_COLUMNS,
    IMU_AXES,
    IMU_SECONDS_COLUMNS,
    STATEVECTOR_COLUMNS,
    statevector_struct,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

WINDOW_KEYS = ("machine_uuid", "window_id", "ts_from", "ts_to")
RAW_COLUMNS = ("timestamp", *GPS_COLUMNS, *IMU_AXES)


def raw_schema() -> StructType:
    """The raw columns we use, all double (Spark widens int and float columns on read)."""
    from pyspark.sql import types

    return types.StructType(
        [types.StructField(column, types.DoubleType(), True) for column in RAW_COLUMNS]
    )


def clean_samples(
    raw: DataFrame,
    *,
    ranges: dict[str, tuple[float, float]],
    min_epoch_s: float,
    max_epoch_s: float,
    deduplicate: bool = True,
) -> DataFrame:
    """Validated samples from raw rows read natively by Spark.

    Applies the repairs validation reports (:func:`etl.preprocess.validate.validate_batch`):
    rows with an implausible clock go, readings out of their physical range are
    blanked, exact duplicates (within or across overlapping files) go.
    Removing duplicates costs a shuffle of every row: callers pass
    ``deduplicate=False`` for files known to hold none (no repeated rows, no
    overlap with another file).

    Args:
        raw: rows of :func:`raw_schema` plus ``machine_uuid`` (set by the reader from
            the files' keys: a literal per machine is far cheaper than parsing
            ``input_file_name()`` on every row).
        ranges: ``[low, high]`` per channel (heading's ``high`` is exclusive).
        min_epoch_s: earliest plausible timestamp.
        max_epoch_s: latest plausible timestamp.
        deduplicate: whether exact duplicate rows may be present.
    """
    from pyspark.sql import functions as F

    columns = ["machine_uuid", "timestamp"]
    for column in (*GPS_COLUMNS, *IMU_AXES):
        low, high = ranges[column]
        upper = F.col(column) < high if column == "heading" else F.col(column) <= high
        columns.append(F.when((F.col(column) >= low) & upper, F.col(column)).alias(column))
    cleaned = raw.where(F.col("timestamp").between(min_epoch_s, max_epoch_s)).select(*columns)
    return cleaned.dropDuplicates(["machine_uuid", *RAW_COLUMNS]) if deduplicate else cleaned


def samples_in_windows(samples: DataFrame, windows: DataFrame, context_s: float) -> DataFrame:
    """Samples that can influence each window: within ``context_s`` of its bounds.

    Args:
        samples: rows with ``machine_uuid`` and ``timestamp`` (all their columns are kept).
        windows: ``machine_uuid``, ``window_id``, ``ts_from``, ``ts_to`` (long seconds).
        context_s: the resampler's reach (:func:`etl.preprocess.context_seconds`).
    """
    from pyspark.sql import functions as F

    s, w = samples.alias("s"), windows.alias("w")
    joined = s.join(
        F.broadcast(w),
        (F.col("s.machine_uuid") == F.col("w.machine_uuid"))
        & (F.col("s.timestamp") >= F.col("w.ts_from") - F.lit(context_s))
        & (F.col("s.timestamp") <= F.col("w.ts_to") + F.lit(context_s)),
    )
    return joined.select(
        *(F.col(f"w.{key}") for key in WINDOW_KEYS),
        *(F.col(f"s.{column}") for column in samples.columns if column != "machine_uuid"),
    )


def imu_second_stats_spark(samples: DataFrame) -> DataFrame:
    """Per machine and second: count, mean, population std, first and last sample time.

    Second ``ts`` holds the samples with ``ts - 0.5 <= timestamp < ts + 0.5``,
    the same rule as :func:`etl.preprocess.imu_second_stats`. Aggregating before
    anything is joined keeps the 10 Hz rows in one map-side-combined shuffle.
    """
    from pyspark.sql import functions as F

    imu = samples.where(
        F.col("acc_x").isNotNull() & F.col("acc_y").isNotNull() & F.col("acc_z").isNotNull()
    )
    aggregates = [F.count(F.lit(1)).alias("n")]
    for axis in IMU_AXES:
        aggregates += [
            F.avg(axis).alias(f"{axis}_mean"),
            F.stddev_pop(axis).alias(f"{axis}_std"),
        ]
    aggregates += [F.min("timestamp").alias("t_first"), F.max("timestamp").alias("t_last")]
    second = F.floor(F.col("timestamp") + 0.5).cast("long").alias("ts")
    return imu.groupBy("machine_uuid", second).agg(*aggregates)


def seconds_in_windows(seconds: DataFrame, windows: DataFrame, context_s: float) -> DataFrame:
    """Per-second rows that can influence each window (a second may serve two windows)."""
    from pyspark.sql import functions as F

    s, w = seconds.alias("s"), windows.alias("w")
    joined = s.join(
        F.broadcast(w),
        (F.col("s.machine_uuid") == F.col("w.machine_uuid"))
        & (F.col("s.ts") >= F.col("w.ts_from") - F.lit(context_s + 1))
        & (F.col("s.ts") <= F.col("w.ts_to") + F.lit(context_s + 1)),
    )
    return joined.select(
        *(F.col(f"w.{key}").alias(key) for key in WINDOW_KEYS),  # new ids: no self-join clash
        *(F.col(f"s.{column}") for column in seconds.columns if column != "machine_uuid"),
    )


def combine_imu_seconds(partials: DataFrame) -> DataFrame:
    """Per machine and second, the IMU statistics of several disjoint sets of samples.

    Each input row holds the statistics of one file's samples in one second
    (:func:`etl.preprocess.reduce.reduce_batch`) or of de-duplicated raw rows
    (:func:`imu_second_stats_spark`); no sample may be counted by two rows. A
    second with one part keeps its values bit for bit; a second straddling two
    files gets the pooled count, mean and population variance.
    """
    from pyspark.sql import functions as F

    aggregates = [F.count(F.lit(1)).alias("_parts"), F.sum("n").alias("n")]
    for axis in IMU_AXES:
        mean, std = F.col(f"{axis}_mean"), F.col(f"{axis}_std")
        aggregates += [
            F.first(mean).alias(f"_{axis}_mean1"),
            F.first(std).alias(f"_{axis}_std1"),
            F.sum(F.col("n") * mean).alias(f"_{axis}_sum"),
            F.sum(F.col("n") * (std * std + mean * mean)).alias(f"_{axis}_sumsq"),
        ]
    aggregates += [F.min("t_first").alias("t_first"), F.max("t_last").alias("t_last")]
    pooled = partials.groupBy("machine_uuid", "ts").agg(*aggregates)
    single = F.col("_parts") == 1
    means, stds = [], []
    for axis in IMU_AXES:
        mean = F.col(f"_{axis}_sum") / F.col("n")
        variance = F.col(f"_{axis}_sumsq") / F.col("n") - mean * mean
        means.append(F.when(single, F.col(f"_{axis}_mean1")).otherwise(mean).alias(f"{axis}_mean"))
        stds.append(
            F.when(single, F.col(f"_{axis}_std1"))
            .otherwise(F.sqrt(F.greatest(variance, F.lit(0.0))))
            .alias(f"{axis}_std")
        )
    return pooled.select("machine_uuid", "ts", "n", *means, *stds, "t_first", "t_last")


def gps_fixes(samples: DataFrame) -> DataFrame:
    """Rows carrying a fix (the resampler drops incomplete ones itself)."""
    from pyspark.sql import functions as F

    return samples.where(
        F.col("latitude").isNotNull() | F.col("longitude").isNotNull() | F.col("speed").isNotNull()
    ).select("machine_uuid", "timestamp", *GPS_COLUMNS)


def build_statevectors(
    samples: DataFrame,
    windows: DataFrame,
    *,
    max_gap_s: float,
    params: DenoiseParams,
    context_s: float,
) -> DataFrame:
    """StateVectors for every window from validated raw samples (see :func:`statevectors_from`)."""
    return statevectors_from(
        gps_fixes(samples),
        imu_second_stats_spark(samples),
        windows,
        max_gap_s=max_gap_s,
        params=params,
        context_s=context_s,
    )


def statevectors_from(
    fixes: DataFrame,
    imu_seconds: DataFrame,
    windows: DataFrame,
    *,
    max_gap_s: float,
    params: DenoiseParams,
    context_s: float,
) -> DataFrame:
    """StateVectors for every window (rows of ``[ts_from, ts_to)`` only).

    Args:
        fixes: ``machine_uuid``, ``timestamp`` and the GPS channels of any number of machines.
        imu_seconds: per machine and second, the IMU statistics of all its samples
            (:func:`imu_second_stats_spark` or :func:`combine_imu_seconds`).
        windows: the seconds to compute per machine; windows of one machine must
            not overlap (each second is produced by exactly one group).
        max_gap_s: the configured ``preprocess.max_gap_s``.
        params: de-noising parameters.
        context_s: margin of samples around each window.

    Returns:
        Rows with the StateVector schema (:func:`etl.preprocess.statevector_struct`).
    """
    gps = samples_in_windows(fixes, windows, context_s).select(
        *WINDOW_KEYS, "timestamp", *GPS_COLUMNS
    )
    imu = seconds_in_windows(imu_seconds, windows, context_s)

    def per_window(gps_pdf: pd.DataFrame, imu_pdf: pd.DataFrame) -> pd.DataFrame:
        first = (gps_pdf if len(gps_pdf) else imu_pdf).iloc[0]
        return resample_machine(
            gps_pdf.loc[:, ["timestamp", *GPS_COLUMNS]],
            imu_pdf.loc[:, list(IMU_SECONDS_COLUMNS)].astype({"ts": "int64", "n": "int64"}),
            machine_uuid=str(first["machine_uuid"]),
            max_gap_s=max_gap_s,
            params=params,
            ts_from=int(first["ts_from"]),
            ts_to=int(first["ts_to"]),
        )[list(STATEVECTOR_COLUMNS)]

    return (
        gps.groupBy(*WINDOW_KEYS)
        .cogroup(imu.groupBy(*WINDOW_KEYS))
        .applyInPandas(per_window, statevector_struct())
    )
