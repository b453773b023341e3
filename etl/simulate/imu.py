"""What the accelerometer and gyroscope read, from the true motion.

Specific force in the vehicle frame (x forward, y left, z up): gravity tilted
by pitch and roll, longitudinal and lateral acceleration, engine and road
vibration scaled by activity, speed and payload, damped shocks the timeline
recorded, a mounting error, a bias, and the sensor's range.
"""

from __future__ import annotations

import numpy as np

from etl.simulate.cycles import (
    SHOCK_BUCKET,
    SHOCK_BUMP,
    SHOCK_DIG,
    SHOCK_PASS,
    SHOCK_PILE,
    SHOCK_RELEASE,
    SHOCK_THUD,
)
from etl.simulate.kinematics import Truth
from etl.simulate.machines import MachineProfile
from etl.simulate.noise import BlockNoise
from etl.simulate.settings import SimulationSettings
from etl.simulate.timeline import OFF, Timeline

G = 9.80665
GYRO_RANGE_DPS = 250.0

# Vibration standard deviation (m/s^2) per activity code, engine and hydraulics.
_VIBRATION = {
    "dumper": np.array([0.04, 0.05, 0.07, 0.10, 0.25, 0.12]),
    "excavator": np.array([0.05, 0.45, 0.22, 0.30, 0.18, 0.50]),
    "wheel_loader": np.array([0.05, 0.50, 0.25, 0.30, 0.25]),
}
# Extra vibration per m/s of speed (road roughness, tracks).
_ROUGHNESS = {"dumper": 0.07, "excavator": 0.30, "wheel_loader": 0.08}
# Shock shapes: decay (s), frequency (Hz), phase, acc gains (x, y, z),
# gyro gains (deg/s per m/s^2).
_SHOCKS = {
    SHOCK_PASS: (0.7, 1.6, np.pi, (0.25, 0.15, 1.0), (0.5, 1.5, 0.2)),
    SHOCK_RELEASE: (1.2, 1.1, 0.0, (0.4, 0.1, 1.0), (0.3, 2.0, 0.1)),
    SHOCK_THUD: (0.25, 3.0, 0.0, (0.3, 0.2, 1.0), (0.5, 1.0, 0.1)),
    SHOCK_BUMP: (0.35, 2.5, 0.0, (0.5, 0.4, 1.0), (1.5, 1.5, 0.3)),
    SHOCK_DIG: (0.5, 1.8, np.pi, (1.0, 0.3, 0.6), (0.5, 2.0, 0.5)),
    SHOCK_PILE: (0.4, 1.5, np.pi, (1.0, 0.2, 0.5), (0.3, 2.0, 0.3)),
    SHOCK_BUCKET: (0.3, 2.5, 0.0, (0.3, 0.3, 1.0), (0.3, 1.0, 0.3)),
}
SHOCK_SECONDS = 4.0
"""How long a shock rings; a window must look back this far."""


def moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average as a plain sum of shifted copies.

    Summing in a fixed order (not via a convolution kernel that may pick a
    SIMD path by alignment) makes every output depend only on its inputs,
    so overlapping windows agree to the last bit.
    """
    if width <= 1:
        return values
    n = len(values)
    padded = np.concatenate(
        [np.full(width // 2, values[0]), values, np.full(width - 1 - width // 2, values[-1])]
    )
    total = padded[0:n].copy()
    for shift in range(1, width):
        total += padded[shift : shift + n]
    return total / width


def _wrapped_rate(angle_rad: np.ndarray, hz: int) -> np.ndarray:
    """Central-difference rate of an angle, immune to 2*pi jumps and to where a window starts."""
    step = np.diff(angle_rad)
    step = (step + np.pi) % (2 * np.pi) - np.pi
    rate = np.empty_like(angle_rad)
    rate[1:-1] = (step[:-1] + step[1:]) / 2
    rate[0], rate[-1] = step[0], step[-1]
    return rate * hz


def _rotate(vectors: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Apply a 3x3 rotation to (n, 3) vectors with plain element-wise arithmetic."""
    out = np.empty_like(vectors)
    for row in range(3):
        out[:, row] = (
            rotation[row, 0] * vectors[:, 0]
            + rotation[row, 1] * vectors[:, 1]
            + rotation[row, 2] * vectors[:, 2]
        )
    return out


def _rotation(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rotation matrix of a small mounting error."""
    cr, sr, cp, sp = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def imu_samples(
    settings: SimulationSettings,
    profile: MachineProfile,
    timeline: Timeline,
    noise: BlockNoise,
    truth: Truth,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """IMU readings for every sample of ``truth``.

    Args:
        settings: Noise levels, jitter and sensor range.
        profile: The machine (type, vibration) and its logger (bias, gyro).
        timeline: The shocks to add.
        noise: The machine's sensor noise.
        truth: True state per IMU sample.

    Returns:
        Timestamp jitter (s), (n, 3) acceleration (m/s^2) and (n, 3) angular
        rate (deg/s), the latter None for a logger without gyro.
    """
    hz, kind = truth.hz, profile.machine_type
    ks, ke = truth.k0, truth.k0 + len(truth)
    jitter = noise.normal(12, ks, ke) * settings.timestamp_jitter_s
    jitter = np.clip(jitter, -0.45 / hz, 0.45 / hz)

    yaw_rate = -moving_average(_wrapped_rate(np.radians(truth.heading), hz), max(1, hz // 2))
    speed = moving_average(truth.speed, max(1, hz // 3))
    a_long = np.gradient(speed) * hz
    a_lat = speed * yaw_rate
    moving = np.minimum(np.abs(speed) / 5.0, 1.0)
    # The chassis squats under acceleration and tilts back while the bed rises.
    pitch = truth.pitch + 0.03 * truth.tip + 0.004 * a_long
    if kind == "excavator":
        digging = (truth.activity == 1).astype(np.float64)
        pitch = pitch + 0.015 * digging * noise.smooth(11, ks, ke, 1.5 * hz)
    pitch = moving_average(pitch, max(1, hz // 2))
    roll = 0.01 * a_lat + 0.012 * moving * noise.smooth(10, ks, ke, 2.0 * hz)
    f_x = a_long + G * np.sin(pitch)
    f_y = a_lat + G * np.sin(roll) * np.cos(pitch)
    f_z = G * np.cos(pitch) * np.cos(roll)
    if kind == "excavator":
        # The IMU sits in the cab, 1.2 m ahead of the swing axis.
        f_x = f_x - yaw_rate**2 * 1.2
        f_y = f_y + np.gradient(yaw_rate) * hz * 1.2

    amp = _VIBRATION[kind][np.clip(truth.activity, 0, None)] * (1.0 + 2.0 * truth.tip)
    rough = _ROUGHNESS[kind] * np.abs(speed)
    if kind == "dumper":
        rough = rough * (1.5 - 0.6 * truth.load)  # an empty truck rattles more
    amp = (amp + rough) * profile.vibration_factor
    amp[truth.activity == OFF] = 0.0
    vib = np.stack([noise.normal(stream, ks, ke) for stream in (0, 1, 2)], axis=1)
    vib *= amp[:, None] * np.array([0.6, 0.5, 1.0])
    bounce = moving_average(noise.normal(3, ks, ke), max(1, hz // 2)) * amp * 1.5
    acc = np.column_stack([f_x, f_y, f_z + bounce]) + vib
    gyro = np.column_stack(
        [
            np.degrees(np.gradient(roll) * hz),
            np.degrees(-np.gradient(pitch) * hz),
            np.degrees(yaw_rate),
        ]
    )
    gyro_noise = np.stack([noise.normal(stream, ks, ke) for stream in (7, 8, 9)], axis=1)
    gyro += gyro_noise * (0.05 + 0.6 * amp[:, None])
    _add_shocks(timeline, truth, acc, gyro)
    acc_noise = np.stack([noise.normal(stream, ks, ke) for stream in (4, 5, 6)], axis=1)
    acc += acc_noise * settings.imu_noise
    logger = profile.logger
    rotation = _rotation(*logger.misalignment)
    acc = _rotate(acc, rotation) + np.array(logger.acc_bias)
    limit = settings.imu_saturation_g * G
    acc = np.clip(acc, -limit, limit)
    if not logger.has_gyro:
        return jitter, acc, None
    gyro = _rotate(gyro, rotation) + np.array(logger.gyro_bias)
    return jitter, acc, np.clip(gyro, -GYRO_RANGE_DPS, GYRO_RANGE_DPS)


def _add_shocks(timeline: Timeline, truth: Truth, acc: np.ndarray, gyro: np.ndarray) -> None:
    """Add damped oscillations where the timeline recorded a shock."""
    hz = truth.hz
    start_s = truth.k0 / hz - SHOCK_SECONDS
    stop_s = (truth.k0 + len(truth)) / hz
    lo, hi = np.searchsorted(timeline.event_t, [start_s, stop_s])
    if hi <= lo:
        return
    length = int(SHOCK_SECONDS * hz)
    tau = np.arange(length) / hz
    first = np.round(timeline.event_t[lo:hi] * hz).astype(np.int64)[:, None] - truth.k0
    index = first + np.arange(length)
    valid = (index >= 0) & (index < len(truth))
    for kind, (decay, freq, phase, gains, gyro_gains) in _SHOCKS.items():
        pick = timeline.event_kind[lo:hi] == kind
        if not pick.any():
            continue
        wave = np.exp(-tau / decay) * np.sin(2 * np.pi * freq * tau + phase)
        shape = timeline.event_amp[lo:hi][pick, None] * wave
        where, mask = index[pick], valid[pick]
        for axis in range(3):
            np.add.at(acc[:, axis], where[mask], (gains[axis] * shape)[mask])
            np.add.at(gyro[:, axis], where[mask], (gyro_gains[axis] * shape)[mask])
