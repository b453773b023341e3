"""The ground-truth timeline of one machine: what it does, second by second.

A timeline is a list of segments. Each segment carries one activity label
and one motion (stand, drive a road, swing the upper structure), so the
labels and the trajectory come from the same source and cannot disagree.
Segments start and end on whole seconds; breaks and power-off periods are
inserted between activities, never in the middle of one, as on a real site.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from etl.simulate.terrain import DriveProfile, Route

OFF = -1
"""Activity code of a machine that is switched off: no data, no label."""


@dataclass(frozen=True)
class Pose:
    """Where a machine stands and which way it faces.

    Attributes:
        x: Metres east of the pit centre.
        y: Metres north of the pit centre.
        z: Ground altitude, metres.
        heading: Body heading, degrees clockwise from north.
        pitch: Body pitch, radians, nose up positive.
    """

    x: float
    y: float
    z: float
    heading: float
    pitch: float = 0.0


@dataclass(frozen=True, eq=False)
class Hold:
    """Standing still."""

    pose: Pose
    duration: float

    @property
    def end_pose(self) -> Pose:
        """Pose at the end of the motion."""
        return self.pose


@dataclass(frozen=True, eq=False)
class Drive:
    """Driving along a road, forwards or in reverse."""

    route: Route
    profile: DriveProfile
    reverse: bool = False

    @property
    def duration(self) -> float:
        """Seconds from departure to stop."""
        return self.profile.duration

    @property
    def end_pose(self) -> Pose:
        """Pose at the end of the motion."""
        x, y, z, heading, grade = (float(v[0]) for v in self.route.at(self.profile.s[-1:]))
        sign = -1.0 if self.reverse else 1.0
        return Pose(
            x, y, z, (heading + (180.0 if self.reverse else 0.0)) % 360.0, sign * math.atan(grade)
        )


@dataclass(frozen=True, eq=False)
class Swing:
    """Turning the upper structure (excavator) on the spot by ``angle`` degrees."""

    pose: Pose
    angle: float
    duration: float

    @property
    def end_pose(self) -> Pose:
        """Pose at the end of the motion."""
        p = self.pose
        return Pose(p.x, p.y, p.z, (p.heading + self.angle) % 360.0, p.pitch)


Motion = Hold | Drive | Swing


@dataclass(frozen=True, eq=False)
class Segment:
    """One activity over whole seconds ``[start, end)`` from the simulation start.

    Attributes:
        activity: Index into the machine type's taxonomy, or :data:`OFF`.
        start: First second.
        end: One past the last second.
        motion: How the machine moves meanwhile.
        load0: Payload fraction at the start (0 empty, 1 full).
        load1: Payload fraction at the end.
        effect: Extra body motion the sensors add ("tip" for a dumper bed).
    """

    activity: int
    start: int
    end: int
    motion: Motion
    load0: float = 0.0
    load1: float = 0.0
    effect: str = ""


@dataclass(frozen=True)
class Interruption:
    """A planned pause: a break (idle) or a power-off period."""

    start: int
    duration: int
    activity: int


@dataclass(frozen=True, eq=False)
class Timeline:
    """Everything that happens to one machine over the simulation.

    Attributes:
        segments: Back-to-back segments covering ``[0, duration)``.
        duration: Simulated seconds.
        event_t: Seconds (from the start) of short mechanical shocks.
        event_kind: Kind of each shock (see ``sensors.EVENT_KINDS``).
        event_amp: Peak amplitude of each shock, m/s^2.
    """

    segments: list[Segment]
    duration: int
    event_t: np.ndarray
    event_kind: np.ndarray
    event_amp: np.ndarray
    starts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts", np.array([seg.start for seg in self.segments]))

    def off_periods(self) -> list[tuple[int, int]]:
        """Merged ``[start, end)`` seconds during which the machine is switched off."""
        periods: list[tuple[int, int]] = []
        for seg in self.segments:
            if seg.activity != OFF:
                continue
            if periods and periods[-1][1] == seg.start:
                periods[-1] = (periods[-1][0], seg.end)
            else:
                periods.append((seg.start, seg.end))
        return periods

    def activity_per_second(self) -> np.ndarray:
        """The activity code of every simulated second."""
        codes = np.empty(self.duration, dtype=np.int16)
        for seg in self.segments:
            codes[seg.start : seg.end] = seg.activity
        return codes

    def overlapping(self, start_s: float, stop_s: float) -> list[Segment]:
        """Segments that intersect ``[start_s, stop_s)``."""
        first = max(int(np.searchsorted(self.starts, start_s, side="right")) - 1, 0)
        last = int(np.searchsorted(self.starts, stop_s, side="left"))
        return self.segments[first:last]


def empty_labels() -> pd.DataFrame:
    """A labels frame with the contract's columns and no rows."""
    return pd.DataFrame(
        {
            "machine_uuid": pd.Series([], dtype=object),
            "start": pd.Series([], dtype=np.float64),
            "end": pd.Series([], dtype=np.float64),
            "activity": pd.Series([], dtype=object),
        }
    )


def labels_frame(
    timeline: Timeline, activities: tuple[str, ...], machine_uuid: str, t0: float
) -> pd.DataFrame:
    """Labels per the contract: consecutive seconds of one activity merged into an interval.

    Args:
        timeline: The machine's timeline.
        activities: The machine type's taxonomy (codes index it).
        machine_uuid: The machine.
        t0: Unix seconds of the simulation start.

    Returns:
        Columns ``machine_uuid``, ``start``, ``end`` (exclusive), ``activity``;
        power-off periods are left unlabelled.
    """
    rows: list[tuple[int, int, int]] = []
    for seg in timeline.segments:
        if seg.activity == OFF or seg.end <= seg.start:
            continue
        if rows and rows[-1][1] == seg.start and rows[-1][2] == seg.activity:
            rows[-1] = (rows[-1][0], seg.end, seg.activity)
        else:
            rows.append((seg.start, seg.end, seg.activity))
    starts = np.array([r[0] for r in rows], dtype=np.float64) + t0
    ends = np.array([r[1] for r in rows], dtype=np.float64) + t0
    names = [activities[r[2]] for r in rows]
    return pd.DataFrame(
        {
            "machine_uuid": pd.Series([machine_uuid] * len(rows), dtype=object),
            "start": starts,
            "end": ends,
            "activity": pd.Series(names, dtype=object),
        }
    )


class TimelineBuilder:
    """Appends segments one after the other and slots in pauses when they are due."""

    def __init__(
        self, duration: int, pose: Pose, idle: int, interruptions: list[Interruption]
    ) -> None:
        """Start at second 0 in ``pose``.

        Args:
            duration: Simulated seconds; segments past it are cut.
            pose: Initial pose.
            idle: Activity code of "idle" in the machine's taxonomy.
            interruptions: Planned pauses, in any order.
        """
        self.duration = duration
        self.t = 0
        self.pose = pose
        self.load = 0.0
        self.idle = idle
        self._pending = sorted(interruptions, key=lambda item: item.start)
        self._segments: list[Segment] = []
        self._events: list[tuple[float, int, float]] = []

    @property
    def done(self) -> bool:
        """Whether the timeline reaches the end of the simulation."""
        return self.t >= self.duration

    def add(
        self, activity: int, motion: Motion, load: float | None = None, effect: str = ""
    ) -> Segment:
        """Append one segment; the machine ends in the motion's end pose.

        Args:
            activity: Activity code.
            motion: What the machine does meanwhile.
            load: Payload at the end (default: unchanged).
            effect: Extra sensor effect name.

        Returns:
            The segment (already cut at the end of the simulation).
        """
        length = max(1, math.ceil(motion.duration - 1e-9))
        end = min(self.t + length, self.duration)
        load1 = self.load if load is None else load
        segment = Segment(activity, self.t, end, motion, self.load, load1, effect)
        self._segments.append(segment)
        self.t, self.pose, self.load = end, motion.end_pose, load1
        return segment

    def hold(
        self, activity: int, seconds: float, load: float | None = None, effect: str = ""
    ) -> Segment:
        """Stand still for ``seconds``."""
        return self.add(activity, Hold(self.pose, max(seconds, 1.0)), load, effect)

    def event(self, t: float, kind: int, amplitude: float) -> None:
        """Record a shock at ``t`` seconds from the simulation start."""
        if t < self.duration:
            self._events.append((t, kind, amplitude))

    def pause_if_due(self) -> bool:
        """Insert every pause whose start has passed; return whether one was inserted."""
        inserted = False
        while self._pending and self._pending[0].start <= self.t and not self.done:
            pause = self._pending.pop(0)
            self.hold(pause.activity, pause.duration)
            inserted = True
        return inserted

    def build(self) -> Timeline:
        """The finished timeline."""
        if not self.done:
            self.hold(self.idle, self.duration - self.t)
        events = sorted(self._events)
        return Timeline(
            segments=self._segments,
            duration=self.duration,
            event_t=np.array([e[0] for e in events], dtype=np.float64),
            event_kind=np.array([e[1] for e in events], dtype=np.int16),
            event_amp=np.array([e[2] for e in events], dtype=np.float64),
        )
