"""The true motion of a machine, sampled at the IMU rate.

Renders a window of a timeline into plain arrays (position, heading, pitch,
signed speed, activity, payload). Sample ``k`` is at ``k / hz`` seconds from
the simulation start; samples outside the simulation repeat its edges, so a
window may reach past either end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from etl.simulate.timeline import OFF, Drive, Hold, Swing, Timeline


@dataclass(frozen=True, eq=False)
class Truth:
    """True state per sample.

    Attributes:
        k0: Index of the first sample.
        hz: Sample rate.
        x: Metres east of the pit centre (machine reference point).
        y: Metres north.
        z: Ground altitude, metres.
        heading: Body heading, degrees clockwise from north (not wrapped).
        pitch: Body pitch from the ground, radians, nose up positive.
        speed: Longitudinal speed, m/s, negative when reversing.
        activity: Activity code, :data:`OFF` when switched off.
        load: Payload fraction.
        tip: 0..1 shape of a tipping dumper bed.
    """

    k0: int
    hz: int
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    heading: np.ndarray
    pitch: np.ndarray
    speed: np.ndarray
    activity: np.ndarray
    load: np.ndarray
    tip: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def _smoothstep(u: np.ndarray) -> np.ndarray:
    """0 to 1 with zero slope at both ends: how a swing accelerates and brakes."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _tip_shape(u: np.ndarray) -> np.ndarray:
    """Bed raised from 10 % to 50 % of the dump, held, lowered from 60 % to 85 %."""
    return _smoothstep((u - 0.1) / 0.4) - _smoothstep((u - 0.6) / 0.25)


def render_truth(timeline: Timeline, k0: int, k1: int, hz: int) -> Truth:
    """True state for samples ``k0 .. k1 - 1``.

    Args:
        timeline: The machine's timeline.
        k0: First sample index (may be negative).
        k1: One past the last sample index (may exceed the simulation).
        hz: Sample rate.

    Returns:
        The arrays, one value per sample.
    """
    n = k1 - k0
    last = timeline.duration * hz - 1
    t = np.clip(np.arange(k0, k1), 0, last) / hz
    out = {
        name: np.zeros(n) for name in ("x", "y", "z", "heading", "pitch", "speed", "load", "tip")
    }
    activity = np.full(n, OFF, dtype=np.int16)
    for seg in timeline.overlapping(float(t[0]), float(t[-1]) + 1.0 / hz):
        a, b = np.searchsorted(t, [seg.start, seg.end], side="left")
        if b <= a:
            continue
        tau = t[a:b] - seg.start
        _render_motion(seg.motion, tau, out, a, b)
        activity[a:b] = seg.activity
        share = np.clip(tau / max(seg.end - seg.start, 1), 0.0, 1.0)
        out["load"][a:b] = seg.load0 + (seg.load1 - seg.load0) * share
        if seg.effect == "tip":
            out["tip"][a:b] = _tip_shape(share)
    return Truth(k0=k0, hz=hz, activity=activity, **out)


def _render_motion(
    motion: Hold | Drive | Swing, tau: np.ndarray, out: dict[str, np.ndarray], a: int, b: int
) -> None:
    if isinstance(motion, Drive):
        profile = motion.profile
        s = np.interp(tau, profile.t, profile.s)
        v = np.interp(tau, profile.t, profile.v)
        x, y, z, heading, grade = motion.route.at(s)
        sign = -1.0 if motion.reverse else 1.0
        out["x"][a:b], out["y"][a:b], out["z"][a:b] = x, y, z
        out["heading"][a:b] = heading + (180.0 if motion.reverse else 0.0)
        out["pitch"][a:b] = sign * np.arctan(grade)
        out["speed"][a:b] = sign * v
        return
    pose = motion.pose
    out["x"][a:b], out["y"][a:b], out["z"][a:b] = pose.x, pose.y, pose.z
    out["pitch"][a:b] = pose.pitch
    if isinstance(motion, Swing):
        out["heading"][a:b] = pose.heading + motion.angle * _smoothstep(
            tau / max(motion.duration, 1e-6)
        )
    else:
        out["heading"][a:b] = pose.heading
