"""Layout of the simulated open pit: faces, ramp, crusher, waste dump, ROM pad.

A site is a stage, not a random variable: every machine of a run shares it and
one machine can be simulated alone. Site seed 0 is the reference pit; any other
seed draws another (:func:`site_layout`): its depth (and so the ramp's grade),
the ramp's radii and where it turns, where the faces are, how far the crusher
and the waste dump lie from the ramp's top and from which side trucks reach
them, which way the wheel loaders' V-cycles point and how far they carry, and
how briskly the site's operators drive and work. Roads are
drawn with a small turtle so that each route starts and ends with the
heading the machine really has there: a truck leaves the face the way it
was spotted, reverses to the dump edge, and a wheel loader runs a V-cycle.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from etl.simulate.terrain import Route, heading_of

FLOOR_Z = 390.0
RIM_Z = 530.0
"""The reference pit's floor and rim altitudes (metres)."""
_TRUCK_TURN_R = 12.0
_LOADER_TURN_R = 8.0
_JUNCTION_R = 25.0


@dataclass(frozen=True)
class SiteLayout:
    """The numbers a site is drawn from; the defaults are the reference pit (seed 0)."""

    floor_z: float = FLOOR_Z
    rim_z: float = RIM_Z
    ramp_r0: float = 220.0
    ramp_r1: float = 440.0
    ramp_phi0: float = math.radians(-90.0)
    ramp_sweep: float = math.radians(270.0)
    face_radius: float = 130.0
    face_angles: tuple[float, ...] = (15.0, 85.0, 150.0, 215.0)
    crusher: tuple[float, float, float] = (-690.0, -330.0, 245.0)
    """Approach point (east, north) and the heading trucks back in with."""
    waste_dump: tuple[float, float, float] = (-610.0, -860.0, 215.0)
    rom_pad: tuple[float, float] = (-560.0, -420.0)
    loader_heading: float = 300.0
    """Which way the first wheel loader faces its pile."""
    carry_scale: float = 1.0
    """How far the wheel loaders carry, relative to the reference pit."""
    speed_scale: float = 1.0
    """How fast the site's operators drive, relative to the reference pit."""
    timing_scale: float = 1.0
    """How long the site's loading, digging and tipping take, relative to the reference."""


@functools.lru_cache(maxsize=16)
def site_layout(seed: int) -> SiteLayout:
    """The layout of site ``seed``: the reference pit for 0, another pit for any other."""
    if seed == 0:
        return SiteLayout()
    rng = np.random.default_rng([seed, 0x517E])
    floor = float(rng.uniform(300.0, 450.0))
    rim = floor + float(rng.uniform(80.0, 220.0))
    r0 = float(rng.uniform(190.0, 260.0))
    r1 = r0 + float(rng.uniform(150.0, 300.0))
    phi0 = math.radians(float(rng.uniform(-180.0, 180.0)))
    sweep = math.radians(float(rng.uniform(200.0, 330.0)))
    # the faces keep clear of the ramp's foot, as the reference pit's do
    foot = math.degrees(phi0)
    offsets = np.array([105.0, 175.0, 240.0, 300.0]) + rng.uniform(-10.0, 10.0, 4)
    angles = tuple(float((foot + o) % 360.0) for o in offsets)
    ramp = SiteLayout(
        floor_z=floor, rim_z=rim, ramp_r0=r0, ramp_r1=r1, ramp_phi0=phi0, ramp_sweep=sweep
    )
    top = _spiral(np.array([1.0]), ramp)[0][:2]
    out = top + 90.0 * (_ramp_tangent(1.0, ramp) + top / np.hypot(*top)) / 2
    onward = float(heading_of(*(out - top)))  # where the road leaves the ramp's top

    def dump(reach: float) -> tuple[float, float, float]:
        """A dump point down the road from the ramp, reached without a hairpin."""
        heading = onward + float(rng.uniform(-20.0, 20.0))
        point = out + reach * direction(heading)
        back_in = (heading + float(rng.uniform(-15.0, 15.0))) % 360.0
        return (float(point[0]), float(point[1]), back_in)

    crusher = dump(float(rng.uniform(250.0, 650.0)))
    waste = dump(float(rng.uniform(450.0, 1000.0)))
    side = onward + float(rng.choice([-1.0, 1.0])) * float(rng.uniform(60.0, 120.0))
    pad = out + float(rng.uniform(150.0, 400.0)) * direction(side)
    return SiteLayout(
        floor_z=floor,
        rim_z=rim,
        ramp_r0=r0,
        ramp_r1=r1,
        ramp_phi0=phi0,
        ramp_sweep=sweep,
        face_radius=float(rng.uniform(90.0, min(170.0, r0 - 70.0))),
        face_angles=angles,
        crusher=crusher,
        waste_dump=waste,
        rom_pad=(float(pad[0]), float(pad[1])),
        loader_heading=float(rng.uniform(0.0, 360.0)),
        carry_scale=float(rng.uniform(0.6, 1.6)),
        speed_scale=float(rng.uniform(0.85, 1.15)),
        timing_scale=float(rng.uniform(0.8, 1.25)),
    )


def direction(heading: float) -> np.ndarray:
    """Unit vector (east, north) of a compass heading in degrees."""
    rad = math.radians(heading)
    return np.array([math.sin(rad), math.cos(rad)])


class Turtle:
    """Draws waypoints by driving: straight lines and circular arcs."""

    def __init__(self, x: float, y: float, z: float, heading: float) -> None:
        """Start at (x, y, z) facing ``heading`` (degrees clockwise from north)."""
        self.pos = np.array([x, y], dtype=np.float64)
        self.z = z
        self.heading = heading
        self.points: list[tuple[float, float, float]] = [(x, y, z)]

    def straight(self, length: float, z_to: float | None = None) -> Turtle:
        """Drive ``length`` metres ahead, climbing linearly to ``z_to``."""
        self.pos = self.pos + length * direction(self.heading)
        self.z = self.z if z_to is None else z_to
        self.points.append((float(self.pos[0]), float(self.pos[1]), self.z))
        return self

    def turn(self, degrees: float, radius: float) -> Turtle:
        """Drive an arc; positive ``degrees`` turn right (clockwise)."""
        side = 1.0 if degrees > 0 else -1.0
        centre = self.pos + radius * direction(self.heading + 90.0 * side)
        start = math.atan2(*(self.pos - centre))  # compass angle of the turtle seen from centre
        steps = max(2, int(abs(degrees) / 10))
        for angle in np.linspace(0.0, math.radians(degrees), steps + 1)[1:]:
            point = centre + radius * np.array([math.sin(start + angle), math.cos(start + angle)])
            self.points.append((float(point[0]), float(point[1]), self.z))
        self.pos = np.array(self.points[-1][:2])
        self.heading = (self.heading + degrees) % 360.0
        return self

    def goto(self, x: float, y: float, z: float | None = None) -> Turtle:
        """Drive straight to a point, facing the way it went."""
        delta = np.array([x, y]) - self.pos
        if np.hypot(*delta) > 1e-9:
            self.heading = float(heading_of(delta[0], delta[1]))
        self.pos = np.array([x, y], dtype=np.float64)
        self.z = self.z if z is None else z
        self.points.append((x, y, self.z))
        return self

    def route(self, smooth_m: float = 8.0) -> Route:
        """The drawn road."""
        return Route.from_waypoints(self.points, smooth_m=smooth_m)


@dataclass(frozen=True)
class Face:
    """A digging face on the pit floor with its truck loading spot."""

    index: int
    ore: bool
    digger: tuple[float, float]
    dig_heading: float
    spot: tuple[float, float]
    spot_heading: float


@dataclass(frozen=True)
class DumpPoint:
    """Where trucks tip: the crusher pocket or the waste dump edge."""

    name: str
    approach: tuple[float, float]
    edge_heading: float
    z: float


@dataclass(frozen=True, eq=False)
class HaulRoutes:
    """The three roads of one face-to-dump assignment."""

    haul: Route
    reverse_in: Route
    back: Route
    dump_queue_s: float
    loader_queue_s: float


@dataclass(frozen=True, eq=False)
class LoaderRoutes:
    """The five roads of a wheel loader's V-cycle."""

    into_pile: Route
    carry_reverse: Route
    carry_forward: Route
    return_reverse: Route
    return_forward: Route


@dataclass(frozen=True)
class Site:
    """The pit: faces, dump points and the ramp between them."""

    faces: tuple[Face, ...]
    crusher: DumpPoint
    waste_dump: DumpPoint
    rom_pad: tuple[float, float]
    layout: SiteLayout = SiteLayout()
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def dump_for(self, face: Face) -> DumpPoint:
        """Ore goes to the crusher, waste to the dump."""
        return self.crusher if face.ore else self.waste_dump

    def haul_routes(self, face: Face) -> HaulRoutes:
        """Roads between a face and its dump point (built once, then cached)."""
        key = ("haul", face.index)
        if key not in self._cache:
            self._cache[key] = _build_haul(face, self.dump_for(face), self.layout)
        return self._cache[key]


def _spiral(u: np.ndarray, site: SiteLayout) -> np.ndarray:
    """Points of the ramp at sweep fractions ``u``; the altitude climbs at a constant grade."""
    r0, r1, sweep = site.ramp_r0, site.ramp_r1, site.ramp_sweep
    phi = site.ramp_phi0 + sweep * u
    radius = r0 + (r1 - r0) * u
    fine = np.linspace(0.0, 1.0, 2001)
    step = sweep * np.hypot(r0 + (r1 - r0) * fine, (r1 - r0) / sweep)
    length = np.concatenate([[0.0], np.cumsum((step[1:] + step[:-1]) / 2 * np.diff(fine))])
    climb = np.interp(u, fine, length / length[-1])
    return np.column_stack(
        [
            radius * np.cos(phi),
            radius * np.sin(phi),
            site.floor_z + (site.rim_z - site.floor_z) * climb,
        ]
    )


def _ramp_tangent(u: float, site: SiteLayout) -> np.ndarray:
    phi = site.ramp_phi0 + site.ramp_sweep * u
    radius = site.ramp_r0 + (site.ramp_r1 - site.ramp_r0) * u
    d_radius = (site.ramp_r1 - site.ramp_r0) / site.ramp_sweep
    vec = np.array(
        [
            d_radius * math.cos(phi) - radius * math.sin(phi),
            d_radius * math.sin(phi) + radius * math.cos(phi),
        ]
    )
    return vec / np.hypot(*vec)


def _ramp_waypoints(dump: DumpPoint, site: SiteLayout) -> list[tuple[float, float, float]]:
    """The spiral ramp and the surface road to 150 m before the dump."""
    top = _spiral(np.array([1.0]), site)[0]
    out = top[:2] + 90.0 * (_ramp_tangent(1.0, site) + top[:2] / np.hypot(*top[:2])) / 2
    lead_in = np.array(dump.approach) - 150.0 * direction(dump.edge_heading)
    points = [tuple(float(v) for v in p) for p in _spiral(np.linspace(0.0, 1.0, 55), site)]
    points += [
        (float(out[0]), float(out[1]), site.rim_z),
        (float(lead_in[0]), float(lead_in[1]), dump.z),
    ]
    return points


def _floor_exit(site: SiteLayout) -> np.ndarray:
    """The floor junction where every face road meets the foot of the ramp."""
    foot = _spiral(np.array([0.0]), site)[0]
    return foot[:2] - 70.0 * _ramp_tangent(0.0, site)


def _turn_towards(turtle: Turtle, target: np.ndarray, radius: float) -> None:
    """Turn on an arc until facing ``target``: no truck corners on the spot."""
    for _ in range(2):
        wanted = float(heading_of(*(target - turtle.pos)))
        delta = (wanted - turtle.heading + 180.0) % 360.0 - 180.0
        if abs(delta) > 5.0:
            turtle.turn(delta, radius)


def _build_haul(face: Face, dump: DumpPoint, site: SiteLayout) -> HaulRoutes:
    ramp = _ramp_waypoints(dump, site)
    exit_point = _floor_exit(site)
    haul = Turtle(*face.spot, site.floor_z, face.spot_heading)
    haul.goto(*(exit_point - 2.0 * _JUNCTION_R * direction(face.spot_heading)))
    _turn_towards(haul, np.array(ramp[0][:2]), _JUNCTION_R)
    for x, y, z in ramp:
        haul.goto(x, y, z)
    haul.goto(*dump.approach, dump.z)
    haul.turn(-180.0, _TRUCK_TURN_R).straight(8.0)
    reverse = Turtle(*haul.pos, dump.z, dump.edge_heading).straight(18.0)
    back = Turtle(*reverse.pos, dump.z, (dump.edge_heading + 180.0) % 360.0).straight(30.0)
    for x, y, z in reversed(ramp):
        back.goto(x, y, z)
    spot = np.array(face.spot)
    ahead = direction(face.spot_heading)
    left = direction(face.spot_heading - 90.0)
    digger_side = 1.0 if float(np.dot(np.array(face.digger) - spot, left)) > 0 else -1.0
    lane = spot - digger_side * 2 * _TRUCK_TURN_R * left
    back.goto(*exit_point, site.floor_z)
    _turn_towards(back, lane + 40.0 * ahead, _JUNCTION_R)
    back.goto(*(lane + 40.0 * ahead), site.floor_z).goto(*(lane - 6.0 * ahead), site.floor_z)
    back.turn(180.0 * digger_side, _TRUCK_TURN_R).straight(6.0)
    haul_route, back_route = haul.route(), back.route()
    return HaulRoutes(
        haul=haul_route,
        reverse_in=reverse.route(smooth_m=2.0),
        back=back_route,
        dump_queue_s=haul_route.nearest_s(
            *(np.array(dump.approach) - 120.0 * direction(dump.edge_heading))
        ),
        loader_queue_s=back_route.nearest_s(*(lane + 40.0 * ahead)),
    )


def loader_routes(
    pile: tuple[float, float], pile_heading: float, carry_m: float, ground_z: float = RIM_Z + 5
) -> LoaderRoutes:
    """Roads of a V-cycle: into the pile, reverse out turning, carry, and back.

    Args:
        pile: Where the bucket meets the pile.
        pile_heading: Heading of the loader facing the pile.
        carry_m: Straight distance driven forward to the hopper.
        ground_z: Altitude of the pad.

    Returns:
        The five roads; the hopper faces ``pile_heading + 90``.
    """
    radius = _LOADER_TURN_R
    back = (pile_heading + 180.0) % 360.0
    pile_in = np.array(pile) - 6.0 * direction(pile_heading)
    into = Turtle(*pile_in, ground_z, pile_heading).straight(6.0)
    carry_rev = Turtle(*pile, ground_z, back).straight(4.0).turn(90.0, radius)
    carry_fwd = Turtle(*carry_rev.pos, ground_z, (pile_heading + 90.0) % 360.0).straight(carry_m)
    ret_rev = Turtle(*carry_fwd.pos, ground_z, (pile_heading + 270.0) % 360.0)
    ret_rev.straight(carry_m - 2 * radius).turn(-90.0, radius)
    ret_fwd = Turtle(*ret_rev.pos, ground_z, pile_heading).goto(*pile_in)
    return LoaderRoutes(
        into_pile=into.route(smooth_m=1.0),
        carry_reverse=carry_rev.route(smooth_m=2.0),
        carry_forward=carry_fwd.route(smooth_m=2.0),
        return_reverse=ret_rev.route(smooth_m=2.0),
        return_forward=ret_fwd.route(smooth_m=2.0),
    )


def build_site(layout: SiteLayout | None = None) -> Site:
    """The pit every simulated machine works in (the reference pit by default)."""
    site = layout or SiteLayout()
    exit_point = _floor_exit(site)
    faces = []
    for index, angle in enumerate(site.face_angles):
        rad = math.radians(angle)
        digger = site.face_radius * np.array([math.cos(rad), math.sin(rad)])
        dig_heading = float(heading_of(digger[0], digger[1]))
        spot = digger + 11.0 * direction(dig_heading - 90.0)
        spot_heading = float(heading_of(*(exit_point - spot)))
        faces.append(
            Face(
                index=index,
                ore=index % 2 == 0,
                digger=(float(digger[0]), float(digger[1])),
                dig_heading=dig_heading,
                spot=(float(spot[0]), float(spot[1])),
                spot_heading=spot_heading,
            )
        )
    (cx, cy, ch), (wx, wy, wh) = site.crusher, site.waste_dump
    crusher = DumpPoint("crusher", (cx, cy), ch, site.rim_z + 5.0)
    waste = DumpPoint("waste_dump", (wx, wy), wh, site.rim_z + 25.0)
    return Site(tuple(faces), crusher, waste, rom_pad=site.rom_pad, layout=site)
