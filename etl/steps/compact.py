"""``etl compact``: bin-pack the Delta tables' recent partitions and vacuum old files.

Every tick rewrites each machine's rows from its cut, which leaves one small
file per machine (and day) per tick: 144 a day at a 10-minute tick, per
machine and table. Reads then pay per file. Compaction (Delta's ``OPTIMIZE``)
rewrites the partitions of the last ``maintenance.compact_days`` days into
few large files without changing a row (a ``dataChange=false`` commit, so
the idempotent writes of the jobs are unaffected), and ``VACUUM`` deletes
files no version younger than ``maintenance.vacuum_retention_h`` still uses
(``LITE``, from the log; ``etl compact --full-vacuum`` also finds the files of
writes that never committed, e.g. of killed jobs).

It runs inside the tick (``etl run``, when due) so that it is never a second
writer next to preprocess or infer (docs/deployment.md, Delta on S3).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from etl.infer.schema import CYCLES, SECONDS, SEGMENTS, table_url
from etl.io.delta import table_exists, utc_day
from etl.state.domain import RunStatus
from etl.steps import recorded_run

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from etl.bootstrap import Context

log = logging.getLogger(__name__)


DAY_PARTITIONED = frozenset({"statevectors", f"inference/{SECONDS}"})
"""Tables partitioned by ``day`` as well as ``machine_uuid`` (the writers' ``partition_by``)."""


def delta_tables(output_url: str) -> dict[str, str]:
    """The pipeline's Delta tables by name: StateVectors and the inference dump."""
    return {
        "statevectors": f"{output_url}/statevectors",
        **{f"inference/{t}": table_url(output_url, t) for t in (SECONDS, SEGMENTS, CYCLES)},
    }


def vacuum(spark: SparkSession, url: str, retention_h: float, *, full: bool = False) -> str:
    """Delete files unused for ``retention_h``; returns the mode that ran.

    ``LITE`` finds them in the transaction log instead of listing the table's
    folders (on S3, a listing of every file of every partition), so it is what
    the daily tick runs. It does not see files that no commit ever named
    (writes of killed jobs); ``full`` lists, and LITE falls back to it when
    Delta refuses LITE (a log truncated since the last vacuum).
    """
    from pyspark.errors import PySparkException

    path = url.replace("`", "``")
    retain = f"RETAIN {float(retention_h)} HOURS"
    if not full:
        try:
            spark.sql(f"VACUUM delta.`{path}` LITE {retain}").collect()
            return "lite"
        except PySparkException as exc:
            log.warning("VACUUM LITE refused on %s (%s): a full vacuum instead", url, exc)
    spark.sql(f"VACUUM delta.`{path}` {retain}").collect()
    return "full"


def compact_due(ctx: Context, now: datetime | None = None) -> bool:
    """Whether the last successful compaction is older than ``maintenance.compact_every_h``."""
    now = now or datetime.now(UTC)
    every = timedelta(hours=ctx.config.maintenance.compact_every_h)
    with ctx.uow() as uow:
        done = [
            run.finished_at or run.started_at
            for run in uow.runs.for_pipeline(ctx.config.pipeline.name, "compact")
            if run.status is RunStatus.SUCCEEDED
        ]
    if not done:
        return True
    return now - max(done) >= every  # the state store hands back aware UTC times


def compact(
    ctx: Context,
    days: int | None = None,
    now: datetime | None = None,
    *,
    full_vacuum: bool = False,
) -> dict[str, Any]:
    """Optimize each existing table's partitions of the last ``days`` days, then vacuum it."""
    from delta.tables import DeltaTable

    settings = ctx.config.maintenance
    days = settings.compact_days if days is None else days
    since = utc_day(((now or datetime.now(UTC)) - timedelta(days=days)).timestamp())
    with recorded_run(ctx, "compact", {"since_day": since, "tables": {}}) as (_, summary):
        for name, url in delta_tables(ctx.config.output_url).items():
            if not table_exists(ctx.spark, url):
                continue
            started = time.monotonic()
            optimize = DeltaTable.forPath(ctx.spark, url).optimize()
            if name in DAY_PARTITIONED:
                optimize = optimize.where(f"day >= '{since}'")
            metrics = optimize.executeCompaction().first()["metrics"]
            mode = vacuum(ctx.spark, url, settings.vacuum_retention_h, full=full_vacuum)
            summary["tables"][name] = {
                "files_removed": int(metrics["numFilesRemoved"]),
                "files_added": int(metrics["numFilesAdded"]),
                "vacuum": mode,
                "seconds": round(time.monotonic() - started, 1),
            }
            log.info("compact %s: %s", name, summary["tables"][name])
    return summary
