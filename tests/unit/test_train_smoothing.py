"""Viterbi decoding and per-run smoothing of per-second class probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.train.smoothing import smooth_activities, viterbi


def _proba(labels: list[int], k: int = 3, confidence: float = 0.7) -> np.ndarray:
    """One-hot-ish probabilities: ``confidence`` on the label, the rest spread evenly."""
    out = np.full((len(labels), k), (1.0 - confidence) / (k - 1))
    out[np.arange(len(labels)), labels] = confidence
    return out


def test_viterbi_removes_one_second_flicker() -> None:
    labels = [0] * 10 + [1] + [0] * 10
    path = viterbi(_proba(labels), stay=0.98)
    assert path.tolist() == [0] * 21


def test_viterbi_keeps_long_switch() -> None:
    labels = [0] * 15 + [2] * 15
    path = viterbi(_proba(labels), stay=0.98)
    assert path.tolist() == labels


def test_viterbi_with_loose_chain_follows_argmax() -> None:
    # With stay near 1/k the chain is uninformative, so the flicker survives.
    labels = [0] * 5 + [1] + [0] * 5
    path = viterbi(_proba(labels, confidence=0.9), stay=0.34)
    assert path.tolist() == labels


def test_viterbi_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        viterbi(np.ones(5))
    with pytest.raises(ValueError):
        viterbi(np.ones((5, 2)), stay=1.0)


def test_viterbi_empty() -> None:
    assert viterbi(np.zeros((0, 3))).shape == (0,)


def test_min_segment_merges_into_more_likely_neighbour() -> None:
    # A confident 3-second block survives Viterbi with a loose chain, then is
    # merged: class 2 is the better neighbour over that stretch.
    labels = [0] * 10 + [1] * 3 + [2] * 10
    proba = _proba(labels, confidence=0.9)
    proba[10:13, 2] = 0.09  # class 2 slightly more plausible than 0 there
    proba[10:13, 0] = 0.01
    ts = np.arange(len(labels))
    no_merge = smooth_activities(ts, proba, stay=0.5, min_segment_s=1)
    assert no_merge.tolist() == labels
    merged = smooth_activities(ts, proba, stay=0.5, min_segment_s=5)
    assert merged.tolist() == [0] * 10 + [2] * 13


def test_min_segment_merge_prefers_left_when_left_is_likelier() -> None:
    labels = [0] * 10 + [1] * 3 + [2] * 10
    proba = _proba(labels, confidence=0.9)
    proba[10:13, 0] = 0.09
    proba[10:13, 2] = 0.01
    merged = smooth_activities(np.arange(len(labels)), proba, stay=0.5, min_segment_s=5)
    assert merged.tolist() == [0] * 13 + [2] * 10


def test_gap_splits_runs_so_smoothing_never_crosses_it() -> None:
    # Two seconds of class 1 right after a gap: in one run they would be a
    # flicker; as the start of their own run they stay, and the short run is
    # not merged across the gap.
    labels = [0] * 20 + [1] * 2
    ts = np.concatenate((np.arange(20), np.arange(100, 102)))
    proba = _proba(labels, confidence=0.9)
    joined = smooth_activities(np.arange(22), proba, stay=0.98, min_segment_s=5)
    assert joined.tolist() == [0] * 22
    split = smooth_activities(ts, proba, stay=0.98, min_segment_s=5)
    assert split.tolist() == labels


def test_smooth_rejects_misaligned_input() -> None:
    with pytest.raises(ValueError):
        smooth_activities(np.arange(3), np.ones((4, 2)))


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=60),
    k=st.integers(min_value=2, max_value=6),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_output_length_and_class_range(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=n)
    steps = rng.choice([1, 1, 1, 3], size=n)
    ts = np.cumsum(steps)
    out = smooth_activities(ts, proba)
    assert out.shape == (n,)
    assert out.dtype == np.int64
    assert ((out >= 0) & (out < k)).all()


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=80),
    k=st.integers(min_value=2, max_value=6),
    cls=st.integers(min_value=0, max_value=5),
    stay=st.floats(min_value=0.5, max_value=0.999),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_constant_argmax_is_returned_unchanged(
    n: int, k: int, cls: int, stay: float, seed: int
) -> None:
    cls %= k
    rng = np.random.default_rng(seed)
    proba = rng.uniform(0.0, 0.5, size=(n, k))
    proba[:, cls] = 0.6
    assert viterbi(proba, stay=stay).tolist() == [cls] * n
    assert smooth_activities(np.arange(n), proba, stay=stay).tolist() == [cls] * n
