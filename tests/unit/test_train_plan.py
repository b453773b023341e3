"""The training rules an operator reads: enough data, held-out machines, promotion."""

from __future__ import annotations

from etl.train.plan import (
    DAY_S,
    Decision,
    covered_seconds,
    holdout_machines,
    should_promote,
    time_split,
)


def test_covered_seconds_counts_overlaps_and_resent_files_once() -> None:
    intervals = [(0.0, 600.0), (0.0, 600.0), (500.0, 1100.0), (2000.0, 2600.0), (2100.0, 2200.0)]
    assert covered_seconds(intervals) == 1100.0 + 600.0
    assert covered_seconds([]) == 0.0


def test_not_enough_data_says_how_much_of_what() -> None:
    decision = Decision("dumper", announced_days=12.0, labelled_days=9.5, min_days=14)
    assert not decision.enough
    assert decision.message.startswith("insufficient data: 9.5 of 14 days for dumpers")


def test_enough_data_when_announced_and_labelled_reach_min_days() -> None:
    decision = Decision("wheel_loader", announced_days=15.0, labelled_days=14.0, min_days=14)
    assert decision.enough
    assert decision.message.startswith("enough data: 14.0 of 14 days for wheel loaders")
    # announced alone is not enough: the labels bind
    assert not Decision("excavator", 30.0, 13.99, 14).enough
    assert not Decision("excavator", 13.99, 30.0, 14).enough


def test_holdout_is_whole_machines_stable_and_never_all() -> None:
    machines = [f"m{i}" for i in range(10)]
    held = holdout_machines(machines, 0.2, seed=42)
    assert len(held) == 2 and set(held) <= set(machines)
    assert holdout_machines(list(reversed(machines)), 0.2, seed=42) == held
    assert len({tuple(holdout_machines(machines, 0.2, seed=s)) for s in range(20)}) > 1
    assert holdout_machines(["a", "b"], 0.9, seed=1) in (["a"], ["b"])
    assert holdout_machines(["a"], 0.5, seed=1) == []


def test_time_split_holds_out_the_last_fraction() -> None:
    assert time_split(0.0, 10 * DAY_S, 0.2) == 8 * DAY_S


def test_promotion_only_when_strictly_better_on_the_same_data() -> None:
    assert should_promote(0.91, None)
    assert should_promote(0.91, 0.90)
    assert not should_promote(0.90, 0.90)
    assert not should_promote(0.89, 0.90)
    assert not should_promote(0.905, 0.90, margin=0.01)
    assert should_promote(0.5, float("nan"))
