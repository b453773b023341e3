"""Properties of the resampler on random machines: the grid, the gap rule, independence."""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.preprocess import DenoiseParams, context_seconds, imu_second_stats, resample_machine
from etl.preprocess.denoise import METRES_PER_DEGREE

T0 = 1_767_225_600.0
UUID = "machine"
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Gaps between samples: mostly regular, now and then a dropout around max_gap_s;
# whole and half seconds make samples land exactly on grid and window edges.
gps_gap = st.one_of(
    st.sampled_from([0.5, 1.0, 1.0, 1.0, 2.0, 10.0, 10.5]),
    st.floats(0.2, 3.0),
    st.floats(3.0, 25.0),
)
imu_gap = st.one_of(
    st.sampled_from([0.1, 0.1, 0.1, 0.5, 1.0, 10.0]),
    st.floats(0.05, 0.3),
    st.floats(0.3, 25.0),
)


def times(draw: st.DrawFn, gap: st.SearchStrategy[float], max_size: int) -> np.ndarray:
    start = draw(st.one_of(st.sampled_from([0.0, 0.5]), st.floats(0.0, 20.0)))
    gaps = draw(st.lists(gap, max_size=max_size))
    return T0 + start + np.cumsum(np.asarray(gaps, dtype=float))


@st.composite
def machines(draw: st.DrawFn, noisy: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GPS fixes on a straight track (noise and multipath if ``noisy``) and raw IMU rows."""
    tg = times(draw, gps_gap, 120)
    ti = times(draw, imu_gap, 400)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ve, vn = draw(st.floats(-15, 15)), draw(st.floats(-15, 15))
    east, north = ve * (tg - T0), vn * (tg - T0)
    if noisy:
        east = east + rng.normal(0, 2.0, tg.size)
        north = north + rng.normal(0, 2.0, tg.size)
        jumps = rng.random(tg.size) < 0.05
        east = east + np.where(jumps, 300.0, 0.0)
    gps = pd.DataFrame(
        {
            "timestamp": tg,
            "latitude": -23.0 + north / METRES_PER_DEGREE,
            "longitude": 119.0 + east / (METRES_PER_DEGREE * math.cos(math.radians(-23.0))),
            "altitude": 400.0 + rng.normal(0, 3.0, tg.size),
            "speed": np.abs(math.hypot(ve, vn) + rng.normal(0, 0.3, tg.size)),
            "heading": rng.uniform(0.0, 360.0, tg.size),
        }
    )
    imu = pd.DataFrame(
        {
            "timestamp": ti,
            "acc_x": rng.normal(0, 1, ti.size),
            "acc_y": rng.normal(0, 1, ti.size),
            "acc_z": rng.normal(9.81, 1, ti.size),
        }
    )
    return gps, imu


def resample(gps: pd.DataFrame, imu: pd.DataFrame, max_gap_s: float, **kwargs) -> pd.DataFrame:
    return resample_machine(
        gps, imu_second_stats(imu), machine_uuid=UUID, max_gap_s=max_gap_s, **kwargs
    )


def reference_grid(events: list[float], max_gap_s: float) -> list[int]:
    """The contract's rule, spelled out: runs of samples at most max_gap_s apart."""
    events = sorted(set(events))
    runs, start = [], None
    for previous, current in zip([None, *events], events, strict=False):
        if previous is None or current - previous > max_gap_s:
            if start is not None:
                runs.append((start, previous))
            start = current
    if start is not None:
        runs.append((start, events[-1]))
    return [s - int(T0) for a, b in runs for s in range(math.ceil(a), math.floor(b) + 1)]


max_gaps = st.one_of(st.sampled_from([1.0, 2.0, 10.0]), st.floats(1.0, 15.0))


@PROPERTY
@given(machines(), max_gaps)
def test_grid_is_exact(machine: tuple[pd.DataFrame, pd.DataFrame], max_gap_s: float) -> None:
    gps, imu = machine
    out = resample(gps, imu, max_gap_s)
    ts = out["ts"]
    assert ts.dtype == np.int64
    assert ts.is_monotonic_increasing and ts.is_unique
    events = [*gps["timestamp"], *imu["timestamp"]]  # raw IMU times, not the per-second summary
    assert (ts - int(T0)).tolist() == reference_grid(events, max_gap_s)
    headings = out["heading"].dropna()
    assert ((headings >= 0) & (headings < 360)).all()
    assert (out["speed"].dropna() >= 0).all()


def bracketed(sorted_times: list[float], ts: int, max_gap_s: float) -> bool:
    """A sample at ``ts``, or one on each side at most ``max_gap_s`` apart."""
    right = bisect.bisect_left(sorted_times, ts)
    if right < len(sorted_times) and sorted_times[right] == ts:
        return True
    return (
        0 < right < len(sorted_times) and sorted_times[right] - sorted_times[right - 1] <= max_gap_s
    )


@PROPERTY
@given(machines(noisy=False), max_gaps)
def test_gap_rule_and_flags(machine: tuple[pd.DataFrame, pd.DataFrame], max_gap_s: float) -> None:
    gps, imu = machine
    out = resample(gps, imu, max_gap_s)
    fixes = sorted(gps["timestamp"])
    samples = np.sort(imu["timestamp"].to_numpy())
    seconds = imu_second_stats(imu)
    for row in out.itertuples():
        near = min((abs(t - row.ts) for t in fixes), default=math.inf)
        assert row.gps_filled == (near >= 1.0)
        assert math.isfinite(row.latitude) == bracketed(fixes, row.ts, max_gap_s)
        in_window = ((samples >= row.ts - 0.5) & (samples < row.ts + 0.5)).sum()
        assert row.imu_filled == (in_window == 0)
        assert row.imu_samples == in_window
        before = seconds[seconds["ts"] <= row.ts]
        after = seconds[seconds["ts"] >= row.ts]
        bridged = (
            len(before)
            and len(after)
            and (after["t_first"].iloc[0] - before["t_last"].iloc[-1] <= max_gap_s)
        )
        assert math.isfinite(row.acc_x_mean) == bool(in_window or bridged)
    assert out["gps_outliers"].sum() == 0  # a clean straight track has no multipath


@PROPERTY
@given(machines(), max_gaps, st.randoms(use_true_random=False))
def test_order_and_duplicates_do_not_matter(
    machine: tuple[pd.DataFrame, pd.DataFrame], max_gap_s: float, random
) -> None:
    gps, imu = machine
    expected = resample(gps, imu, max_gap_s)
    seed = random.randrange(2**32)
    gps2 = pd.concat([gps, gps.sample(frac=0.5, random_state=seed)]).sample(
        frac=1, random_state=seed
    )
    imu2 = pd.concat([imu, imu.sample(frac=0.5, random_state=seed)]).sample(
        frac=1, random_state=seed
    )
    pd.testing.assert_frame_equal(resample(gps2, imu2, max_gap_s), expected, check_exact=True)


params = st.builds(
    DenoiseParams,
    outlier_window_s=st.floats(1.0, 8.0),
    window_s=st.floats(1.5, 12.0),
    speed_window_s=st.floats(1.5, 12.0),
    static_window_s=st.floats(1.5, 20.0),
)


@PROPERTY
@given(machines(), max_gaps, params, st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3))
def test_slices_with_context_margins_equal_the_whole(
    machine: tuple[pd.DataFrame, pd.DataFrame],
    max_gap_s: float,
    denoise: DenoiseParams,
    cuts: list[float],
) -> None:
    gps, imu = machine
    whole = resample(gps, imu, max_gap_s, params=denoise)
    everything = np.r_[gps["timestamp"], imu["timestamp"]]
    if everything.size == 0:
        return
    first, last = int(np.floor(everything.min())), int(np.ceil(everything.max())) + 1
    bounds = sorted({first, last, *(first + round(c * (last - first)) for c in cuts)})
    margin = context_seconds(max_gap_s, denoise)
    parts = []
    for lo, hi in itertools.pairwise(bounds):
        g = gps[(gps["timestamp"] >= lo - margin) & (gps["timestamp"] <= hi + margin)]
        i = imu[(imu["timestamp"] >= lo - margin) & (imu["timestamp"] <= hi + margin)]
        parts.append(resample(g, i, max_gap_s, params=denoise, ts_from=lo, ts_to=hi))
    joined = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole, check_exact=False, rtol=0, atol=1e-9)
