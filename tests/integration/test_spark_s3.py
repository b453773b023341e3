"""The same session code reads and writes parquet and Delta on the real S3 server."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import SparkSession

from etl.stack import Stack


def test_parquet_and_delta_round_trip_on_s3a(
    spark: SparkSession, stack: Stack, unique: str
) -> None:
    df = spark.createDataFrame(
        [("m1", 1767225600, 3.5), ("m1", 1767225601, 4.0), ("m2", 1767225600, 0.0)],
        "machine_uuid string, ts long, speed double",
    )
    parquet_url = f"s3a://etl-processed/it/{unique}/parquet"
    df.write.parquet(parquet_url)
    assert_df_equality(spark.read.parquet(parquet_url), df, ignore_row_order=True)

    delta_url = f"s3a://etl-processed/it/{unique}/delta"
    df.write.format("delta").partitionBy("machine_uuid").save(delta_url)
    assert_df_equality(
        spark.read.format("delta").load(delta_url),
        df,
        ignore_row_order=True,
        ignore_column_order=True,
    )
    keys = [
        obj["Key"]
        for obj in stack.s3.client()
        .list_objects_v2(Bucket="etl-processed", Prefix=f"it/{unique}/delta/")
        .get("Contents", [])
    ]
    assert f"it/{unique}/delta/_delta_log/00000000000000000000.json" in keys
    assert any(key.startswith(f"it/{unique}/delta/machine_uuid=m2/") for key in keys)
