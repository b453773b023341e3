"""Settings of the fleet simulator: defaults, validation, identities."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest

from etl.simulate import MACHINE_TYPES, FaultRates, SimulationSettings, fleet_assets
from etl.simulate.machines import machine_profile, machine_type

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_defaults_describe_a_day_of_ten_machines_in_ten_minute_batches() -> None:
    settings = SimulationSettings()
    assert (settings.machines, settings.days, settings.batch_seconds) == (10, 1.0, 600)
    assert (settings.gps_hz, settings.imu_hz) == (1, 10)
    assert settings.duration_seconds == 86_400
    assert settings.start_timestamp == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert settings.gps_noise_m == 2.0
    assert settings.speed_noise == 0.3
    assert settings.imu_saturation_g == 4.0
    assert all(0 < getattr(settings.faults, kind) < 0.05 for kind in FaultRates.kinds())


def test_fault_rates_none_switches_every_kind_off() -> None:
    rates = FaultRates.none()
    assert FaultRates.kinds() == (
        "late_upload",
        "out_of_order_upload",
        "duplicate_same_key",
        "duplicate_other_key",
        "overlap",
        "gap",
        "rows_shuffled",
        "rows_duplicated",
        "corrupt_file",
        "truncated_file",
        "missing_column",
        "wrong_clock",
    )
    assert {getattr(rates, kind) for kind in FaultRates.kinds()} == {0.0}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"machines": -1}, "machines"),
        ({"days": 0}, "days"),
        ({"start": datetime(2026, 1, 1)}, "timezone"),  # naive: the point of the test
        ({"imu_hz": 10, "gps_hz": 3}, "divide"),
        ({"type_mix": (("bulldozer", 1.0),)}, "type_mix"),
        ({"machine_types": ("dumper",), "machines": 2}, "one type per machine"),
        ({"gps_noise_m": -1.0}, "gps_noise_m"),
        ({"timestamp_jitter_s": 0.2}, "jitter"),
        ({"multipath_rate": 1.5}, "multipath_rate"),
    ],
)
def test_invalid_settings_are_rejected_with_the_culprit_named(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SimulationSettings(**changes)


def test_a_fault_rate_outside_zero_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="corrupt_file"):
        FaultRates(corrupt_file=1.5)


def test_settings_are_frozen() -> None:
    settings = SimulationSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.machines = 3  # type: ignore[misc]


def test_assets_are_lowercase_uuids_with_types_from_the_mix() -> None:
    settings = SimulationSettings(machines=10, seed=3)
    assets = fleet_assets(settings)
    assert len({uuid for uuid, _ in assets}) == 10
    assert all(UUID_RE.match(uuid) for uuid, _ in assets)
    types = [kind for _, kind in assets]
    assert set(types) <= set(MACHINE_TYPES)
    assert (types.count("dumper"), types.count("excavator"), types.count("wheel_loader")) == (
        6,
        2,
        2,
    )


def test_a_machine_keeps_its_identity_when_the_fleet_grows() -> None:
    small = fleet_assets(SimulationSettings(machines=3, seed=5))
    large = fleet_assets(SimulationSettings(machines=12, seed=5))
    assert large[:3] == small


def test_the_seed_changes_identities() -> None:
    one = fleet_assets(SimulationSettings(machines=4, seed=1))
    two = fleet_assets(SimulationSettings(machines=4, seed=2))
    assert {u for u, _ in one}.isdisjoint({u for u, _ in two})


def test_explicit_machine_types_win_over_the_mix() -> None:
    settings = SimulationSettings(machines=3, machine_types=("wheel_loader",) * 3)
    assert [machine_type(settings, i) for i in range(3)] == ["wheel_loader"] * 3


def test_loggers_differ_across_a_large_fleet() -> None:
    settings = SimulationSettings(machines=60, seed=11)
    loggers = [machine_profile(settings, i).logger for i in range(60)]
    without_gyro = sum(not logger.has_gyro for logger in loggers)
    with_extras = sum(bool(logger.extras) for logger in loggers)
    merging = sum(logger.merge_rate > 0 for logger in loggers)
    assert 3 <= without_gyro <= 25
    assert 6 <= with_extras <= 35
    assert 6 <= merging <= 35
    orders = {logger.column_order[:3] for logger in loggers}
    assert len(orders) > 1
