"""The session factory's sessions: Delta, UTC, pandas UDFs, parquet and Delta on file://."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from etl.paths import class_archive_file

SCHEMA = StructType(
    [
        StructField("machine_uuid", StringType(), False),
        StructField("ts", LongType(), False),
        StructField("speed", DoubleType(), True),
    ]
)


def sample(spark: SparkSession) -> DataFrame:
    rows = [("a", 1767225600, 1.5), ("a", 1767225601, None), ("b", 1767225600, 7.25)]
    return spark.createDataFrame(rows, SCHEMA)


def test_session_has_what_correctness_needs(spark: SparkSession) -> None:
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    # local[2]: the jars are on the shared JVM's class path, not shipped
    assert "delta-spark_4.2_2.13-4.4.0.jar" in spark.conf.get("spark.driver.extraClassPath")
    assert not spark.conf.get("spark.jars", "")
    # and its JVM mapped the class archive make setup wrote
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    archive = f"-XX:SharedArchiveFile={class_archive_file()}"
    assert class_archive_file().exists() and archive in list(runtime.getInputArguments())
    assert spark.version == "4.2.0"
    epoch = spark.range(1).select(F.from_unixtime(F.lit(0)).alias("t")).first()
    assert epoch is not None and epoch["t"] == "1970-01-01 00:00:00"


def test_parquet_round_trip_on_file(spark: SparkSession, tmp_path: Path) -> None:
    df = sample(spark)
    url = f"file://{tmp_path}/p"
    df.write.parquet(url)
    assert_df_equality(spark.read.parquet(url), df, ignore_row_order=True, ignore_nullable=True)


def test_delta_round_trip_on_file_with_history(spark: SparkSession, tmp_path: Path) -> None:
    df = sample(spark)
    url = f"file://{tmp_path}/d"
    df.write.format("delta").partitionBy("machine_uuid").save(url)
    df.where("machine_uuid = 'b'").write.format("delta").mode("append").save(url)
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, url)
    assert [row["version"] for row in table.history().select("version").collect()] == [1, 0]
    first = spark.read.format("delta").option("versionAsOf", 0).load(url)
    assert_df_equality(first, df, ignore_row_order=True, ignore_nullable=True)
    assert spark.read.format("delta").load(url).where("machine_uuid = 'b'").count() == 2


def test_pandas_udfs_run_in_the_venv(spark: SparkSession) -> None:
    def per_machine(pdf: pd.DataFrame) -> pd.DataFrame:
        import pyarrow  # the worker must have it: proves PYSPARK_PYTHON is the venv

        return pd.DataFrame(
            {
                "machine_uuid": [pdf["machine_uuid"].iloc[0]],
                "rows": [len(pdf)],
                "arrow": [pyarrow.__version__],
            }
        )

    out = (
        sample(spark)
        .groupBy("machine_uuid")
        .applyInPandas(per_machine, "machine_uuid string, rows long, arrow string")
        .orderBy("machine_uuid")
        .collect()
    )
    import pyarrow

    assert [(r["machine_uuid"], r["rows"], r["arrow"]) for r in out] == [
        ("a", 2, pyarrow.__version__),
        ("b", 1, pyarrow.__version__),
    ]


def test_python_workers_fork_from_our_daemon_with_site_packages_pyspark(
    spark: SparkSession,
) -> None:
    def where_from(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import os

        import pyspark

        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
            daemon = handle.read().replace(b"\0", b" ").decode()
        for _ in frames:
            yield pd.DataFrame({"daemon": [daemon], "pyspark": [pyspark.__file__]})

    row = spark.range(1).mapInPandas(where_from, "daemon string, pyspark string").first()
    assert row is not None
    assert "-m etl.spark_daemon" in row["daemon"]
    # the installed package, not the pyspark.zip Spark puts first on the workers' path
    assert ".zip" not in row["pyspark"] and "site-packages" in row["pyspark"]


def test_local_frames_reach_the_jvm_without_python_workers(spark: SparkSession) -> None:
    from etl.preprocess.spark import WORK_SCHEMA, local_frame

    rows = [(0, 5, 7, "m/1.parquet", 1.5), (1, 5, 8, "m/2.parquet", 2.5)]
    frame = local_frame(spark, rows, WORK_SCHEMA)
    # Arrow batches read by the JVM: no pickled rows for Python workers to decode
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert "PythonRDD" not in plan and "Scan ExistingRDD" not in plan, plan
    assert [tuple(r) for r in frame.collect()] == rows
    assert frame.schema == WORK_SCHEMA
