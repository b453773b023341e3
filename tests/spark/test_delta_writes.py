"""The StateVectors table's set-up and writes on real Delta tables."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from etl.io.delta import is_empty, prepare_table, replace_where, utc_day
from etl.preprocess import STATEVECTOR_COLUMNS
from etl.steps.preprocess import PARTITION_BY, TABLE_PROPERTIES, statevectors_table_struct
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


def _adds(folder: Path) -> list[dict]:
    """The ``add`` actions of the table's log."""
    return [
        action["add"]
        for commit in sorted((folder / "_delta_log").glob("*.json"))
        for action in map(json.loads, commit.read_text().splitlines())
        if "add" in action
    ]


def test_prepared_table_takes_the_first_write_as_an_append(
    spark: SparkSession, tmp_path: Path
) -> None:
    url = f"file://{tmp_path}/statevectors"
    frame = reference(raw_samples(seconds=120, gap=(200, 210)))
    frame["day"] = [utc_day(ts) for ts in frame["ts"]]
    vectors = spark.createDataFrame(frame, statevectors_table_struct()).persist()
    # what the background set-up creates is what the step writes
    assert list(statevectors_table_struct().fieldNames()) == [*STATEVECTOR_COLUMNS, "day"]

    prepare_table(spark, url, statevectors_table_struct(), PARTITION_BY, TABLE_PROPERTIES)
    prepare_table(spark, url, statevectors_table_struct(), PARTITION_BY)  # exists: no commit
    table = DeltaTable.forPath(spark, url)
    assert table.history().count() == 1 and is_empty(spark, url)
    detail = table.detail().first()
    assert detail["partitionColumns"] == list(PARTITION_BY)
    assert TABLE_PROPERTIES.items() <= detail["properties"].items()

    predicate = f"machine_uuid = '{UUID}' AND ts >= {T0 - 50} AND ts < {T0 + 200}"
    version, written = replace_where(
        vectors, url, predicate, partition_by=PARTITION_BY, txn_app_id="t", txn_version=1
    )
    rows = vectors.count()
    assert (version, written) == (1, rows) and rows > 100
    last = table.history(1).first()
    assert last["operationParameters"]["mode"] == "Append"
    assert not is_empty(spark, url)
    assert_files_are_lean(tmp_path / "statevectors")
    # statistics on ts only: what the readers' time ranges skip files by
    stats = [json.loads(add["stats"]) for add in _adds(tmp_path / "statevectors")]
    assert stats and all(set(s["minValues"]) == {"ts"} for s in stats)

    # the next write into the same seconds replaces them
    version, written = replace_where(
        vectors, url, predicate, partition_by=PARTITION_BY, txn_app_id="t", txn_version=2
    )
    assert (version, written) == (2, rows)
    assert table.history(1).first()["operationParameters"]["mode"] == "Overwrite"
    assert spark.read.format("delta").load(url).count() == rows
    vectors.unpersist()
