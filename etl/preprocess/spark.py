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
return frames; writing them is the caller's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from etl.preprocess.denoise import DenoiseParams
from etl.preprocess.schema import (
    statevector_struct,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from etl.preprocess.validate import ValidationLimits

SLICE_S = 6 * 3600
"""Seconds per ``applyInPandas`` group: a resampler call costs about the same for one
hour or six, so fewer, larger groups; six hours of one machine is ~36 raw files."""


WORK_SCHEMA = "machine int, slice long, batch_id long, key string, first double"
"""Rows :func:`statevectors_from_files` groups: which file each group reads."""


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
    """
    from etl.preprocess.files import statevectors_of_files

    machines, parts, work = plan_groups(sources, windows, reach_s=context_s + 1, slice_s=slice_s)
    if not work:
        return spark.createDataFrame([], statevector_struct())
    groups = len(parts)
    tasks = min(groups, max(4 * spark.sparkContext.defaultParallelism, 1))
    reader: list[Callable[[str], bytes]] = []

    def per_group(frame: pd.DataFrame) -> pd.DataFrame:
        if not reader:
            reader.append(read())
        machine_index, piece = int(frame["machine"].iat[0]), int(frame["slice"].iat[0])
        ordered = frame.sort_values(["first", "batch_id"])
        return statevectors_of_files(
            [(key, reader[0](key)) for key in ordered["key"]],
            parts[(machine_index, piece)],  # a work row exists only for a planned group
            machine_uuid=machines[machine_index],
            limits=limits,
            now_s=now_s,
            max_gap_s=max_gap_s,
            params=params,
        )

    return (
        spark.createDataFrame(work, WORK_SCHEMA)
        .repartition(tasks, "machine", "slice")
        .groupBy("machine", "slice")
        .applyInPandas(per_group, statevector_struct())
    )
