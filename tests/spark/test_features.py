"""Per-second features and labels of StateVectors, on small hand-made machines."""

from __future__ import annotations

import math

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from etl.train.features import (
    FEATURE_COLUMNS,
    RUN_HORIZON_S,
    feature_columns,
    join_labels,
    labels_per_second,
    statevector_features,
)

A = "machine-a"
B = "machine-b"
T0 = 1_767_225_600

SCHEMA = (
    "machine_uuid string, ts long, latitude double, longitude double, altitude double, "
    "speed double, heading double, acc_x_mean double, acc_y_mean double, acc_z_mean double, "
    "acc_x_std double, acc_y_std double, acc_z_std double, gps_filled boolean, "
    "imu_filled boolean, imu_samples int, gps_outliers int, day string"
)


def row(
    ts: int,
    speed: float = 5.0,
    *,
    machine: str = A,
    altitude: float = 100.0,
    heading: float = 90.0,
    acc: tuple[float | None, float | None, float | None] = (0.0, 0.0, 9.81),
    std: tuple[float | None, float | None, float | None] = (0.1, 0.1, 0.1),
) -> tuple:
    return (
        machine,
        T0 + ts,
        45.0,
        7.0,
        altitude,
        speed,
        heading,
        *acc,
        *std,
        False,
        False,
        10,
        0,
        "2026-01-01",
    )


def vectors(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, SCHEMA)


def features_by_ts(spark: SparkSession, rows: list[tuple], machine: str = A) -> dict[int, dict]:
    out = statevector_features(vectors(spark, rows)).where(F.col("machine_uuid") == machine)
    return {r["ts"] - T0: r.asDict() for r in out.collect()}


def test_output_columns_match_feature_columns(spark: SparkSession) -> None:
    out = statevector_features(vectors(spark, [row(0), row(1)]))
    assert tuple(out.columns) == ("machine_uuid", "ts", *FEATURE_COLUMNS)
    assert "speed_std_15" in FEATURE_COLUMNS
    assert "altitude_rate_60" in FEATURE_COLUMNS
    assert all(t == "double" for name, t in out.dtypes if name in FEATURE_COLUMNS)
    assert dict(out.dtypes)["ts"] == "bigint"
    custom = statevector_features(vectors(spark, [row(0)]), horizons=(3,))
    assert tuple(custom.columns[2:]) == feature_columns((3,))
    assert "speed_mean_3" in custom.columns
    assert "speed_mean_5" not in custom.columns


def test_constant_speed_has_no_spread_and_no_change(spark: SparkSession) -> None:
    feats = features_by_ts(spark, [row(t, 4.0) for t in range(30)])
    for f in feats.values():
        assert f["speed"] == 4.0
        assert f["speed_std_5"] == pytest.approx(0.0, abs=1e-12)
        assert f["speed_std_60"] == pytest.approx(0.0, abs=1e-12)
        assert f["speed_change"] == pytest.approx(0.0, abs=1e-12)
        assert f["speed_mean_15"] == pytest.approx(4.0)
        assert f["speed_min_5"] == f["speed_max_5"] == 4.0
        assert f["stopped"] == 0.0


def test_speed_change_and_rolling_stats_see_a_step(spark: SparkSession) -> None:
    feats = features_by_ts(spark, [row(t, 2.0 if t < 10 else 8.0) for t in range(20)])
    assert feats[10]["speed_change"] == pytest.approx(6.0)  # 8 - mean(2, 2, 2, 2, 2)
    assert feats[12]["speed_change"] == pytest.approx(8.0 - (2 * 3 + 8 * 2) / 5)
    assert feats[10]["speed_min_5"] == 2.0
    assert feats[10]["speed_max_5"] == 8.0
    assert feats[10]["speed_std_5"] > 2.5
    assert feats[0]["speed_max_5"] == 2.0  # [-5, 5] around t=0 ends before the step


def test_stop_of_seven_seconds_has_duration_seven(spark: SparkSession) -> None:
    speeds = [3.0] * 10 + [0.1] * 7 + [3.0] * 8
    feats = features_by_ts(spark, [row(t, s) for t, s in enumerate(speeds)])
    for t in range(10, 17):
        assert feats[t]["stopped"] == 1.0
        assert feats[t]["stop_duration"] == 7.0
    for t in range(10):
        assert feats[t]["stopped"] == 0.0
        assert feats[t]["stop_duration"] == 10.0
    for t in range(17, 25):
        assert feats[t]["stop_duration"] == 8.0


def test_gap_breaks_runs_and_jerk(spark: SparkSession) -> None:
    # Stopped at 0..4, data gap, stopped again at 10..12: two runs, not one of 8.
    rows = [row(t, 0.0, acc=(0.0, 0.0, 9.0)) for t in range(5)]
    rows += [row(t, 0.0, acc=(0.0, 0.0, 12.0)) for t in range(10, 13)]
    feats = features_by_ts(spark, rows)
    assert [feats[t]["stop_duration"] for t in (0, 4, 10, 12)] == [5.0, 5.0, 3.0, 3.0]
    assert feats[10]["jerk"] == 0.0  # magnitude changed by 3, but across a 6 s gap
    assert feats[4]["jerk"] == 0.0


def test_rolling_windows_are_ranges_of_seconds_not_rows(spark: SparkSession) -> None:
    rows = [row(t, 1.0) for t in range(5)] + [row(t, 9.0) for t in range(20, 25)]
    feats = features_by_ts(spark, rows)
    assert feats[4]["speed_max_5"] == 1.0  # t=20 is 16 s away, outside [-5, 5]
    assert feats[20]["speed_min_5"] == 9.0
    assert feats[20]["speed_change"] == 0.0  # nothing in [15, 19]: no change, not 9 - 1
    assert feats[4]["speed_max_15"] == 1.0
    assert feats[4]["speed_max_60"] == 9.0


def test_jerk_is_magnitude_change_from_previous_second(spark: SparkSession) -> None:
    rows = [row(0, acc=(0.0, 0.0, 9.0)), row(1, acc=(3.0, 4.0, 0.0)), row(2, acc=(0.0, 0.0, 8.0))]
    feats = features_by_ts(spark, rows)
    assert feats[1]["acc_magnitude"] == pytest.approx(5.0)
    assert feats[0]["jerk"] == 0.0
    assert feats[1]["jerk"] == pytest.approx(4.0)
    assert feats[2]["jerk"] == pytest.approx(3.0)


def test_time_since_last_stop_counts_up_and_caps(spark: SparkSession) -> None:
    speeds = [5.0, 5.0, 0.0, 0.0, 5.0, 5.0, 5.0, 5.0]
    rows = [row(t, s) for t, s in enumerate(speeds)] + [row(5000, 5.0)]
    feats = features_by_ts(spark, rows)
    cap = float(RUN_HORIZON_S)
    assert [feats[t]["time_since_stop"] for t in range(8)] == [
        cap,
        cap,
        0.0,
        0.0,
        1.0,
        2.0,
        3.0,
        4.0,
    ]
    assert feats[5000]["time_since_stop"] == cap


def test_runs_and_stops_are_seen_within_the_run_horizon(spark: SparkSession) -> None:
    # stopped 300 s, then moving 300 s: the run is seen only a horizon each way
    h = RUN_HORIZON_S
    rows = [row(t, 0.0 if t < 300 else 5.0) for t in range(600)]
    feats = features_by_ts(spark, rows)
    assert feats[150]["stop_duration"] == 2 * h + 1  # deep inside a long stop
    assert feats[10]["stop_duration"] == 10 + h + 1  # the run began 10 s before
    assert feats[299]["stop_duration"] == h + 1  # the run ends here
    assert feats[300 + h - 1]["time_since_stop"] == h  # last stop h seconds ago
    assert feats[300 + h + 5]["time_since_stop"] == h  # none within the horizon
    assert feats[302]["time_since_stop"] == 3.0


def test_heading_rate_wraps_around_north(spark: SparkSession) -> None:
    headings = [358.0, 359.0, 1.0, 10.0, 350.0]
    rows = [row(t, 5.0, heading=h) for t, h in enumerate(headings)]
    rows += [row(5, 0.1, heading=90.0), row(9, 5.0, heading=180.0)]
    feats = features_by_ts(spark, rows)
    assert feats[0]["heading_rate"] == 0.0
    assert feats[1]["heading_rate"] == pytest.approx(1.0)
    assert feats[2]["heading_rate"] == pytest.approx(2.0)
    assert feats[3]["heading_rate"] == pytest.approx(9.0)
    assert feats[4]["heading_rate"] == pytest.approx(20.0)
    assert feats[5]["heading_rate"] == 0.0  # standing: heading is noise
    assert feats[9]["heading_rate"] == 0.0  # after a gap
    assert feats[2]["heading_rate_mean_5"] == pytest.approx((0 + 1 + 2 + 9 + 20 + 0) / 6)
    assert all(0.0 <= f["heading_rate"] <= 180.0 for f in feats.values())


def test_altitude_rate_sign_on_a_ramp(spark: SparkSession) -> None:
    up = [row(t, altitude=100.0 + 2.0 * t) for t in range(40)]
    down = [row(t, machine=B, altitude=500.0 - 0.5 * t) for t in range(40)]
    out = statevector_features(vectors(spark, up + down))
    feats = {(r["machine_uuid"], r["ts"] - T0): r for r in out.collect()}
    assert feats[(A, 20)]["altitude_rate_5"] == pytest.approx(2.0)
    assert feats[(A, 20)]["altitude_rate_15"] == pytest.approx(2.0)
    assert feats[(B, 20)]["altitude_rate_5"] == pytest.approx(-0.5)
    assert all(feats[(A, t)]["altitude_rate_5"] > 0 for t in range(39))
    assert all(feats[(B, t)]["altitude_rate_60"] < 0 for t in range(39))


def test_no_nulls_with_missing_imu(spark: SparkSession) -> None:
    rows = [row(t) for t in range(5)]
    rows += [row(t, acc=(None, None, None), std=(None, None, None)) for t in range(5, 10)]
    rows += [row(10, acc=(1.0, 2.0, None), std=(0.2, None, 0.3))]
    out = statevector_features(vectors(spark, rows))
    nulls = out.select(*(F.sum(F.col(c).isNull().cast("int")).alias(c) for c in out.columns))
    assert all(v == 0 for v in nulls.first().asDict().values())
    nans = out.select(*(F.sum(F.isnan(c).cast("int")).alias(c) for c in FEATURE_COLUMNS))
    assert all(v == 0 for v in nans.first().asDict().values())
    feats = {r["ts"] - T0: r for r in out.collect()}
    assert [feats[t]["imu_missing"] for t in (0, 4, 5, 9, 10)] == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert feats[7]["acc_magnitude"] == 0.0
    assert feats[7]["vibration_energy"] == 0.0
    assert feats[0]["vibration_energy"] == pytest.approx(0.03)
    # horizontal (x and y) over vertical (z, where gravity is) vibration
    assert feats[0]["lateral_vibration_ratio"] == pytest.approx(math.hypot(0.1, 0.1) / (0.1 + 1e-6))
    assert feats[0]["acc_magnitude"] == pytest.approx(9.81)
    # Rolling vibration around the hole still uses the seconds that have an IMU.
    assert feats[6]["vibration_mean_5"] == pytest.approx(0.03)


def test_two_machines_do_not_leak(spark: SparkSession) -> None:
    # Same seconds, very different machines: A stands still, B drives fast and climbs.
    a = [row(t, 0.0, machine=A, heading=0.0, acc=(0.0, 0.0, 1.0)) for t in range(20)]
    b = [
        row(t, 20.0, machine=B, heading=(t * 30.0) % 360, altitude=10.0 * t, acc=(0.0, 0.0, 20.0))
        for t in range(20)
    ]
    out = statevector_features(vectors(spark, a + b))
    feats_a = [r for r in out.collect() if r["machine_uuid"] == A]
    assert len(feats_a) == 20
    for f in feats_a:
        assert f["speed_max_60"] == 0.0
        assert f["speed_std_60"] == 0.0
        assert f["heading_rate_mean_60"] == 0.0
        assert f["altitude_rate_60"] == 0.0
        assert f["jerk"] == 0.0
        assert f["stop_duration"] == 20.0
        assert f["time_since_stop"] == 0.0
    feats_b = [r for r in out.collect() if r["machine_uuid"] == B]
    assert all(f["speed_min_60"] == 20.0 and f["time_since_stop"] == RUN_HORIZON_S for f in feats_b)


def labels(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(
        rows, "machine_uuid string, start double, end double, activity string"
    )


def test_labels_per_second_covers_exactly_start_to_end(spark: SparkSession) -> None:
    frame = labels(
        spark,
        [
            (A, T0 + 10.0, T0 + 15.0, "loading"),  # whole seconds: 10..14
            (A, T0 + 20.3, T0 + 23.7, "hauling"),  # 21, 22, 23
            (A, T0 + 30.2, T0 + 30.8, "idle"),  # no whole second inside
            (B, T0 + 5.0, T0 + 6.0, "dumping"),  # just 5
        ],
    )
    out = labels_per_second(frame)
    assert dict(out.dtypes)["ts"] == "bigint"
    got = sorted((r["machine_uuid"], r["ts"] - T0, r["activity"]) for r in out.collect())
    expected = sorted(
        [(A, t, "loading") for t in range(10, 15)]
        + [(A, t, "hauling") for t in (21, 22, 23)]
        + [(B, 5, "dumping")]
    )
    assert got == expected


def test_join_drops_unlabelled_seconds(spark: SparkSession) -> None:
    feats = statevector_features(
        vectors(spark, [row(t) for t in range(20)] + [row(t, machine=B) for t in range(20)])
    )
    frame = labels(spark, [(A, T0 + 3.0, T0 + 8.0, "loading"), (B, T0 + 15.5, T0 + 17.5, "dump")])
    out = join_labels(feats, frame)
    got = sorted((r["machine_uuid"], r["ts"] - T0, r["activity"]) for r in out.collect())
    assert got == [(A, t, "loading") for t in range(3, 8)] + [(B, 16, "dump"), (B, 17, "dump")]
    assert set(out.columns) == {"machine_uuid", "ts", "activity", *FEATURE_COLUMNS}
    assert not math.isnan(out.first()["speed_mean_5"])
    # the exploded labels are never broadcast (Spark sizes them by the label files, tiny
    # here as in production, and 14 days of a fleet broadcast ran a 3 GB driver out of memory)
    plan = out._jdf.queryExecution().executedPlan().toString()
    assert "BroadcastHashJoin" not in plan and "SortMergeJoin" in plan


def test_rotation_is_seen_standing_and_heading_rate_is_not(spark: SparkSession) -> None:
    # an excavator at rest dwells at the face (350), swings 90 degrees in 5 s through
    # north to the truck (80), dumps and stays there for less time
    headings = [350.0] * 20 + [350.0 + 18.0 * k for k in range(1, 6)] + [80.0] * 8
    rows = [row(t, speed=0.0, heading=h % 360.0) for t, h in enumerate(headings)]
    out = features_by_ts(spark, rows)
    assert out[22]["rotation_rate"] == pytest.approx(18.0)
    assert out[22]["heading_rate"] == 0.0  # gated: a standing machine's course is noise
    assert out[3]["rotation_rate"] == 0.0
    assert out[22]["rotation_mean_2"] == pytest.approx(18.0)
    assert out[32]["rotation_mean_5"] == 0.0
    # the mean heading lies nearer the face: the truck side is the far one
    assert 0.0 < out[0]["heading_offset_60"] < 45.0 < out[32]["heading_offset_60"] < 90.0


def test_before_and_after_windows_tell_what_came_from_what_follows(spark: SparkSession) -> None:
    # a shaking stop (loading), then 40 s of quiet travel
    rows = [row(t, speed=0.0, std=(1.0, 1.0, 1.0)) for t in range(10)]
    rows += [row(t, speed=8.0) for t in range(10, 50)]
    out = features_by_ts(spark, rows)
    assert out[12]["vibration_max_before_15"] == pytest.approx(3.0)
    assert out[12]["vibration_max_after_15"] == pytest.approx(0.03)
    assert out[30]["vibration_max_before_15"] == pytest.approx(0.03)
    assert out[30]["vibration_max_before_60"] == pytest.approx(3.0)
    assert out[5]["speed_mean_after_15"] == pytest.approx((4 * 0.0 + 11 * 8.0) / 15)
    assert out[0]["speed_mean_before_15"] == 0.0  # nothing before: 0, not null


def test_features_do_not_depend_on_how_the_logger_is_mounted(spark: SparkSession) -> None:
    # a machine that stands, then drives and shakes sideways; gravity on z
    def body(t: int) -> tuple[float, tuple[float, float, float], tuple[float, float, float]]:
        shaking = t >= 40
        return (
            5.0 if shaking else 0.0,
            (0.3 * math.sin(t), 0.1, 9.81),
            (0.8 if shaking else 0.05, 0.2, 0.1 + 0.01 * (t % 7)),
        )

    aligned = [row(t, speed, acc=acc, std=std) for t in range(120) for speed, acc, std in [body(t)]]
    # the same unit strapped in on its side and backwards: z -> x, x -> -y, y -> -z
    turned = [
        row(t, speed, acc=(acc[2], -acc[0], -acc[1]), std=(std[2], std[0], std[1]))
        for t in range(120)
        for speed, acc, std in [body(t)]
    ]
    upright, sideways = features_by_ts(spark, aligned), features_by_ts(spark, turned)
    for t in range(120):
        for name in FEATURE_COLUMNS:
            assert sideways[t][name] == pytest.approx(upright[t][name], rel=1e-9, abs=1e-12), (
                t,
                name,
            )
    # the ratio sees the sideways shaking, as horizontal
    assert upright[60]["lateral_vibration_ratio"] > 3 * upright[10]["lateral_vibration_ratio"]


def test_horizontal_acceleration_is_the_pull_off_gravity(spark: SparkSession) -> None:
    # a standing excavator swings for 6 s: 0.3 m/s^2 of centripetal pull, sideways
    rows = [row(t, speed=0.0, acc=(0.3 if 20 <= t < 26 else 0.0, 0.0, 9.81)) for t in range(60)]
    out = features_by_ts(spark, rows)
    # gravity's direction is the two-minute mean, which holds 6 of the 60 s of pull:
    # tilted by 0.03 m/s^2 towards it, so the pull reads 0.27 and rest 0.03
    assert out[22]["horizontal_acc"] == pytest.approx(0.27, rel=0.01)
    assert out[5]["horizontal_acc"] == pytest.approx(0.03, rel=0.01)
    assert out[22]["horizontal_acc_mean_2"] == pytest.approx(0.27, rel=0.01)
    assert out[20]["horizontal_acc_mean_5"] < out[22]["horizontal_acc_mean_2"]
