"""Per-machine inference results on inline frames: smoothing, segments, cycles, the cut."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from etl.infer.results import (
    cycles_with_travel,
    find_cut,
    segments_with_confidence,
    smooth_seconds,
)
from etl.infer.schema import PHASE_COLUMNS
from etl.train.model import Smoothing

DUMPER = ("idle", "queuing", "loading", "hauling", "dumping", "returning")
T0 = 1_767_571_200  # 2026-01-05


def _seconds(plan: list[tuple[str, int]], start: int = T0, **columns: float) -> pd.DataFrame:
    """One second per row, activities in runs: [("loading", 60), ("hauling", 120), ...]."""
    activity = [a for a, n in plan for _ in range(n)]
    frame = pd.DataFrame({"ts": start + np.arange(len(activity)), "activity": activity})
    for name, value in columns.items():
        frame[name] = value
    return frame


def _one_hot(activity: list[str], classes: tuple[str, ...], p: float = 0.9) -> list[np.ndarray]:
    rest = (1 - p) / (len(classes) - 1)
    rows = []
    for a in activity:
        row = np.full(len(classes), rest)
        row[classes.index(a)] = p
        rows.append(row)
    return rows


def test_smooth_seconds_keeps_from_the_cut_and_reports_the_smoothed_class_probability() -> None:
    frame = _seconds([("hauling", 30), ("dumping", 1), ("hauling", 30)])
    frame["probabilities"] = _one_hot(list(frame["activity"]), DUMPER)
    smoothing = Smoothing(stays=(0.99,) * 6, min_segments_s=(5,) * 6)
    out = smooth_seconds(frame.drop(columns="activity"), DUMPER, smoothing, keep_from=T0 + 10)
    assert out["ts"].iloc[0] == T0 + 10 and len(out) == 51
    # the lone "dumping" second flickers and is smoothed away, but raw_activity keeps it
    assert set(out["activity"]) == {"hauling"}
    assert (out["raw_activity"] == "dumping").sum() == 1
    flicker = out.loc[out["raw_activity"] == "dumping", "confidence"].iloc[0]
    assert flicker == pytest.approx(0.1 / 5)  # the probability of the smoothed class


def test_segments_carry_the_mean_confidence_and_break_at_gaps() -> None:
    frame = _seconds([("loading", 4), ("hauling", 4)])
    frame["confidence"] = [1.0, 1.0, 0.5, 0.5, 0.2, 0.2, 0.2, 0.2]
    gap = _seconds([("hauling", 3)], start=T0 + 100, confidence=0.6)
    segments = segments_with_confidence(pd.concat([frame, gap], ignore_index=True))
    assert segments[["start", "end", "activity"]].values.tolist() == [
        [T0, T0 + 4, "loading"],
        [T0 + 4, T0 + 8, "hauling"],
        [T0 + 100, T0 + 103, "hauling"],
    ]
    assert segments["confidence"].tolist() == pytest.approx([0.75, 0.2, 0.6])


def _dumper_cycle() -> list[tuple[str, int]]:
    return [("loading", 60), ("hauling", 100), ("dumping", 20), ("returning", 100)]


def test_dumper_cycles_measure_distance_speed_and_places() -> None:
    plan = [*_dumper_cycle(), *_dumper_cycle(), ("loading", 30)]
    frame = _seconds(plan, speed=0.0)
    n = len(frame)
    # moving north at 10 m/s while hauling, south at 5 m/s while returning
    step = np.where(frame["activity"] == "hauling", 10.0, 0.0) - np.where(
        frame["activity"] == "returning", 5.0, 0.0
    )
    north_m = np.concatenate(([0.0], np.cumsum(step[1:])))
    frame["latitude"] = -23.0 + north_m / 111_195.0
    frame["longitude"] = 119.0
    frame["speed"] = np.abs(step)
    cycles = cycles_with_travel(frame, "dumper", max_gap_s=10)
    assert len(cycles) == 2 and n == 2 * 280 + 30
    first = cycles.iloc[0]
    assert first["cycle_start"] == T0 and first["cycle_end"] == T0 + 280
    assert first["duration_s"] == 280
    assert (first["loading_s"], first["hauling_s"], first["dumping_s"], first["returning_s"]) == (
        60,
        100,
        20,
        100,
    )
    assert math.isnan(first["digging_s"]) and math.isnan(first["carrying_s"])
    assert first["distance_loaded_m"] == pytest.approx(1000.0, rel=1e-3)
    assert first["distance_empty_m"] == pytest.approx(500.0, rel=1e-3)
    assert first["avg_speed_loaded_kmh"] == pytest.approx(36.0)
    assert first["avg_speed_empty_kmh"] == pytest.approx(18.0)
    # loaded where it stood during loading, dumped ~1 km north of it
    assert first["load_lat"] == pytest.approx(-23.0)
    assert (first["dump_lat"] - first["load_lat"]) * 111_195.0 == pytest.approx(1000.0, rel=1e-2)
    assert bool(first["is_complete"]) and first["data_coverage"] == 1.0
    assert set(PHASE_COLUMNS) <= set(cycles.columns)


def test_excavator_cycles_have_no_travel_figures_and_a_gap_breaks_completeness() -> None:
    cycle = [("digging", 10), ("swinging_loaded", 5), ("dumping", 3), ("swinging_empty", 5)]
    first = _seconds(cycle, latitude=-23.0, longitude=119.0, speed=0.0)
    # a 60 s outage in the middle of the second cycle
    second = _seconds(cycle[:2], start=T0 + 23, latitude=-23.0, longitude=119.0, speed=0.0)
    rest = _seconds(
        [*cycle[2:], ("digging", 10)], start=T0 + 23 + 15 + 60, latitude=-23.0, longitude=119.0
    )
    rest["speed"] = 0.0
    frame = pd.concat([first, second, rest], ignore_index=True)
    cycles = cycles_with_travel(frame, "excavator", max_gap_s=10)
    assert cycles["is_complete"].tolist() == [True, False]
    assert cycles["data_coverage"].iloc[1] == pytest.approx(23 / 83)
    assert cycles[["distance_loaded_m", "avg_speed_empty_kmh"]].isna().all().all()
    assert cycles["load_lat"].iloc[0] == pytest.approx(-23.0)
    assert math.isnan(cycles["hauling_s"].iloc[0])


def _segments(rows: list[tuple[int, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["start", "end", "activity"])


def test_cut_is_the_last_cycle_start_before_the_new_data() -> None:
    old = _segments(
        [
            (100, 160, "loading"),
            (160, 260, "hauling"),
            (260, 300, "loading"),
            (300, 320, "loading"),  # after a gap: the same loading phase, not a new cycle
            (320, 400, "hauling"),
            (400, 500, "dumping"),
        ]
    )
    assert find_cut(old, "dumper", 450) == 260
    assert find_cut(old, "dumper", 200) == 100
    # the new data starts inside a cycle that began before the look-back: earliest boundary
    assert find_cut(old[old["activity"] != "loading"], "dumper", 450) == 160
    # no earlier segment at all: from the new data itself
    assert find_cut(old.iloc[:0], "dumper", 450) == 450
    # segments at or after the new data are not evidence of where to start
    assert find_cut(old, "dumper", 100) == 100


def test_stitching_from_the_cut_rebuilds_a_cycle_split_by_a_batch_boundary() -> None:
    # three dumper cycles; the first batch ends in the middle of the third one's hauling
    plan = [*_dumper_cycle(), *_dumper_cycle(), *_dumper_cycle(), ("loading", 30)]
    frame = _seconds(plan, latitude=-23.0, longitude=119.0, speed=5.0, confidence=0.9)
    whole_segments = segments_with_confidence(frame)
    whole_cycles = cycles_with_travel(frame, "dumper", max_gap_s=10)

    boundary = T0 + 2 * 280 + 150
    first = frame[frame["ts"] < boundary]
    stored_segments = segments_with_confidence(first)
    stored_cycles = cycles_with_travel(first, "dumper", max_gap_s=10)
    assert len(stored_cycles) == 2  # the third cycle has no end yet

    # new data from the boundary on (minus the margin): rebuilt from the second cycle's start
    cut = find_cut(stored_segments, "dumper", boundary - 300)
    assert cut == T0 + 280
    again = frame[frame["ts"] >= cut]
    segments = pd.concat(
        [stored_segments[stored_segments["start"] < cut], segments_with_confidence(again)],
        ignore_index=True,
    )
    cycles = pd.concat(
        [
            stored_cycles[stored_cycles["cycle_start"] < cut],
            cycles_with_travel(again, "dumper", 10),
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(segments, whole_segments)
    pd.testing.assert_frame_equal(cycles, whole_cycles)
    assert len(cycles) == 3
