"""Spark reads raw files natively with validation's repairs (clean_samples)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from etl.preprocess.spark import clean_samples, raw_schema
from etl.preprocess.validate import ValidationLimits, physical_ranges

UUID = "0b6f1c4e-0000-4000-8000-000000000001"


def test_widening_and_repairs(spark: SparkSession, tmp_path: Path) -> None:
    folder = tmp_path / UUID
    folder.mkdir()
    frame = pd.DataFrame(
        {
            "timestamp": [1767225600.0, 1767225600.0, 1767225601.0, 1767225602.0, 12.0],
            "latitude": [-23.0, -23.0, 123.0, -23.0, -23.0],
            "longitude": [119.0] * 5,
            "altitude": [500.0] * 5,
            "speed": np.array([3, 3, 4, 99, 1], dtype="int32"),  # widened by the reader
            "heading": [359.5, 359.5, 360.0, 10.0, 0.0],
            "acc_x": np.array([0.1, 0.1, 0.2, 0.3, 0.0], dtype="float32"),
            "acc_y": [0.0] * 5,
            "acc_z": [9.81] * 5,
            "oem_state": ["a"] * 5,
        }
    )
    frame.to_parquet(folder / "1767225600000.parquet", index=False)
    raw = (
        spark.read.schema(raw_schema())
        .parquet(f"file://{folder}/1767225600000.parquet")
        .withColumn("machine_uuid", F.lit(UUID))
    )
    out = (
        clean_samples(
            raw,
            ranges=physical_ranges(ValidationLimits(max_speed_mps=30)),
            min_epoch_s=946_684_800.0,
            max_epoch_s=1767225600.0 + 86400,
        )
        .orderBy("timestamp")
        .toPandas()
    )
    assert out["machine_uuid"].tolist() == [UUID] * 3  # duplicate row and 1970 row gone
    assert out["timestamp"].tolist() == [1767225600.0, 1767225601.0, 1767225602.0]
    assert out["latitude"].isna().tolist() == [False, True, False]  # 123 deg blanked
    assert out["heading"].isna().tolist() == [False, True, False]  # 360 is out of [0, 360)
    assert out["speed"].tolist()[:2] == [3.0, 4.0] and np.isnan(out["speed"].iloc[2])
    np.testing.assert_allclose(out["acc_x"], [0.1, 0.2, 0.3], rtol=1e-6)
