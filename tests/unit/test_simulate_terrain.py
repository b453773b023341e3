"""Roads, speed profiles and the pit layout the machines drive in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.simulate.site import (
    FLOOR_Z,
    RIM_Z,
    SiteLayout,
    Turtle,
    build_site,
    loader_routes,
    site_layout,
)
from etl.simulate.terrain import (
    DriveStyle,
    Route,
    drive_profile,
    heading_of,
    latlon_to_local,
    local_to_latlon,
    speed_limits,
)

TRUCK = DriveStyle(v_flat=9.0, climb_power=0.35, v_down=5.0, accel=0.35, decel=0.8)


def test_headings_are_compass_degrees() -> None:
    assert heading_of(0.0, 1.0) == 0.0
    assert heading_of(1.0, 0.0) == 90.0
    assert heading_of(0.0, -1.0) == 180.0
    assert heading_of(-1.0, 0.0) == 270.0
    assert heading_of(-1e-18, 1.0) < 360.0


def test_local_metres_round_trip_through_wgs84() -> None:
    x = np.array([-1500.0, 0.0, 730.5])
    y = np.array([250.0, 0.0, -990.0])
    lat, lon = local_to_latlon(x, y, -23.36, 119.73)
    back_x, back_y = latlon_to_local(lat, lon, -23.36, 119.73)
    np.testing.assert_allclose(back_x, x, atol=1e-6)
    np.testing.assert_allclose(back_y, y, atol=1e-6)
    assert lat[2] < -23.36 < lat[0]


def test_a_straight_climb_has_constant_heading_and_grade() -> None:
    route = Route.from_waypoints([(0.0, 0.0, 100.0), (0.0, 200.0, 120.0)])
    assert route.length == pytest.approx(200.0)
    np.testing.assert_allclose(np.mod(route.heading, 360.0), 0.0, atol=1e-9)
    np.testing.assert_allclose(route.grade, 0.1, atol=1e-9)
    assert route.curvature.max() < 1e-9


def test_corners_are_rounded() -> None:
    route = Route.from_waypoints([(0, 0, 0), (100, 0, 0), (100, 100, 0)], smooth_m=10.0)
    assert route.curvature.max() < 1 / 5.0
    assert (route.x[0], route.y[0]) == pytest.approx((0.0, 0.0), abs=1e-9)
    assert route.x[-1] == pytest.approx(100.0)
    assert route.y[-1] == pytest.approx(100.0)


@settings(max_examples=40, deadline=None)
@given(
    length=st.floats(5.0, 3000.0),
    grade=st.floats(-0.1, 0.1),
    v_flat=st.floats(1.0, 12.0),
    accel=st.floats(0.1, 1.5),
)
def test_drive_profiles_start_and_stop_at_rest_within_limits(
    length: float, grade: float, v_flat: float, accel: float
) -> None:
    route = Route.from_waypoints([(0.0, 0.0, 0.0), (length, 0.0, grade * length)])
    style = DriveStyle(v_flat, climb_power=0.5, v_down=min(v_flat, 5.0), accel=accel, decel=accel)
    limits = speed_limits(route, style)
    profile = drive_profile(route, limits, style, 0.0, route.length)
    assert profile.v[0] == 0.0
    assert profile.v[-1] == 0.0
    assert np.all(np.diff(profile.t) > 0)
    assert np.all(profile.v <= np.interp(profile.s, route.s, limits) + 1e-9)
    dv_dt = np.diff(profile.v) / np.diff(profile.t)
    assert np.all(np.abs(dv_dt) <= accel * 1.05 + 1e-6)
    assert profile.duration >= route.length / v_flat


def test_a_loaded_truck_crawls_up_the_ramp() -> None:
    route = Route.from_waypoints([(0.0, 0.0, 0.0), (2000.0, 0.0, 178.0)])
    profile = drive_profile(route, speed_limits(route, TRUCK), TRUCK, 0.0, route.length)
    cruise = profile.v[len(profile.v) // 2]
    assert cruise == pytest.approx(0.35 / (0.089 + 0.02), rel=0.01)


def test_the_turtle_draws_a_u_turn() -> None:
    turtle = Turtle(0.0, 0.0, 0.0, 0.0).straight(10.0).turn(180.0, 5.0)
    assert turtle.heading == pytest.approx(180.0)
    np.testing.assert_allclose(turtle.pos, [10.0, 10.0], atol=1e-9)


def test_haul_roads_leave_the_spot_climb_the_ramp_and_come_back() -> None:
    site = build_site()
    for face in site.faces:
        routes = site.haul_routes(face)
        haul, back = routes.haul, routes.back
        assert (haul.x[0], haul.y[0]) == pytest.approx(face.spot)
        assert (back.x[-1], back.y[-1]) == pytest.approx(face.spot)
        assert np.mod(haul.heading[0], 360) == pytest.approx(face.spot_heading, abs=0.5)
        assert np.mod(back.heading[-1], 360) == pytest.approx(face.spot_heading, abs=3.0)
        assert haul.z[0] == FLOOR_Z
        assert haul.z[-1] >= RIM_Z
        ramp = haul.grade[haul.grade > 0.05]
        assert np.median(ramp) == pytest.approx(0.089, abs=0.005)
        assert haul.curvature.max() < 1 / 10.0
        # the truck reverses to the edge from where the haul road ends
        assert (routes.reverse_in.x[0], routes.reverse_in.y[0]) == pytest.approx(
            (haul.x[-1], haul.y[-1])
        )
        assert (back.x[0], back.y[0]) == pytest.approx(
            (routes.reverse_in.x[-1], routes.reverse_in.y[-1])
        )
        assert 0 < routes.dump_queue_s < haul.length
        assert 0 < routes.loader_queue_s < back.length
    assert {site.dump_for(face).name for face in site.faces} == {"crusher", "waste_dump"}


def test_another_site_seed_is_another_pit_whose_roads_still_connect() -> None:
    assert site_layout(0) == SiteLayout()  # the reference pit
    assert site_layout(7) == site_layout(7)  # a seed, not a draw
    lengths = {}
    for seed in range(10):
        layout = site_layout(seed)
        site = build_site(layout)
        assert layout.rim_z - layout.floor_z >= 80.0
        for face in site.faces:
            routes = site.haul_routes(face)
            haul, back = routes.haul, routes.back
            assert (haul.x[0], haul.y[0]) == pytest.approx(face.spot)
            assert (back.x[-1], back.y[-1]) == pytest.approx(face.spot)
            assert haul.z[0] == layout.floor_z and haul.z[-1] >= layout.rim_z
            # no hairpin anywhere: every road as drivable as the reference pit's
            assert max(haul.curvature.max(), back.curvature.max()) < 1 / 10.0, (seed, face)
            assert 0 < routes.dump_queue_s < haul.length
            assert 0.02 < np.median(haul.grade[haul.grade > 0.02]) < 0.2
        lengths[seed] = [site.haul_routes(face).haul.length for face in site.faces]
    # other haul distances and depths than the reference pit's
    for seed in range(1, 10):
        assert lengths[seed] != pytest.approx(lengths[0], rel=0.02), seed
    assert len({site_layout(seed).rim_z - site_layout(seed).floor_z for seed in range(10)}) == 10


def test_a_wheel_loader_v_cycle_closes() -> None:
    routes = loader_routes((0.0, 0.0), 300.0, 50.0)
    legs = [
        routes.into_pile,
        routes.carry_reverse,
        routes.carry_forward,
        routes.return_reverse,
        routes.return_forward,
    ]
    for leg, following in zip(legs, [*legs[1:], legs[0]], strict=True):
        assert (leg.x[-1], leg.y[-1]) == pytest.approx((following.x[0], following.y[0]), abs=1e-6)
    assert routes.carry_forward.length == pytest.approx(50.0)
    assert np.mod(routes.into_pile.heading[-1], 360) == pytest.approx(300.0)
    assert np.mod(routes.carry_forward.heading[-1], 360) == pytest.approx(30.0)


def test_a_fleet_at_another_site_works_in_that_pit() -> None:
    from etl.simulate import FaultRates, SimulationSettings, machine_truth

    def dumper(site_seed: int) -> pd.DataFrame:
        settings = SimulationSettings(
            machines=1,
            days=2 / 24,
            seed=4,
            machine_types=("dumper",),
            faults=FaultRates.none(),
            site_seed=site_seed,
        )
        return machine_truth(settings, 0)

    reference, other = dumper(0), dumper(5)
    layout = site_layout(5)
    # altitude of the GNSS antenna: the machine's ground plus its mast
    floor, rim = other["altitude"].min(), other["altitude"].max()
    assert layout.floor_z <= floor <= layout.floor_z + 10.0
    assert layout.rim_z <= rim <= layout.rim_z + 40.0
    assert FLOOR_Z <= reference["altitude"].min() <= FLOOR_Z + 10.0
    # the same truck's day, but other cycles: other distances, grades and pace
    assert not np.array_equal(reference["activity"].to_numpy(), other["activity"].to_numpy())
