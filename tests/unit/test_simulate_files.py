"""Raw batch files and Kafka messages of a clean simulated fleet follow the raw-data contract."""

from __future__ import annotations

import io
import itertools
import json
import math
import re
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.simulate import FaultRates, SimulatedBatch, SimulationSettings, simulate_machine
from etl.simulate.terrain import latlon_to_local

TYPES = ("dumper", "excavator", "wheel_loader")
GPS = ("latitude", "longitude", "altitude", "speed", "heading")
ACC = ("acc_x", "acc_y", "acc_z")
GYRO = ("gyro_x", "gyro_y", "gyro_z")
G = 9.80665


def _read(batch: SimulatedBatch) -> pa.Table:
    return pq.read_table(io.BytesIO(batch.payload))


@pytest.fixture(scope="module")
def settings() -> SimulationSettings:
    return SimulationSettings(
        machines=3,
        days=2 / 24,
        seed=21,
        machine_types=TYPES,
        faults=FaultRates.none(),
        older_logger_fraction=0.0,
        hdop_missing_fraction=0.0,
        extra_column_fraction=1.0,
        merging_logger_fraction=1.0,
        merged_row_rate=0.2,
    )


@pytest.fixture(scope="module")
def batches(settings: SimulationSettings) -> list[SimulatedBatch]:
    return [
        batch for i in range(settings.machines) for batch in simulate_machine(settings, i).batches
    ]


@pytest.fixture(scope="module")
def frames(batches: list[SimulatedBatch]) -> dict[str, pd.DataFrame]:
    return {batch.key: _read(batch).to_pandas() for batch in batches}


def test_two_hours_of_three_machines_make_twelve_files_each(
    batches: list[SimulatedBatch],
) -> None:
    per_machine = pd.Series([b.machine_uuid for b in batches]).value_counts()
    assert sorted(per_machine.tolist()) == [12, 12, 12]
    assert sorted({b.machine_type for b in batches}) == sorted(TYPES)


def test_schema_has_double_columns_and_ignorable_extras(batches: list[SimulatedBatch]) -> None:
    for batch in batches:
        schema = _read(batch).schema
        for name in ("timestamp", *GPS, "hdop", *ACC, *GYRO):
            assert schema.field(name).type == pa.float64(), (batch.key, name)
        extras = set(schema.names) - {"timestamp", *GPS, "hdop", *ACC, *GYRO}
        assert extras, "every logger of this fleet writes extra columns"
        assert extras <= {"can_engine_rpm", "j1939_fuel_rate", "oem_state"}
        if "oem_state" in extras:
            assert schema.field("oem_state").type == pa.string()


def test_key_is_uuid_slash_first_timestamp_ms(
    batches: list[SimulatedBatch], frames: dict[str, pd.DataFrame]
) -> None:
    for batch in batches:
        match = re.fullmatch(r"([0-9a-f\-]{36})/(\d+)\.parquet", batch.key)
        assert match is not None
        assert match.group(1) == batch.machine_uuid
        timestamps = frames[batch.key]["timestamp"].to_numpy()
        assert int(match.group(2)) == round(timestamps[0] * 1000)
        assert timestamps[0] == timestamps.min()
        assert np.all(np.diff(timestamps) >= 0), "a clean file is sorted by timestamp"


def test_rows_are_gps_or_imu_or_merged(frames: dict[str, pd.DataFrame]) -> None:
    merged_total = gps_total = 0
    for key, frame in frames.items():
        has_gps = frame["latitude"].notna()
        has_imu = frame["acc_x"].notna()
        assert (has_gps | has_imu).all(), key
        assert frame.loc[has_gps, [*GPS, "hdop"]].notna().all().all(), key
        assert frame.loc[~has_gps, [*GPS, "hdop"]].isna().all().all(), key
        assert frame.loc[has_imu, [*ACC, *GYRO]].notna().all().all(), key
        assert frame.loc[~has_imu, [*ACC, *GYRO]].isna().all().all(), key
        merged_total += int((has_gps & has_imu).sum())
        gps_total += int(has_gps.sum())
    # merged_row_rate=0.2 on every logger
    assert 0.15 < merged_total / gps_total < 0.25


def test_gps_is_one_hertz_and_imu_ten_hertz(frames: dict[str, pd.DataFrame]) -> None:
    for key, frame in frames.items():
        gps = frame.loc[frame["latitude"].notna(), "timestamp"].to_numpy()
        imu = frame.loc[frame["acc_x"].notna(), "timestamp"].to_numpy()
        assert len(imu) == 6000, key
        assert 540 <= len(gps) <= 600, key
        assert np.median(np.diff(gps)) == pytest.approx(1.0, abs=0.03)
        assert np.median(np.diff(imu)) == pytest.approx(0.1, abs=0.01)
        # jitter of a few tens of ms, never reordering IMU samples
        off_grid = imu - np.round(imu * 10) / 10
        assert np.abs(off_grid).max() <= 0.046
        assert 0.005 < np.std(off_grid) < 0.03
        assert np.all(np.diff(imu) > 0)


def test_files_of_a_machine_tile_time_without_overlap_or_gap(
    batches: list[SimulatedBatch], frames: dict[str, pd.DataFrame]
) -> None:
    for uuid in {b.machine_uuid for b in batches}:
        mine = sorted((b for b in batches if b.machine_uuid == uuid), key=lambda b: b.key)
        for previous, following in itertools.pairwise(mine):
            last = frames[previous.key]["timestamp"].max()
            first = frames[following.key]["timestamp"].min()
            assert 0.0 < first - last < 0.2


def test_values_are_physically_plausible(
    settings: SimulationSettings, frames: dict[str, pd.DataFrame]
) -> None:
    frame = pd.concat(frames.values(), ignore_index=True)
    gps = frame[frame["latitude"].notna()]
    x, y = latlon_to_local(
        gps["latitude"].to_numpy(),
        gps["longitude"].to_numpy(),
        settings.pit_latitude,
        settings.pit_longitude,
    )
    assert np.percentile(np.hypot(x, y), 99) < 1500
    assert gps["altitude"].between(300, 650).all()
    assert gps["speed"].between(0, 20).all()
    assert ((gps["heading"] >= 0) & (gps["heading"] < 360)).all()
    assert (gps["hdop"] > 0).all()
    imu = frame[frame["acc_x"].notna()]
    magnitude = np.sqrt(imu["acc_x"] ** 2 + imu["acc_y"] ** 2 + imu["acc_z"] ** 2)
    assert np.median(magnitude) == pytest.approx(G, abs=0.3)
    assert np.median(imu["acc_z"]) == pytest.approx(G, abs=0.4)
    assert imu[list(ACC)].abs().max().max() <= 4 * G


def test_kafka_message_matches_the_file(
    settings: SimulationSettings, batches: list[SimulatedBatch], frames: dict[str, pd.DataFrame]
) -> None:
    for batch in batches:
        message = json.loads(json.dumps(batch.message))
        assert list(message) == [
            "machine_uuid",
            "bucket",
            "key",
            "first_timestamp",
            "last_timestamp",
            "rows",
            "created_at",
        ]
        frame = frames[batch.key]
        assert message["machine_uuid"] == batch.machine_uuid
        assert message["bucket"] == settings.bucket == "raw-telemetry"
        assert message["key"] == batch.key
        assert isinstance(message["first_timestamp"], float)
        assert message["first_timestamp"] == frame["timestamp"].min()
        assert message["last_timestamp"] == frame["timestamp"].max()
        assert message["rows"] == len(frame)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", message["created_at"])
        created = datetime.fromisoformat(message["created_at"].replace("Z", "+00:00"))
        assert math.floor(batch.upload_time) == created.timestamp()
        # uploaded after the recording ended, within the normal 5..90 s
        assert 0 < batch.upload_time - message["last_timestamp"] < 91


def test_each_machine_announces_its_files_in_upload_order(settings: SimulationSettings) -> None:
    run = simulate_machine(settings, 0)
    times = [batch.upload_time for batch in run.batches]
    assert times == sorted(times)


def test_older_loggers_have_no_gyro_and_no_hdop() -> None:
    settings = SimulationSettings(
        machines=1,
        days=20 / 1440,
        seed=4,
        faults=FaultRates.none(),
        older_logger_fraction=1.0,
        hdop_missing_fraction=1.0,
        extra_column_fraction=0.0,
    )
    for batch in simulate_machine(settings, 0).batches:
        names = set(_read(batch).schema.names)
        assert names == {"timestamp", *GPS, *ACC}
