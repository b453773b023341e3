"""The StateVectors table's set-up and writes on real Delta tables."""

from __future__ import annotations

from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from etl.io.delta import is_empty, prepare_table, replace_where
from etl.preprocess import DenoiseParams
from etl.preprocess.spark import as_slice_input, gps_fixes, imu_second_stats_spark
from etl.steps.preprocess import PARTITION_BY, recompute_statevectors, statevectors_table_struct
from tests.spark.test_statevectors_spark import T0, UUID, raw_samples


def test_prepared_table_takes_the_first_write_as_an_append(
    spark: SparkSession, tmp_path: Path
) -> None:
    url = f"file://{tmp_path}/statevectors"
    sdf = spark.createDataFrame(raw_samples(seconds=120, gap=(200, 210)))
    windows = [(UUID, T0 - 50, T0 + 200)]
    vectors = recompute_statevectors(
        as_slice_input(gps_fixes(sdf), imu_second_stats_spark(sdf)),
        windows,
        max_gap_s=10.0,
        params=DenoiseParams(),
    ).persist()
    # what the background set-up creates is what the write writes
    assert vectors.schema == statevectors_table_struct()

    prepare_table(spark, url, statevectors_table_struct(), PARTITION_BY)
    prepare_table(spark, url, statevectors_table_struct(), PARTITION_BY)  # exists: no commit
    table = DeltaTable.forPath(spark, url)
    assert table.history().count() == 1 and is_empty(spark, url)
    assert table.detail().first()["partitionColumns"] == list(PARTITION_BY)

    predicate = f"machine_uuid = '{UUID}' AND ts >= {T0 - 50} AND ts < {T0 + 200}"
    version, written = replace_where(
        vectors, url, predicate, partition_by=PARTITION_BY, txn_app_id="t", txn_version=1
    )
    rows = vectors.count()
    assert (version, written) == (1, rows) and rows > 100
    last = table.history(1).first()
    assert last["operationParameters"]["mode"] == "Append"
    assert not is_empty(spark, url)

    # the next write into the same seconds replaces them
    version, written = replace_where(
        vectors, url, predicate, partition_by=PARTITION_BY, txn_app_id="t", txn_version=2
    )
    assert (version, written) == (2, rows)
    assert table.history(1).first()["operationParameters"]["mode"] == "Overwrite"
    assert spark.read.format("delta").load(url).count() == rows
    vectors.unpersist()
