"""Behaviour of the 1 Hz resampler on hand-built tracks with a known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etl.preprocess import (
    CONTEXT_S,
    STATEVECTOR_DTYPES,
    DenoiseParams,
    context_seconds,
    imu_second_stats,
    resample_machine,
)
from etl.preprocess.denoise import METRES_PER_DEGREE, STILL_PAIR_S, local_metres

UUID = "0b6f1c4e-0000-4000-8000-000000000001"
T0 = 1_767_225_600.0
LAT0, LON0 = -23.36, 119.73
ACC = (0.4, -0.1, 9.81)


# Builders -----------------------------------------------------------------


def to_latlon(east: np.ndarray, north: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local metres around the pit to degrees (the inverse of ``local_metres``)."""
    lon_scale = METRES_PER_DEGREE * np.cos(np.radians(LAT0))
    return LAT0 + north / METRES_PER_DEGREE, LON0 + east / lon_scale


def position_error_m(out: pd.DataFrame, east: np.ndarray, north: np.ndarray) -> np.ndarray:
    lat, lon = to_latlon(east, north)
    de, dn = local_metres(out["latitude"].to_numpy(), out["longitude"].to_numpy(), lat, lon)
    return np.hypot(de, dn)


def gps_frame(t: np.ndarray, east, north, speed, heading, *, altitude=400.0) -> pd.DataFrame:
    lat, lon = to_latlon(np.asarray(east, float), np.asarray(north, float))
    return pd.DataFrame(
        {
            "timestamp": T0 + t,
            "latitude": lat,
            "longitude": lon,
            "altitude": np.broadcast_to(altitude, t.shape).astype(float),
            "speed": np.broadcast_to(speed, t.shape).astype(float),
            "heading": np.broadcast_to(heading, t.shape).astype(float),
            "hdop": 0.9,  # extra columns are ignored
        }
    )


def imu_frame(t: np.ndarray, acc=ACC) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": T0 + t,
            "acc_x": np.full(t.size, acc[0]),
            "acc_y": np.full(t.size, acc[1]),
            "acc_z": np.full(t.size, acc[2]),
        }
    )


def jittered(start: float, stop: float, hz: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(start, stop, 1.0 / hz)
    return t + rng.uniform(-0.03, 0.03, t.size)


def resample(gps: pd.DataFrame, imu: pd.DataFrame, **kwargs) -> pd.DataFrame:
    return resample_machine(gps, imu_second_stats(imu), machine_uuid=UUID, **kwargs)


def straight(seconds: float, seed: int = 0, velocity=(6.0, -8.0), gps_start: float = -0.5):
    """A machine driving straight at constant velocity, noise-free sensors.

    Fixes at half seconds (from ``gps_start``), IMU at 10 Hz from 0, all jittered.
    """
    rng = np.random.default_rng(seed)
    tg = jittered(gps_start, seconds, 1.0, rng)
    ti = jittered(0.0, seconds, 10.0, rng)
    ve, vn = velocity
    heading = np.degrees(np.arctan2(ve, vn)) % 360.0
    gps = gps_frame(tg, ve * tg, vn * tg, np.hypot(ve, vn), heading)
    return gps, imu_frame(ti)


def ramp(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def haul_route(seconds: float, dt: float = 0.01):
    """A truck at 10 m/s on gentle curves, stopping for a minute every four.

    Returns dense truth arrays ``t, east, north, speed`` for interpolation.
    """
    t = np.arange(0.0, seconds + dt, dt)
    phase = t % 240.0
    speed = 10.0 * (1.0 - ramp((phase - 130.0) / 25.0) + ramp((phase - 215.0) / 25.0))
    heading = 30.0 + np.cumsum(2.0 * np.sin(2 * np.pi * t / 120.0)) * dt
    east = np.cumsum(speed * np.sin(np.radians(heading))) * dt
    north = np.cumsum(speed * np.cos(np.radians(heading))) * dt
    return t, east, north, speed


# Clean data ---------------------------------------------------------------


def test_constant_velocity_noise_free_is_the_true_track() -> None:
    gps, imu = straight(600)
    out = resample(gps, imu)
    ts = out["ts"].to_numpy() - T0
    assert np.array_equal(ts, np.arange(0, 600))
    assert position_error_m(out, 6.0 * ts, -8.0 * ts).max() < 0.5
    assert np.abs(out["speed"] - 10.0).max() < 0.05
    assert np.abs(out["heading"] - 143.130102).max() < 1e-3
    assert np.abs(out["altitude"] - 400.0).max() < 1e-6
    for axis, value in zip("xyz", ACC, strict=True):
        assert np.allclose(out[f"acc_{axis}_mean"], value, atol=1e-12)
        assert np.allclose(out[f"acc_{axis}_std"], 0.0, atol=1e-12)
    assert not out["gps_filled"].any()
    assert not out["imu_filled"].any()
    counts = imu_second_stats(imu).set_index("ts")["n"]
    assert (out["imu_samples"].to_numpy() == counts.reindex(out["ts"]).to_numpy()).all()
    assert out["imu_samples"].iloc[1:].between(9, 11).all()  # jitter moves edge samples
    assert (out["gps_outliers"] == 0).all()


def test_constant_acceleration_is_not_bent_away_from_run_edges() -> None:
    rng = np.random.default_rng(3)
    tg = jittered(-0.5, 120, 1.0, rng)
    s = 2.0 * tg + 0.25 * tg**2  # 2 m/s, accelerating at 0.5 m/s^2, due east
    gps = gps_frame(tg, s, 0 * tg, 2.0 + 0.5 * tg, 90.0)
    out = resample(gps, imu_frame(jittered(0, 120, 10.0, rng)))
    # Within two fixes of a run's ends the fit is a straight line (exact only
    # at constant velocity), to keep a lopsided quadratic from amplifying noise.
    out = out[(out["ts"] >= T0 + 2) & (out["ts"] <= T0 + 117)]
    ts = out["ts"].to_numpy() - T0
    assert position_error_m(out, 2.0 * ts + 0.25 * ts**2, 0 * ts).max() < 0.5
    assert np.abs(out["speed"] - (2.0 + 0.5 * ts)).max() < 0.05


# Noisy data ---------------------------------------------------------------


@pytest.mark.parametrize("folded", [False, True], ids=["white", "folded-at-zero"])
def test_noise_is_at_least_halved_on_a_haul_route(folded: bool) -> None:
    rng = np.random.default_rng(7)
    seconds = 1800
    t, east, north, speed = haul_route(seconds + 2)
    tg = jittered(0.3, seconds, 1.0, rng)
    true_e, true_n, true_v = (np.interp(tg, t, x) for x in (east, north, speed))
    noisy_e = true_e + rng.normal(0, 2.0, tg.size)
    noisy_n = true_n + rng.normal(0, 2.0, tg.size)
    noisy_v = true_v + rng.normal(0, 0.3, tg.size)
    if folded:  # what a receiver reports: a magnitude, never negative
        noisy_v = np.abs(noisy_v)
    gps = gps_frame(tg, noisy_e, noisy_n, noisy_v, 0.0)
    out = resample(gps, imu_frame(jittered(0, seconds, 10.0, rng)))
    out = out[out["latitude"].notna()]
    ts = out["ts"].to_numpy() - T0
    assert ts.size > seconds - 5

    raw_pos = np.sqrt(np.mean((noisy_e - true_e) ** 2 + (noisy_n - true_n) ** 2))
    raw_speed = np.sqrt(np.mean((noisy_v - true_v) ** 2))
    pos_err = position_error_m(out, np.interp(ts, t, east), np.interp(ts, t, north))
    speed_err = out["speed"].to_numpy() - np.interp(ts, t, speed)
    assert np.sqrt(np.mean(pos_err**2)) <= 0.5 * raw_pos
    assert np.sqrt(np.mean(speed_err**2)) <= 0.5 * raw_speed


def test_standing_still_speed_does_not_float_above_zero() -> None:
    rng = np.random.default_rng(11)
    tg = jittered(0, 600, 1.0, rng)
    gps = gps_frame(
        tg,
        rng.normal(0, 2, tg.size),
        rng.normal(0, 2, tg.size),
        np.abs(rng.normal(0, 0.3, tg.size)),
        75.0,
    )
    out = resample(gps, imu_frame(jittered(0, 600, 10.0, rng)))
    # Folded noise averages to 0.24 m/s; the standstill hold reads the track instead.
    assert out["speed"].mean() < 0.12
    assert np.sqrt(np.mean(out["speed"] ** 2)) < 0.5 * 0.3


# Multipath ----------------------------------------------------------------


@pytest.mark.parametrize("jumps", [(300,), (300, 301), (0,), (599,)], ids=str)
def test_multipath_jump_is_rejected_not_smoothed_in(jumps: tuple[int, ...]) -> None:
    gps, imu = straight(600)
    gps = gps.sort_values("timestamp", ignore_index=True)
    for k, row in enumerate(jumps):
        gps.loc[row, "latitude"] += (350.0 if k % 2 == 0 else -420.0) / METRES_PER_DEGREE
        gps.loc[row, "longitude"] += 120.0 / METRES_PER_DEGREE
    out = resample(gps, imu)
    assert not out["gps_filled"].any()  # the rejected fix still counts as a raw sample
    before_grid = 0 in jumps and np.floor(gps["timestamp"].min() + 0.5) < T0
    assert out["gps_outliers"].sum() == len(jumps) - before_grid
    # A rejected first fix leaves the first second without a fix before it.
    assert out["latitude"].isna().sum() == (1 if 0 in jumps else 0)
    out = out[out["latitude"].notna()]
    ts = out["ts"].to_numpy() - T0
    assert position_error_m(out, 6.0 * ts, -8.0 * ts).max() < 0.5
    assert np.abs(out["speed"] - 10.0).max() < 0.05


def test_multipath_in_noisy_data_leaves_neighbours_close_to_truth() -> None:
    rng = np.random.default_rng(5)
    tg = jittered(0, 300, 1.0, rng)
    e, n = 6.0 * tg + rng.normal(0, 2, tg.size), -8.0 * tg + rng.normal(0, 2, tg.size)
    e[150] += 400.0
    gps = gps_frame(tg, e, n, 10.0 + rng.normal(0, 0.3, tg.size), 143.13)
    out = resample(gps, imu_frame(jittered(0, 300, 10.0, rng)))
    near = out[(out["ts"] - T0 - tg[150]).abs() <= 10]
    ts = near["ts"].to_numpy() - T0
    assert position_error_m(near, 6.0 * ts, -8.0 * ts).max() < 4.0
    assert out["gps_outliers"].sum() == 1


# Heading ------------------------------------------------------------------


def test_heading_interpolates_across_north() -> None:
    gps = gps_frame(np.array([0.0, 2.0]), [0.0, 0.0], [0.0, 0.2], 0.1, [350.0, 10.0])
    out = resample(gps, imu_frame(np.array([0.0, 2.0])))
    assert out["ts"].tolist() == [T0, T0 + 1, T0 + 2]
    assert np.allclose(out["heading"], [350.0, 0.0, 10.0], atol=1e-9)


def test_heading_smoothing_stays_on_the_circle() -> None:
    rng = np.random.default_rng(2)
    tg = jittered(0, 300, 1.0, rng)
    heading = (rng.choice([350.0, 10.0], tg.size) + rng.normal(0, 2, tg.size)) % 360.0
    gps = gps_frame(tg, 0.01 * tg, 5.0 * tg, 5.0, heading)
    out = resample(gps, imu_frame(jittered(0, 300, 10.0, rng)))
    h = out["heading"].to_numpy()
    assert ((h >= 0) & (h < 360)).all()
    assert (np.minimum(h, 360 - h) < 20).all()  # around north, never near 180


def test_turning_through_north_is_smooth_and_in_range() -> None:
    rng = np.random.default_rng(4)
    tg = jittered(-0.5, 120, 1.0, rng)
    heading = (300.0 + tg) % 360.0  # turning right at 1 deg/s through north
    radius = 10.0 / np.radians(1.0)  # 10 m/s
    rad = np.radians(heading)
    gps = gps_frame(tg, -radius * np.cos(rad), radius * np.sin(rad), 10.0, heading)
    out = resample(gps, imu_frame(jittered(0, 120, 10.0, rng)))
    h = out["heading"].to_numpy()
    true = (300.0 + out["ts"].to_numpy() - T0) % 360.0
    assert ((h >= 0) & (h < 360)).all()
    assert np.abs((h - true + 180) % 360 - 180).max() < 0.5


# Gaps ---------------------------------------------------------------------


def without(frame: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    """The rows outside the open interval ``(T0 + lo, T0 + hi)``."""
    t = frame["timestamp"]
    return frame[(t <= T0 + lo) | (t >= T0 + hi)]


def test_dropout_longer_than_max_gap_splits_coverage() -> None:
    gps, imu = straight(300)
    gps, imu = without(gps, 100.2, 130.4), without(imu, 100.2, 130.4)
    out = resample(gps, imu, max_gap_s=10)
    events = np.sort(np.r_[gps["timestamp"], imu["timestamp"]])
    split = np.flatnonzero(np.diff(events) > 10)
    assert split.size == 1
    last_before, first_after = events[split[0]], events[split[0] + 1]
    expected = np.r_[
        np.arange(np.ceil(events[0]), np.floor(last_before) + 1),
        np.arange(np.ceil(first_after), np.floor(events[-1]) + 1),
    ]
    assert np.array_equal(out["ts"].to_numpy(), expected.astype(np.int64))


def test_dropout_shorter_than_max_gap_is_bridged_and_flagged() -> None:
    gps, imu = straight(300)
    out = resample(without(gps, 100.8, 107.2), without(imu, 100.8, 107.2), max_gap_s=10)
    out = out.set_index("ts")
    assert np.array_equal(out.index - T0, np.arange(0, 300))
    ts = out.index.to_numpy() - T0
    # exact on a straight line: the bridge is the true track
    assert position_error_m(out, 6.0 * ts, -8.0 * ts).max() < 0.5
    assert set(out.index[out["gps_filled"]] - T0) == {102, 103, 104, 105, 106}
    assert set(out.index[out["imu_filled"]] - T0) == {102, 103, 104, 105, 106}
    bridged = out[out["imu_filled"]]
    assert np.allclose(bridged["acc_x_mean"], ACC[0]) and np.allclose(bridged["acc_z_std"], 0.0)
    assert (bridged["imu_samples"] == 0).all()


def test_gps_gap_longer_than_max_gap_is_null_while_imu_covers() -> None:
    gps, imu = straight(300)
    out = resample(without(gps, 100.8, 140.2), imu, max_gap_s=10).set_index("ts")
    assert np.array_equal(out.index - T0, np.arange(0, 300))  # the IMU keeps it covered
    nulls = out.index[out["latitude"].isna()] - T0
    assert set(nulls) == set(range(101, 141))
    assert out.loc[out["latitude"].isna(), ["longitude", "speed", "heading"]].isna().all().all()
    assert set(out.index[out["gps_filled"]] - T0) == set(range(102, 140))


def test_imu_gap_longer_than_max_gap_is_null_while_gps_covers() -> None:
    gps, imu = straight(300)
    out = resample(gps, without(imu, 100.8, 140.2), max_gap_s=10).set_index("ts")
    assert np.array_equal(out.index - T0, np.arange(0, 300))  # the GPS keeps it covered
    assert set(out.index[out["imu_filled"]] - T0) == set(range(102, 140))
    assert out.loc[out["imu_filled"], list(STATEVECTOR_DTYPES)[7:13]].isna().all().all()
    assert out.loc[~out["imu_filled"], "acc_x_mean"].notna().all()


# Order, duplicates, slices ------------------------------------------------


def test_duplicates_and_shuffled_rows_change_nothing() -> None:
    rng = np.random.default_rng(9)
    gps, imu = straight(400, seed=9)
    gps["latitude"] += rng.normal(0, 2e-5, len(gps))
    clean = resample(gps, imu)
    messy_gps = pd.concat([gps, gps.sample(frac=0.3, random_state=1)]).sample(
        frac=1, random_state=2
    )
    messy_imu = pd.concat([imu, imu.sample(frac=0.3, random_state=3)]).sample(
        frac=1, random_state=4
    )
    pd.testing.assert_frame_equal(resample(messy_gps, messy_imu), clean, check_exact=True)


def test_slices_with_context_margin_equal_the_whole() -> None:
    rng = np.random.default_rng(1)
    tg = jittered(0, 900, 1.0, rng)
    ti = jittered(0, 900, 10.0, rng)
    gps = gps_frame(
        tg,
        6 * tg + rng.normal(0, 2, tg.size),
        rng.normal(0, 2, tg.size),
        np.abs(6 + rng.normal(0, 0.3, tg.size)),
        90.0,
    )
    gps.loc[gps.index[::97], "latitude"] += 0.003  # some multipath
    imu = imu_frame(ti)
    imu["acc_x"] = rng.normal(0, 0.5, ti.size)
    whole = resample(gps, imu)
    margin = context_seconds(10.0, DenoiseParams())
    parts = []
    for lo, hi in [(0, 250), (250, 251), (251, 600), (600, 900)]:
        a, b = T0 + lo, T0 + hi
        g = gps[(gps["timestamp"] >= a - margin) & (gps["timestamp"] <= b + margin)]
        i = imu[(imu["timestamp"] >= a - margin) & (imu["timestamp"] <= b + margin)]
        parts.append(resample(g, i, ts_from=int(a), ts_to=int(b)))
    joined = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole, check_exact=False, rtol=0, atol=1e-9)


# Contract of the function -------------------------------------------------


def test_output_has_the_statevector_columns_and_dtypes() -> None:
    gps, imu = straight(30)
    out = resample(gps, imu)
    assert list(out.columns) == list(STATEVECTOR_DTYPES)
    assert {c: str(t) for c, t in out.dtypes.items()} == STATEVECTOR_DTYPES
    assert (out["machine_uuid"] == UUID).all()
    assert out["ts"].is_monotonic_increasing and out["ts"].is_unique


def test_no_samples_give_an_empty_frame_with_the_schema() -> None:
    gps, imu = straight(30)
    out = resample(gps.iloc[:0], imu.iloc[:0])
    assert out.empty
    assert {c: str(t) for c, t in out.dtypes.items()} == STATEVECTOR_DTYPES


def test_imu_only_machine_has_rows_without_gps() -> None:
    gps, imu = straight(30)
    out = resample(gps.iloc[:0], imu)
    assert len(out) == 30
    assert out["latitude"].isna().all() and out["gps_filled"].all()
    assert np.allclose(out["acc_z_mean"], ACC[2])


def test_rejects_bad_arguments() -> None:
    gps, imu = straight(30)
    with pytest.raises(ValueError, match="max_gap_s"):
        resample(gps, imu, max_gap_s=0.5)
    with pytest.raises(ValueError, match="speed"):
        resample(gps.drop(columns="speed"), imu)
    with pytest.raises(ValueError, match="t_first"):
        resample_machine(gps, imu_second_stats(imu).drop(columns="t_first"), machine_uuid=UUID)
    with pytest.raises(ValueError, match="window_s"):
        DenoiseParams(window_s=0)


def test_context_covers_every_horizon() -> None:
    params = DenoiseParams()
    assert CONTEXT_S == context_seconds(10.0, params) == 93.0
    # the speed noise of a fix is measured from standing pairs within noise_window_s,
    # each judged by the track over static_window_s, whose fixes the outlier vote kept
    reach = params.noise_window_s + STILL_PAIR_S + params.static_window_s
    assert context_seconds(10.0, params) >= 10.0 + reach + params.outlier_window_s
