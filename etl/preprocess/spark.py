"""StateVectors in Spark: ``groupBy(machine, slice).applyInPandas`` over raw file keys.

Spark plans and schedules the work, moves only file keys between groups, and
writes the result; each group (one machine, one *slice*: a fixed range of
:data:`SLICE_S` seconds) reads, validates and resamples its own raw files in
Python (:mod:`etl.preprocess.files`).

A *window* is a range of seconds ``[ts_from, ts_to)`` to (re)compute. A group
computes the part of its machine's windows inside its slice and reads every
file with samples within the resampler's context of that part, so seconds near
a batch boundary see the samples on both sides; a file near a slice's bound is
read by both groups.

An earlier design (sessions 3-6) had Spark SQL read raw rows and aggregate the
per-second IMU statistics natively, then reduced files in the validation tasks
and shuffled the cached reduced rows to the groups. Measured on 10
machine-days, the JVM spent 108 s of CPU there against 57 s with this plan
(compiling, caching, shuffling and sorting rows), for the same StateVectors: the
10 Hz rows are decoded in Python anyway, for validation, and a numpy aggregate
over them there costs less than shipping them to the JVM.

No ``collect``: the groups read raw files through the reader they are given and
return frames; writing them is the caller's. In a one-pass job the files are not yet
known to be accepted: the groups report each file's verdict through an accumulator
(:class:`VerdictReport`) and may return their rows *packed*, one Arrow stream per
group, so that the caller can cache them cheaply until it has checked the verdicts
and Delta is ready (:func:`unpacked_statevectors` turns them back into rows).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.accumulators import AccumulatorParam
from pyspark.sql import types
from pyspark.sql.pandas.types import to_arrow_schema

from etl.io.delta import utc_day
from etl.preprocess.denoise import DenoiseParams
from etl.preprocess.schema import PARTITION_DAY, statevector_struct, statevector_table_struct
from etl.preprocess.validate import missing_file, verdict_to_json

if TYPE_CHECKING:
    from pyspark.accumulators import Accumulator
    from pyspark.sql import DataFrame, SparkSession

    from etl.preprocess.validate import ValidationLimits

SLICE_S = 6 * 3600
"""Seconds per ``applyInPandas`` group: a resampler call costs about the same for one
hour or six, so fewer, larger groups; six hours of one machine is ~36 raw files."""


WORK_SCHEMA = types.StructType(
    [
        types.StructField("machine", types.IntegerType()),
        types.StructField("slice", types.LongType()),
        types.StructField("batch_id", types.LongType()),
        types.StructField("key", types.StringType()),
        types.StructField("first", types.DoubleType()),
    ]
)
"""Rows :func:`statevectors_from_files` groups: which file each group reads.

Schemas here are types, not DDL strings: the driver's JVM parses a DDL string with
its SQL parser, whose first use cost ~1.5 s of JIT compilation (JFR, session 10)."""


def plan_groups(
    sources: list[tuple[str, int, str, float, float]],
    windows: list[tuple[str, int, int]],
    *,
    reach_s: float,
    slice_s: int = SLICE_S,
) -> tuple[list[str], dict[tuple[int, int], list[tuple[int, int]]], list[tuple]]:
    """Which group computes which seconds, and which files it reads.

    Args:
        sources: ``(machine_uuid, batch_id, key, first, last)`` of every accepted file
            that may hold samples for the windows (validated time ranges).
        windows: ``(machine_uuid, ts_from, ts_to)``, disjoint per machine.
        reach_s: how far from a second its samples may lie (the resampler's context
            plus the half second of an IMU window).
        slice_s: seconds per group.

    Returns:
        The machines (a group names its machine by index), each group's parts of the
        windows keyed by ``(machine index, slice)``, and the rows of
        :data:`WORK_SCHEMA`: one per group and file within ``reach_s`` of its parts.

    Each group looks at every file of its machine: a preprocess chunk holds at most
    :data:`etl.steps.preprocess.CHUNK_FILES` new files (two weeks of one machine), so
    that stays in the hundred thousands of comparisons.
    """
    machines = sorted({machine for machine, _, _ in windows})
    index = {machine: i for i, machine in enumerate(machines)}
    parts: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for machine, ts_from, ts_to in sorted(windows):
        for piece in range(ts_from // slice_s, (ts_to - 1) // slice_s + 1):
            low, high = piece * slice_s, (piece + 1) * slice_s
            parts[(index[machine], piece)].append((max(ts_from, low), min(ts_to, high)))
    by_machine: dict[str, list[tuple[int, str, float, float]]] = defaultdict(list)
    for machine, batch_id, key, first, last in sources:
        if machine in index:
            by_machine[machine].append((batch_id, key, first, last))
    work: list[tuple] = []
    for (machine_index, piece), spans in sorted(parts.items()):
        files = by_machine[machines[machine_index]]
        for batch_id, key, first, last in files:
            if any(last >= lo - reach_s and first <= hi + reach_s for lo, hi in spans):
                work.append((machine_index, piece, batch_id, key, first))
    return machines, dict(parts), work


class VerdictReport(AccumulatorParam):
    """Accumulates ``{batch_id: verdict JSON}`` from the groups of a one-pass job.

    A file read by two groups (near a slice's bound), or by a retried task, reports
    the same verdict again: validation is a function of the bytes, ``limits`` and
    ``now_s``.
    """

    def zero(self, value: dict[int, str]) -> dict[int, str]:
        """An empty report."""
        return {}

    def addInPlace(self, value1: dict[int, str], value2: dict[int, str]) -> dict[int, str]:  # noqa: N802 - pyspark's name
        """Both reports in one."""
        value1.update(value2)
        return value1


PACKED_SCHEMA = types.StructType([types.StructField("statevectors", types.BinaryType())])
"""A packed group: its StateVector rows as one Arrow IPC stream."""


def statevectors_from_files(
    spark: SparkSession,
    sources: list[tuple[str, int, str, float, float]],
    windows: list[tuple[str, int, int]],
    *,
    read: Callable[[], Callable[[str], bytes]],
    limits: ValidationLimits,
    now_s: float,
    max_gap_s: float,
    params: DenoiseParams,
    context_s: float,
    slice_s: int = SLICE_S,
    report: Accumulator[dict[int, str]] | None = None,
    location: str = "",
    packed: bool = False,
) -> DataFrame:
    """StateVectors of the windows, one ``applyInPandas`` group per machine and slice.

    Only file keys travel through Spark: each group reads and validates its
    files, pools their samples and resamples its part of the windows
    (:func:`etl.preprocess.files.statevectors_of_files`). A file near a slice's
    bound is read by both groups.

    Args:
        spark: the session.
        sources: see :func:`plan_groups`.
        windows: see :func:`plan_groups`.
        read: called once per Python worker, gives the function reading a raw key's
            bytes (a picklable factory: the object store's client is not).
        limits: validation thresholds.
        now_s: the present for validation's clock check.
        max_gap_s: the configured ``preprocess.max_gap_s``.
        params: de-noising parameters.
        context_s: the resampler's reach (:func:`etl.preprocess.context_seconds`).
        slice_s: seconds per group.
        report: when given, the sources are not known to be accepted: the groups add
            every file's verdict to it (:class:`VerdictReport`) and leave rejected or
            missing files out. Without it, such a file fails the job
            (:class:`etl.preprocess.files.UnusableFileError`).
        location: the raw store's location, for the reason of a missing file.
        packed: one row per group in :data:`PACKED_SCHEMA` (see
            :func:`unpacked_statevectors`) instead of its StateVector rows.
    """
    from etl.preprocess.files import statevectors_of_files

    machines, parts, work = plan_groups(sources, windows, reach_s=context_s + 1, slice_s=slice_s)
    if not work:
        return spark.createDataFrame([], PACKED_SCHEMA if packed else statevector_struct())
    groups = len(parts)
    tasks = min(groups, max(4 * spark.sparkContext.defaultParallelism, 1))
    arrow_schema = to_arrow_schema(statevector_struct())
    reader: list[Callable[[str], bytes]] = []

    def per_group(frame: pd.DataFrame) -> pd.DataFrame:
        if not reader:
            reader.append(read())
        machine_index, piece = int(frame["machine"].iat[0]), int(frame["slice"].iat[0])
        ordered = frame.sort_values(["first", "batch_id"])
        files, read_ids, verdicts = [], [], None if report is None else []
        missing: dict[int, str] = {}
        for batch_id, key in ordered[["batch_id", "key"]].itertuples(index=False):
            try:
                files.append((key, reader[0](key)))
                read_ids.append(int(batch_id))
            except FileNotFoundError:
                if report is None:
                    raise
                missing[int(batch_id)] = verdict_to_json(missing_file(f"{location}/{key}"))
        vectors = statevectors_of_files(
            files,
            parts[(machine_index, piece)],  # a work row exists only for a planned group
            machine_uuid=machines[machine_index],
            limits=limits,
            now_s=now_s,
            max_gap_s=max_gap_s,
            params=params,
            verdicts=verdicts,
        )
        if report is not None:
            report.add(
                missing | {i: verdict_to_json(v) for i, v in zip(read_ids, verdicts, strict=True)}
            )
        return _pack(vectors, arrow_schema) if packed else vectors

    return (
        local_frame(spark, work, WORK_SCHEMA)
        .repartition(tasks, "machine", "slice")
        .groupBy("machine", "slice")
        .applyInPandas(per_group, PACKED_SCHEMA if packed else statevector_struct())
    )


def local_frame(spark: SparkSession, rows: list[tuple], schema: types.StructType) -> DataFrame:
    """A DataFrame of driver-side rows, shipped to the JVM as Arrow.

    From a list of tuples, Spark ships pickled rows that Python workers decode: a
    first job with its own Python daemon and two workers (~2 s of CPU on the
    2-core machines, session 10). A pandas frame goes as Arrow, read by the JVM.
    """
    return spark.createDataFrame(pd.DataFrame(rows, columns=schema.fieldNames()), schema)


def _pack(vectors: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """One row holding the frame as an Arrow IPC stream."""
    table = pa.Table.from_pandas(vectors, schema=schema, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table)
    return pd.DataFrame({"statevectors": [sink.getvalue().to_pybytes()]})


def unpacked_statevectors(packed: DataFrame) -> DataFrame:
    """The table rows of packed groups: Arrow batches from the streams, with their ``day``.

    The day is computed here, once per day of a batch, rather than by Spark per row
    (``date_format`` was ~7 % of the StateVectors write's executor samples, JFR,
    session 10).
    """

    def unpack(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for stream in batch.column(0).to_pylist():
                for vectors in pa.ipc.open_stream(stream):
                    yield with_day(vectors)

    return packed.mapInArrow(unpack, statevector_table_struct())


SECONDS_PER_DAY = 86_400


def with_day(vectors: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with the ``day`` partition column: each row's UTC date of ``ts``."""
    days = vectors.column("ts").to_numpy(zero_copy_only=False) // SECONDS_PER_DAY
    distinct, index = np.unique(days, return_inverse=True)
    names = pa.array([utc_day(int(d) * SECONDS_PER_DAY) for d in distinct], pa.string())
    schema = vectors.schema.append(pa.field(PARTITION_DAY, pa.string(), nullable=False))
    return pa.RecordBatch.from_arrays([*vectors.columns, names.take(index)], schema=schema)
