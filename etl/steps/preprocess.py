"""``etl preprocess``: validate registered raw files and (re)compute StateVectors.

Per chunk of pending files:

1. find every second the new samples can influence (each file's announced time
   range, with some slack, plus the resampler's context on both sides) and every
   accepted file of earlier runs announced near those seconds;
2. one Spark job, beside Delta's set-up: one ``applyInPandas`` group per machine and
   slice of time reads those files, validates them (bad files are rejected with a
   reason and left out), pools their samples (repeats in overlapping files count
   once) and resamples its part of the windows (:mod:`etl.preprocess.spark`); only
   the verdicts come back to the driver (an accumulator), the rows stay packed in
   Spark's cache; so the table is a function of the set of files, not of their
   arrival order;
3. the driver marks duplicates of an already accepted file by content, stops when
   an earlier file no longer validates (named), and checks that every accepted
   file's samples lie within its announced range; if one does not, the chunk is
   planned again from the validated ranges and computed by a second group job;
4. replace exactly those seconds in the StateVectors table (one Delta commit),
   and record each file's verdict and the Delta version in the state store.

Raw files stay the only copy of the samples. A kill at any point leaves files
``discovered`` in the state store; the rerun rewrites the same rows.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import types

from etl.config import S3Config
from etl.io.delta import quote, replace_where, utc_day, warm_table
from etl.io.objectstore import open_store
from etl.preprocess import DenoiseParams, context_seconds
from etl.preprocess.schema import PARTITION_DAY
from etl.preprocess.spark import (
    VerdictReport,
    local_frame,
    statevectors_from_files,
    unpacked_statevectors,
)
from etl.preprocess.validate import (
    ValidationLimits,
    Verdict,
    missing_file,
    validate_arrays,
    verdict_from_json,
    verdict_to_json,
)
from etl.state.domain import Batch, BatchStatus, RunStatus
from etl.state.transitions import FileFacts, duplicate, preprocessed, rejected

if TYPE_CHECKING:
    from pyspark.accumulators import Accumulator
    from pyspark.sql import DataFrame

    from etl.bootstrap import Context

log = logging.getLogger(__name__)

CHUNK_FILES = 2000
"""Files per Spark round: large enough to amortise a job's fixed costs (the driver keeps
only each file's verdict, not its rows)."""
PARTITION_BY = ("machine_uuid", PARTITION_DAY)
"""The StateVectors table's partitions: the queries that follow read one machine's days."""
TABLE_PROPERTIES = {"delta.dataSkippingStatsColumns": "ts"}
"""Per-file statistics on ``ts`` only: readers select a machine's partitions and a time
range, and Delta's default (min, max and null count of the first 32 columns, for every
row written) cost the StateVectors write ~1.3 s of 7 on 10 machine-days (session 9)."""
FILES_PER_TASK = 100
"""Upper bound of files one validation task reads (more tasks for a larger backlog)."""
CHECK_SCHEMA = types.StructType(
    [
        types.StructField("batch_id", types.LongType()),
        types.StructField("machine_uuid", types.StringType()),
        types.StructField("key", types.StringType()),
    ]
)
"""The files :func:`check_files` validates."""
VERDICT_SCHEMA = types.StructType(
    [
        types.StructField("batch_id", types.LongType()),
        types.StructField("verdict", types.StringType()),
    ]
)
"""What :func:`check_files` returns per file."""
ANNOUNCED_SLACK_S = 120.0
"""How far outside its announced time range a file's samples may lie for the one pass.

A listing announces the key's time plus the nominal ten minutes; simulated batches run
up to a minute longer. A file beyond this slack makes its chunk replan from the
validated ranges (a second group job), which is correct but slower."""


@dataclass(frozen=True)
class Checked:
    """A pending batch and what validation made of it."""

    batch: Batch
    verdict: Verdict


def statevectors_url(output_url: str) -> str:
    """The StateVectors table (shared/contracts/statevectors.md)."""
    return f"{output_url}/statevectors"


def merge_windows(
    ranges: list[tuple[str, float, float]], context_s: float
) -> list[tuple[str, int, int]]:
    """Seconds to recompute per machine: each range widened by the context, overlaps merged.

    Args:
        ranges: ``(machine_uuid, first_timestamp, last_timestamp)`` of new files.
        context_s: how far a sample influences StateVectors.

    Returns:
        Disjoint ``(machine_uuid, ts_from, ts_to)`` windows, sorted.
    """
    per_machine: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for machine, first, last in ranges:
        per_machine[machine].append(
            (math.floor(first - context_s), math.ceil(last + context_s) + 1)
        )
    merged: list[tuple[str, int, int]] = []
    for machine in sorted(per_machine):
        spans = sorted(per_machine[machine])
        start, end = spans[0]
        for span_start, span_end in spans[1:]:
            if span_start <= end:
                end = max(end, span_end)
            else:
                merged.append((machine, start, end))
                start, end = span_start, span_end
        merged.append((machine, start, end))
    return merged


def file_checker(
    raw_url: str, s3: S3Config, limits: ValidationLimits, now_s: float
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The ``mapInPandas`` function that reads and validates raw files.

    Input rows: ``batch_id``, ``machine_uuid``, ``key``; output: ``batch_id`` and
    the verdict as JSON. A file that is gone is rejected like a broken one; an
    unreachable store fails the task (and the run, which leaves the files
    pending for the next one).
    """

    def validate(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        read = raw_reader(raw_url, s3)
        for frame in frames:
            verdicts = []
            for machine_uuid, key in frame[["machine_uuid", "key"]].itertuples(index=False):
                try:
                    data = read(key)
                except FileNotFoundError:
                    verdict = missing_file(f"{raw_url}/{key}")
                else:
                    verdict, _ = validate_arrays(
                        data, key=key, machine_uuid=machine_uuid, limits=limits, now_s=now_s
                    )
                verdicts.append(verdict_to_json(verdict))
            yield pd.DataFrame({"batch_id": frame["batch_id"], "verdict": verdicts})

    return validate


def check_files(ctx: Context, batches: list[Batch], now_s: float) -> dict[int, Verdict]:
    """The verdict of each file, computed by Spark tasks (only verdicts reach the driver)."""
    spark = ctx.spark
    storage = ctx.config.storage
    tasks = min(
        len(batches),
        max(spark.sparkContext.defaultParallelism * 4, math.ceil(len(batches) / FILES_PER_TASK)),
    )
    keys = local_frame(spark, [(b.id, b.machine_uuid, b.key) for b in batches], CHECK_SCHEMA)
    keys = keys.repartition(max(tasks, 1))
    rows = keys.mapInPandas(
        file_checker(storage.raw_url, storage.s3, _limits(ctx), now_s),
        VERDICT_SCHEMA,
    ).collect()
    return {row.batch_id: verdict_from_json(row.verdict) for row in rows}


def refuse_unusable(neighbours: list[Batch], verdicts: dict[int, Verdict]) -> None:
    """Stop when an accepted file from an earlier run no longer validates.

    Its seconds are recomputed with it; without it (deleted from the raw store,
    say) they would silently lose data, so the run stops with the file named
    and the operator's way out.

    Raises:
        RuntimeError: when a neighbour no longer validates.
    """
    broken = [(b, verdicts.get(b.id)) for b in neighbours]
    broken = [(b, v) for b, v in broken if v is None or not v.accepted]
    if broken:
        batch, verdict = broken[0]
        why = verdict.reason if verdict is not None else "no verdict"
        raise RuntimeError(
            f"{len(broken)} accepted file(s) no longer usable, e.g. {batch.key}: {why}; "
            "restore them or send them back with `etl reprocess --key`"
        )


def raw_reader(raw_url: str, s3: S3Config) -> Callable[[str], bytes]:
    """The bytes of a raw key (for Spark's Python workers: this factory pickles, a client not)."""
    return open_store(raw_url, s3).get


def _window_filter(windows: list[tuple[str, int, int]]) -> str:
    """SQL filter of the StateVector rows of the windows (with day pruning)."""
    return " OR ".join(
        f"(machine_uuid = {quote(machine)}"
        f" AND day >= '{utc_day(ts_from)}' AND day <= '{utc_day(ts_to)}'"
        f" AND ts >= {ts_from} AND ts < {ts_to})"
        for machine, ts_from, ts_to in windows
    )


def neighbour_batches(
    ctx: Context, windows: list[tuple[str, int, int]], margin_s: float
) -> list[Batch]:
    """Accepted files of the windows' machines with data within ``margin_s`` of a window."""
    accepted = (BatchStatus.PREPROCESSED, BatchStatus.INFERRED, BatchStatus.EXPORTED)
    found: dict[int, Batch] = {}
    by_machine: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for machine, ts_from, ts_to in windows:
        by_machine[machine].append((ts_from, ts_to))
    with ctx.uow() as uow:
        for machine, spans in by_machine.items():
            for batch in uow.batches.by_machine(ctx.config.pipeline.name, machine):
                if batch.status not in accepted or batch.first_timestamp is None:
                    continue
                last = (
                    batch.last_timestamp
                    if batch.last_timestamp is not None
                    else batch.first_timestamp
                )
                if any(
                    last >= ts_from - margin_s and batch.first_timestamp <= ts_to + margin_s
                    for ts_from, ts_to in spans
                ):
                    found[batch.id] = batch
    return list(found.values())


def recompute_statevectors(
    ctx: Context,
    sources: list[Batch],
    windows: list[tuple[str, int, int]],
    now_s: float,
    *,
    report: Accumulator[dict[int, str]] | None = None,
) -> DataFrame:
    """StateVectors of the windows from these files (see :func:`statevectors_from_files`).

    The rows come packed, one row per group (:func:`unpacked_statevectors` gives the
    table's rows): cheap to cache, and the ``day`` computed once per group. Without
    ``report``, the files are known to be accepted; with it, the groups report
    every file's verdict there.
    """
    storage = ctx.config.storage
    return statevectors_from_files(
        ctx.spark,
        [
            (b.machine_uuid, b.id, b.key, float(b.first_timestamp), float(b.last_timestamp))
            for b in sources
            if b.first_timestamp is not None and b.last_timestamp is not None
        ],
        windows,
        read=partial(raw_reader, storage.raw_url, storage.s3),
        limits=_limits(ctx),
        now_s=now_s,
        max_gap_s=ctx.config.preprocess.max_gap_s,
        params=denoise_params(ctx),
        context_s=_context_s(ctx),
        report=report,
        location=storage.raw_url,
        packed=True,
    )


def write_statevectors(
    vectors: DataFrame,
    url: str,
    windows: list[tuple[str, int, int]],
    *,
    txn_app_id: str,
    txn_version: int,
) -> tuple[int, int]:
    """Replace exactly the windows' seconds with ``vectors`` (rows that lost coverage go too).

    ``vectors`` are table rows (:func:`unpacked_statevectors`: with their ``day``).

    Returns:
        The new table version and the StateVector rows written.
    """
    return replace_where(
        vectors,
        url,
        _window_filter(windows),
        partition_by=PARTITION_BY,
        txn_app_id=txn_app_id,
        txn_version=txn_version,
        properties=TABLE_PROPERTIES,
    )


def _split_duplicates(
    ctx: Context, checked: list[Checked]
) -> tuple[list[Checked], dict[int, Batch]]:
    """Accepted files that repeat an accepted file's bytes become duplicates of it.

    Returns:
        The unique accepted files, and the original of each duplicate by its id.
    """
    accepted = [item for item in checked if item.verdict.accepted]
    with ctx.uow() as uow:
        stored = uow.batches.by_content_hashes(
            ctx.config.pipeline.name, {item.verdict.quality["sha256"] for item in accepted}
        )
    unique: list[Checked] = []
    duplicate_of: dict[int, Batch] = {}
    seen: dict[str, Batch] = {}
    for item in accepted:
        digest = item.verdict.quality["sha256"]
        earlier = [
            b
            for b in stored.get(digest, [])
            if b.id != item.batch.id
            and b.status not in (BatchStatus.REJECTED, BatchStatus.DISCOVERED)
        ]
        original = earlier[0] if earlier else seen.get(digest)
        if original is not None:
            duplicate_of[item.batch.id] = original
            continue
        seen[digest] = item.batch
        unique.append(item)
    return unique, duplicate_of


def _record(
    ctx: Context,
    checked: list[Checked],
    duplicate_of: dict[int, Batch],
    delta_version: int | None,
    run_id: int,
) -> None:
    """Each file's verdict, the facts read from it and the Delta version, in one transaction."""
    moves = []
    for item in checked:
        batch, verdict = item.batch, item.verdict
        quality = verdict.quality
        facts = (
            FileFacts(
                quality["sha256"],
                size_bytes=quality.get("bytes"),
                rows=quality.get("rows"),
                first_timestamp=verdict.first_timestamp,
                last_timestamp=verdict.last_timestamp,
            )
            if quality.get("sha256")
            else None
        )
        if batch.id in duplicate_of:
            moves.append(duplicate(batch, duplicate_of[batch.id], facts=facts))
        elif not verdict.accepted:
            moves.append(
                rejected(batch.id, verdict.reason or "rejected", quality=quality, facts=facts)
            )
        else:
            assert delta_version is not None
            moves.append(
                preprocessed(
                    batch.id,
                    delta_version=delta_version,
                    warnings=verdict.warnings,
                    quality=quality,
                    facts=facts,
                )
            )
    with ctx.uow() as uow:
        uow.batches.move_many(moves, run_id=run_id)
        uow.commit()


def _limits(ctx: Context) -> ValidationLimits:
    settings = ctx.config.preprocess
    return ValidationLimits(
        min_valid_epoch_s=settings.min_valid_epoch_s,
        max_future_s=settings.max_future_s,
        max_speed_mps=settings.max_speed_mps,
        max_jump_m=settings.max_jump_m,
    )


def denoise_params(ctx: Context) -> DenoiseParams:
    """The de-noising preprocessing runs with (training's noisy copies run it too)."""
    settings = ctx.config.preprocess
    return DenoiseParams(max_jump_m=settings.max_jump_m)


def _context_s(ctx: Context) -> float:
    """How far from a second its samples may lie, at the configured parameters."""
    return context_seconds(ctx.config.preprocess.max_gap_s, denoise_params(ctx))


def announced_range(batch: Batch) -> tuple[float, float] | None:
    """Where the file's samples should lie: its announced time range, widened by the slack."""
    if batch.first_timestamp is None:
        return None
    last = batch.last_timestamp if batch.last_timestamp is not None else batch.first_timestamp
    return batch.first_timestamp - ANNOUNCED_SLACK_S, last + ANNOUNCED_SLACK_S


def outside_announced(unique: list[Checked]) -> list[Batch]:
    """Accepted files whose samples lie outside their :func:`announced_range`."""
    outside = []
    for item in unique:
        expected = announced_range(item.batch)
        first, last = item.verdict.first_timestamp, item.verdict.last_timestamp
        if expected is None or not expected[0] <= first <= last <= expected[1]:
            outside.append(item.batch)
    return outside


def _nearby(ctx: Context, windows: list[tuple[str, int, int]], batches: list[Batch]) -> list[Batch]:
    """Accepted files of earlier runs within the resampler's reach of the windows."""
    context = _context_s(ctx)
    in_chunk = {b.id for b in batches}
    return [b for b in neighbour_batches(ctx, windows, context + 1) if b.id not in in_chunk]


def one_pass(
    ctx: Context, batches: list[Batch], now_s: float
) -> tuple[list[tuple[str, int, int]], list[Batch], dict[int, Verdict], DataFrame]:
    """Validate and compute in one Spark job, planned from the announced time ranges.

    Every second within the resampler's reach of a file's :func:`announced_range` is
    recomputed, from every file (new, or accepted earlier) announced near it; the
    groups validate what they read and report the verdicts. That is the two-pass
    result whenever each accepted file's samples lie within its announced range: the
    extra seconds are recomputed from the same files, and rejected files and copies
    of accepted ones add no sample. The caller checks that before using the rows.

    Returns:
        The windows, the earlier files read, every file's verdict, and the packed rows
        (persisted and computed: the job ran).
    """
    context = _context_s(ctx)
    planned = []
    for batch in batches:
        expected = announced_range(batch)
        if expected is not None:
            planned.append(replace(batch, first_timestamp=expected[0], last_timestamp=expected[1]))
    windows = merge_windows(
        [(b.machine_uuid, b.first_timestamp, b.last_timestamp) for b in planned], context
    )
    neighbours = _nearby(ctx, windows, batches)
    report = ctx.spark.sparkContext.accumulator({}, VerdictReport())
    packed = recompute_statevectors(ctx, [*planned, *neighbours], windows, now_s, report=report)
    packed.persist(StorageLevel.MEMORY_AND_DISK).count()
    verdicts = {int(i): verdict_from_json(v) for i, v in report.value.items()}
    unseen = [b for b in [*batches, *neighbours] if b.id not in verdicts]
    if unseen:  # a file without an announced time (in no group)
        verdicts |= check_files(ctx, unseen, now_s)
    return windows, neighbours, verdicts, packed


def validated_pass(
    ctx: Context,
    batches: list[Batch],
    unique: list[Checked],
    verdicts: dict[int, Verdict],
    now_s: float,
) -> tuple[list[tuple[str, int, int]], DataFrame]:
    """Recompute from the validated time ranges of the unique accepted files.

    For a chunk where a file's samples lie outside its announced range: the windows
    and the files each group reads follow from what validation found.
    """
    context = _context_s(ctx)
    fresh = [_as_validated(i) for i in unique]
    windows = merge_windows(
        [(b.machine_uuid, float(b.first_timestamp), float(b.last_timestamp)) for b in fresh],
        context,
    )
    neighbours = _nearby(ctx, windows, batches)
    unknown = [b for b in neighbours if b.id not in verdicts]
    if unknown:
        refuse_unusable(unknown, check_files(ctx, unknown, now_s))
    packed = recompute_statevectors(ctx, [*fresh, *neighbours], windows, now_s)
    return windows, unpacked_statevectors(packed)


def preprocess_chunk(ctx: Context, batches: list[Batch], run_id: int, chunk: int) -> dict[str, Any]:
    """Validate, recompute StateVectors and record one chunk of files."""
    clock = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    now_s = time.time()
    url = statevectors_url(ctx.config.output_url)
    # an existing table's state loads beside the groups (a missing one: nothing to load)
    warmup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="delta-warmup")
    table = warmup.submit(warm_table, ctx.spark, url)
    warmup.shutdown(wait=False)
    windows, neighbours, verdicts, packed = one_pass(ctx, batches, now_s)
    try:
        refuse_unusable(neighbours, verdicts)
        checked = [Checked(b, verdicts[b.id]) for b in batches]
        unique, duplicate_of = _split_duplicates(ctx, checked)
        lap("groups_s")
        version = None
        rows = written = replanned = 0
        if unique:
            if outside_announced(unique):
                replanned = 1
                packed.unpersist()  # not used: free the cache for the second group job
                windows, vectors = validated_pass(ctx, batches, unique, verdicts, now_s)
            else:
                vectors = unpacked_statevectors(packed)
            table.result()  # raises what the set-up raised
            lap("delta_setup_wait_s")
            version, written = write_statevectors(
                vectors,
                url,
                windows,
                txn_app_id=f"{ctx.config.pipeline.name}-preprocess",
                txn_version=run_id * 100_000 + chunk,
            )
            lap("statevectors_s")
            rows = sum(int(i.verdict.quality.get("rows", 0)) for i in unique)
    finally:
        packed.unpersist()
    _record(ctx, checked, duplicate_of, version, run_id)
    lap("record_s")
    reasons = Counter(
        _reason_kind(c.verdict.reason or "") for c in checked if not c.verdict.accepted
    )
    return {
        "files": len(batches),
        "accepted": len(unique),
        "rejected": sum(reasons.values()),
        "duplicates": len(duplicate_of),
        "rows": rows,
        "vectors_written": written,
        "replanned_chunks": replanned,
        "reasons": reasons,
        "timings": Counter(timings),
    }


def _as_validated(item: Checked) -> Batch:
    """The batch with what validation learnt of it (time range, quality)."""
    quality = item.verdict.quality
    return replace(
        item.batch,
        first_timestamp=item.verdict.first_timestamp,
        last_timestamp=item.verdict.last_timestamp,
        quality=quality,
    )


def _reason_kind(reason: str) -> str:
    """A reason without its particulars, for counting (``missing column acc_x`` stays)."""
    return reason.split(":", maxsplit=1)[0][:60]


def preprocess(
    ctx: Context, *, limit: int | None = None, chunk_files: int = CHUNK_FILES
) -> dict[str, Any]:
    """Process every pending file (or the ``limit`` oldest), chunk by chunk, with progress."""
    pipeline = ctx.config.pipeline.name
    with ctx.uow() as uow:
        pending = uow.batches.by_status(pipeline, BatchStatus.DISCOVERED, limit)
        run = uow.runs.start(pipeline, "preprocess")
        uow.commit()
    totals: dict[str, Any] = {
        "files": 0,
        "accepted": 0,
        "rejected": 0,
        "duplicates": 0,
        "rows": 0,
        "vectors_written": 0,
        "replanned_chunks": 0,
        "reasons": Counter(),
        "timings": Counter(),
    }
    started = time.monotonic()
    # one machine's files together, in time order, so windows merge within a chunk
    pending.sort(key=lambda b: (b.machine_uuid, b.first_timestamp or 0.0, b.id))
    try:
        if pending:
            ctx.spark  # noqa: B018 - the JVM's start is timed on its own
            totals["timings"]["spark_start_s"] = time.monotonic() - started
        for chunk, first in enumerate(range(0, len(pending), chunk_files)):
            part = preprocess_chunk(ctx, pending[first : first + chunk_files], run.id, chunk)
            for key, value in part.items():
                totals[key] += value
            elapsed = time.monotonic() - started
            rate = totals["files"] / elapsed if elapsed > 0 else 0.0
            eta = (len(pending) - totals["files"]) / rate if rate > 0 else 0.0
            log.info(
                "preprocess: %d/%d files, %d rows, %.1f files/s, %.0f rows/s, ETA %.0f s",
                totals["files"],
                len(pending),
                totals["rows"],
                rate,
                totals["rows"] / elapsed if elapsed > 0 else 0.0,
                eta,
            )
    except BaseException:
        with ctx.uow() as uow:
            uow.runs.finish(run.id, RunStatus.FAILED, totals)
            uow.commit()
        raise
    totals["seconds"] = round(time.monotonic() - started, 1)
    totals["reasons"] = dict(totals["reasons"].most_common())
    totals["timings"] = {k: round(v, 1) for k, v in totals["timings"].items()}
    with ctx.uow() as uow:
        uow.runs.finish(run.id, RunStatus.SUCCEEDED, totals)
        uow.commit()
    return totals
