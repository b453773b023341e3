"""Smoothing parameters come from the training labels' segment durations."""

from __future__ import annotations

import numpy as np
import pytest

from etl.train.model import DEFAULT_STAY, STAY_RANGE, Smoothing
from etl.train.smoothing import smooth_activities, viterbi


def test_stays_match_mean_durations_and_min_segment_follows_the_shortest_class() -> None:
    smoothing = Smoothing.from_durations({0: 100.0, 1: 4.0, 2: 1.5}, 4, max_min_segment_s=5)
    assert smoothing.stays[0] == pytest.approx(0.99)
    assert smoothing.stays[1] == pytest.approx(0.75)
    assert smoothing.stays[2] == STAY_RANGE[0]  # 1 - 1/1.5 = 0.33, clipped
    assert smoothing.stays[3] == DEFAULT_STAY  # not seen in training
    assert smoothing.min_segment_s == 1  # half of 1.5 s
    long_only = Smoothing.from_durations({0: 3000.0, 1: 60.0}, 2, max_min_segment_s=5)
    assert long_only.min_segment_s == 5 and long_only.stays[0] == STAY_RANGE[1]
    assert long_only.as_params(["a", "b"]) == {
        "smoothing_min_segment_s": 5.0,
        "smoothing_stay_a": STAY_RANGE[1],
        "smoothing_stay_b": pytest.approx(1 - 1 / 60),
    }


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
