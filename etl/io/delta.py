"""Idempotent Delta writes: one atomic ``replaceWhere`` commit per write.

Rewriting exactly the rows a predicate selects makes a retried write give the
same table as a single one, and ``txnAppId``/``txnVersion`` lets Delta itself
skip a write that a killed-and-restarted job already committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def utc_day(seconds: float) -> str:
    """The ``day`` partition value (ISO date, UTC) of an epoch second."""
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def table_exists(spark: SparkSession, url: str) -> bool:
    """Whether a Delta table lives at ``url``."""
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, url)


def warm_table(spark: SparkSession, url: str) -> bool:
    """Load an existing table's state; whether the table exists.

    Meant to run in a background thread while the job's first Spark stage runs.
    Delta looks a write's ``txnAppId`` up in the table's state, which a fresh JVM
    rebuilds from the log with Spark jobs: this moves that off the write's path.
    A missing table is left to its first write, which creates it
    (:func:`replace_where`) and needs no state. Creating it empty here, as
    sessions 7-9 did, cost a commit and then that reconstruction: the first
    preprocess of 10 machine-days spent ~8 s more CPU and ~3 s more time
    (make bench-preprocess, session 10).
    """
    if not table_exists(spark, url):
        return False
    is_empty(spark, url)
    return True


def is_empty(spark: SparkSession, url: str) -> bool:
    """Whether the table holds no data file (just created, say)."""
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, url).detail().first()["numFiles"]) == 0


def latest_commit(spark: SparkSession, url: str) -> tuple[int, dict[str, str]]:
    """The table's newest version number and that commit's operation metrics."""
    from delta.tables import DeltaTable

    last = DeltaTable.forPath(spark, url).history(1).collect()[0]
    return int(last["version"]), dict(last["operationMetrics"] or {})


def replace_where(
    df: DataFrame,
    url: str,
    predicate: str,
    *,
    partition_by: Sequence[str],
    txn_app_id: str,
    txn_version: int,
    properties: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """Replace the rows matching ``predicate`` with ``df`` in one commit.

    Returns:
        The table version after the write, and the rows it wrote.

    Every row of ``df`` must match ``predicate`` (Delta checks). The first write
    creates the table, partitioned by ``partition_by``, with the Delta table
    ``properties`` (``delta.*``; an existing table keeps its own). Into a table without data
    the write appends: there is nothing to replace, and Delta's ``replaceWhere``
    on data columns took three times as long as an append for the same rows.
    """
    writer = (
        df.write.format("delta")
        .option("txnAppId", txn_app_id)
        .option("txnVersion", str(txn_version))
    )
    spark = df.sparkSession
    if not table_exists(spark, url):
        writer.options(**dict(properties or {})).mode("append").partitionBy(*partition_by)
        writer.save(url)
    elif is_empty(spark, url):
        writer.mode("append").save(url)
    else:
        writer.mode("overwrite").option("replaceWhere", predicate).save(url)
    version, metrics = latest_commit(spark, url)
    return version, int(metrics.get("numOutputRows", 0))
