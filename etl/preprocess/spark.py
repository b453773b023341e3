"""StateVectors in Spark: per-second IMU statistics, then ``groupBy().applyInPandas``.

Spark does what it does natively: reading, filtering and de-duplicating raw
rows and their per-second IMU aggregates (:func:`imu_second_stats_spark`),
assigning rows to groups, the one shuffle. The GPS de-noising and the grid,
which need the ordered samples of one machine, run in Python, one group per
machine and *slice* (a fixed range of :data:`SLICE_S` seconds).

A *window* is a range of seconds ``[ts_from, ts_to)`` to (re)compute. A group
computes the part of its machine's windows inside its slice, and receives
every row up to the resampler's context beyond the slice's bounds (a row near
a bound goes to both slices), so seconds near a batch boundary see the samples
on both sides.

Frames in, frames out: no storage, no ``collect``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import pandas as pd

from etl.preprocess.denoise import DenoiseParams
from etl.preprocess.reduce import KIND_GPS, KIND_IMU, pool_imu_partials
from etl.preprocess.resample import resample_machine
from etl.preprocess.schema import (
    GPS_COLUMNS,
    GPS_INPUT_COLUMNS,
    IMU_AXES,
    IMU_SECONDS_COLUMNS,
    IMU_SECONDS_DTYPES,
    STATEVECTOR_COLUMNS,
    STATEVECTOR_DTYPES,
    statevector_struct,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

RAW_COLUMNS = ("timestamp", *GPS_COLUMNS, *IMU_AXES)
SLICE_S = 6 * 3600
"""Seconds per ``applyInPandas`` group: a resampler call costs about the same for one
hour or six, so fewer, larger groups; six hours of one machine is ~45 k small rows."""
SLICE_INPUT = ("machine_uuid", "kind", *GPS_INPUT_COLUMNS, *IMU_SECONDS_COLUMNS)
"""Columns of the rows :func:`statevectors_by_slice` reads (a subset of the reduced rows)."""
_SLICE_TYPES = {
    "machine_uuid": "string",
    **dict.fromkeys(GPS_INPUT_COLUMNS, "double"),
    **{c: "long" if t == "int64" else "double" for c, t in IMU_SECONDS_DTYPES.items()},
}


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


def gps_fixes(samples: DataFrame) -> DataFrame:
    """Rows carrying a fix (the resampler drops incomplete ones itself)."""
    from pyspark.sql import functions as F

    return samples.where(
        F.col("latitude").isNotNull() | F.col("longitude").isNotNull() | F.col("speed").isNotNull()
    ).select("machine_uuid", "timestamp", *GPS_COLUMNS)


def as_slice_input(fixes: DataFrame, imu_seconds: DataFrame) -> DataFrame:
    """GPS fixes and per-second IMU statistics as rows of :data:`SLICE_INPUT`.

    The validation tasks hand over their reduced rows in this long form already
    (:mod:`etl.preprocess.reduce`); this puts what Spark computes from raw rows
    (:func:`gps_fixes`, :func:`imu_second_stats_spark`) in the same form.
    """
    from pyspark.sql import functions as F

    def padded(frame: DataFrame, kind: str) -> DataFrame:
        return frame.select(
            *(
                F.col(c) if c in frame.columns else F.lit(None).cast(_SLICE_TYPES[c]).alias(c)
                for c in SLICE_INPUT
                if c != "kind"
            ),
            F.lit(kind).alias("kind"),
        ).select(*SLICE_INPUT)

    return padded(fixes, KIND_GPS).unionByName(padded(imu_seconds, KIND_IMU))


def statevectors_by_slice(
    rows: DataFrame,
    windows: list[tuple[str, int, int]],
    *,
    max_gap_s: float,
    params: DenoiseParams,
    context_s: float,
    slice_s: int = SLICE_S,
) -> DataFrame:
    """StateVectors for every window (rows of ``[ts_from, ts_to)`` only).

    One shuffle: each row goes to the slice(s) of its machine within the
    context of its time, and ``groupBy(machine, slice).applyInPandas`` pools
    the IMU partial statistics of each second
    (:func:`etl.preprocess.reduce.pool_imu_partials`) and resamples. An
    earlier version joined the rows to the windows and cogrouped fixes with
    IMU seconds pooled by Spark (two joins, three shuffles); this plan measured
    about 5 % faster end to end and pools the same way whatever the row order.

    Args:
        rows: :data:`SLICE_INPUT` columns: fixes (``kind`` gps: ``timestamp`` and the
            GPS channels) and per-second IMU statistics (``kind`` imu: the columns of
            :data:`etl.preprocess.schema.IMU_SECONDS_COLUMNS`) of any number of
            machines; no IMU sample may be counted in two rows.
        windows: ``(machine_uuid, ts_from, ts_to)``; windows of one machine must
            not overlap (each second is produced by exactly one group).
        max_gap_s: the configured ``preprocess.max_gap_s``.
        params: de-noising parameters.
        context_s: the resampler's reach (:func:`etl.preprocess.context_seconds`).
        slice_s: seconds per group.

    Returns:
        Rows with the StateVector schema (:func:`etl.preprocess.statevector_struct`).
    """
    from pyspark.sql import functions as F

    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for machine, ts_from, ts_to in windows:
        spans[machine].append((int(ts_from), int(ts_to)))
    machines = sorted(spans)
    if not machines:
        return rows.sparkSession.createDataFrame([], statevector_struct())
    # groups keyed by the machine's index, not its 36-character id: the key travels
    # with every row through the shuffle and into Python; rows of other machines go
    index = F.create_map(*(F.lit(v) for i, m in enumerate(machines) for v in (m, i)))
    reach = context_s + 1  # an IMU second holds samples up to half a second away
    time = F.coalesce(F.col("timestamp"), F.col("ts").cast("double"))
    slices = F.sequence(
        F.floor((time - reach) / slice_s).cast("long"),
        F.floor((time + reach) / slice_s).cast("long"),
    )
    prepared = (
        rows.select(
            F.element_at(index, F.col("machine_uuid")).alias("machine"),
            F.explode(slices).alias("slice"),
            (F.col("kind") == KIND_GPS).alias("is_gps"),
            "timestamp",
            *GPS_COLUMNS,
            *IMU_SECONDS_COLUMNS,
        )
        .where(F.col("machine").isNotNull())
        # as many tasks as the shuffle setting asks for: adaptive execution would
        # coalesce these small rows into fewer tasks than cores, and each group's
        # Python step costs far more than its bytes suggest
        .repartition(
            int(rows.sparkSession.conf.get("spark.sql.shuffle.partitions")), "machine", "slice"
        )
    )
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in STATEVECTOR_DTYPES.items()})

    def per_slice(group: pd.DataFrame) -> pd.DataFrame:
        machine = machines[int(group["machine"].iat[0])]
        low = int(group["slice"].iat[0]) * slice_s
        high = low + slice_s
        parts = [
            (max(ts_from, low), min(ts_to, high))
            for ts_from, ts_to in spans.get(machine, ())
            if ts_from < high and ts_to > low
        ]
        if not parts:
            return empty
        is_gps = group["is_gps"].to_numpy(dtype=bool)
        gps = group.loc[is_gps, list(GPS_INPUT_COLUMNS)]
        imu = pool_imu_partials(group.loc[~is_gps, list(IMU_SECONDS_COLUMNS)])
        out = [
            resample_machine(
                gps,
                imu,
                machine_uuid=machine,
                max_gap_s=max_gap_s,
                params=params,
                ts_from=ts_from,
                ts_to=ts_to,
            )[list(STATEVECTOR_COLUMNS)]
            for ts_from, ts_to in parts
        ]
        return out[0] if len(out) == 1 else pd.concat(out, ignore_index=True)

    return prepared.groupBy("machine", "slice").applyInPandas(per_slice, statevector_struct())
