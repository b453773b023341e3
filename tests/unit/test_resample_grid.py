"""The pieces of the 1 Hz grid: IMU second windows, covered seconds, schemas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etl.preprocess import (
    IMU_SECONDS_COLUMNS,
    STATEVECTOR_DTYPES,
    covered_seconds,
    imu_second_stats,
    statevector_struct,
)
from etl.preprocess.denoise import DenoiseParams, find_outliers, local_fit, wrap_degrees
from etl.preprocess.grid import interpolate_heading

T0 = 1_767_225_600.0


def imu_rows(times: list[float], acc_x: list[float]) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame(
        {
            "timestamp": T0 + np.asarray(times),
            "acc_x": acc_x,
            "acc_y": [0.0] * n,
            "acc_z": [9.81] * n,
        }
    )


def test_imu_second_window_is_half_open_around_the_second() -> None:
    # ts - 0.5 belongs to ts, ts + 0.5 to the next second
    stats = imu_second_stats(
        imu_rows([-0.5, -0.2, 0.3, 0.5, 0.9, 1.49], [1.0, 2.0, 3.0, 4.0, 6.0, 8.0])
    )
    assert list(stats.columns) == list(IMU_SECONDS_COLUMNS)
    assert stats["ts"].tolist() == [T0, T0 + 1]
    assert stats["n"].tolist() == [3, 3]
    assert stats["acc_x_mean"].tolist() == [2.0, 6.0]
    assert np.allclose(stats["acc_x_std"], [np.std([1.0, 2.0, 3.0]), np.std([4.0, 6.0, 8.0])])
    assert np.allclose(stats["t_first"] - T0, [-0.5, 0.5])
    assert np.allclose(stats["t_last"] - T0, [0.3, 1.49])
    assert stats["ts"].dtype == np.int64 and stats["n"].dtype == np.int64


def test_imu_second_stats_count_duplicates_once_and_skip_broken_rows() -> None:
    rows = imu_rows([0.0, 0.1, 0.2], [1.0, 2.0, 3.0])
    broken = imu_rows([0.3], [np.nan])
    stats = imu_second_stats(pd.concat([rows, rows.iloc[[0, 2]], broken]).assign(gyro_x=1.0))
    assert stats["n"].tolist() == [3]
    assert stats["acc_x_mean"].tolist() == [2.0]


def test_imu_second_stats_of_nothing_is_empty_with_columns() -> None:
    stats = imu_second_stats(imu_rows([], []))
    assert stats.empty and list(stats.columns) == list(IMU_SECONDS_COLUMNS)


@pytest.mark.parametrize(
    ("events", "max_gap", "expected"),
    [
        ([], 10, []),
        ([0.3], 10, []),  # a lone sample between seconds spans no second
        ([2.0], 10, [2]),
        ([0.2, 3.7], 10, [1, 2, 3]),
        ([0.0, 10.0, 20.5], 10, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),  # 10 s bridged, 10.5 s not
        ([0.0, 10.0, 20.0], 10, list(range(21))),
        ([5.0, 0.0, 5.0, 2.5], 2.5, [0, 1, 2, 3, 4, 5]),  # order and duplicates do not matter
    ],
)
def test_covered_seconds(events: list[float], max_gap: float, expected: list[int]) -> None:
    got = covered_seconds(T0 + np.asarray(events, dtype=float), max_gap)
    assert got.dtype == np.int64
    assert (got - int(T0)).tolist() == expected


def test_statevector_struct_matches_the_pandas_dtypes() -> None:
    struct = statevector_struct()
    assert struct.fieldNames() == list(STATEVECTOR_DTYPES)
    kinds = {f.name: f.dataType.simpleString() for f in struct.fields}
    assert kinds["machine_uuid"] == "string" and kinds["ts"] == "bigint"
    assert kinds["latitude"] == "double" and kinds["acc_z_std"] == "double"
    assert kinds["gps_filled"] == "boolean" and kinds["imu_samples"] == "int"
    assert not struct["ts"].nullable and struct["latitude"].nullable


def test_local_fit_reproduces_quadratics_and_their_slopes() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(60.0) + rng.uniform(-0.3, 0.3, 60)
    values = np.vstack([3.0 * t - 1.0, 0.2 * t**2 - t + 4.0])
    fit = local_fit(t, values, 8.0)
    assert np.allclose(fit.values[0], values[0], atol=1e-9)
    assert np.allclose(fit.slopes[0], 3.0, atol=1e-9)
    inner = slice(2, -2)  # two neighbours on each side: quadratic
    assert np.allclose(fit.values[1][inner], values[1][inner], atol=1e-9)
    assert np.allclose(fit.slopes[1][inner], (0.4 * t - 1.0)[inner], atol=1e-9)


def test_local_fit_of_a_lone_fix_is_the_fix() -> None:
    fit = local_fit(np.array([0.0, 100.0]), np.array([[1.0, 2.0]]), 8.0)
    assert fit.values.tolist() == [[1.0, 2.0]]
    assert np.isnan(fit.slopes).all()


def test_outlier_vote_needs_voters() -> None:
    t = np.array([0.0, 1.0])
    assert not find_outliers(t, np.array([0.0, 1.0]), np.array([0.0, 0.0]), DenoiseParams()).any()


def test_wrap_degrees_never_returns_360() -> None:
    assert wrap_degrees(np.array([-1e-15, 360.0, 720.5, -90.0])).tolist() == [0.0, 0.0, 0.5, 270.0]


def test_interpolate_heading_takes_the_short_way_round() -> None:
    heading = np.array([350.0, 10.0, 90.0, 270.0])
    got = interpolate_heading(
        heading,
        before=np.array([0, 1, 2]),
        after=np.array([1, 0, 3]),
        share=np.array([0.5, 0.75, 0.5]),
        valid=np.array([True, True, True]),
    )
    assert np.allclose(got, [0.0, 355.0, 0.0])  # a half turn goes anticlockwise
