"""``etl export``: the postprocessor, inference results -> the external results database.

Work queue: every succeeded inference run, in id order, that has no succeeded
export yet for a table. Per run and table:

1. read the CURRENT rows of the inference Delta table (segments for
   ``machine_activity``, cycles for ``machine_cycle``) of the machines in the
   run's ``input_versions["cuts"]`` from each machine's cut on, plus the last
   row before the cut as context, so that an overlap across the cut is seen;
2. adapt them to the results contract (:mod:`etl.export.adapt`) and judge
   them (:mod:`etl.export.checks`); the context rows are dropped afterwards;
3. record the export as running, then load: the good rows replace the
   pipeline's rows from each cut in one transaction, the rejected ones replace
   the quarantine's (:class:`etl.export.jdbc.ResultsDatabase`); record rows
   loaded and rejected with a reason that counts the failed rules.

Reading the current rows, not the run's Delta version, is what lets an old
run's export be redone at any time: it can only bring the target closer to
the table. Finally the batches that were ``inferred`` when the step started
(so their inference runs were already in the queue) move to ``exported``.
A failed load marks its export failed and the step raises; a rerun redoes it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.export.adapt import (
    MACHINE_ACTIVITY,
    MACHINE_CYCLE,
    RESULT_TABLES,
    activity_rows,
    cycle_rows,
)
from etl.export.checks import check_activities, check_cycles, rejection_summary
from etl.infer.schema import CYCLES, SEGMENTS, cycles_schema, segments_schema, table_url
from etl.io.delta import table_exists
from etl.state.domain import Batch, BatchStatus, Export, InferenceRun, RunStatus

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from etl.bootstrap import Context
    from etl.export import LoadResult, ResultsSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """Where an external table's rows come from and how they are adapted and judged."""

    inference_table: str
    schema: Callable[[], StructType]
    time_column: str
    adapt: Callable[[DataFrame, str], DataFrame]
    check: Callable[..., DataFrame]


SOURCES: dict[str, Source] = {
    MACHINE_ACTIVITY.name: Source(
        SEGMENTS, segments_schema, "start", activity_rows, check_activities
    ),
    MACHINE_CYCLE.name: Source(CYCLES, cycles_schema, "cycle_start", cycle_rows, check_cycles),
}
"""External table -> its source, in export order."""


@dataclass(frozen=True)
class PendingExport:
    """One table of one inference run still to export."""

    run: InferenceRun
    table: str


def pending_exports(
    runs: Iterable[InferenceRun], exports: Mapping[int, Iterable[Export]]
) -> list[PendingExport]:
    """Succeeded runs' tables without a succeeded export, by run id then table.

    Args:
        runs: the pipeline's inference runs.
        exports: inference run id -> its exports so far.
    """
    pending = []
    for run in sorted(runs, key=lambda r: r.id):
        if run.status != RunStatus.SUCCEEDED:
            continue
        done = {e.table_name for e in exports.get(run.id, ()) if e.status == RunStatus.SUCCEEDED}
        pending += [PendingExport(run, table) for table in SOURCES if table not in done]
    return pending


def run_cuts(run: InferenceRun) -> dict[str, int]:
    """Machine UUID -> the epoch second from which ``run`` rewrote its rows.

    Raises:
        ValueError: the run does not say which rows it rewrote.
    """
    cuts = run.input_versions.get("cuts")
    if not isinstance(cuts, dict):
        raise ValueError(f"inference run {run.id} has no input_versions.cuts")
    return {str(machine): int(cut) for machine, cut in cuts.items()}


def rows_from_cuts(rows: DataFrame, time_column: str, cuts_frame: DataFrame) -> DataFrame:
    """Rows of the machines in ``cuts_frame`` at or after their cut, plus the last one before.

    The row before the cut is context for the checks (an overlap across the
    cut); callers drop it again with :func:`drop_context`.
    """
    from pyspark.sql import functions as F

    mine = rows.join(F.broadcast(cuts_frame), "machine_uuid")
    after = mine.where(F.col(time_column) >= F.col("cut")).select(*rows.columns)
    before = (
        mine.where(F.col(time_column) < F.col("cut"))
        .groupBy("machine_uuid")
        .agg(F.max_by(F.struct(*rows.columns), F.col(time_column)).alias("row"))
        .select("row.*")
    )
    return after.unionByName(before)


def drop_context(checked: DataFrame, time_column: str, cuts_frame: DataFrame) -> DataFrame:
    """Keep the adapted rows at or after their machine's cut."""
    from pyspark.sql import functions as F

    return (
        checked.join(F.broadcast(cuts_frame), "machine_uuid")
        .where(F.unix_seconds(F.col(time_column)) >= F.col("cut"))
        .select(*checked.columns)
    )


def checked_rows(
    spark: SparkSession,
    output_url: str,
    table: str,
    *,
    pipeline: str,
    cuts: Mapping[str, int],
    min_epoch_s: float,
    max_epoch_s: float,
) -> DataFrame:
    """The current rows of ``table`` from the cuts on, adapted and with ``reject_reason``."""
    from pyspark.sql import functions as F

    source = SOURCES[table]
    url = table_url(output_url, source.inference_table)
    if table_exists(spark, url):
        rows = spark.read.format("delta").load(url).select(*source.schema().fieldNames())
        rows = rows.where(F.col("machine_uuid").isin(sorted(cuts)))  # prunes files early
    else:  # nothing scored yet: the load still clears the target from the cuts
        rows = spark.createDataFrame([], source.schema())
    cuts_frame = spark.createDataFrame(sorted(cuts.items()), "machine_uuid string, cut long")
    adapted = source.adapt(rows_from_cuts(rows, source.time_column, cuts_frame), pipeline)
    checked = source.check(adapted, min_epoch_s=min_epoch_s, max_epoch_s=max_epoch_s)
    return drop_context(checked, RESULT_TABLES[table].time_column, cuts_frame)


def _error_line(exc: BaseException) -> str:
    """The first line of an error (Py4J errors carry a whole Java stack trace)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def export_one(
    ctx: Context,
    sink: ResultsSink,
    item: PendingExport,
    *,
    run_id: int,
    max_epoch_s: float,
) -> dict[str, Any]:
    """Export one table of one inference run, recorded in the state store."""
    config = ctx.config
    pipeline = config.pipeline.name
    with ctx.uow() as uow:
        record = uow.exports.start(
            pipeline, item.table, inference_run_id=item.run.id, run_id=run_id
        )
        uow.commit()
    started = time.monotonic()
    try:
        cuts = run_cuts(item.run)
        frame = checked_rows(
            ctx.spark,
            config.output_url,
            item.table,
            pipeline=pipeline,
            cuts=cuts,
            min_epoch_s=config.preprocess.min_valid_epoch_s,
            max_epoch_s=max_epoch_s,
        )
        result: LoadResult = sink.load(
            frame, item.table, pipeline=pipeline, cuts=cuts, export_id=record.id
        )
    except BaseException as exc:
        with ctx.uow() as uow:
            uow.exports.finish(record.id, RunStatus.FAILED, reason=_error_line(exc))
            uow.commit()
        raise
    reason = rejection_summary(result.reasons, result.rows_rejected)
    with ctx.uow() as uow:
        uow.exports.finish(
            record.id,
            RunStatus.SUCCEEDED,
            rows_loaded=result.rows_loaded,
            rows_rejected=result.rows_rejected,
            reason=reason,
        )
        uow.commit()
    if reason:
        log.warning("export %d (%s): %s", record.id, item.table, reason)
    return {
        "export_id": record.id,
        "inference_run_id": item.run.id,
        "table": item.table,
        "rows_loaded": result.rows_loaded,
        "rows_rejected": result.rows_rejected,
        "reasons": result.reasons,
        "seconds": round(time.monotonic() - started, 1),
    }


def mark_exported(ctx: Context, batches: Iterable[Batch], run_id: int) -> int:
    """Move the batches to ``exported`` unless they changed since (a newer inference).

    Returns:
        How many moved.
    """
    moved = 0
    with ctx.uow() as uow:
        for batch in batches:
            current = uow.batches.get(batch.id)
            if current.status == BatchStatus.INFERRED and current.updated_at == batch.updated_at:
                uow.batches.mark_status(batch.id, BatchStatus.EXPORTED, run_id=run_id)
                moved += 1
        uow.commit()
    return moved


def export(ctx: Context, *, sink: ResultsSink | None = None) -> dict[str, Any]:
    """Export every pending inference run's tables, then mark inferred batches exported.

    Args:
        ctx: the pipeline's context.
        sink: where to load (default: the PostgreSQL database of ``results.url``).

    Returns:
        The summary kept with the step's run, or ``{"skipped": ...}`` when no
        results database is configured.
    """
    from etl.export.jdbc import ResultsDatabase

    config = ctx.config
    if config.results.url is None and sink is None:
        return {"skipped": "no results database configured"}
    pipeline = config.pipeline.name
    with ctx.uow() as uow:
        # batches first: a batch inferred by now has its inference run succeeded by now
        inferred = uow.batches.by_status(pipeline, BatchStatus.INFERRED)
        runs = uow.inference_runs.for_pipeline(pipeline, status=RunStatus.SUCCEEDED)
        exports: dict[int, list[Export]] = defaultdict(list)
        for record in uow.exports.for_pipeline(pipeline):
            if record.inference_run_id is not None:
                exports[record.inference_run_id].append(record)
        run = uow.runs.start(pipeline, "export")
        uow.commit()
    pending = pending_exports(runs, exports)
    summary: dict[str, Any] = {"exports": [], "rows_loaded": 0, "rows_rejected": 0}
    started = time.monotonic()
    owned = sink is None
    target = sink if sink is not None else ResultsDatabase.from_config(config.results)
    max_epoch_s = time.time() + config.preprocess.max_future_s
    try:
        if pending:
            target.ensure_tables()
        for item in pending:
            done = export_one(ctx, target, item, run_id=run.id, max_epoch_s=max_epoch_s)
            summary["exports"].append(done)
            summary["rows_loaded"] += done["rows_loaded"]
            summary["rows_rejected"] += done["rows_rejected"]
        summary["batches_exported"] = mark_exported(ctx, inferred, run.id)
    except BaseException:
        summary["seconds"] = round(time.monotonic() - started, 1)
        with ctx.uow() as uow:
            uow.runs.finish(run.id, RunStatus.FAILED, summary)
            uow.commit()
        raise
    finally:
        if owned:
            target.close()
    summary["seconds"] = round(time.monotonic() - started, 1)
    log.info(
        "export: %d exports, %d rows loaded, %d rejected, %d batches exported in %.1f s",
        len(summary["exports"]),
        summary["rows_loaded"],
        summary["rows_rejected"],
        summary["batches_exported"],
        summary["seconds"],
    )
    with ctx.uow() as uow:
        uow.runs.finish(run.id, RunStatus.SUCCEEDED, summary)
        uow.commit()
    return summary
