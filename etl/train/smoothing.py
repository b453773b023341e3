"""Turn noisy per-second class probabilities into plausible activity sequences.

A per-second classifier flickers: a single uncertain second flips the argmax and
creates a spurious one-second activity, which in turn splits a work cycle in two.
Machines change activity rarely compared with the 1 Hz sampling rate, so a
sticky Markov chain decoded with Viterbi is the natural prior, and a minimum
segment length removes the short fragments the chain still lets through.

Smoothing never crosses a gap in the timestamps: what happened while no data
arrived is unknown, so each contiguous run is decoded on its own.
"""

from __future__ import annotations

import itertools

import numpy as np

_EPS = 1e-12
"""Floor for probabilities before the log, so a hard zero cannot veto a whole path."""


def _log_transitions(k: int, stay: float | np.ndarray) -> np.ndarray:
    """Log transition matrix: ``stay`` on the diagonal, the rest of each row spread evenly.

    ``stay`` is one probability for all classes or one per class.
    """
    if k == 1:
        return np.zeros((1, 1))
    stays = np.broadcast_to(np.asarray(stay, dtype=float), (k,))
    trans = np.repeat(((1.0 - stays) / (k - 1))[:, None], k, axis=1)
    np.fill_diagonal(trans, stays)
    return np.log(np.clip(trans, _EPS, None))


def viterbi(proba: np.ndarray, stay: float | np.ndarray = 0.98) -> np.ndarray:
    """Most likely class sequence under a sticky Markov chain.

    The classifier's per-second probabilities are used as emission scores and
    the chain keeps its class with probability ``stay``, so a switch must be
    supported by enough evidence to pay for two transitions; a lone flickering
    second is not, a sustained change is. Works in log space so long runs do
    not underflow, and is vectorised over the classes (O(n k^2)).

    Args:
        proba: Class probabilities, shape (n, k); rows need not sum to one.
        stay: Probability of keeping the class from one second to the next, in (0, 1):
            one for all classes, or one per class (a class whose segments last ``d``
            seconds on average stays with probability ``1 - 1/d``).

    Returns:
        Class indices, shape (n,), dtype int64.

    Raises:
        ValueError: If ``proba`` is not two-dimensional or ``stay`` is outside (0, 1).
    """
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2:
        raise ValueError(f"proba must be 2-D (n, k), got shape {proba.shape}")
    if not np.all((np.asarray(stay) > 0.0) & (np.asarray(stay) < 1.0)):
        raise ValueError(f"stay must be in (0, 1), got {stay}")
    n, k = proba.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    log_emit = np.log(np.clip(proba, _EPS, None))
    log_trans = _log_transitions(k, stay)
    back = np.zeros((n, k), dtype=np.int64)
    score = log_emit[0] - np.log(k)
    for t in range(1, n):
        # cand[i, j]: best score ending in i at t-1, then moving to j.
        cand = score[:, None] + log_trans
        back[t] = np.argmax(cand, axis=0)
        score = cand[back[t], np.arange(k)] + log_emit[t]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``(start, stop)`` index ranges of equal consecutive values."""
    if values.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(values) != 0) + 1
    bounds = np.concatenate(([0], cuts, [values.size]))
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def _merge_short(labels: np.ndarray, proba: np.ndarray, min_segment_s: np.ndarray) -> np.ndarray:
    """Absorb segments shorter than their class's minimum into a neighbour, shortest first.

    The neighbour chosen is the one whose class the classifier found more likely
    over the short stretch, so the merge follows the evidence rather than a
    fixed side. Shortest first, because merging a fragment can lengthen its
    neighbour past the threshold and so rescue it.
    """
    labels = labels.copy()
    while True:
        runs = _runs(labels)
        if len(runs) <= 1:
            return labels
        short = [
            (b - a, i) for i, (a, b) in enumerate(runs) if b - a < min_segment_s[int(labels[a])]
        ]
        if not short:
            return labels
        _, i = min(short)
        a, b = runs[i]
        options = []
        if i > 0:
            options.append(int(labels[runs[i - 1][0]]))
        if i < len(runs) - 1:
            options.append(int(labels[runs[i + 1][0]]))
        means = [float(proba[a:b, c].mean()) for c in options]
        labels[a:b] = options[int(np.argmax(means))]


def smooth_activities(
    ts: np.ndarray,
    proba: np.ndarray,
    *,
    stay: float | np.ndarray = 0.98,
    min_segment_s: int | np.ndarray = 5,
) -> np.ndarray:
    """Smoothed class indices for one machine's per-second probabilities.

    Each contiguous run of seconds (a step ``ts[i] - ts[i-1] > 1`` starts a new
    one) is decoded with :func:`viterbi`, then segments shorter than
    ``min_segment_s`` are merged into the neighbour with the higher mean
    probability over that stretch. Both steps stay inside a run, because nothing
    is known about the machine across a gap. A run shorter than
    ``min_segment_s`` is kept as one decoded segment (there is no neighbour).

    Args:
        ts: Sorted integer epoch seconds, shape (n,).
        proba: Class probabilities aligned with ``ts``, shape (n, k).
        stay: Self-transition probability for :func:`viterbi` (one, or one per class).
        min_segment_s: Shortest segment kept as is inside a run, one for all classes or
            one per class; 1 or less disables merging.

    Returns:
        Class indices, shape (n,), dtype int64.

    Raises:
        ValueError: If ``ts`` and ``proba`` disagree in length.
    """
    ts = np.asarray(ts)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or ts.shape != (proba.shape[0],):
        raise ValueError(f"ts shape {ts.shape} does not match proba shape {proba.shape}")
    out = np.zeros(ts.size, dtype=np.int64)
    if ts.size == 0:
        return out
    cuts = np.flatnonzero(np.diff(ts) > 1) + 1
    bounds = np.concatenate(([0], cuts, [ts.size]))
    minimum = np.broadcast_to(np.asarray(min_segment_s), (proba.shape[1],))
    for a, b in itertools.pairwise(bounds):
        labels = viterbi(proba[a:b], stay=stay)
        if np.any(minimum > 1):
            labels = _merge_short(labels, proba[a:b], minimum)
        out[a:b] = labels
    return out
