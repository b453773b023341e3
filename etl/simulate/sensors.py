"""The on-board unit of one machine: IMU samples and GPS fixes for any window of time.

All work is vectorised over a window of samples (an hour at 10 Hz); no
Python loop runs per sample. Noise comes from :class:`BlockNoise`, so a
sample reads the same, to the last bit, whichever window rendered it: files
that overlap carry identical rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from etl.simulate.gnss import DROPOUT_LOOKBACK_S, gps_fixes, round_ms, true_fixes
from etl.simulate.imu import SHOCK_SECONDS, imu_samples
from etl.simulate.kinematics import render_truth
from etl.simulate.machines import STREAM_SENSORS, MachineProfile
from etl.simulate.noise import BlockNoise
from etl.simulate.settings import SimulationSettings
from etl.simulate.timeline import OFF, Timeline

_MARGIN_S = 2  # seconds rendered after a window, for derivatives and filters
_LOOKBACK_S = max(DROPOUT_LOOKBACK_S, int(SHOCK_SECONDS) + _MARGIN_S)


@dataclass(frozen=True, eq=False)
class SensorWindow:
    """GPS fixes and IMU samples of one window, switched-off periods removed.

    Attributes:
        imu_k: Nominal IMU sample index of each sample (ascending).
        imu_ts: Unix seconds, millisecond precision.
        acc: (n, 3) accelerations, m/s^2.
        gyro: (n, 3) angular rates, deg/s, or None for an older logger.
        gps_j: Nominal fix index (``j / gps_hz`` seconds from the start).
        gps_ts: Unix seconds, millisecond precision.
        gps_merged: Whether the fix shares its timestamp with IMU sample
            ``gps_j * imu_hz / gps_hz``.
        gps: Column name to values (latitude ... heading, hdop).
        extras: Extra CAN/OEM columns on GPS rows.
    """

    imu_k: np.ndarray
    imu_ts: np.ndarray
    acc: np.ndarray
    gyro: np.ndarray | None
    gps_j: np.ndarray
    gps_ts: np.ndarray
    gps_merged: np.ndarray
    gps: dict[str, np.ndarray]
    extras: dict[str, np.ndarray]


class SensorModel:
    """Renders the sensors of one machine for any window of its timeline."""

    def __init__(
        self, settings: SimulationSettings, profile: MachineProfile, timeline: Timeline
    ) -> None:
        """Bind the model to one machine.

        Args:
            settings: Noise levels and rates.
            profile: The machine and its logger.
            timeline: Its ground truth.
        """
        self.settings = settings
        self.profile = profile
        self.timeline = timeline
        self.noise = BlockNoise(settings.seed, profile.index, STREAM_SENSORS)

    def window(self, k0: int, k1: int) -> SensorWindow:
        """Sensors for IMU samples ``k0 .. k1 - 1`` and the GPS fixes among them.

        Args:
            k0: First nominal IMU sample index.
            k1: One past the last.

        Returns:
            The samples of the window; switched-off samples are absent.
        """
        s, hz = self.settings, self.settings.imu_hz
        ratio = s.imu_hz // s.gps_hz
        lead = _LOOKBACK_S * hz
        truth = render_truth(self.timeline, k0 - lead, k1 + _MARGIN_S * hz, hz)
        jitter, acc, gyro = imu_samples(s, self.profile, self.timeline, self.noise, truth)
        inner = slice(lead, lead + (k1 - k0))
        on = truth.activity[inner] != OFF
        imu_ts = (np.arange(k0, k1) / hz + jitter[inner])[on]
        span = (-(-k0 // ratio), -(-k1 // ratio))
        gps = gps_fixes(s, self.profile, self.noise, truth, span=span, imu_jitter=jitter)
        return SensorWindow(
            imu_k=np.arange(k0, k1)[on],
            imu_ts=round_ms(s.start_timestamp + imu_ts),
            acc=acc[inner][on],
            gyro=None if gyro is None else gyro[inner][on],
            **gps,
        )

    def true_fixes(self, j0: int, j1: int) -> dict[str, np.ndarray]:
        """Noise-free fixes ``j0 .. j1 - 1`` (see :func:`etl.simulate.gnss.true_fixes`)."""
        return true_fixes(self.settings, self.profile, self.timeline, j0, j1)
