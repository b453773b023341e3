"""Work cycles of the three machine types, written as plain sequential stories.

Each function drives a :class:`TimelineBuilder` through the machine's cycle
until the simulation ends, recording the shocks the IMU will feel (a bucket
pass landing in a truck, the load sliding off a tipping bed, a pothole).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from etl.simulate.machines import (
    ACTIVITIES,
    STREAM_TIMELINE,
    MachineProfile,
    operator_factor,
    power_off_gaps,
    shift_breaks,
)
from etl.simulate.noise import derive_rng
from etl.simulate.settings import SimulationSettings
from etl.simulate.site import Site, direction, loader_routes
from etl.simulate.terrain import (
    DriveProfile,
    DriveStyle,
    Route,
    drive_profile,
    heading_of,
    speed_limits,
)
from etl.simulate.timeline import Drive, Pose, Swing, Timeline, TimelineBuilder

# Shock kinds the sensors know how to render.
SHOCK_PASS, SHOCK_RELEASE, SHOCK_THUD, SHOCK_BUMP, SHOCK_DIG, SHOCK_PILE, SHOCK_BUCKET = range(7)

_TRUCK_LOADED = DriveStyle(v_flat=9.0, climb_power=0.35, v_down=5.0, accel=0.35, decel=0.8)
_TRUCK_EMPTY = DriveStyle(v_flat=11.0, climb_power=0.9, v_down=7.5, accel=0.6, decel=0.8)
_TRUCK_SLOW = DriveStyle(v_flat=2.2, climb_power=0.5, v_down=2.0, accel=0.3, decel=0.5)
_DIGGER_TRACKS = DriveStyle(v_flat=1.1, climb_power=0.2, v_down=1.0, accel=0.2, decel=0.3)
_LOADER_LOADED = DriveStyle(
    v_flat=3.6, climb_power=0.6, v_down=3.0, accel=0.8, decel=1.0, lateral=2.0
)
_LOADER_EMPTY = DriveStyle(
    v_flat=4.5, climb_power=0.8, v_down=3.5, accel=0.9, decel=1.1, lateral=2.0
)
_LOADER_REVERSE = DriveStyle(
    v_flat=3.0, climb_power=0.6, v_down=2.5, accel=0.8, decel=1.0, lateral=2.0
)
_LOADER_PILE = DriveStyle(v_flat=1.2, climb_power=0.6, v_down=1.0, accel=0.5, decel=2.0)


@dataclass
class _Context:
    """What a cycle story needs: the site, its dice, its builder and its operator."""

    settings: SimulationSettings
    profile: MachineProfile
    site: Site
    rng: np.random.Generator
    builder: TimelineBuilder
    codes: dict[str, int]
    _profiles: dict[tuple[int, float, float, float, str], DriveProfile] = field(
        default_factory=dict
    )

    def operator(self) -> float:
        """Timing factor of the operator on shift now (larger is slower)."""
        return operator_factor(self.settings, self.profile, self.builder.t)

    def _profile(self, route: Route, style: DriveStyle, s_from: float, s_to: float) -> DriveProfile:
        """Drive profiles repeat every cycle of a shift, so compute each once."""
        factor = self.profile.speed_factor / math.sqrt(self.operator())
        key = (id(route), s_from, s_to, factor, repr(style))
        if key not in self._profiles:
            scaled = style.scaled(factor)
            self._profiles[key] = drive_profile(
                route, speed_limits(route, scaled), scaled, s_from, s_to
            )
        return self._profiles[key]

    def drive(
        self,
        activity: str,
        route: Route,
        style: DriveStyle,
        *,
        s_from: float = 0.0,
        s_to: float | None = None,
        reverse: bool = False,
        load: float | None = None,
        bumps_per_km: float = 0.0,
    ) -> None:
        """Drive ``route`` from ``s_from`` to ``s_to``, hitting ``bumps_per_km`` potholes."""
        end = route.length if s_to is None else s_to
        profile = self._profile(route, style, s_from, end)
        start = self.builder.t
        self.builder.add(self.codes[activity], Drive(route, profile, reverse), load)
        count = self.rng.poisson(bumps_per_km * (end - s_from) / 1000.0)
        for at in np.sort(self.rng.uniform(0.0, profile.duration, count)):
            speed = float(np.interp(at, profile.t, profile.v))
            big = 20.0 if self.rng.random() < 0.01 else 1.0  # a rock in the road
            amplitude = self.rng.lognormal(0.3, 0.5) * (0.3 + speed / 6.0) * big
            self.builder.event(start + at, SHOCK_BUMP, amplitude)

    def hold(
        self, activity: str, seconds: float, load: float | None = None, effect: str = ""
    ) -> int:
        """Stand still doing ``activity``; returns the second it started."""
        start = self.builder.t
        self.builder.hold(self.codes[activity], seconds, load, effect)
        return start

    def shock(self, t: float, kind: int, amplitude: float) -> None:
        """Record a shock at ``t`` seconds from the start."""
        self.builder.event(t, kind, amplitude)


def _context(
    settings: SimulationSettings, profile: MachineProfile, site: Site, pose: Pose
) -> _Context:
    rng = derive_rng(settings.seed, profile.index, STREAM_TIMELINE)
    codes = {name: code for code, name in enumerate(ACTIVITIES[profile.machine_type])}
    pauses = shift_breaks(settings, rng, codes["idle"]) + power_off_gaps(settings, profile.index)
    builder = TimelineBuilder(settings.duration_seconds, pose, codes["idle"], pauses)
    return _Context(settings, profile, site, rng, builder, codes)


def dumper_timeline(settings: SimulationSettings, profile: MachineProfile, site: Site) -> Timeline:
    """Queue, load, haul up the ramp, tip at the crusher or waste dump, return; repeat."""
    faces = [face for face in site.faces if face.ore == (profile.home % 2 == 0)]
    face = faces[profile.home // 2 % len(faces)]
    ctx = _context(settings, profile, site, _end_pose(site.haul_routes(face).back))
    rng = ctx.rng
    ctx.hold("idle", rng.uniform(1.0, 900.0))
    while not ctx.builder.done:
        routes = site.haul_routes(face)
        passes = int(rng.integers(4, 7))
        pass_time = 27.0 * ctx.operator() * rng.uniform(0.9, 1.1)
        start = ctx.hold("loading", passes * pass_time + rng.uniform(8.0, 20.0), load=1.0)
        for n in range(passes):
            at = start + 6.0 + n * pass_time + rng.uniform(-2.0, 2.0)
            ctx.shock(at, SHOCK_PASS, rng.lognormal(1.0, 0.35))
        ctx.builder.pause_if_due()
        if rng.random() < 0.25:
            ctx.drive(
                "hauling", routes.haul, _TRUCK_LOADED, s_to=routes.dump_queue_s, bumps_per_km=3.0
            )
            ctx.hold("queuing", 10.0 + rng.exponential(45.0))
            ctx.drive(
                "hauling", routes.haul, _TRUCK_LOADED, s_from=routes.dump_queue_s, bumps_per_km=3.0
            )
        else:
            ctx.drive("hauling", routes.haul, _TRUCK_LOADED, bumps_per_km=3.0)
        ctx.drive("hauling", routes.reverse_in, _TRUCK_SLOW, reverse=True)
        duration = rng.uniform(45.0, 70.0) * ctx.operator()
        start = ctx.hold("dumping", duration, load=0.0, effect="tip")
        ctx.shock(start + 0.55 * duration, SHOCK_RELEASE, rng.uniform(3.0, 6.0))
        ctx.shock(start + 0.93 * duration, SHOCK_THUD, rng.uniform(1.5, 3.5))
        ctx.builder.pause_if_due()
        face = faces[int(rng.integers(len(faces)))] if rng.random() < 0.05 else face
        routes = site.haul_routes(face)
        if rng.random() < 0.55:
            queue = routes.loader_queue_s - 40.0
            ctx.drive("returning", routes.back, _TRUCK_EMPTY, s_to=queue, bumps_per_km=3.0)
            ctx.hold("queuing", 10.0 + rng.exponential(80.0))
            ctx.drive("queuing", routes.back, _TRUCK_SLOW, s_from=queue, s_to=queue + 20.0)
            ctx.hold("queuing", 5.0 + rng.exponential(40.0))
            ctx.drive("returning", routes.back, _TRUCK_EMPTY, s_from=queue + 20.0)
        else:
            ctx.drive("returning", routes.back, _TRUCK_EMPTY, bumps_per_km=3.0)
        if rng.random() < 0.04:
            ctx.hold("idle", rng.uniform(60.0, 360.0))
        ctx.builder.pause_if_due()
    return ctx.builder.build()


def _end_pose(route: Route) -> Pose:
    """The pose of a machine that drove forwards to the end of ``route``."""
    stop = DriveProfile(np.array([0.0]), np.array([route.length]), np.array([0.0]))
    return Drive(route, stop).end_pose


def _wrap(angle: float) -> float:
    """Angle in (-180, 180]."""
    return (angle + 180.0) % 360.0 - 180.0


def excavator_timeline(
    settings: SimulationSettings, profile: MachineProfile, site: Site
) -> Timeline:
    """Load truck after truck in passes of dig, swing, dump, swing back; wait; sometimes move."""
    face = site.faces[profile.index % len(site.faces)]
    along = direction(face.dig_heading + 90.0)
    home = np.array(face.digger) + 35.0 * (profile.index // len(site.faces)) * along
    ctx = _context(settings, profile, site, Pose(*home, site.layout.floor_z, face.dig_heading))
    rng = ctx.rng
    offset = 0.0
    ctx.hold("idle", rng.uniform(1.0, 300.0))
    while not ctx.builder.done:
        pose = ctx.builder.pose
        to_truck = _wrap(
            float(heading_of(face.spot[0] - pose.x, face.spot[1] - pose.y)) - face.dig_heading
        )
        for _ in range(int(rng.integers(4, 7))):
            op = ctx.operator()
            start = ctx.hold("digging", max(rng.normal(10.0, 1.5), 4.0) * op)
            for at in rng.uniform(start, ctx.builder.t, int(rng.integers(1, 3))):
                big = 18.0 if rng.random() < 0.005 else 1.0  # bucket hits a boulder
                ctx.shock(float(at), SHOCK_DIG, rng.lognormal(0.6, 0.4) * big)
            swing = to_truck + rng.normal(0.0, 6.0)
            ctx.builder.add(
                ctx.codes["swinging_loaded"],
                Swing(ctx.builder.pose, swing, 5.5 * op * rng.uniform(0.85, 1.15)),
            )
            start = ctx.hold("dumping", 3.5 * op * rng.uniform(0.8, 1.2))
            ctx.shock(start + 1.0, SHOCK_BUCKET, rng.uniform(0.8, 2.0))
            back = _wrap(face.dig_heading - ctx.builder.pose.heading) + rng.normal(0.0, 4.0)
            ctx.builder.add(
                ctx.codes["swinging_empty"],
                Swing(ctx.builder.pose, back, 4.5 * op * rng.uniform(0.85, 1.15)),
            )
        if rng.random() < 0.5:
            ctx.hold("idle", rng.uniform(5.0, 25.0))
        else:
            if rng.random() < 0.3:
                ctx.hold("digging", rng.uniform(30.0, 90.0))
            ctx.hold("idle", min(rng.exponential(100.0), 900.0))
        if rng.random() < 0.03:
            step = rng.uniform(15.0, 45.0) * (1.0 if offset <= 0 else -1.0)
            offset += step
            _travel(ctx, step, along, face.dig_heading)
        ctx.builder.pause_if_due()
    return ctx.builder.build()


def _travel(ctx: _Context, step: float, along: np.ndarray, dig_heading: float) -> None:
    """Swing to the travel direction, crawl along the face, swing back to dig."""
    pose = ctx.builder.pose
    heading = float(heading_of(*(along * np.sign(step))))
    ctx.builder.add(ctx.codes["traveling"], Swing(pose, _wrap(heading - pose.heading), 8.0))
    start = np.array([pose.x, pose.y])
    end = start + along * step
    route = Route.from_waypoints([(*start, pose.z), (*end, pose.z)], smooth_m=0.0)
    ctx.drive("traveling", route, _DIGGER_TRACKS)
    ctx.builder.add(
        ctx.codes["traveling"], Swing(ctx.builder.pose, _wrap(dig_heading - heading), 8.0)
    )


def wheel_loader_timeline(
    settings: SimulationSettings, profile: MachineProfile, site: Site
) -> Timeline:
    """Feed the crusher from the ROM pad in V-cycles: fill, reverse, carry, tip, return."""
    slot, row = profile.index % 4, profile.index // 4
    pile = np.array(site.rom_pad) + slot * 45.0 * direction(20.0) + row * 60.0 * direction(110.0)
    layout = site.layout
    routes = loader_routes(
        (float(pile[0]), float(pile[1])),
        (layout.loader_heading + 10.0 * slot) % 360.0,
        (40.0 + 8.0 * slot) * layout.carry_scale,
        layout.rim_z + 5.0,
    )
    ctx = _context(settings, profile, site, _end_pose(routes.return_forward))
    rng = ctx.rng
    ctx.hold("idle", rng.uniform(1.0, 300.0))
    while not ctx.builder.done:
        op = ctx.operator()
        ctx.drive("loading", routes.into_pile, _LOADER_PILE)
        start = ctx.hold("loading", rng.uniform(4.0, 9.0) * op, load=1.0)
        ctx.shock(start - 0.3, SHOCK_PILE, rng.lognormal(1.2, 0.3))
        ctx.drive("carrying", routes.carry_reverse, _LOADER_REVERSE, reverse=True)
        ctx.drive("carrying", routes.carry_forward, _LOADER_LOADED, bumps_per_km=10.0)
        start = ctx.hold("dumping", rng.uniform(4.0, 8.0) * op, load=0.0)
        ctx.shock(start + 2.0, SHOCK_BUCKET, rng.uniform(1.0, 2.5))
        ctx.drive("returning", routes.return_reverse, _LOADER_REVERSE, reverse=True)
        ctx.drive("returning", routes.return_forward, _LOADER_EMPTY)
        if rng.random() < 0.02:
            ctx.hold("idle", rng.uniform(60.0, 300.0))
        ctx.builder.pause_if_due()
    return ctx.builder.build()


def machine_timeline(settings: SimulationSettings, profile: MachineProfile, site: Site) -> Timeline:
    """The ground-truth timeline of one machine."""
    story = {
        "dumper": dumper_timeline,
        "excavator": excavator_timeline,
        "wheel_loader": wheel_loader_timeline,
    }[profile.machine_type]
    return story(settings, profile, site)
