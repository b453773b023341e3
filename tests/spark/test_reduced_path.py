"""Per-file reduction in validation tasks, pooled by Spark, equals the whole-sample reference."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from etl.preprocess import imu_second_stats
from etl.preprocess.reduce import (
    KIND_GPS,
    KIND_IMU,
    KIND_VERDICT,
    imu_partials,
    pool_imu_partials,
    reduce_batch,
    reduce_columns,
    reduced_frame,
    verdict_from_json,
)
from etl.preprocess.schema import IMU_SECONDS_COLUMNS
from etl.preprocess.validate import Verdict, validate_arrays, validate_batch
from tests.spark.test_statevectors_spark import T0, UUID, raw_samples


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.drop(columns="machine_uuid").to_parquet(buffer, index=False)
    return buffer.getvalue()


def _raw_files(samples: pd.DataFrame, cut: float) -> list[tuple[int, str, bytes]]:
    """Two files split at ``cut`` (a time inside a second: that second straddles both)."""
    first = samples.loc[samples["timestamp"] < cut]
    second = samples.loc[samples["timestamp"] >= cut]
    return [
        (batch_id, f"{UUID}/{int(part['timestamp'].min() * 1000)}.parquet", _parquet(part))
        for batch_id, part in ((1, first), (2, second))
    ]


def _files(samples: pd.DataFrame, cut: float) -> list[tuple[int, Verdict]]:
    """:func:`_raw_files` validated by the pandas reference."""
    return [
        (batch_id, validate_batch(data, key=key, machine_uuid=UUID))
        for batch_id, key, data in _raw_files(samples, cut)
    ]


def test_reduced_rows_carry_the_verdict_fixes_and_imu_partials() -> None:
    samples = raw_samples(seconds=120, gap=(200, 210))
    (batch_id, verdict), _ = _files(samples, T0 + 60.3)
    frame = reduce_batch(batch_id, UUID, verdict)

    kinds = frame["kind"].value_counts().to_dict()
    assert kinds[KIND_VERDICT] == 1
    assert kinds[KIND_GPS] == verdict.quality["gps_rows"] > 0
    assert kinds[KIND_IMU] == len(imu_second_stats(verdict.samples))
    back = verdict_from_json(frame.loc[frame["kind"] == KIND_VERDICT, "verdict"].iloc[0])
    assert back.accepted and back.quality == verdict.quality and back.warnings == verdict.warnings
    assert set(frame["batch_id"]) == {batch_id} and set(frame["machine_uuid"]) == {UUID}


def test_one_frame_per_task_equals_one_frame_per_file() -> None:
    """The validation task builds one frame from many files' numpy columns."""
    samples = raw_samples(seconds=120, gap=(200, 210))
    raw = [*_raw_files(samples, T0 + 60.3), (3, f"{UUID}/1.parquet", b"not parquet")]
    files = [(b, validate_batch(data, key=key, machine_uuid=UUID)) for b, key, data in raw]
    per_file = pd.concat(
        [reduce_batch(batch_id, UUID, verdict) for batch_id, verdict in files], ignore_index=True
    )
    # what a validation task does: numpy validation, one frame for all its files
    per_task = reduced_frame(
        [
            reduce_columns(b, UUID, *validate_arrays(data, key=key, machine_uuid=UUID))
            for b, key, data in raw
        ]
    )
    pd.testing.assert_frame_equal(per_task, per_file)
    assert per_task["ts"].dtype == "Int64" and per_task["ts"].isna().sum() == len(files) + sum(
        v.quality.get("gps_rows", 0) for _, v in files
    )
    assert reduced_frame([]).columns.tolist() == per_task.columns.tolist()


def test_a_rejected_file_reduces_to_its_verdict_alone() -> None:
    verdict = validate_batch(b"not parquet", key=f"{UUID}/1.parquet", machine_uuid=UUID)
    frame = reduce_batch(7, UUID, verdict)
    assert frame["kind"].tolist() == [KIND_VERDICT]
    assert verdict_from_json(frame["verdict"].iloc[0]).reason == "not a parquet file"


def test_pooled_partials_equal_the_statistics_of_all_samples() -> None:
    samples = raw_samples(seconds=120, gap=(200, 210))
    files = _files(samples, T0 + 60.3)
    reduced = pd.concat([reduce_batch(b, UUID, v) for b, v in files], ignore_index=True)
    partials = imu_partials(reduced)
    assert partials["ts"].duplicated().sum() >= 1, "the cut must leave a straddling second"

    pooled = pool_imu_partials(partials)
    shuffled = pool_imu_partials(partials.sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(shuffled, pooled)  # bit for bit, whatever the order
    assert pool_imu_partials(partials.iloc[:0]).columns.tolist() == list(IMU_SECONDS_COLUMNS)

    whole = imu_second_stats(samples)
    assert pooled["ts"].tolist() == whole["ts"].tolist()
    assert (pooled["n"].to_numpy() == whole["n"].to_numpy()).all()
    for column in IMU_SECONDS_COLUMNS[2:]:
        np.testing.assert_allclose(pooled[column], whole[column], rtol=0, atol=1e-12)
    single = ~pooled["ts"].isin(partials.loc[partials["ts"].duplicated(), "ts"])
    for column in IMU_SECONDS_COLUMNS[2:]:  # seconds of one file keep their bits
        assert (pooled.loc[single, column] == whole.loc[single, column]).all()
