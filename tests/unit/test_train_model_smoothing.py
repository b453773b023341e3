"""Smoothing parameters come from the training labels' segment durations."""

from __future__ import annotations

import numpy as np
import pytest

from etl.train.model import DEFAULT_STAY, STAY_RANGE, SegmentStats, Smoothing
from etl.train.smoothing import smooth_activities, viterbi


def test_stays_match_mean_durations_and_minimums_follow_each_class() -> None:
    stats = {
        0: SegmentStats(mean_s=100.0, p10_s=40.0),
        1: SegmentStats(mean_s=4.0, p10_s=3.0),
        2: SegmentStats(mean_s=1.5, p10_s=1.0),
    }
    smoothing = Smoothing.from_stats(stats, 4, default_min_segment_s=5)
    assert smoothing.stays[0] == pytest.approx(0.99)
    assert smoothing.stays[1] == pytest.approx(0.75)
    assert smoothing.stays[2] == STAY_RANGE[0]  # 1 - 1/1.5 = 0.33, clipped
    assert smoothing.stays[3] == DEFAULT_STAY  # not seen in training
    assert smoothing.min_segments_s == (20, 1, 1, 5)  # half the p10; the default if unseen
    long_only = Smoothing.from_stats(
        {0: SegmentStats(3000.0, 900.0), 1: SegmentStats(60.0, 30.0)}, 2, default_min_segment_s=5
    )
    assert long_only.stays[0] == STAY_RANGE[1]
    assert long_only.as_params(["a", "b"]) == {
        "smoothing_stay_a": STAY_RANGE[1],
        "smoothing_min_segment_s_a": 450.0,
        "smoothing_stay_b": pytest.approx(1 - 1 / 60),
        "smoothing_min_segment_s_b": 15.0,
    }


def test_each_class_has_its_own_minimum_segment() -> None:
    # class 1 is allowed 3-second segments, class 0 needs 10: the 6 s blip of 0 goes
    proba = np.tile([0.1, 0.9], (40, 1))
    proba[10:13] = [0.8, 0.2]  # 3 s of 0 inside 1: shorter than 0's minimum
    proba[25:28] = [0.8, 0.2]
    labels = smooth_activities(np.arange(40), proba, stay=0.6, min_segment_s=np.array([10, 3]))
    assert (labels == 1).all()
    kept = smooth_activities(np.arange(40), proba, stay=0.6, min_segment_s=np.array([3, 3]))
    assert kept[10:13].tolist() == [0, 0, 0] and kept[25:28].tolist() == [0, 0, 0]


def test_a_short_lived_class_survives_where_one_sticky_stay_erases_it() -> None:
    # 40 s of class 0, 3 s of class 1 (fairly supported), 40 s of class 0
    proba = np.tile([0.9, 0.1], (83, 1))
    proba[40:43] = [0.1, 0.9]
    sticky = viterbi(proba, stay=0.98)
    assert (sticky == 0).all()
    per_class = viterbi(proba, stay=np.array([0.975, 0.67]))
    assert (
        per_class[40:43].tolist() == [1, 1, 1] and (np.delete(per_class, [40, 41, 42]) == 0).all()
    )
    ts = np.arange(83)
    kept = smooth_activities(ts, proba, stay=np.array([0.975, 0.67]), min_segment_s=1)
    assert kept.tolist() == per_class.tolist()


def test_per_class_stay_is_validated() -> None:
    with pytest.raises(ValueError, match="stay"):
        viterbi(np.ones((3, 2)) / 2, stay=np.array([0.9, 1.0]))
