"""Spark's groups over raw files give exactly what the pure pandas resampler gives."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from etl.config import S3Config
from etl.io.delta import utc_day
from etl.preprocess import DenoiseParams, context_seconds
from etl.preprocess.spark import (
    VerdictReport,
    statevectors_from_files,
    unpacked_statevectors,
    with_day,
)
from etl.preprocess.validate import ValidationLimits, validate_arrays, verdict_from_json
from etl.steps.preprocess import raw_reader
from tests.unit.test_preprocess_files import (
    T0,
    UUID,
    assert_equal_frames,
    raw_samples,
    reference,
    split,
)


def write_files(
    root: Path, files: list[tuple[str, bytes]]
) -> list[tuple[str, int, str, float, float]]:
    """The files under ``root`` as a raw store, and their sources with validated ranges."""
    sources = []
    for batch_id, (key, data) in enumerate(files, start=1):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        verdict, _ = validate_arrays(data, key=key, machine_uuid=UUID)
        sources.append((UUID, batch_id, key, verdict.first_timestamp, verdict.last_timestamp))
    return sources


def groups(
    spark: SparkSession,
    root: Path,
    sources: list[tuple[str, int, str, float, float]],
    windows: list[tuple[str, int, int]],
    **options: Any,
) -> DataFrame:
    """The groups over the raw store at ``root``: 100-s slices, default parameters."""
    params = DenoiseParams()
    return statevectors_from_files(
        spark,
        sources,
        windows,
        read=partial(raw_reader, f"file://{root}", S3Config()),
        limits=ValidationLimits(),
        now_s=time.time(),
        max_gap_s=10.0,
        params=params,
        context_s=context_seconds(10.0, params),
        slice_s=100,
        **options,
    )


def test_spark_windows_equal_the_pandas_reference(spark: SparkSession, tmp_path: Path) -> None:
    samples = raw_samples()
    expected = reference(samples)
    # four files, three windows that cut through moving data and the gap, and slices of
    # 100 s that cut through the windows: a second near a cut sees rows on both sides
    sources = write_files(tmp_path, split(samples, [T0 + 60.3, T0 + 120.0, T0 + 200.55]))
    cuts = [T0 - 100, T0 + 77, T0 + 160, T0 + 1000]
    windows = [(UUID, cuts[i], cuts[i + 1]) for i in range(3)]
    result = (
        groups(spark, tmp_path, sources, windows).toPandas().sort_values("ts", ignore_index=True)
    )
    assert_equal_frames(result, expected)
    assert not result["ts"].between(T0 + 151, T0 + 169).any(), "the 20 s gap is not bridged"


def test_one_pass_groups_report_every_verdict_and_pack_their_rows(
    spark: SparkSession, tmp_path: Path
) -> None:
    samples = raw_samples()
    sources = write_files(tmp_path, split(samples, [T0 + 60.3, T0 + 120.0, T0 + 200.55]))
    broken_key = f"{UUID}/{(T0 + 90) * 1000}.parquet"
    (tmp_path / broken_key).write_bytes(b"not parquet")
    gone_key = f"{UUID}/{(T0 + 95) * 1000}.parquet"  # registered, never stored
    sources += [
        (UUID, 5, broken_key, T0 + 90.0, T0 + 150.0),
        (UUID, 6, gone_key, T0 + 95.0, T0 + 99.0),
    ]
    location = f"file://{tmp_path}"
    report = spark.sparkContext.accumulator({}, VerdictReport())
    packed = groups(
        spark,
        tmp_path,
        sources,
        [(UUID, T0 - 100, T0 + 1000)],
        report=report,
        location=location,
        packed=True,
    ).persist()
    # one row per group with files within reach: the 100 s slices from T0 - 100 to T0 + 400
    assert packed.count() == 5
    verdicts = {i: verdict_from_json(v) for i, v in report.value.items()}
    assert sorted(verdicts) == [1, 2, 3, 4, 5, 6]
    assert all(verdicts[i].accepted for i in (1, 2, 3, 4))
    assert verdicts[5].reason == "not a parquet file"
    assert verdicts[6].reason == f"file not found: {location}/{gone_key}"
    result = unpacked_statevectors(packed).toPandas().sort_values("ts", ignore_index=True)
    packed.unpersist()
    # table rows: each StateVector with its UTC day, the table's partition value
    assert result["day"].tolist() == [utc_day(ts) for ts in result["ts"]]
    assert_equal_frames(result.drop(columns="day"), reference(samples))


def test_the_day_of_a_batch_is_the_utc_date_of_each_second() -> None:
    ts = pa.array([T0 - 2, T0 - 1, T0, T0 + 86_399, T0 + 86_400], pa.int64())
    batch = pa.RecordBatch.from_arrays([ts], names=["ts"])
    day = with_day(batch).column("day").to_pylist()
    assert day == ["2025-12-31", "2025-12-31", "2026-01-01", "2026-01-01", "2026-01-02"]
    empty = with_day(batch.slice(0, 0))
    assert empty.num_rows == 0 and empty.schema.field("day").type == pa.string()
