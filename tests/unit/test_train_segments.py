"""Activity segments and work cycles from hand-built label sequences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etl.config import ACTIVITIES
from etl.train.segments import CYCLE_START, activity_segments, build_cycles


def _track(phases: list[tuple[str, int]], t0: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous seconds from ``(activity, seconds)`` phases; ``("gap", n)`` skips n seconds."""
    ts, acts, t = [], [], t0
    for act, n in phases:
        if act != "gap":
            ts.extend(range(t, t + n))
            acts.extend([act] * n)
        t += n
    return np.array(ts), np.array(acts, dtype=object)


DUMPER_CYCLE = [
    ("loading", 30),
    ("hauling", 60),
    ("dumping", 20),
    ("returning", 50),
    ("queuing", 15),
]


def test_segments_from_sequence_with_gap() -> None:
    ts, acts = _track([("idle", 3), ("loading", 4), ("gap", 5), ("loading", 2), ("hauling", 3)])
    seg = activity_segments(ts, acts)
    assert list(seg.columns) == ["start", "end", "activity", "duration_s"]
    assert seg["activity"].tolist() == ["idle", "loading", "loading", "hauling"]
    assert seg["start"].tolist() == [1000, 1003, 1012, 1014]
    assert seg["end"].tolist() == [1003, 1007, 1014, 1017]
    assert seg["duration_s"].tolist() == [3, 4, 2, 3]


def test_segments_bridge_short_gap_when_allowed() -> None:
    ts, acts = _track([("loading", 4), ("gap", 2), ("loading", 2)])
    seg = activity_segments(ts, acts, max_gap_s=3)
    assert seg[["start", "end", "duration_s"]].values.tolist() == [[1000, 1008, 8]]


def test_segments_empty_and_misaligned() -> None:
    empty = activity_segments(np.array([], dtype=int), np.array([], dtype=object))
    assert empty.empty
    assert list(empty.columns) == ["start", "end", "activity", "duration_s"]
    with pytest.raises(ValueError):
        activity_segments(np.arange(3), np.array(["idle"] * 2))


def test_dumper_cycles_count_and_durations() -> None:
    ts, acts = _track([("idle", 40), *DUMPER_CYCLE * 3, ("loading", 10), ("hauling", 5)])
    cycles = build_cycles(activity_segments(ts, acts), "dumper")
    # Three loading-to-loading cycles; the trailing loading starts no full cycle
    # and the leading idle belongs to none.
    assert len(cycles) == 3
    assert cycles["duration_s"].tolist() == [175, 175, 175]
    assert cycles["cycle_start"].tolist() == [1040, 1215, 1390]
    assert (cycles["cycle_end"] - cycles["cycle_start"]).tolist() == [175] * 3
    assert cycles["idle_s"].tolist() == [0, 0, 0]
    assert cycles["loading_s"].tolist() == [30, 30, 30]
    assert cycles["queuing_s"].tolist() == [15, 15, 15]
    act_cols = [f"{a}_s" for a in ACTIVITIES["dumper"]]
    assert (cycles[act_cols].sum(axis=1) == cycles["duration_s"]).all()
    assert cycles["is_complete"].all()
    assert (cycles["data_coverage"] == 1.0).all()


def test_long_gap_marks_cycle_incomplete_and_lowers_coverage() -> None:
    broken = [
        ("loading", 30),
        ("hauling", 20),
        ("gap", 40),
        ("hauling", 40),
        ("dumping", 20),
        ("returning", 50),
        ("queuing", 15),
    ]
    ts, acts = _track([*DUMPER_CYCLE, *broken, *DUMPER_CYCLE, ("loading", 5)])
    cycles = build_cycles(activity_segments(ts, acts), "dumper", max_gap_s=10)
    assert cycles["is_complete"].tolist() == [True, False, True]
    assert cycles["duration_s"].tolist() == [175, 215, 175]
    assert cycles.loc[1, "data_coverage"] == pytest.approx(175 / 215)
    assert cycles.loc[1, "hauling_s"] == 60
    assert cycles.loc[0, "data_coverage"] == 1.0


def test_short_gap_keeps_cycle_complete() -> None:
    ts, acts = _track(
        [("loading", 30), ("hauling", 20), ("gap", 5), ("hauling", 40), ("loading", 10)]
    )
    cycles = build_cycles(activity_segments(ts, acts), "dumper", max_gap_s=10)
    assert cycles["is_complete"].tolist() == [True]
    assert cycles.loc[0, "data_coverage"] == pytest.approx(90 / 95)


def test_gap_at_cycle_end_counts() -> None:
    ts, acts = _track([("loading", 30), ("hauling", 20), ("gap", 30), ("loading", 10)])
    cycles = build_cycles(activity_segments(ts, acts), "dumper", max_gap_s=10)
    assert cycles["is_complete"].tolist() == [False]


def test_loading_split_by_gap_is_one_cycle_start() -> None:
    ts, acts = _track(
        [("loading", 10), ("gap", 3), ("loading", 20), ("hauling", 50), ("loading", 10)]
    )
    cycles = build_cycles(activity_segments(ts, acts), "dumper")
    assert len(cycles) == 1
    assert cycles.loc[0, "cycle_start"] == 1000
    assert cycles.loc[0, "duration_s"] == 83
    assert cycles.loc[0, "loading_s"] == 30


def test_excavator_cycles_start_at_digging() -> None:
    excavator = [("digging", 12), ("swinging_loaded", 6), ("dumping", 4), ("swinging_empty", 6)]
    ts, acts = _track([("traveling", 30), ("swinging_empty", 5), *excavator * 4, ("digging", 3)])
    cycles = build_cycles(activity_segments(ts, acts), "excavator")
    assert CYCLE_START["excavator"] == "digging"
    assert len(cycles) == 4
    assert cycles["duration_s"].tolist() == [28] * 4
    assert cycles["cycle_start"].iloc[0] == 1035
    assert cycles["traveling_s"].sum() == 0
    assert "loading_s" not in cycles.columns


def test_no_full_cycle_gives_empty_frame_with_columns() -> None:
    ts, acts = _track([("idle", 10), ("loading", 5), ("carrying", 5)])
    cycles = build_cycles(activity_segments(ts, acts), "wheel_loader")
    assert cycles.empty
    expected = [
        "cycle_start",
        "cycle_end",
        "duration_s",
        *(f"{a}_s" for a in ACTIVITIES["wheel_loader"]),
        "is_complete",
        "data_coverage",
    ]
    assert list(cycles.columns) == expected


def test_unknown_activity_or_type_is_rejected() -> None:
    seg = pd.DataFrame({"start": [0], "end": [5], "activity": ["digging"], "duration_s": [5]})
    with pytest.raises(ValueError, match="taxonomy"):
        build_cycles(seg, "dumper")
    with pytest.raises(ValueError, match="machine type"):
        build_cycles(seg, "crane")
