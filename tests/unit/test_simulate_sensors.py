"""Sensor realism: noise levels, dropouts, multipath, jitter, saturation, and a clean mode."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from etl.simulate import FaultRates, SimulationSettings, machine_frames, machine_truth
from etl.simulate.sensors import SensorModel
from etl.simulate.terrain import latlon_to_local

G = 9.80665
DUMPER = SimulationSettings(
    machines=1,
    days=3 / 24,
    seed=12,
    machine_types=("dumper",),
    faults=FaultRates.none(),
    older_logger_fraction=0.0,
    merging_logger_fraction=0.0,
)
QUIET = dataclasses.replace(
    DUMPER,
    gps_noise_m=0.0,
    gps_bias_m=0.0,
    speed_noise=0.0,
    multipath_rate=0.0,
    gps_dropout_rate=0.0,
    timestamp_jitter_s=0.0,
    imu_noise=0.0,
)


def _errors(settings: SimulationSettings) -> pd.DataFrame:
    """GPS fixes joined to the truth at their nominal second, with position errors in metres."""
    gps, _ = _frames(settings)
    truth = machine_truth(settings, 0)
    gps["second"] = np.round(gps["timestamp"]).astype(np.int64)
    truth["second"] = np.round(truth["timestamp"]).astype(np.int64)
    joined = gps.merge(truth, on="second", suffixes=("", "_true"))
    lat0, lon0 = settings.pit_latitude, settings.pit_longitude
    x, y = latlon_to_local(joined["latitude"], joined["longitude"], lat0, lon0)
    tx, ty = latlon_to_local(joined["latitude_true"], joined["longitude_true"], lat0, lon0)
    joined["east_error"], joined["north_error"] = x - tx, y - ty
    return joined


def _frames(settings: SimulationSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    return machine_frames(settings, 0)


def test_without_noise_the_gps_is_the_truth() -> None:
    joined = _errors(QUIET)
    assert len(joined) == QUIET.duration_seconds
    assert np.abs(joined["timestamp"] - joined["timestamp_true"]).max() == 0.0
    assert np.abs(joined["east_error"]).max() < 0.02
    assert np.abs(joined["north_error"]).max() < 0.02
    assert np.abs(joined["altitude"] - joined["altitude_true"]).max() <= 0.006
    assert np.abs(joined["speed"] - joined["speed_true"]).max() <= 0.006
    moving = joined["speed_true"] > 1.0
    turn = (joined["heading"] - joined["heading_true"] + 180.0) % 360.0 - 180.0
    assert np.abs(turn[moving]).max() < 0.01


def test_without_noise_a_truck_at_rest_reads_gravity_only() -> None:
    _, imu = _frames(QUIET)
    truth = machine_truth(QUIET, 0)
    idle_seconds = truth.loc[truth["activity"] == "idle", "timestamp"].astype(np.int64)
    second = np.floor(imu["timestamp"]).astype(np.int64)
    at_rest = imu[second.isin(idle_seconds)]
    magnitude = np.sqrt(at_rest["acc_x"] ** 2 + at_rest["acc_y"] ** 2 + at_rest["acc_z"] ** 2)
    # engine vibration and a small sensor bias remain; gravity dominates
    assert magnitude.mean() == pytest.approx(G, abs=0.1)
    assert at_rest["acc_z"].mean() == pytest.approx(G, abs=0.1)


def test_a_logger_mounted_any_way_reads_gravity_on_other_axes() -> None:
    turned = dataclasses.replace(QUIET, mounting="any")
    _, upright = _frames(QUIET)
    _, imu = _frames(turned)
    truth = machine_truth(turned, 0)
    idle_seconds = truth.loc[truth["activity"] == "idle", "timestamp"].astype(np.int64)
    at_rest = imu[np.floor(imu["timestamp"]).astype(np.int64).isin(idle_seconds)]
    mean = at_rest[["acc_x", "acc_y", "acc_z"]].mean().to_numpy()
    # still gravity in size, but no longer along z
    assert np.linalg.norm(mean) == pytest.approx(G, abs=0.1)
    assert abs(mean[2]) < 0.9 * G, mean
    # the machine and its run are the same; only the logger's axes turned
    np.testing.assert_array_equal(imu["timestamp"], upright["timestamp"])
    for axis in ("acc_x", "acc_y", "acc_z"):
        assert not np.allclose(imu[axis], upright[axis])
    norm = np.sqrt((imu[["acc_x", "acc_y", "acc_z"]] ** 2).sum(axis=1))
    upright_norm = np.sqrt((upright[["acc_x", "acc_y", "acc_z"]] ** 2).sum(axis=1))
    assert np.allclose(norm, upright_norm, atol=0.3)  # a rotation keeps lengths (bias aside)
    with pytest.raises(ValueError, match="mounting"):
        dataclasses.replace(QUIET, mounting="sideways")


def test_gps_noise_has_the_configured_spread() -> None:
    settings = dataclasses.replace(DUMPER, multipath_rate=0.0, gps_bias_m=0.0)
    joined = _errors(settings)
    for axis in ("east_error", "north_error"):
        assert joined[axis].std() == pytest.approx(settings.gps_noise_m, rel=0.1)
        assert abs(joined[axis].mean()) < 0.15
    moving = joined["speed_true"] > 2.0
    speed_error = (joined["speed"] - joined["speed_true"])[moving]
    assert speed_error.std() == pytest.approx(settings.speed_noise, rel=0.1)


def test_multipath_throws_single_fixes_hundreds_of_metres_off() -> None:
    settings = dataclasses.replace(DUMPER, multipath_rate=0.01)
    joined = _errors(settings)
    distance = np.hypot(joined["east_error"], joined["north_error"])
    jumps = np.flatnonzero(distance > 90.0)
    assert len(jumps) == pytest.approx(0.01 * len(joined), rel=0.35)
    assert distance.iloc[jumps].max() < 520.0
    # a jump lasts one fix: the next is back on track (bar chance coincidences)
    assert np.isin(jumps + 1, jumps).mean() < 0.05


def test_dropouts_remove_seconds_of_gps_but_not_imu() -> None:
    settings = dataclasses.replace(DUMPER, gps_dropout_rate=0.01)
    gps, imu = _frames(settings)
    steps = np.diff(gps["timestamp"].to_numpy())
    holes = steps[steps > 1.5]
    assert len(holes) > 10
    assert np.median(holes) > 3.0
    assert 0.02 < 1 - len(gps) / settings.duration_seconds < 0.3
    assert len(imu) == settings.duration_seconds * settings.imu_hz


def test_timestamps_jitter_by_tens_of_milliseconds() -> None:
    gps, imu = _frames(DUMPER)
    for stamps, period in ((gps["timestamp"], 1.0), (imu["timestamp"], 0.1)):
        off = stamps - np.round(stamps / period) * period
        assert off.std() == pytest.approx(DUMPER.timestamp_jitter_s, rel=0.25)
        assert off.abs().max() <= 0.045 + 1e-6
        # millisecond precision, as a logger writes it
        assert np.allclose(np.round(stamps * 1000) / 1000, stamps, atol=1e-7, rtol=0)


def test_the_accelerometer_saturates_at_its_range() -> None:
    settings = dataclasses.replace(DUMPER, imu_saturation_g=1.1)
    _, imu = _frames(settings)
    limit = 1.1 * G
    values = imu[["acc_x", "acc_y", "acc_z"]].to_numpy()
    assert np.abs(values).max() == pytest.approx(limit)
    assert (np.abs(values) >= limit - 1e-9).sum() > 100


def test_hdop_is_worse_at_the_pit_floor() -> None:
    gps, _ = _frames(DUMPER)
    floor = gps.loc[gps["altitude"] < 420, "hdop"]
    surface = gps.loc[gps["altitude"] > 525, "hdop"]
    assert floor.median() > surface.median() + 0.5


def test_windows_render_identical_samples_wherever_they_start() -> None:
    from etl.simulate.cycles import machine_timeline
    from etl.simulate.machines import machine_profile
    from etl.simulate.site import build_site

    profile = machine_profile(DUMPER, 0)
    model = SensorModel(DUMPER, profile, machine_timeline(DUMPER, profile, build_site()))
    whole = model.window(0, 36_000)
    part = model.window(12_345, 20_000)
    lo = np.searchsorted(whole.imu_k, 12_345)
    assert np.array_equal(whole.acc[lo : lo + len(part.imu_k)], part.acc)
    assert np.array_equal(whole.imu_ts[lo : lo + len(part.imu_k)], part.imu_ts)
    g0 = np.searchsorted(whole.gps_j, part.gps_j[0])
    for name, values in part.gps.items():
        assert np.array_equal(whole.gps[name][g0 : g0 + len(values)], values), name
