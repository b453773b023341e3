"""etl compact on real Delta tables: fewer files, the same rows, old partitions left alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from etl.bootstrap import bootstrap
from etl.config import load_config
from etl.io.delta import replace_where, utc_day
from etl.steps.compact import compact, delta_tables
from tests.unit.test_cli import write_config

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
DAY_S = 86_400
MACHINES = ("m-a", "m-b")


def _files_per_day(spark: SparkSession, url: str) -> dict[str, int]:
    rows = (
        spark.read.format("delta")
        .load(url)
        .select("day", F.input_file_name().alias("file"))
        .groupBy("day")
        .agg(F.countDistinct("file").alias("n"))
        .collect()
    )
    return {r["day"]: r["n"] for r in rows}


def test_compact_rewrites_recent_partitions_only_and_keeps_every_row(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = write_config(tmp_path, pipeline={"name": "compacttest"}, maintenance={"compact_days": 3})
    config = load_config(path)
    ctx = bootstrap(config)
    url = delta_tables(config.output_url)["statevectors"]
    recent, old = NOW.timestamp() - DAY_S, NOW.timestamp() - 6 * DAY_S
    # three "ticks" per day and machine, each its own small file, as the jobs leave them
    for txn, (start, step) in enumerate((s, k) for s in (old, recent) for k in range(3)):
        ts0 = int(start) + step * 600
        frame = spark.createDataFrame(
            [(m, ts0 + i, utc_day(ts0), float(i)) for m in MACHINES for i in range(600)],
            "machine_uuid string, ts long, day string, speed double",
        )
        replace_where(
            frame,
            url,
            f"day = '{utc_day(ts0)}' AND ts >= {ts0} AND ts < {ts0 + 600}",
            partition_by=("machine_uuid", "day"),
            txn_app_id="compacttest",
            txn_version=txn,
        )
    before_rows = sorted(spark.read.format("delta").load(url).collect())
    before = _files_per_day(spark, url)
    assert before == {utc_day(old): 6, utc_day(recent): 6}

    summary = compact(ctx, now=NOW)

    after = _files_per_day(spark, url)
    assert after[utc_day(recent)] == len(MACHINES), "one file per machine and recent day"
    assert after[utc_day(old)] == 6, "partitions before the window are not rewritten"
    assert sorted(spark.read.format("delta").load(url).collect()) == before_rows
    assert summary["tables"]["statevectors"]["files_removed"] == 6
    assert summary["tables"]["statevectors"]["files_added"] == len(MACHINES)
    assert set(summary["tables"]) == {"statevectors"}, "tables that do not exist are skipped"
    assert summary["tables"]["statevectors"]["vacuum"] == "lite"
    with ctx.uow() as uow:
        (run,) = uow.runs.for_pipeline("compacttest", "compact")
    assert run.summary["since_day"] == "2026-03-07"
    ctx.close()
