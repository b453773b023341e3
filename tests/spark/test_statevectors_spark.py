"""The Spark wrapper gives exactly what the pure pandas resampler gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from etl.preprocess import (
    STATEVECTOR_COLUMNS,
    DenoiseParams,
    context_seconds,
    imu_second_stats,
    resample_machine,
)
from etl.preprocess.spark import (
    as_slice_input,
    gps_fixes,
    imu_second_stats_spark,
    statevectors_by_slice,
)

UUID = "0b6f1c4e-0000-4000-8000-000000000001"
T0 = 1_767_225_600


def raw_samples(
    seconds: int = 300, gap: tuple[int, int] = (150, 170), seed: int = 5
) -> pd.DataFrame:
    """A noisy machine driving north with a 20 s power-off gap, long format."""
    rng = np.random.default_rng(seed)
    t_gps = T0 + np.arange(seconds) + rng.normal(0, 0.02, seconds)
    t_imu = T0 + np.arange(seconds * 10) / 10 + rng.normal(0, 0.01, seconds * 10)
    keep_gps = (t_gps < T0 + gap[0]) | (t_gps > T0 + gap[1])
    keep_imu = (t_imu < T0 + gap[0]) | (t_imu > T0 + gap[1])
    t_gps, t_imu = t_gps[keep_gps], t_imu[keep_imu]
    north_m = 5.0 * (t_gps - T0)
    gps = pd.DataFrame(
        {
            "timestamp": t_gps,
            "latitude": -23.0 + (north_m + rng.normal(0, 2, t_gps.size)) / 111_195.0,
            "longitude": 119.0 + rng.normal(0, 2, t_gps.size) / 102_000.0,
            "altitude": 500 + rng.normal(0, 1, t_gps.size),
            "speed": 5.0 + rng.normal(0, 0.3, t_gps.size),
            "heading": (360 + rng.normal(0, 2, t_gps.size)) % 360,
        }
    )
    imu = pd.DataFrame(
        {
            "timestamp": t_imu,
            "acc_x": rng.normal(0, 0.3, t_imu.size),
            "acc_y": rng.normal(0, 0.3, t_imu.size),
            "acc_z": 9.81 + rng.normal(0, 0.3, t_imu.size),
        }
    )
    both = pd.concat([gps, imu], ignore_index=True)
    both.insert(0, "machine_uuid", UUID)
    return both


def reference(samples: pd.DataFrame, max_gap_s: float) -> pd.DataFrame:
    gps = samples.loc[
        samples["latitude"].notna(),
        ["timestamp", "latitude", "longitude", "altitude", "speed", "heading"],
    ]
    imu = samples.loc[samples["acc_x"].notna(), ["timestamp", "acc_x", "acc_y", "acc_z"]]
    return resample_machine(gps, imu_second_stats(imu), machine_uuid=UUID, max_gap_s=max_gap_s)


def test_spark_windows_equal_the_pandas_reference(spark: SparkSession) -> None:
    samples = raw_samples()
    params = DenoiseParams()
    context = context_seconds(10.0, params)
    expected = reference(samples, 10.0)
    # three windows that cut through moving data and the gap, and slices of 100 s that
    # cut through the windows: a second near a cut is computed from rows on both sides
    cuts = [T0 - 100, T0 + 77, T0 + 160, T0 + 1000]
    windows = [(UUID, cuts[i], cuts[i + 1]) for i in range(3)]
    sdf = spark.createDataFrame(samples)
    result = (
        statevectors_by_slice(
            as_slice_input(gps_fixes(sdf), imu_second_stats_spark(sdf)),
            windows,
            max_gap_s=10.0,
            params=params,
            context_s=context,
            slice_s=100,
        )
        .toPandas()
        .sort_values("ts", ignore_index=True)
    )
    assert list(result.columns) == list(STATEVECTOR_COLUMNS)
    assert result["ts"].tolist() == expected["ts"].tolist()
    assert not result["ts"].between(T0 + 151, T0 + 169).any(), "the 20 s gap is not bridged"
    for column in STATEVECTOR_COLUMNS[2:]:
        left, right = result[column].to_numpy(), expected[column].to_numpy()
        if left.dtype.kind == "f":
            np.testing.assert_allclose(
                left, right, atol=1e-9, rtol=0, equal_nan=True, err_msg=column
            )
        else:
            np.testing.assert_array_equal(left, right, err_msg=column)
