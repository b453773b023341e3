"""The numpy validation the pipeline runs agrees exactly with the pandas reference.

``validate_arrays`` (what the validation tasks run) and ``validate_batch`` (the
readable specification, and the pandas benchmark baseline's validator) must give
the same verdict, reason, warnings, quality report and samples, bit for bit.
``tests/unit/test_validate.py`` checks every one of its cases both ways; here,
messy generated files and every fault the simulator injects.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.preprocess import validate
from etl.preprocess.validate import RUN_COMPARED, _distinct_by_sort, distinct_rows
from etl.simulate import FaultRates, SimulationSettings, simulate_machine
from etl.simulate.faults import InjectedFault
from tests.unit.test_validate import NOW, assert_same_verdicts, key_for, raw_frame, to_bytes

# values a reading takes in a messy file: ordinary, out of range, signed zeros, missing
READINGS = st.sampled_from([0.0, -0.0, 1.5, -23.0, 119.0, 400.0, 1e6, -1e6, np.nan, np.inf])


@st.composite
def messy_frames(draw: st.DrawFn) -> pd.DataFrame:
    """A short clean file, then repeats (pairs and longer runs), disorder, odd readings."""
    frame = raw_frame(seconds=draw(st.integers(2, 8)))
    repeats = draw(st.lists(st.integers(0, len(frame) - 1), max_size=12))
    frame = pd.concat([frame, frame.iloc[repeats]], ignore_index=True)
    for _ in range(draw(st.integers(0, 12))):
        row = draw(st.integers(0, len(frame) - 1))
        column = draw(st.sampled_from(list(frame.columns[1:])))
        frame.loc[row, column] = draw(READINGS)
    # rows that share a time without being repeats (runs of three or more equal times)
    for _ in range(draw(st.integers(0, 4))):
        source, target = draw(st.integers(0, len(frame) - 1)), draw(st.integers(0, len(frame) - 1))
        frame.loc[target, "timestamp"] = frame.loc[source, "timestamp"]
    if draw(st.booleans()):
        frame.loc[draw(st.integers(0, len(frame) - 1)), "timestamp"] = 12.0  # bad clock
    return frame.sample(frac=1.0, random_state=draw(st.integers(0, 2**16)))


@given(frame=messy_frames())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_messy_files_get_identical_verdicts_and_samples(frame: pd.DataFrame) -> None:
    assert_same_verdicts(to_bytes(frame), key_for(), now_s=NOW)


def test_repeats_in_runs_of_equal_times_keep_the_first_occurrence() -> None:
    """Three rows at one time, two of them equal: not neighbours after a sort by time."""
    frame = raw_frame(seconds=3)
    imu = frame.index[frame["acc_x"].notna()][0]
    other = frame.loc[[imu]].assign(acc_x=5.0)
    again = frame.loc[[imu]].assign(acc_y=-0.0)  # -0.0 equals 0.0, as in pandas
    verdict = assert_same_verdicts(to_bytes(pd.concat([frame, other, again])), key_for(), now_s=NOW)
    assert "1 duplicate rows dropped" in verdict.warnings
    assert (verdict.samples["timestamp"] == frame.loc[imu, "timestamp"]).sum() == 2


def test_infinity_is_not_a_missing_reading() -> None:
    """A row with inf and its copy with NaN differ; the inf reading is out of range."""
    frame = raw_frame(seconds=3)
    fix = frame.index[frame["altitude"].notna()][1]
    frame = pd.concat(
        [frame, frame.loc[[fix]].assign(altitude=np.inf), frame.loc[[fix]].assign(altitude=np.nan)]
    )
    verdict = assert_same_verdicts(to_bytes(frame), key_for(), now_s=NOW)
    assert "1 duplicate rows dropped" not in verdict.warnings


@pytest.fixture(scope="module")
def faulty_files() -> list[tuple[str, bytes, tuple[InjectedFault, ...]]]:
    rates = {**dict.fromkeys(FaultRates.kinds(), 0.12), "gap": 0.02}
    fleet = SimulationSettings(
        machines=2,
        days=3 / 24,
        seed=7,
        machine_types=("dumper", "excavator"),
        faults=FaultRates(**rates),
        multipath_rate=0.01,
    )
    return [
        (b.key, b.payload, b.faults)
        for i in range(fleet.machines)
        for b in simulate_machine(fleet, i).batches
    ]


def test_every_simulated_fault_gets_the_reference_verdict(faulty_files) -> None:
    now = time.time()
    outcomes: Counter[str] = Counter()
    injected: set[str] = set()
    for key, payload, faults in faulty_files:
        verdict = assert_same_verdicts(payload, key, key.split("/")[0], now_s=now)
        injected.update(f.kind for f in faults)
        if not verdict.accepted:
            outcomes[f"rejected: {verdict.reason.split(':')[0][:20]}"] += 1
        outcomes.update(w.split(" ", 1)[1][:20] for w in verdict.warnings if w[0].isdigit())
    # the file-level faults all occurred, and both ways out were taken
    assert {"corrupt_file", "truncated_file", "missing_column", "wrong_clock"} <= injected
    assert {"rows_shuffled", "rows_duplicated"} <= injected
    assert sum(n for kind, n in outcomes.items() if kind.startswith("rejected")) >= 4
    assert outcomes["duplicate rows dropp"] and outcomes["rows out of order (s"]


@st.composite
def runs_of_rows(draw: st.DrawFn) -> np.ndarray:
    """Rows of a few distinct times in shuffled runs up to 12 long, many of them repeats."""
    times = draw(st.lists(st.sampled_from([1.0, 2.0, 2.5, 7.0]), min_size=1, max_size=40))
    readings = st.lists(READINGS, min_size=2, max_size=2)
    palette = draw(st.lists(readings, min_size=1, max_size=3))  # few values: many repeats
    rows = [[t, *draw(st.sampled_from(palette))] for t in times]
    return np.array(rows, dtype=np.float64)


@given(values=runs_of_rows())
@settings(max_examples=200, deadline=None)
def test_distinct_rows_is_pandas_drop_duplicates_then_stable_sort(values: np.ndarray) -> None:
    frame = pd.DataFrame(values, columns=["timestamp", "a", "b"])
    expected = frame.drop_duplicates().sort_values("timestamp", kind="stable").to_numpy()
    np.testing.assert_array_equal(distinct_rows(values), expected)
    np.testing.assert_array_equal(_distinct_by_sort(values), expected)


def test_runs_longer_than_compared_take_the_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stuck clock: one time for 20 rows, three distinct readings among them."""
    sorted_runs = []

    def spy(values: np.ndarray) -> np.ndarray:
        sorted_runs.append(len(values))
        return _distinct_by_sort(values)

    monkeypatch.setattr(validate, "_distinct_by_sort", spy)
    stuck = np.column_stack([np.full(20, 5.0), np.arange(20) % 3, np.zeros(20)])
    kept = distinct_rows(stuck)
    assert len(stuck) > RUN_COMPARED and kept.tolist() == [[5.0, 0, 0], [5.0, 1, 0], [5.0, 2, 0]]
    assert sorted_runs == [20]
    distinct_rows(stuck[: RUN_COMPARED - 1])  # a run the lags cover: no sort
    assert sorted_runs == [20]
