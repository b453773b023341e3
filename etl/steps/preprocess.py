"""``etl preprocess``: validate registered raw files and (re)compute StateVectors.

Per chunk of pending files:

1. read each file from the raw store and validate it (bad files are rejected
   with a reason, duplicates of an already accepted file by content too);
2. find every second the new samples can influence (their time range plus the
   resampler's context on both sides) and every accepted file, old or new,
   holding samples near those seconds;
3. let Spark read those raw files natively, apply validation's repairs, compute
   the per-second IMU statistics, and hand the 1 Hz rows of each window to the
   resampler (``applyInPandas``); so the table is a function of the set of
   files, not of their arrival order;
4. replace exactly those seconds in the StateVectors table (one Delta commit),
   and record each file's verdict and the Delta version in the state store.

Raw files stay the only copy of the samples. A kill at any point leaves files
``discovered`` in the state store; the rerun rewrites the same rows.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from etl.io.delta import quote, replace_where
from etl.preprocess import DenoiseParams, context_seconds
from etl.preprocess.spark import build_statevectors, clean_samples, raw_schema
from etl.state.domain import Batch, BatchStatus, RunStatus
from etl.validate import ValidationLimits, Verdict, physical_ranges, validate_batch

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from etl.bootstrap import Context

log = logging.getLogger(__name__)

CHUNK_FILES = 400
"""Files per Spark round: large enough to amortise a job, small enough for the driver."""
READ_THREADS = 8


@dataclass(frozen=True)
class Checked:
    """A pending batch and what validation made of it."""

    batch: Batch
    verdict: Verdict


def statevectors_url(output_url: str) -> str:
    """The StateVectors table (shared/contracts/statevectors.md)."""
    return f"{output_url}/statevectors"


def _day(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


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


def _read_and_validate(ctx: Context, batch: Batch, limits: ValidationLimits) -> Verdict:
    try:
        data = ctx.raw_store.get(batch.key)
    except FileNotFoundError:
        return Verdict(accepted=False, reason=f"file not found: {batch.url}")
    return validate_batch(data, key=batch.key, machine_uuid=batch.machine_uuid, limits=limits)


def _window_filter(windows: list[tuple[str, int, int]], margin_s: float, column: str) -> str:
    """SQL filter of the rows within ``margin_s`` of the windows (with day pruning)."""
    clauses = []
    for machine, ts_from, ts_to in windows:
        low, high = ts_from - margin_s, ts_to + margin_s
        clauses.append(
            f"(machine_uuid = {quote(machine)} AND day >= '{_day(low)}' AND day <= '{_day(high)}'"
            f" AND {column} >= {low} AND {column} < {high})"
        )
    return " OR ".join(clauses)


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


def read_samples(ctx: Context, urls: list[str], limits: ValidationLimits) -> DataFrame:
    """The validated samples of these raw files, read by Spark itself."""
    from pyspark.sql import functions as F

    raw = ctx.spark.read.schema(raw_schema()).parquet(*urls).withColumn("path", F.input_file_name())
    return clean_samples(
        raw,
        ranges=physical_ranges(limits),
        min_epoch_s=limits.min_valid_epoch_s,
        max_epoch_s=time.time() + limits.max_future_s,
    )


def recompute_statevectors(
    samples: DataFrame,
    windows: list[tuple[str, int, int]],
    *,
    max_gap_s: float,
    params: DenoiseParams,
) -> DataFrame:
    """StateVectors of the windows from the given samples (with a ``day`` partition column)."""
    from pyspark.sql import functions as F

    spark = samples.sparkSession
    frame = spark.createDataFrame(
        [(m, i, a, b) for i, (m, a, b) in enumerate(windows)],
        "machine_uuid string, window_id int, ts_from long, ts_to long",
    )
    vectors = build_statevectors(
        samples,
        frame,
        max_gap_s=max_gap_s,
        params=params,
        context_s=context_seconds(max_gap_s, params),
    )
    return vectors.withColumn("day", F.date_format(F.timestamp_seconds("ts"), "yyyy-MM-dd"))


def write_statevectors(
    vectors: DataFrame,
    url: str,
    windows: list[tuple[str, int, int]],
    *,
    txn_app_id: str,
    txn_version: int,
) -> int:
    """Replace exactly the windows' seconds (rows that lost coverage go too)."""
    return replace_where(
        vectors,
        url,
        _window_filter(windows, 0, "ts"),
        partition_by=("machine_uuid", "day"),
        txn_app_id=txn_app_id,
        txn_version=txn_version,
    )


def _check_chunk(ctx: Context, batches: list[Batch], limits: ValidationLimits) -> list[Checked]:
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        verdicts = list(pool.map(lambda b: _read_and_validate(ctx, b, limits), batches))
    return [Checked(b, v) for b, v in zip(batches, verdicts, strict=True)]


def _split_duplicates(ctx: Context, checked: list[Checked]) -> tuple[list[Checked], dict[int, int]]:
    """Accepted files that repeat an accepted file's bytes become duplicates of it."""
    pipeline = ctx.config.pipeline.name
    unique: list[Checked] = []
    duplicate_of: dict[int, int] = {}
    seen: dict[str, int] = {}
    with ctx.uow() as uow:
        for item in checked:
            if not item.verdict.accepted:
                continue
            digest = item.verdict.quality["sha256"]
            if digest in seen:
                duplicate_of[item.batch.id] = seen[digest]
                continue
            earlier = [
                b
                for b in uow.batches.by_content_hash(pipeline, digest)
                if b.id != item.batch.id
                and b.status not in (BatchStatus.REJECTED, BatchStatus.DISCOVERED)
            ]
            if earlier:
                duplicate_of[item.batch.id] = earlier[0].id
                continue
            seen[digest] = item.batch.id
            unique.append(item)
    return unique, duplicate_of


def _record(
    ctx: Context,
    checked: list[Checked],
    duplicate_of: dict[int, int],
    delta_version: int | None,
    run_id: int,
) -> None:
    with ctx.uow() as uow:
        for item in checked:
            batch, verdict = item.batch, item.verdict
            if verdict.quality.get("sha256"):
                uow.batches.record_file(
                    batch.id,
                    content_hash=verdict.quality["sha256"],
                    size_bytes=verdict.quality.get("bytes"),
                    rows=verdict.quality.get("rows"),
                    first_timestamp=verdict.first_timestamp,
                    last_timestamp=verdict.last_timestamp,
                )
            if batch.id in duplicate_of:
                uow.batches.mark_duplicate(batch.id, duplicate_of[batch.id], run_id=run_id)
            elif not verdict.accepted:
                uow.batches.mark_rejected(
                    batch.id, verdict.reason or "rejected", run_id=run_id, quality=verdict.quality
                )
            else:
                assert delta_version is not None
                uow.batches.mark_preprocessed(
                    batch.id,
                    delta_version=delta_version,
                    warnings=verdict.warnings,
                    quality=verdict.quality,
                    run_id=run_id,
                )
        uow.commit()


def _limits(ctx: Context) -> ValidationLimits:
    settings = ctx.config.preprocess
    return ValidationLimits(
        min_valid_epoch_s=settings.min_valid_epoch_s,
        max_future_s=settings.max_future_s,
        max_speed_mps=settings.max_speed_mps,
        max_jump_m=settings.max_jump_m,
    )


def _denoise_params(ctx: Context) -> DenoiseParams:
    settings = ctx.config.preprocess
    return DenoiseParams(max_jump_m=settings.max_jump_m)


def preprocess_chunk(ctx: Context, batches: list[Batch], run_id: int, chunk: int) -> dict[str, int]:
    """Validate, store samples, recompute StateVectors and record one chunk of files."""
    clock = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    checked = _check_chunk(ctx, batches, _limits(ctx))
    unique, duplicate_of = _split_duplicates(ctx, checked)
    lap("validate_s")
    version = None
    rows = 0
    if unique:
        limits, params = _limits(ctx), _denoise_params(ctx)
        max_gap_s = ctx.config.preprocess.max_gap_s
        context = context_seconds(max_gap_s, params)
        windows = merge_windows(
            [
                (
                    i.batch.machine_uuid,
                    float(i.verdict.first_timestamp),
                    float(i.verdict.last_timestamp),
                )
                for i in unique
            ],
            context,
        )
        sources = {b.id: b.url for b in neighbour_batches(ctx, windows, context + 1)}
        sources.update({i.batch.id: i.batch.url for i in unique})
        samples = read_samples(ctx, sorted(sources.values()), limits)
        lap("plan_s")
        vectors = recompute_statevectors(samples, windows, max_gap_s=max_gap_s, params=params)
        version = write_statevectors(
            vectors,
            statevectors_url(ctx.config.output_url),
            windows,
            txn_app_id=f"{ctx.config.pipeline.name}-preprocess",
            txn_version=run_id * 100_000 + chunk,
        )
        lap("statevectors_s")
        rows = sum(int(i.verdict.quality.get("rows", 0)) for i in unique)
    _record(ctx, checked, duplicate_of, version, run_id)
    lap("record_s")
    log.info("preprocess chunk %d timings: %s", chunk, {k: round(v, 1) for k, v in timings.items()})
    return {
        "files": len(batches),
        "accepted": len(unique),
        "rejected": sum(1 for c in checked if not c.verdict.accepted),
        "duplicates": len(duplicate_of),
        "rows": rows,
    }


def preprocess(
    ctx: Context, *, limit: int | None = None, chunk_files: int = CHUNK_FILES
) -> dict[str, Any]:
    """Process every pending file (or the ``limit`` oldest), chunk by chunk, with progress."""
    pipeline = ctx.config.pipeline.name
    with ctx.uow() as uow:
        pending = uow.batches.by_status(pipeline, BatchStatus.DISCOVERED, limit)
        run = uow.runs.start(pipeline, "preprocess")
        uow.commit()
    totals: dict[str, Any] = {"files": 0, "accepted": 0, "rejected": 0, "duplicates": 0, "rows": 0}
    started = time.monotonic()
    try:
        # one machine's files together, in time order, so windows merge within a chunk
        pending.sort(key=lambda b: (b.machine_uuid, b.first_timestamp or 0.0, b.id))
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
    with ctx.uow() as uow:
        uow.runs.finish(run.id, RunStatus.SUCCEEDED, totals)
        uow.commit()
    return totals
