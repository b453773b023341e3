"""Ground-truth labels: contract shape, taxonomy, coverage, and agreement with the motion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etl.simulate import (
    ACTIVITIES,
    FaultRates,
    SimulationSettings,
    fleet_assets,
    fleet_labels,
    machine_frames,
    machine_truth,
)

G = 9.80665
TYPES = ("dumper", "excavator", "wheel_loader")


@pytest.fixture(scope="module")
def settings() -> SimulationSettings:
    return SimulationSettings(
        machines=3,
        days=4 / 24,
        seed=8,
        machine_types=TYPES,
        faults=FaultRates.none(),
        older_logger_fraction=0.0,
    )


@pytest.fixture(scope="module")
def labels(settings: SimulationSettings) -> pd.DataFrame:
    return fleet_labels(settings)


def _per_second(settings: SimulationSettings, labels: pd.DataFrame, index: int) -> pd.DataFrame:
    """Noise-free GPS per second with the label of that second."""
    truth = machine_truth(settings, index)
    uuid = fleet_assets(settings)[index][0]
    mine = labels[labels["machine_uuid"] == uuid]
    slot = np.searchsorted(mine["start"].to_numpy(), truth["timestamp"].to_numpy(), "right") - 1
    truth["label"] = mine["activity"].to_numpy()[slot]
    assert (truth["label"] == truth["activity"]).all()
    truth["climb"] = np.gradient(truth["altitude"].to_numpy())
    return truth


def _imu_per_label(settings: SimulationSettings, labels: pd.DataFrame, index: int) -> pd.DataFrame:
    _, imu = machine_frames(settings, index)
    uuid = fleet_assets(settings)[index][0]
    mine = labels[labels["machine_uuid"] == uuid]
    slot = np.searchsorted(mine["start"].to_numpy(), imu["timestamp"].to_numpy(), "right") - 1
    imu["label"] = mine["activity"].to_numpy()[np.clip(slot, 0, None)]
    imu["interval"] = slot
    return imu


def test_labels_follow_the_contract_columns(labels: pd.DataFrame) -> None:
    assert list(labels.columns) == ["machine_uuid", "start", "end", "activity"]
    assert labels["start"].dtype == np.float64
    assert labels["end"].dtype == np.float64
    assert labels["machine_uuid"].map(type).eq(str).all()
    assert labels["activity"].map(type).eq(str).all()


def test_intervals_tile_the_day_without_overlap(
    settings: SimulationSettings, labels: pd.DataFrame
) -> None:
    for uuid, kind in fleet_assets(settings):
        mine = labels[labels["machine_uuid"] == uuid]
        assert set(mine["activity"]) <= set(ACTIVITIES[kind])
        starts, ends = mine["start"].to_numpy(), mine["end"].to_numpy()
        assert np.all(ends > starts)
        # no power-off gaps in this fleet: the labels cover every second
        assert starts[0] == settings.start_timestamp
        assert ends[-1] == settings.start_timestamp + settings.duration_seconds
        assert np.array_equal(starts[1:], ends[:-1])
        # neighbouring intervals carry different activities (merged otherwise)
        assert (mine["activity"].to_numpy()[1:] != mine["activity"].to_numpy()[:-1]).all()


def test_a_day_uses_the_whole_taxonomy_of_each_type() -> None:
    settings = SimulationSettings(machines=3, days=1, seed=8, machine_types=TYPES)
    labels = fleet_labels(settings)
    for uuid, kind in fleet_assets(settings):
        seen = set(labels.loc[labels["machine_uuid"] == uuid, "activity"])
        assert seen == set(ACTIVITIES[kind])


def test_dumper_labels_agree_with_its_motion(
    settings: SimulationSettings, labels: pd.DataFrame
) -> None:
    truth = _per_second(settings, labels, 0)
    moving = truth["speed"] > 0.5
    by = truth.groupby("label")
    for name in ("hauling", "returning"):
        assert moving[truth["label"] == name].mean() > 0.85
        assert by["speed"].median()[name] > 2.5
    for name in ("loading", "dumping", "idle"):
        assert (truth.loc[truth["label"] == name, "speed"] < 0.2).mean() > 0.97
    assert (truth.loc[truth["label"] == "queuing", "speed"] < 0.2).mean() > 0.6
    # loaded up the ramp, empty down it; loaded trucks crawl
    assert by["climb"].mean()["hauling"] > 0.1
    assert by["climb"].mean()["returning"] < -0.1
    ramp_up = truth[(truth["label"] == "hauling") & (truth["climb"] > 0.15)]
    ramp_down = truth[(truth["label"] == "returning") & (truth["climb"] < -0.15)]
    assert 2.0 < ramp_up["speed"].median() < 4.5
    assert ramp_down["speed"].median() > ramp_up["speed"].median() * 1.5


def test_dumper_imu_shows_ramp_pitch_load_and_bed_tip(
    settings: SimulationSettings, labels: pd.DataFrame
) -> None:
    imu = _imu_per_label(settings, labels, 0)
    truth = _per_second(settings, labels, 0)
    second = np.floor(imu["timestamp"]).astype(np.int64)
    climb = truth.set_index(truth["timestamp"].astype(np.int64))["climb"].reindex(second)
    climb = climb.to_numpy()
    uphill = (imu["label"] == "hauling").to_numpy() & (climb > 0.15)
    downhill = (imu["label"] == "returning").to_numpy() & (climb < -0.15)
    # gravity leaks onto acc_x on an 8.9 % ramp: about +/- 0.87 m/s^2
    assert imu.loc[uphill, "acc_x"].mean() == pytest.approx(0.87, abs=0.3)
    assert imu.loc[downhill, "acc_x"].mean() == pytest.approx(-0.87, abs=0.3)
    # at rest gravity sits on acc_z
    idle = imu[imu["label"] == "idle"]
    assert idle["acc_z"].mean() == pytest.approx(G, abs=0.1)
    assert abs(idle["acc_x"].mean()) < 0.3
    # an empty truck rattles more than a loaded one
    std = imu.groupby("label")["acc_z"].std()
    assert std["returning"] > 1.3 * std["hauling"]
    # each bed tip shows as a shock when the load slides off
    tips = imu[imu["label"] == "dumping"].groupby("interval")["acc_z"]
    assert ((tips.max() - tips.min()) > 4.0).all()
    assert std["dumping"] > 2 * std["idle"]


def test_excavator_swings_turn_and_digging_stays_put(
    settings: SimulationSettings, labels: pd.DataFrame
) -> None:
    truth = _per_second(settings, labels, 1)
    for name in ("digging", "dumping", "idle"):
        assert (truth.loc[truth["label"] == name, "speed"] < 0.3).mean() > 0.9
    imu = _imu_per_label(settings, labels, 1)
    turning = imu["gyro_z"].abs() > 5.0
    for name in ("swinging_loaded", "swinging_empty"):
        assert turning[imu["label"] == name].mean() > 0.5
    assert turning[imu["label"] == "digging"].mean() < 0.1
    assert imu.groupby("label")["acc_x"].std()["digging"] > 2 * imu.groupby("label")[
        "acc_x"
    ].std().get("idle", 0.05)


def test_wheel_loader_carries_and_returns_on_the_move(
    settings: SimulationSettings, labels: pd.DataFrame
) -> None:
    truth = _per_second(settings, labels, 2)
    for name in ("carrying", "returning"):
        assert (truth.loc[truth["label"] == name, "speed"] > 0.5).mean() > 0.75
    for name in ("dumping", "idle"):
        assert (truth.loc[truth["label"] == name, "speed"] < 0.2).mean() > 0.9
    assert truth.loc[truth["label"] == "loading", "speed"].mean() < 1.2
    cycles = labels[
        (labels["machine_uuid"] == fleet_assets(settings)[2][0]) & (labels["activity"] == "loading")
    ]
    cycle_s = np.diff(cycles["start"].to_numpy())
    assert 45 < np.median(cycle_s) < 120
