"""Training decisions as pure functions: enough data, the held-out machines, promotion.

Kept apart from Spark and MLflow so that the rules an operator reads in the
state store ("insufficient data: 9.5 of 14 days for dumpers") are unit-tested
both ways.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from etl.state.domain import merge_intervals

DAY_S = 86_400.0

PLURAL = {"dumper": "dumpers", "excavator": "excavators", "wheel_loader": "wheel loaders"}


def covered_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Seconds covered by ``[first, last]`` intervals, by the rule of :func:`merge_intervals`.

    Overlaps and re-sent files count once; files less than a second apart are one stretch.
    """
    return sum(last - first for first, last in merge_intervals(intervals))


DATA_RULES = ("pooled", "every_asset")
"""How ``training.min_days`` is judged (``training.data_rule``): the type's machine-days
added up, or each configured asset of the type on its own."""


@dataclass(frozen=True)
class AssetDays:
    """One machine's days of data: announced by the catalog, and with labels."""

    announced: float
    labelled: float

    @property
    def days(self) -> float:
        """Data counts only when it is both announced and labelled."""
        return min(self.announced, self.labelled)


@dataclass(frozen=True)
class Decision:
    """Whether a machine type has enough data to train, and the sentence that says so.

    ``pooled`` (the default) adds the type's machine-days up: 14 days may be one
    machine's fortnight or fourteen machines' day. ``every_asset`` asks every
    configured asset of the type for ``min_days`` of its own ("two weeks of raw data
    for all assets"), so a model never trains before it has seen each machine's work.
    """

    machine_type: str
    assets: Mapping[str, AssetDays]
    min_days: float
    rule: str = "pooled"

    def __post_init__(self) -> None:
        if self.rule not in DATA_RULES:
            raise ValueError(f"unknown data rule {self.rule!r}: one of {', '.join(DATA_RULES)}")

    @property
    def announced_days(self) -> float:
        """Machine-days the catalog announced, all assets of the type."""
        return sum(a.announced for a in self.assets.values())

    @property
    def labelled_days(self) -> float:
        """Machine-days of StateVectors with a label, all assets of the type."""
        return sum(a.labelled for a in self.assets.values())

    @property
    def days(self) -> float:
        """The binding figure: pooled days, or the days of the asset with the least."""
        if self.rule == "every_asset":
            return min((a.days for a in self.assets.values()), default=0.0)
        return min(self.announced_days, self.labelled_days)

    @property
    def enough(self) -> bool:
        """At least ``min_days``, announced and labelled, as the rule counts them."""
        return bool(self.assets) and self.days >= self.min_days

    @property
    def message(self) -> str:
        """One line for the state store and the operator."""
        kind = PLURAL.get(self.machine_type, self.machine_type)
        verdict = "enough data" if self.enough else "insufficient data"
        if self.rule == "every_asset":
            ready = sum(a.days >= self.min_days for a in self.assets.values())
            least = min(self.assets, key=lambda m: self.assets[m].days, default="-")
            return (
                f"{verdict}: {self.days:.1f} of {self.min_days:g} days for every one of the "
                f"{kind} ({ready} of {len(self.assets)} have it; least: {least})"
            )
        figures = f"{self.days:.1f} of {self.min_days:g} days for {kind}"
        detail = f" (announced {self.announced_days:.1f}, labelled {self.labelled_days:.1f})"
        return f"{verdict}: {figures}{detail}"

    def record(self) -> dict[str, Any]:
        """What the state store keeps of the decision: the rule and every asset's days."""
        return {
            "rule": self.rule,
            "min_days": self.min_days,
            "days": round(self.days, 4),
            "enough": self.enough,
            "assets": {
                machine: {
                    "announced_days": round(a.announced, 4),
                    "labelled_days": round(a.labelled, 4),
                }
                for machine, a in sorted(self.assets.items())
            },
        }


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
