from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.preprocess.validate import (
    SAMPLE_COLUMNS,
    ValidationLimits,
    Verdict,
    parse_key,
    validate_arrays,
    validate_batch,
)

UUID = "0b6f1c4e-0000-4000-8000-000000000001"
T0 = 1_767_225_600.0
NOW = T0 + 3600


def raw_frame(seconds: int = 60, t0: float = T0) -> pd.DataFrame:
    """A clean raw batch: GPS at 1 Hz, IMU at 10 Hz, long table."""
    gps_t = t0 + np.arange(seconds, dtype=float)
    imu_t = t0 + np.arange(seconds * 10, dtype=float) / 10 + 0.05
    gps = pd.DataFrame(
        {
            "timestamp": gps_t,
            "latitude": -23.0 + np.arange(seconds) * 1e-5,
            "longitude": 119.0 + np.zeros(seconds),
            "altitude": 500.0 + np.zeros(seconds),
            "speed": np.full(seconds, 1.1),
            "heading": np.full(seconds, 0.0),
        }
    )
    imu = pd.DataFrame(
        {
            "timestamp": imu_t,
            "acc_x": np.zeros(len(imu_t)),
            "acc_y": np.zeros(len(imu_t)),
            "acc_z": np.full(len(imu_t), 9.81),
        }
    )
    return pd.concat([gps, imu], ignore_index=True).sort_values("timestamp", ignore_index=True)


def to_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def key_for(t0: float = T0) -> str:
    return f"{UUID}/{int(t0 * 1000)}.parquet"


def assert_same_verdicts(data: bytes, key: str, machine_uuid: str = UUID, **kwargs) -> Verdict:
    """The pandas reference's verdict, after checking that the numpy path agrees exactly."""
    reference = validate_batch(data, key=key, machine_uuid=machine_uuid, **kwargs)
    verdict, values = validate_arrays(data, key=key, machine_uuid=machine_uuid, **kwargs)
    assert (verdict.accepted, verdict.reason, verdict.warnings) == (
        reference.accepted,
        reference.reason,
        reference.warnings,
    )
    assert verdict.quality == reference.quality
    if reference.accepted:
        assert values is not None and values.dtype == np.float64
        expected = reference.samples.loc[:, list(SAMPLE_COLUMNS)].to_numpy()
        np.testing.assert_array_equal(values, expected)  # NaN where NaN, bit for bit
    else:
        assert values is None
    return reference


def check(frame_or_bytes: pd.DataFrame | bytes, key: str | None = None) -> Verdict:
    data = frame_or_bytes if isinstance(frame_or_bytes, bytes) else to_bytes(frame_or_bytes)
    return assert_same_verdicts(data, key or key_for(), now_s=NOW)


def test_clean_file_is_accepted_without_warnings() -> None:
    frame = raw_frame()
    verdict = check(frame)
    assert verdict.accepted and verdict.reason is None
    assert verdict.warnings == []
    assert verdict.quality["gps_rows"] == 60 and verdict.quality["imu_rows"] == 600
    assert verdict.quality["gps_rate_hz"] == pytest.approx(60 / 59.95, rel=1e-3)
    assert verdict.first_timestamp == T0
    pd.testing.assert_frame_equal(verdict.samples, frame.reset_index(drop=True))


def test_extra_columns_are_ignored_and_column_order_is_free() -> None:
    frame = raw_frame()
    frame["can_engine_rpm"] = 1500.0
    frame["gyro_x"] = 0.0
    frame = frame[list(reversed(frame.columns))]
    verdict = check(frame)
    assert verdict.accepted
    assert verdict.quality["extra_columns"] == ["can_engine_rpm", "gyro_x"]
    assert list(verdict.samples.columns)[:2] == ["timestamp", "latitude"]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b"garbage that is not parquet at all", "not a parquet file"),
        (lambda b: b[: len(b) // 2], "truncated parquet file (no footer)"),
        (lambda b: b[:4] + bytes(len(b) - 8) + b[-4:], "corrupt parquet file"),
    ],
)
def test_unreadable_files_are_rejected(mutate, reason: str) -> None:
    verdict = check(mutate(to_bytes(raw_frame())))
    assert not verdict.accepted
    assert verdict.reason.startswith(reason)
    assert "\n" not in verdict.reason


def _damaged_in(column: str) -> bytes:
    """A file whose ``column`` chunk has its first page header overwritten."""
    frame = raw_frame()
    frame["gyro_x"] = 0.25
    data = bytearray(to_bytes(frame))
    chunks = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(0)
    chunk = next(
        chunks.column(i)
        for i in range(chunks.num_columns)
        if chunks.column(i).path_in_schema == column
    )
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data[start : start + 16] = b"\xff" * 16
    return bytes(data)


def test_damage_in_a_column_we_do_not_use_spares_the_file() -> None:
    damaged = _damaged_in("gyro_x")
    with pytest.raises(OSError):
        pq.read_table(io.BytesIO(damaged))  # reading every column fails
    verdict = check(damaged)
    assert verdict.accepted and verdict.quality["extra_columns"] == ["gyro_x"]
    used = check(_damaged_in("speed"))
    assert not used.accepted and used.reason.startswith("corrupt parquet file")


def test_missing_column_is_named() -> None:
    verdict = check(raw_frame().drop(columns=["acc_x"]))
    assert (verdict.accepted, verdict.reason) == (False, "missing column acc_x")


def test_wrong_type_is_named() -> None:
    frame = raw_frame()
    frame["speed"] = frame["speed"].astype(str)
    verdict = check(frame)
    assert verdict.reason == "column speed has type string, expected double"


@pytest.mark.parametrize(
    ("dtype", "accepted"), [("int64", False), ("float32", True), ("int32", True)]
)
def test_types_spark_cannot_widen_are_rejected(dtype: str, accepted: bool) -> None:
    frame = raw_frame()
    frame["altitude"] = frame["altitude"].fillna(0).astype(dtype)
    verdict = check(frame)
    assert verdict.accepted is accepted
    if not accepted:
        assert verdict.reason == f"column altitude has type {dtype}, expected double"


def test_clock_in_1970_is_rejected() -> None:
    frame = raw_frame(t0=1000.0)
    verdict = check(frame, key=key_for(1000.0))
    assert verdict.reason == "timestamps before 2000-01-01"


def test_clock_in_the_future_is_rejected() -> None:
    future = NOW + 10 * 86400
    verdict = check(raw_frame(t0=future), key=key_for(future))
    assert verdict.reason == "timestamps in the future"


def test_a_few_bad_timestamps_are_dropped_with_a_warning() -> None:
    frame = raw_frame(seconds=200)
    frame.loc[5, "timestamp"] = 12.0
    verdict = check(frame)
    assert verdict.accepted
    assert "1 rows with an implausible clock dropped" in verdict.warnings
    assert verdict.samples["timestamp"].min() >= T0


def test_duplicates_and_disorder_are_repaired() -> None:
    clean = raw_frame()
    messy = pd.concat([clean, clean.iloc[:30]]).sample(frac=1.0, random_state=3)
    verdict = check(messy)
    assert verdict.accepted
    assert "30 duplicate rows dropped" in verdict.warnings
    assert any(w.endswith("rows out of order (sorted)") for w in verdict.warnings)
    pd.testing.assert_frame_equal(verdict.samples, clean.reset_index(drop=True))


def test_out_of_range_readings_are_blanked_not_the_sample() -> None:
    frame = raw_frame()
    gps_row = frame.index[frame["latitude"].notna()][3]
    frame.loc[gps_row, "latitude"] = 123.0
    verdict = check(frame)
    assert "1 readings out of physical range blanked" in verdict.warnings
    row = verdict.samples.loc[verdict.samples["timestamp"] == frame.loc[gps_row, "timestamp"]]
    assert row["latitude"].isna().all() and (row["speed"] == 1.1).all()


def test_gps_jump_is_counted() -> None:
    frame = raw_frame()
    gps_row = frame.index[frame["latitude"].notna()][10]
    frame.loc[gps_row, "latitude"] += 0.004  # ~440 m north for one fix
    verdict = check(frame)
    assert verdict.accepted
    assert verdict.quality["gps_jumps"] == 2  # away and back
    assert "2 GPS jumps (multipath)" in verdict.warnings


def test_low_rate_and_key_offset_warn() -> None:
    frame = raw_frame()
    frame = frame.loc[frame["latitude"].isna() | (frame.index % 3 == 0)]
    verdict = check(frame, key=key_for(T0 - 5))
    assert any(w.startswith("GPS rate 0.") for w in verdict.warnings)
    assert "first sample is +5.000 s from the key's time" in verdict.warnings


def test_key_must_match_machine() -> None:
    verdict = check(to_bytes(raw_frame()), key="other/1.parquet")
    assert not verdict.accepted and verdict.reason.startswith("key 'other/1.parquet'")


def test_same_bytes_same_hash() -> None:
    data = to_bytes(raw_frame())
    assert check(data).quality["sha256"] == check(data, key=key_for(T0 + 0.001)).quality["sha256"]


def test_parse_key() -> None:
    assert parse_key(f"{UUID}/1767225600000.parquet") == (UUID, 1767225600000)
    assert parse_key("nope.parquet") is None


def test_limits_are_used() -> None:
    frame = raw_frame()
    frame.loc[frame["speed"].notna(), "speed"] = 40.0
    strict = assert_same_verdicts(
        to_bytes(frame), key_for(), now_s=NOW, limits=ValidationLimits(max_speed_mps=20.0)
    )
    assert "60 readings out of physical range blanked" in strict.warnings
