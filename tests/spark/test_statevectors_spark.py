"""Spark's groups over raw files give exactly what the pure pandas resampler gives."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from pyspark.sql import SparkSession

from etl.config import S3Config
from etl.preprocess import DenoiseParams, context_seconds
from etl.preprocess.spark import statevectors_from_files
from etl.preprocess.validate import ValidationLimits, validate_arrays
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


def test_spark_windows_equal_the_pandas_reference(spark: SparkSession, tmp_path: Path) -> None:
    samples = raw_samples()
    params = DenoiseParams()
    expected = reference(samples)
    # four files, three windows that cut through moving data and the gap, and slices of
    # 100 s that cut through the windows: a second near a cut sees rows on both sides
    sources = write_files(tmp_path, split(samples, [T0 + 60.3, T0 + 120.0, T0 + 200.55]))
    cuts = [T0 - 100, T0 + 77, T0 + 160, T0 + 1000]
    windows = [(UUID, cuts[i], cuts[i + 1]) for i in range(3)]
    result = (
        statevectors_from_files(
            spark,
            sources,
            windows,
            read=partial(raw_reader, f"file://{tmp_path}", S3Config()),
            limits=ValidationLimits(),
            now_s=time.time(),
            max_gap_s=10.0,
            params=params,
            context_s=context_seconds(10.0, params),
            slice_s=100,
        )
        .toPandas()
        .sort_values("ts", ignore_index=True)
    )
    assert_equal_frames(result, expected)
    assert not result["ts"].between(T0 + 151, T0 + 169).any(), "the 20 s gap is not bridged"
