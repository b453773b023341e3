"""A group's StateVectors from its raw files equal the whole-history pandas reference."""

from __future__ import annotations

import io
import itertools
import time

import numpy as np
import pandas as pd
import pytest

from etl.preprocess import STATEVECTOR_COLUMNS, DenoiseParams, imu_second_stats, resample_machine
from etl.preprocess.files import UnusableFileError, merged_samples, statevectors_of_files
from etl.preprocess.validate import ValidationLimits, validate_arrays

UUID = "0b6f1c4e-0000-4000-8000-000000000001"
T0 = 1_767_225_600


def raw_samples(
    seconds: int = 300, gap: tuple[int, int] = (150, 170), seed: int = 5
) -> pd.DataFrame:
    """A noisy machine driving north with a 20 s power-off gap, long format."""
    rng = np.random.default_rng(seed)
    t_gps = T0 + np.arange(seconds) + rng.normal(0, 0.02, seconds)
    t_imu = T0 + np.arange(seconds * 10) / 10 + rng.normal(0, 0.01, seconds * 10)
    t_gps = t_gps[(t_gps < T0 + gap[0]) | (t_gps > T0 + gap[1])]
    t_imu = t_imu[(t_imu < T0 + gap[0]) | (t_imu > T0 + gap[1])]
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
    return pd.concat([gps, imu], ignore_index=True).sort_values("timestamp", ignore_index=True)


def reference(samples: pd.DataFrame, max_gap_s: float = 10.0) -> pd.DataFrame:
    """The whole history at once, as the pandas baseline computes it."""
    gps = samples.loc[samples["latitude"].notna()]
    imu = samples.loc[samples["acc_x"].notna(), ["timestamp", "acc_x", "acc_y", "acc_z"]]
    return resample_machine(gps, imu_second_stats(imu), machine_uuid=UUID, max_gap_s=max_gap_s)


def as_file(part: pd.DataFrame) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    part.to_parquet(buffer, index=False)
    return f"{UUID}/{int(part['timestamp'].min() * 1000)}.parquet", buffer.getvalue()


def split(samples: pd.DataFrame, cuts: list[float]) -> list[tuple[str, bytes]]:
    """Files cut at these times (a cut inside a second: that second straddles two files)."""
    edges = [-np.inf, *cuts, np.inf]
    ts = samples["timestamp"]
    return [as_file(samples.loc[(ts >= lo) & (ts < hi)]) for lo, hi in itertools.pairwise(edges)]


def compute(files: list[tuple[str, bytes]], parts: list[tuple[int, int]]) -> pd.DataFrame:
    return statevectors_of_files(
        files,
        parts,
        machine_uuid=UUID,
        limits=ValidationLimits(),
        now_s=time.time(),
        max_gap_s=10.0,
        params=DenoiseParams(),
    )


def assert_equal_frames(result: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(result.columns) == list(STATEVECTOR_COLUMNS)
    assert result["ts"].tolist() == expected["ts"].tolist()
    for column in STATEVECTOR_COLUMNS[2:]:
        left, right = result[column].to_numpy(), expected[column].to_numpy()
        if left.dtype.kind == "f":
            np.testing.assert_allclose(
                left, right, atol=1e-9, rtol=0, equal_nan=True, err_msg=column
            )
        else:
            np.testing.assert_array_equal(left, right, err_msg=column)


def test_parts_from_split_files_equal_the_whole_history() -> None:
    samples = raw_samples()
    expected = reference(samples)
    files = split(samples, [T0 + 60.3, T0 + 120.0, T0 + 200.55])
    parts = [(T0 - 100, T0 + 77), (T0 + 77, T0 + 160), (T0 + 160, T0 + 1000)]
    result = compute(files, parts)
    assert_equal_frames(result, expected)
    assert not result["ts"].between(T0 + 151, T0 + 169).any(), "the 20 s gap is not bridged"


def test_samples_repeated_by_overlapping_files_count_once() -> None:
    samples = raw_samples(seconds=120, gap=(200, 210))
    ts = samples["timestamp"]
    first = samples.loc[ts < T0 + 70.4]
    second = samples.loc[ts >= T0 + 50.2]  # 20 s of samples in both files
    result = compute([as_file(first), as_file(second)], [(T0 - 50, T0 + 200)])
    assert_equal_frames(result, reference(samples))
    in_second = np.floor(samples.loc[samples["acc_x"].notna(), "timestamp"] + 0.5) == T0 + 60
    assert result.loc[result["ts"] == T0 + 60, "imu_samples"].item() == in_second.sum() >= 9


def test_files_merge_in_order_and_only_overlaps_are_deduplicated() -> None:
    samples = raw_samples(seconds=40, gap=(100, 110))
    arrays = [
        validate_arrays(data, key=key, machine_uuid=UUID)[1]
        for key, data in split(samples, [T0 + 20.5])
    ]
    merged = merged_samples(arrays)
    np.testing.assert_array_equal(merged, np.concatenate(arrays))
    again = merged_samples([arrays[0], arrays[1], arrays[1][:50]])  # a repeat of 50 rows
    np.testing.assert_array_equal(again, merged)
    assert merged_samples([]).shape == (0, 9)


def test_a_file_that_no_longer_validates_stops_the_group() -> None:
    files = split(raw_samples(seconds=60), [T0 + 30.0])
    broken = (files[1][0], b"not parquet any more")
    with pytest.raises(UnusableFileError, match=f"{files[1][0]}: not a parquet file"):
        compute([files[0], broken], [(T0, T0 + 60)])


def test_files_not_known_to_be_accepted_report_verdicts_and_bad_ones_are_left_out() -> None:
    samples = raw_samples(seconds=60)
    files = split(samples, [T0 + 30.0])
    broken = (f"{UUID}/{T0 * 1000 + 99}.parquet", b"not parquet")
    verdicts: list = []
    result = statevectors_of_files(
        [files[0], broken, files[1]],
        [(T0, T0 + 60)],
        machine_uuid=UUID,
        limits=ValidationLimits(),
        now_s=time.time(),
        max_gap_s=10.0,
        params=DenoiseParams(),
        verdicts=verdicts,
    )
    assert [v.accepted for v in verdicts] == [True, False, True]
    assert verdicts[1].reason == "not a parquet file"
    assert_equal_frames(result, compute(files, [(T0, T0 + 60)]))


def test_no_parts_no_rows() -> None:
    result = compute(split(raw_samples(seconds=30), []), [])
    assert result.empty and list(result.columns) == list(STATEVECTOR_COLUMNS)
