"""Training decisions as pure functions: enough data, the held-out machines, promotion.

Kept apart from Spark and MLflow so that the rules an operator reads in the
state store ("insufficient data: 9.5 of 14 days for dumpers") are unit-tested
both ways.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DAY_S = 86_400.0

PLURAL = {"dumper": "dumpers", "excavator": "excavators", "wheel_loader": "wheel loaders"}


def covered_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Seconds covered by the union of ``[first, last]`` intervals (re-sent files count once)."""
    total, end = 0.0, -math.inf
    for first, last in sorted(intervals):
        if last <= end:
            continue
        total += last - max(first, end)
        end = last
    return total


@dataclass(frozen=True)
class Decision:
    """Whether a machine type has enough data to train, and the sentence that says so."""

    machine_type: str
    announced_days: float
    labelled_days: float
    min_days: float

    @property
    def days(self) -> float:
        """The binding figure: data must be both announced and labelled to count."""
        return min(self.announced_days, self.labelled_days)

    @property
    def enough(self) -> bool:
        """At least ``min_days`` machine-days, announced and labelled."""
        return self.days >= self.min_days

    @property
    def message(self) -> str:
        """One line for the state store and the operator."""
        kind = PLURAL.get(self.machine_type, self.machine_type)
        figures = f"{self.days:.1f} of {self.min_days:g} days for {kind}"
        detail = f" (announced {self.announced_days:.1f}, labelled {self.labelled_days:.1f})"
        if self.enough:
            return f"enough data: {figures}{detail}"
        return f"insufficient data: {figures}{detail}"


def holdout_machines(machines: Sequence[str], fraction: float, seed: int) -> list[str]:
    """Machines kept out of training for evaluation: never random rows (no leakage).

    A stable choice (hash of seed and UUID) so that reruns evaluate on the same
    machines; at least one machine is held out when there are two or more. With
    a single machine the split is by time instead (see :func:`time_split`).
    """
    if len(machines) < 2:
        return []
    count = min(len(machines) - 1, max(1, round(len(machines) * fraction)))
    ranked = sorted(
        machines, key=lambda uuid: hashlib.sha256(f"{seed}:{uuid}".encode()).hexdigest()
    )
    return sorted(ranked[:count])


def time_split(ts_from: float, ts_to: float, fraction: float) -> float:
    """The time after which a lone machine's seconds are held out (the last ``fraction``)."""
    return ts_to - (ts_to - ts_from) * fraction


def should_promote(candidate: float, champion: float | None, *, margin: float = 0.0) -> bool:
    """A candidate becomes champion only if it beats the champion on the same evaluation data.

    Args:
        candidate: the candidate's score (macro-F1 after smoothing) on the held-out data.
        champion: the current champion's score on the same data, None if there is none.
        margin: how much better it must be (ties keep the champion).
    """
    if champion is None or math.isnan(champion):
        return True
    return candidate > champion + margin
