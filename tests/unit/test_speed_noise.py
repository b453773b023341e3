"""GNSS speed noise measured per receiver, and speed freed of its folding bias.

A receiver three times as noisy as the assumed one used to read a standstill
as a crawl (folded noise averages to 0.8 sigma); these tests pin the
measurement and what it buys, and that clean data stay unbent.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_resample import gps_frame, imu_frame, jittered, resample

from etl.preprocess.denoise import (
    DenoiseParams,
    find_outliers,
    local_fit,
    speed_noise,
    track_speed,
)
from etl.preprocess.resample import clean_fixes

PARAMS = DenoiseParams()


def measured_noise(gps) -> np.ndarray:
    """speed_noise of every kept fix, as denoise_fixes measures it."""
    t, lat, lon, _, speed, heading = clean_fixes(gps)
    keep = ~find_outliers(t, lat, lon, PARAMS)
    t, lat, lon, speed, heading = t[keep], lat[keep], lon[keep], speed[keep], heading[keep]
    wide = local_fit(t, np.vstack([lat, lon]), PARAMS.static_window_s, degree=1)
    return speed_noise(t, speed, heading, track_speed(wide, lat), PARAMS)


def standing(sigma: float, seconds: float = 600, seed: int = 5):
    """A machine at rest: position noise scaled with the speed noise, heading steady."""
    rng = np.random.default_rng(seed)
    tg = jittered(0, seconds, 1.0, rng)
    position_sigma = 2.0 * sigma / 0.3
    gps = gps_frame(
        tg,
        rng.normal(0, position_sigma, tg.size),
        rng.normal(0, position_sigma, tg.size),
        np.abs(rng.normal(0, sigma, tg.size)),
        75.0 + rng.normal(0, 0.3, tg.size),
    )
    return gps, imu_frame(jittered(0, seconds, 10.0, rng))


@pytest.mark.parametrize("sigma", [0.1, 0.3, 0.9])
def test_speed_noise_is_measured_at_a_standstill(sigma: float) -> None:
    gps, _ = standing(sigma)
    noise = measured_noise(gps)
    assert np.median(noise) == pytest.approx(sigma, rel=0.12)
    assert np.quantile(noise, 0.9) < 1.3 * sigma


def test_speed_noise_is_measured_while_hauling_without_a_standstill() -> None:
    rng = np.random.default_rng(7)
    tg = jittered(0, 600, 1.0, rng)
    gps = gps_frame(tg, 8.0 * tg, 0.0 * tg, np.abs(8.0 + rng.normal(0, 0.9, tg.size)), 90.0)
    assert np.median(measured_noise(gps)) == pytest.approx(0.9, rel=0.12)


@pytest.mark.parametrize("sigma", [0.3, 0.9])
def test_a_noisy_receivers_standstill_reads_as_standing(sigma: float) -> None:
    gps, imu = standing(sigma)
    out = resample(gps, imu)
    # Folded noise alone averages to 0.8 sigma (0.72 m/s at 0.9): before the noise
    # was measured, 3x noise read as a crawl at 0.69 m/s and "stopped" held for a
    # quarter of the seconds.
    assert out["speed"].median() < 0.1
    assert (out["speed"].dropna() < 0.5).mean() > 0.85


def test_a_steady_crawl_is_not_taken_for_noise() -> None:
    """Clean fixes creeping at 0.3 m/s: speed differences are zero, so is the measured noise."""
    rng = np.random.default_rng(3)
    tg = jittered(0, 300, 1.0, rng)
    gps = gps_frame(tg, 0.3 * tg, 0.0 * tg, 0.3, 90.0)
    out = resample(gps, imu_frame(jittered(0, 300, 10.0, rng)))
    inner = out.iloc[30:-30]
    assert np.abs(inner["speed"] - 0.3).max() < 0.05
    assert np.median(measured_noise(gps)) < 0.05


def test_a_turning_machine_is_not_held_at_rest() -> None:
    """An antenna circling on a turning body (a swing) moves though its track's line barely does.

    At 0.4 m/s both the track's slope and the GNSS speed stay below the standstill
    threshold: only the turning heading tells that the machine moves.
    """
    rng = np.random.default_rng(9)
    tg = jittered(0, 300, 1.0, rng)
    radius, omega = 2.0, 0.2  # 0.4 m/s along the circle, 11.5 degrees/s
    angle = omega * tg
    gps = gps_frame(
        tg,
        radius * np.sin(angle),
        radius * np.cos(angle),
        np.abs(radius * omega + rng.normal(0, 0.3, tg.size)),
        np.degrees(angle) % 360.0,
    )
    out = resample(gps, imu_frame(jittered(0, 300, 10.0, rng)))
    assert out["speed"].iloc[30:-30].median() == pytest.approx(0.4, abs=0.1)
