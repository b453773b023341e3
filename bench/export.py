"""make bench-export: rows/s of the export (read + adapt + checks + JDBC load) into PostgreSQL.

Writes synthetic inference tables (``--segments`` segments and ``--cycles``
cycles over ``--machines`` dumpers, one row in a thousand failing a check) as
Delta tables in a temporary folder, then exports each table into the local
stack's PostgreSQL (``etl stack up``) exactly as ``etl export`` does: the
current rows from the cuts, adapted, checked, staged through Spark's JDBC
writer and upserted in one transaction. Each table is exported twice: the
second run is the idempotent rerun (every row replaced) and must leave the
same row count. Prints seconds and rows/s per table and run; the bench's rows
are deleted afterwards (schema ``bench_export``, a fresh pipeline name).

Usage: python bench/export.py [--segments 200000] [--cycles 20000] [--machines 20]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_767_600_000  # 2026-01-05 08:00:00 UTC
SEGMENT_S = 30
CYCLE_S = 600
SCHEMA = "bench_export"


def machine_uuid(column: object) -> object:
    """Machine number -> a canonical UUID like the demo fleet's."""
    from pyspark.sql import functions as F

    return F.format_string("5f0c0000-0000-4000-8000-%012d", column)


def write_segments(spark: object, url: str, rows: int, machines: int) -> None:
    """Back-to-back 30 s dumper segments; every 1000th has a confidence above 1."""
    from pyspark.sql import functions as F

    from etl.config import ACTIVITIES
    from etl.infer.schema import segments_schema

    k = F.floor(F.col("id") / machines)
    start = F.lit(T0) + k * SEGMENT_S
    activities = F.array(*(F.lit(a) for a in ACTIVITIES["dumper"]))
    frame = spark.range(rows).select(  # type: ignore[attr-defined]
        machine_uuid(F.col("id") % machines).alias("machine_uuid"),
        F.lit("dumper").alias("machine_type"),
        start.cast("long").alias("start"),
        (start + SEGMENT_S).cast("long").alias("end"),
        F.element_at(activities, (k % len(ACTIVITIES["dumper"]) + 1).cast("int")).alias("activity"),
        F.lit(SEGMENT_S).cast("long").alias("duration_s"),
        F.when(F.col("id") % 1000 == 7, 1.5).otherwise(0.5 + (k % 50) / 100).alias("confidence"),
        F.lit("bench/1").alias("model_version"),
        F.lit(0).cast("long").alias("statevectors_version"),
        F.lit(1).cast("long").alias("inference_run_id"),
    )
    frame.select(*segments_schema().fieldNames()).write.format("delta").save(url)


def write_cycles(spark: object, url: str, rows: int, machines: int) -> None:
    """Back-to-back 600 s dumper cycles with 590 s of phases; every 1000th one too long."""
    from pyspark.sql import functions as F

    from etl.infer.schema import PHASE_COLUMNS, cycles_schema

    phases = {
        "idle_s": 10.0,
        "queuing_s": 50.0,
        "loading_s": 120.0,
        "hauling_s": 200.0,
        "dumping_s": 40.0,
        "returning_s": 170.0,
    }
    k = F.floor(F.col("id") / machines)
    start = F.lit(T0) + k * CYCLE_S
    frame = spark.range(rows).select(  # type: ignore[attr-defined]
        machine_uuid(F.col("id") % machines).alias("machine_uuid"),
        F.lit("dumper").alias("machine_type"),
        start.cast("long").alias("cycle_start"),
        (start + CYCLE_S).cast("long").alias("cycle_end"),
        F.when(F.col("id") % 1000 == 7, CYCLE_S + 1)
        .otherwise(CYCLE_S)
        .cast("long")
        .alias("duration_s"),
        *(F.lit(phases.get(c)).cast("double").alias(c) for c in PHASE_COLUMNS),
        F.lit(1500.0).alias("distance_loaded_m"),
        F.lit(1400.0).alias("distance_empty_m"),
        F.lit(27.0).alias("avg_speed_loaded_kmh"),
        F.lit(29.5).alias("avg_speed_empty_kmh"),
        F.lit(-23.5).alias("load_lat"),
        F.lit(133.25).alias("load_lon"),
        F.lit(-23.51).alias("dump_lat"),
        F.lit(133.26).alias("dump_lon"),
        F.lit(True).alias("is_complete"),
        F.lit(590.0 / 600.0).alias("data_coverage"),
        F.lit("bench/1").alias("model_version"),
        F.lit(0).cast("long").alias("statevectors_version"),
        F.lit(1).cast("long").alias("inference_run_id"),
    )
    frame.select(*cycles_schema().fieldNames()).write.format("delta").save(url)


def main() -> None:
    """Generate, export each table twice, print rows/s, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=200_000)
    parser.add_argument("--cycles", type=int, default=20_000)
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=2, help="JDBC writer connections")
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    from etl.config import load_config
    from etl.export.jdbc import QUARANTINE, ResultsDatabase
    from etl.infer.schema import CYCLES, SEGMENTS, table_url
    from etl.session import configure
    from etl.steps.export import checked_rows

    demo = load_config(ROOT / "conf" / "demo.yaml")
    assert demo.results.url is not None
    spark = (
        configure(SparkSession.builder.master("local[2]"), s3=demo.storage.s3)
        .appName("bench-export")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    folder = Path(tempfile.mkdtemp(prefix="bench-export-"))
    pipeline = f"bench-export-{uuid.uuid4().hex[:8]}"
    output_url = f"file://{folder}/{pipeline}"
    db = ResultsDatabase(demo.results.url, SCHEMA, write_partitions=args.partitions)
    try:
        write_segments(spark, table_url(output_url, SEGMENTS), args.segments, args.machines)
        write_cycles(spark, table_url(output_url, CYCLES), args.cycles, args.machines)
        db.ensure_tables()
        cuts = {f"5f0c0000-0000-4000-8000-{m:012d}": T0 for m in range(args.machines)}
        print(
            f"{'table':<18}{'run':<8}{'rows':>9}{'loaded':>9}{'rejected':>10}{'s':>8}{'rows/s':>9}"
        )
        export_id = 0
        for table, rows in (("machine_activity", args.segments), ("machine_cycle", args.cycles)):
            for run in ("first", "rerun"):
                export_id += 1
                started = time.monotonic()
                frame = checked_rows(
                    spark,
                    output_url,
                    table,
                    pipeline=pipeline,
                    cuts=cuts,
                    min_epoch_s=demo.preprocess.min_valid_epoch_s,
                    max_epoch_s=time.time() + demo.preprocess.max_future_s,
                )
                result = db.load(frame, table, pipeline=pipeline, cuts=cuts, export_id=export_id)
                seconds = time.monotonic() - started
                print(
                    f"{table:<18}{run:<8}{rows:>9}{result.rows_loaded:>9}"
                    f"{result.rows_rejected:>10}{seconds:>8.1f}{rows / seconds:>9.0f}"
                )
            with db.engine.connect() as conn:
                count = conn.execute(
                    text(f'SELECT count(*) FROM "{SCHEMA}".{table} WHERE pipeline = :p'),
                    {"p": pipeline},
                ).scalar_one()
            assert count == result.rows_loaded, f"{table}: {count} rows after the rerun"
    finally:
        with db.engine.begin() as conn:
            for table in ("machine_activity", "machine_cycle", QUARANTINE):
                conn.execute(
                    text(f'DELETE FROM "{SCHEMA}".{table} WHERE pipeline = :p'), {"p": pipeline}
                )
        db.close()
        spark.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
