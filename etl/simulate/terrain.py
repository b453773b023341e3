"""Roads of the simulated pit and how fast a machine drives along them.

Positions are local metres (x east, y north) around the pit centre; the
sensors convert them to WGS84 only at the end. A road is a smoothed polyline
resampled every metre, so that heading and grade change continuously and the
IMU sees no impossible yaw or pitch rates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_M_PER_DEG_LAT = 111_132.954


def local_to_latlon(
    x: np.ndarray, y: np.ndarray, lat0: float, lon0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Convert local metres to WGS84 degrees (equirectangular, exact enough for a few km).

    Args:
        x: Metres east of the origin.
        y: Metres north of the origin.
        lat0: Latitude of the origin.
        lon0: Longitude of the origin.

    Returns:
        Latitude and longitude arrays.
    """
    lat = lat0 + np.asarray(y) / _M_PER_DEG_LAT
    lon = lon0 + np.asarray(x) / (_M_PER_DEG_LAT * math.cos(math.radians(lat0)))
    return lat, lon


def latlon_to_local(
    lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`local_to_latlon`."""
    y = (np.asarray(lat) - lat0) * _M_PER_DEG_LAT
    x = (np.asarray(lon) - lon0) * _M_PER_DEG_LAT * math.cos(math.radians(lat0))
    return x, y


def heading_of(dx: np.ndarray | float, dy: np.ndarray | float) -> np.ndarray:
    """Compass heading of a direction (degrees clockwise from north, in [0, 360))."""
    heading = np.mod(np.degrees(np.arctan2(dx, dy)), 360.0)
    return np.where(heading >= 360.0, heading - 360.0, heading)


def _smooth(values: np.ndarray, half_window: int) -> np.ndarray:
    """Moving average with odd reflection at the ends, which keeps end points and end tangents."""
    if half_window < 1 or len(values) < 3:
        return values
    pad = min(half_window, len(values) - 1)
    head = 2 * values[0] - values[pad:0:-1]
    tail = 2 * values[-1] - values[-2 : -pad - 2 : -1]
    padded = np.concatenate([head, values, tail])
    kernel = np.ones(2 * pad + 1) / (2 * pad + 1)
    return np.convolve(padded, kernel, mode="valid")


@dataclass(frozen=True, eq=False)
class Route:
    """A road sampled every metre.

    Attributes:
        s: Distance along the road, metres, starting at 0.
        x: Metres east.
        y: Metres north.
        z: Altitude of the road surface, metres above the ellipsoid.
        heading: Unwrapped direction of travel, degrees clockwise from north
            (unwrapped so it interpolates; take it modulo 360 to report it).
        grade: dz/ds, positive uphill in the direction of travel.
        curvature: Absolute curvature, 1/metres.
    """

    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    heading: np.ndarray
    grade: np.ndarray
    curvature: np.ndarray

    @classmethod
    def from_waypoints(
        cls, points: Sequence[tuple[float, float, float]], smooth_m: float = 10.0
    ) -> Route:
        """Resample waypoints every metre and round their corners.

        Args:
            points: (x, y, z) waypoints in driving order.
            smooth_m: Half width of the moving average that rounds corners.

        Returns:
            The road.
        """
        raw = np.asarray(points, dtype=np.float64)
        seg = np.hypot(np.diff(raw[:, 0]), np.diff(raw[:, 1]))
        keep = np.concatenate([[True], seg > 1e-6])
        raw = raw[keep]
        dist = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(raw[:, 0]), np.diff(raw[:, 1])))])
        samples = np.linspace(0.0, dist[-1], max(2, math.ceil(dist[-1]) + 1))
        x = np.interp(samples, dist, raw[:, 0])
        y = np.interp(samples, dist, raw[:, 1])
        z = np.interp(samples, dist, raw[:, 2])
        half = round(smooth_m / max(samples[1] - samples[0], 1e-9))
        x, y, z = _smooth(x, half), _smooth(y, half), _smooth(z, half)
        return cls.from_xyz(x, y, z)

    @classmethod
    def from_xyz(cls, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Route:
        """Build a road from already dense points."""
        step = np.hypot(np.diff(x), np.diff(y))
        s = np.concatenate([[0.0], np.cumsum(step)])
        dx, dy = np.gradient(x), np.gradient(y)
        heading = np.degrees(np.unwrap(np.arctan2(dx, dy)))
        ds = np.maximum(np.gradient(s), 1e-6)
        grade = np.gradient(z) / ds
        curvature = np.abs(np.gradient(np.radians(heading))) / ds
        return cls(s, x, y, z, heading, grade, curvature)

    @property
    def length(self) -> float:
        """Length of the road in metres."""
        return float(self.s[-1])

    def nearest_s(self, x: float, y: float) -> float:
        """Distance along the road of the point closest to (x, y)."""
        return float(self.s[np.argmin(np.hypot(self.x - x, self.y - y))])

    def at(self, s: np.ndarray) -> tuple[np.ndarray, ...]:
        """Position, altitude, heading (unwrapped) and grade at distances ``s``."""
        return (
            np.interp(s, self.s, self.x),
            np.interp(s, self.s, self.y),
            np.interp(s, self.s, self.z),
            np.interp(s, self.s, self.heading),
            np.interp(s, self.s, self.grade),
        )


@dataclass(frozen=True)
class DriveStyle:
    """How a machine drives: the speed limits that shape its profile.

    Attributes:
        v_flat: Cruise speed on the level, m/s.
        climb_power: Speed times (grade + rolling resistance) the engine
            sustains, m/s; loaded trucks crawl up the ramp because of it.
        v_down: Retarder speed limit on a steep descent, m/s.
        accel: Acceleration from rest, m/s^2.
        decel: Braking to a stop, m/s^2.
        lateral: Largest lateral acceleration accepted in bends, m/s^2.
    """

    v_flat: float
    climb_power: float
    v_down: float
    accel: float
    decel: float
    lateral: float = 1.2

    def scaled(self, factor: float) -> DriveStyle:
        """The same style driven ``factor`` times faster (operator, machine)."""
        return DriveStyle(
            self.v_flat * factor,
            self.climb_power * factor,
            self.v_down * factor,
            self.accel * factor,
            self.decel * factor,
            self.lateral,
        )


@dataclass(frozen=True, eq=False)
class DriveProfile:
    """Time, distance and speed of one drive from standstill to standstill."""

    t: np.ndarray
    s: np.ndarray
    v: np.ndarray

    @property
    def duration(self) -> float:
        """Seconds from departure to stop."""
        return float(self.t[-1])


def speed_limits(route: Route, style: DriveStyle) -> np.ndarray:
    """Highest speed at each road point from grade, engine power and bends."""
    climb = style.climb_power / np.maximum(route.grade + 0.02, 1e-3)
    descent = np.interp(-route.grade, [0.0, 0.05], [style.v_flat, style.v_down])
    bend = np.sqrt(style.lateral / np.maximum(route.curvature, 1e-6))
    return np.minimum.reduce([np.full(len(route.s), style.v_flat), climb, descent, bend])


def drive_profile(
    route: Route, limits: np.ndarray, style: DriveStyle, s_from: float, s_to: float
) -> DriveProfile:
    """Speed profile from standstill at ``s_from`` to standstill at ``s_to``.

    The acceleration and braking limits are closed forms over running minima
    (v^2 <= min_k(limit_k^2 + 2a|s - s_k|)), so no per-point Python loop runs.

    Args:
        route: The road.
        limits: Speed limit per road point (see :func:`speed_limits`).
        style: Acceleration and braking of the machine.
        s_from: Start distance along the road.
        s_to: Stop distance along the road, greater than ``s_from``.

    Returns:
        The profile, with ``t`` starting at 0.
    """
    i0 = int(np.searchsorted(route.s, s_from, side="right"))
    i1 = int(np.searchsorted(route.s, s_to, side="left"))
    s = np.concatenate([[s_from], route.s[i0:i1], [s_to]])
    lim = np.interp(s, route.s, limits)
    lim[0] = lim[-1] = 0.0
    lim2 = lim**2
    forward = 2 * style.accel * s + np.minimum.accumulate(lim2 - 2 * style.accel * s)
    backward = (
        -2 * style.decel * s + np.minimum.accumulate((lim2 + 2 * style.decel * s)[::-1])[::-1]
    )
    v = np.sqrt(np.maximum(np.minimum(forward, backward), 0.0))
    mean_v = np.maximum(v[1:] + v[:-1], 1e-3) / 2
    t = np.concatenate([[0.0], np.cumsum(np.diff(s) / mean_v)])
    return DriveProfile(t, s, v)
