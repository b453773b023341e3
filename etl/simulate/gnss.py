"""What the GNSS receiver reports, from the true motion.

The antenna sits off the machine's reference point and turns with the body
(an excavator's antenna circles when it swings). Fixes carry white noise,
a slowly wandering bias, one-fix multipath jumps, dropouts that are more
frequent deep in the pit, and an hdop that worsens there.
"""

from __future__ import annotations

import numpy as np

from etl.simulate.kinematics import Truth, render_truth
from etl.simulate.machines import MachineProfile
from etl.simulate.noise import BlockNoise
from etl.simulate.settings import SimulationSettings
from etl.simulate.site import site_layout
from etl.simulate.terrain import heading_of, local_to_latlon
from etl.simulate.timeline import OFF, Timeline

DROPOUT_LOOKBACK_S = 70
"""Longest dropout: a window looks back this far so one that began earlier still shows."""

# Engine speed (rpm) per activity code, for the CAN column.
_RPM = {
    "dumper": np.array([700.0, 750.0, 800.0, 1550.0, 1750.0, 1300.0]),
    "excavator": np.array([750.0, 1800.0, 1650.0, 1500.0, 1600.0, 1400.0]),
    "wheel_loader": np.array([750.0, 1700.0, 1500.0, 1600.0, 1400.0]),
}


def round_ms(unix_seconds: np.ndarray) -> np.ndarray:
    """Millisecond precision, as the logger writes timestamps."""
    return np.round(unix_seconds * 1000.0) / 1000.0


def _wrap360(heading: np.ndarray) -> np.ndarray:
    wrapped = np.mod(heading, 360.0)
    return np.where(wrapped >= 360.0, wrapped - 360.0, wrapped)


def _lerp(values: np.ndarray, base: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``values`` at sample ``base + offset`` (offset in samples, |offset| < 1).

    Splitting the position into an integer base and a small offset keeps
    the interpolation weights independent of the window's first index.
    """
    step = np.floor(offset).astype(np.int64)
    frac = offset - step
    lo = np.clip(base + step, 0, len(values) - 1)
    hi = np.clip(lo + 1, 0, len(values) - 1)
    return values[lo] * (1.0 - frac) + values[hi] * frac


def antenna_track(profile: MachineProfile, truth: Truth) -> tuple[np.ndarray, np.ndarray]:
    """Antenna position (metres east, north): off the reference point, turning with the body."""
    rad = np.radians(truth.heading)
    fwd_e, fwd_n = np.sin(rad), np.cos(rad)
    ahead, right, _ = profile.antenna
    return truth.x + ahead * fwd_e + right * fwd_n, truth.y + ahead * fwd_n - right * fwd_e


def true_fixes(
    settings: SimulationSettings, profile: MachineProfile, timeline: Timeline, j0: int, j1: int
) -> dict[str, np.ndarray]:
    """Noise-free fixes at the nominal times of fixes ``j0 .. j1 - 1``.

    Returns:
        ``timestamp``, ``latitude``, ``longitude``, ``altitude``, ``speed``,
        ``heading`` and the activity ``code`` (OFF = -1).
    """
    hz, ratio = settings.imu_hz, settings.imu_hz // settings.gps_hz
    truth = render_truth(timeline, j0 * ratio - hz, j1 * ratio + hz, hz)
    ant_x, ant_y = antenna_track(profile, truth)
    idx = np.arange(j0, j1) * ratio - truth.k0
    v_e, v_n = (np.gradient(ant_x) * hz)[idx], (np.gradient(ant_y) * hz)[idx]
    speed = np.hypot(v_e, v_n)
    lat, lon = local_to_latlon(
        ant_x[idx], ant_y[idx], settings.pit_latitude, settings.pit_longitude
    )
    heading = np.where(speed > 0.3, heading_of(v_e, v_n), np.mod(truth.heading[idx], 360.0))
    return {
        "timestamp": settings.start_timestamp + np.arange(j0, j1) / settings.gps_hz,
        "latitude": lat,
        "longitude": lon,
        "altitude": truth.z[idx] + profile.antenna[2],
        "speed": speed,
        "heading": _wrap360(heading),
        "code": truth.activity[idx].astype(np.int64),
    }


def gps_fixes(
    settings: SimulationSettings,
    profile: MachineProfile,
    noise: BlockNoise,
    truth: Truth,
    *,
    span: tuple[int, int],
    imu_jitter: np.ndarray,
) -> dict[str, object]:
    """Fixes ``span[0] .. span[1] - 1`` with noise, dropouts, multipath and extras.

    Args:
        settings: Noise levels and rates.
        profile: The machine and its logger.
        noise: The machine's sensor noise.
        truth: True state at the IMU rate, covering the fixes with margins.
        span: First and one-past-last nominal fix index.
        imu_jitter: Timestamp jitter of every truth sample (merged fixes share it).

    Returns:
        ``gps_j``, ``gps_ts``, ``gps_merged``, ``gps`` and ``extras`` of
        :class:`~etl.simulate.sensors.SensorWindow`.
    """
    s, hz = settings, truth.hz
    j0, j1 = span
    j = np.arange(j0, j1)
    base = j * (s.imu_hz // s.gps_hz) - truth.k0
    jitter = np.clip(noise.normal(28, j0, j1) * s.timestamp_jitter_s, -0.45 / hz, 0.45 / hz)
    merged = noise.uniform(29, j0, j1) < profile.logger.merge_rate
    # A merged fix takes the timestamp of the IMU sample it shares a row with.
    jitter = np.where(merged, imu_jitter[np.clip(base, 0, len(truth) - 1)], jitter)
    offset = jitter * hz

    ant_x, ant_y = antenna_track(profile, truth)
    height = profile.antenna[2]
    x, y = _lerp(ant_x, base, offset), _lerp(ant_y, base, offset)
    ground = _lerp(truth.z, base, offset)
    v_e = _lerp(np.gradient(ant_x) * hz, base, offset)
    v_n = _lerp(np.gradient(ant_y) * hz, base, offset)
    true_speed = np.hypot(v_e, v_n)

    sigma, bias, period = s.gps_noise_m, s.gps_bias_m, 60.0 * s.gps_hz
    err_e = sigma * noise.normal(20, j0, j1) + bias * noise.smooth(23, j0, j1, period)
    err_n = sigma * noise.normal(21, j0, j1) + bias * noise.smooth(24, j0, j1, period)
    err_u = 1.5 * (sigma * noise.normal(22, j0, j1) + bias * noise.smooth(25, j0, j1, period))
    jump = noise.uniform(32, j0, j1) < s.multipath_rate
    reach = 100.0 + 400.0 * noise.uniform(34, j0, j1)
    angle = 2 * np.pi * noise.uniform(33, j0, j1)
    err_e += np.where(jump, reach * np.sin(angle), 0.0)
    err_n += np.where(jump, reach * np.cos(angle), 0.0)
    err_u += np.where(jump, 0.1 * reach * np.cos(3 * angle), 0.0)
    lat, lon = local_to_latlon(x + err_e, y + err_n, s.pit_latitude, s.pit_longitude)

    speed = np.abs(true_speed + s.speed_noise * noise.normal(26, j0, j1))
    # Below walking pace GNSS cannot tell a course; the logger then reports
    # the body heading from its IMU fusion instead of noise.
    wobble = noise.normal(27, j0, j1)
    course = heading_of(v_e, v_n) + np.degrees(s.speed_noise * wobble / np.maximum(true_speed, 0.5))
    body = truth.heading[np.clip(base, 0, len(truth) - 1)] + 0.5 * wobble
    heading = np.where((true_speed > 0.3) & (speed >= 0.7), course, body)

    pit = site_layout(s.site_seed)
    depth = np.clip((pit.rim_z - ground) / (pit.rim_z - pit.floor_z), 0.0, 1.0)
    hdop = 0.75 + depth + 0.2 * np.abs(noise.smooth(35, j0, j1, 30.0 * s.gps_hz)) + 0.3 * jump
    active = truth.activity[np.clip(base, 0, len(truth) - 1)]
    keep = (active != OFF) & ~_dropouts(settings, noise, truth, span)
    columns = {
        "latitude": np.round(lat, 7),
        "longitude": np.round(lon, 7),
        "altitude": np.round(ground + height + err_u, 2),
        "speed": np.round(speed, 2),
        "heading": _wrap360(np.round(heading, 2)),
        "hdop": np.round(hdop, 2),
    }
    extras = _extras(profile, noise, truth, base=base, active=active, span=span)
    return {
        "gps_j": j[keep],
        "gps_ts": round_ms(s.start_timestamp + (j / s.gps_hz + jitter)[keep]),
        "gps_merged": merged[keep],
        "gps": {name: values[keep] for name, values in columns.items()},
        "extras": {name: values[keep] for name, values in extras.items()},
    }


def _dropouts(
    settings: SimulationSettings, noise: BlockNoise, truth: Truth, span: tuple[int, int]
) -> np.ndarray:
    """Fixes lost to GPS shadow; a dropout starts 3.5 times as often on the pit floor as on top."""
    j0, j1 = span
    back = DROPOUT_LOOKBACK_S * settings.gps_hz - 1
    j = np.arange(j0 - back, j1)
    idx = np.clip(j * (settings.imu_hz // settings.gps_hz) - truth.k0, 0, len(truth) - 1)
    pit = site_layout(settings.site_seed)
    depth = np.clip((pit.rim_z - truth.z[idx]) / (pit.rim_z - pit.floor_z), 0.0, 1.0)
    rate = settings.gps_dropout_rate * (0.5 + 2.5 * depth)
    starts = np.flatnonzero(noise.uniform(30, j[0], j1) < rate)
    length = 3.0 - 7.0 * np.log1p(-noise.uniform(31, j[0], j1)[starts])
    length = np.minimum(np.round(length * settings.gps_hz), back).astype(np.int64)
    marks = np.zeros(len(j) + 1, dtype=np.int64)
    np.add.at(marks, starts, 1)
    np.add.at(marks, np.minimum(starts + length, len(j)), -1)
    return (np.cumsum(marks)[:-1] > 0)[back:]


def _extras(
    profile: MachineProfile,
    noise: BlockNoise,
    truth: Truth,
    *,
    base: np.ndarray,
    active: np.ndarray,
    span: tuple[int, int],
) -> dict[str, np.ndarray]:
    """CAN and OEM columns some loggers add; downstream must ignore them."""
    if not profile.logger.extras:
        return {}
    idx = np.clip(base, 0, len(truth) - 1)
    speed = np.abs(truth.speed[idx])
    rpm = _RPM[profile.machine_type][np.clip(active, 0, None)] + 25.0 * speed
    rpm = np.round((rpm + 8.0 * noise.normal(36, *span)) * 8.0) / 8.0
    values = {
        "can_engine_rpm": rpm,
        "j1939_fuel_rate": np.round(8.0 + 0.06 * (rpm - 650.0) * (1.0 + truth.load[idx]), 2),
        "oem_state": np.where(speed > 0.3, "RUN", "IDLE").astype(object),
    }
    return {name: values[name] for name in profile.logger.extras}
