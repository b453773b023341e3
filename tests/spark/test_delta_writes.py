"""The StateVectors table's set-up and writes on real Delta tables."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from etl.io.delta import is_empty, replace_where, utc_day, warm_table
from etl.preprocess import STATEVECTOR_COLUMNS
from etl.preprocess.schema import statevector_table_struct
from etl.steps.preprocess import PARTITION_BY, TABLE_PROPERTIES
from tests.unit.test_preprocess_files import T0, UUID, raw_samples, reference


def assert_files_are_lean(folder: Path) -> None:
    """spark-defaults.conf reaches the writer: no partition values, no dictionaries in files."""
    files = sorted(folder.glob("machine_uuid=*/day=*/*.parquet"))
    assert files
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        assert not {"machine_uuid", "day"} & set(metadata.schema.names)
        group = metadata.row_group(0)
        encodings = {e for i in range(group.num_columns) for e in group.column(i).encodings}
        assert not {"PLAIN_DICTIONARY", "RLE_DICTIONARY"} & encodings, path


def _actions(folder: Path, kind: str) -> list[dict]:
    """The table log's actions of one kind (``add``, ``txn`` ...), oldest first."""
    return [
        action[kind]
        for commit in sorted((folder / "_delta_log").glob("*.json"))
        for action in map(json.loads, commit.read_text().splitlines())
        if kind in action
    ]


def test_the_first_write_creates_the_table_with_its_properties(
    spark: SparkSession, tmp_path: Path
) -> None:
    url = f"file://{tmp_path}/statevectors"
    frame = reference(raw_samples(seconds=120, gap=(200, 210)))
    frame["day"] = [utc_day(ts) for ts in frame["ts"]]
    vectors = spark.createDataFrame(frame, statevector_table_struct()).persist()
    assert list(statevector_table_struct().fieldNames()) == [*STATEVECTOR_COLUMNS, "day"]

    # nothing to warm up and nothing created: the first write makes the table
    assert warm_table(spark, url) is False
    assert not (tmp_path / "statevectors").exists()
    predicate = f"machine_uuid = '{UUID}' AND ts >= {T0 - 50} AND ts < {T0 + 200}"
    version, written = replace_where(
        vectors,
        url,
        predicate,
        partition_by=PARTITION_BY,
        txn_app_id="t",
        txn_version=1,
        properties=TABLE_PROPERTIES,
    )
    rows = vectors.count()
    assert (version, written) == (0, rows) and rows > 100
    table = DeltaTable.forPath(spark, url)
    assert table.history(1).first()["operationParameters"]["mode"] == "Append"
    detail = table.detail().first()
    assert detail["partitionColumns"] == list(PARTITION_BY)
    assert TABLE_PROPERTIES.items() <= detail["properties"].items()
    txns = [(txn["appId"], txn["version"]) for txn in _actions(tmp_path / "statevectors", "txn")]
    assert txns == [("t", 1)]  # the creating commit records the write's transaction
    assert_files_are_lean(tmp_path / "statevectors")
    # statistics on ts only: what the readers' time ranges skip files by
    stats = [json.loads(add["stats"]) for add in _actions(tmp_path / "statevectors", "add")]
    assert stats and all(set(s["minValues"]) == {"ts"} for s in stats)

    assert warm_table(spark, url) is True  # loads the state, commits nothing
    assert table.history().count() == 1
    # the next write into the same seconds replaces them; the table keeps its properties
    version, written = replace_where(
        vectors, url, predicate, partition_by=PARTITION_BY, txn_app_id="t", txn_version=2
    )
    assert (version, written) == (1, rows)
    assert table.history(1).first()["operationParameters"]["mode"] == "Overwrite"
    assert TABLE_PROPERTIES.items() <= table.detail().first()["properties"].items()
    assert spark.read.format("delta").load(url).count() == rows
    # a retried write (same txnVersion) is skipped by Delta: no commit, same rows
    replace_where(vectors, url, predicate, partition_by=PARTITION_BY, txn_app_id="t", txn_version=2)
    assert table.history().count() == 2
    vectors.unpersist()


def test_a_table_without_data_takes_the_first_write_as_an_append(
    spark: SparkSession, tmp_path: Path
) -> None:
    url = f"file://{tmp_path}/statevectors"
    frame = reference(raw_samples(seconds=60))
    frame["day"] = [utc_day(ts) for ts in frame["ts"]]
    vectors = spark.createDataFrame(frame, statevector_table_struct())
    empty = spark.createDataFrame([], statevector_table_struct()).write.format("delta")
    empty.partitionBy(*PARTITION_BY).save(url)  # as sessions 7-9 created it
    assert is_empty(spark, url)

    version, written = replace_where(
        vectors, url, "ts >= 0", partition_by=PARTITION_BY, txn_app_id="t", txn_version=1
    )
    assert (version, written) == (1, len(frame))
    last = DeltaTable.forPath(spark, url).history(1).first()
    assert last["operationParameters"]["mode"] == "Append"
    assert not is_empty(spark, url)
