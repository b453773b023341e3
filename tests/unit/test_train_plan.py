"""The training rules an operator reads: enough data, held-out machines, promotion."""

from __future__ import annotations

import itertools
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.config import TrainingConfig
from etl.state.domain import AnnouncedHistory, merge_intervals
from etl.train.plan import (
    DATA_RULES,
    DAY_S,
    AssetDays,
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


def pooled(machine_type: str, announced: float, labelled: float, min_days: float) -> Decision:
    """A decision over one asset holding all the type's days."""
    return Decision(machine_type, {"m1": AssetDays(announced, labelled)}, min_days)


def test_not_enough_data_says_how_much_of_what() -> None:
    decision = pooled("dumper", announced=12.0, labelled=9.5, min_days=14)
    assert not decision.enough
    assert decision.message.startswith("insufficient data: 9.5 of 14 days for dumpers")


def test_enough_data_when_announced_and_labelled_reach_min_days() -> None:
    decision = pooled("wheel_loader", announced=15.0, labelled=14.0, min_days=14)
    assert decision.enough
    assert decision.message.startswith("enough data: 14.0 of 14 days for wheel loaders")
    # announced alone is not enough: the labels bind
    assert not pooled("excavator", 30.0, 13.99, 14).enough
    assert not pooled("excavator", 13.99, 30.0, 14).enough


FLEET = {
    "a": AssetDays(announced=20.0, labelled=20.0),
    "b": AssetDays(announced=15.0, labelled=14.5),
    "c": AssetDays(announced=3.0, labelled=3.0),  # joined the fleet last week
}


def test_pooled_adds_the_machine_days_of_every_asset() -> None:
    decision = Decision("dumper", FLEET, min_days=14, rule="pooled")
    assert (decision.announced_days, decision.labelled_days) == (38.0, 37.5)
    assert decision.enough and decision.days == 37.5


def test_every_asset_needs_min_days_on_each_and_names_the_one_short() -> None:
    decision = Decision("dumper", FLEET, min_days=14, rule="every_asset")
    assert not decision.enough and decision.days == 3.0
    assert decision.message == (
        "insufficient data: 3.0 of 14 days for every one of the dumpers (2 of 3 have it; least: c)"
    )
    assert Decision("dumper", FLEET, min_days=3, rule="every_asset").enough
    # an asset with announced but unlabelled data has none that counts
    short = {**FLEET, "c": AssetDays(announced=30.0, labelled=0.0)}
    assert not Decision("dumper", short, min_days=1, rule="every_asset").enough


def test_no_asset_is_never_enough_and_unknown_rules_fail() -> None:
    for rule in DATA_RULES:
        assert not Decision("dumper", {}, min_days=0.1, rule=rule).enough
    with pytest.raises(ValueError, match="unknown data rule"):
        Decision("dumper", FLEET, min_days=1, rule="most_assets")


def test_the_record_keeps_the_rule_and_every_assets_days() -> None:
    record = Decision("dumper", FLEET, min_days=14, rule="every_asset").record()
    assert record["rule"] == "every_asset" and record["enough"] is False
    assert record["assets"]["b"] == {"announced_days": 15.0, "labelled_days": 14.5}
    assert list(record["assets"]) == ["a", "b", "c"]


def test_the_config_offers_exactly_the_rules_decisions_know() -> None:
    annotation = TrainingConfig.model_fields["data_rule"].annotation
    assert set(typing.get_args(annotation)) == set(DATA_RULES)
    assert TrainingConfig().data_rule == "pooled"


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


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5000), st.integers(0, 900)).map(lambda t: (t[0], t[0] + t[1])),
        max_size=30,
    ),
    st.integers(0, 30),
)
def test_a_history_merged_in_steps_counts_what_covered_seconds_counts(
    intervals: list[tuple[int, int]], split: int
) -> None:
    """Reading the history in two parts loses or doubles nothing (the incremental judging)."""
    ranges = [(float(a), float(b)) for a, b in intervals]
    first = AnnouncedHistory("kafka:t").extended([("m", a, b) for a, b in ranges[:split]], {0: 1})
    both = first.extended([("m", a, b) for a, b in ranges[split:]], {0: 2})
    # an oracle apart from merge_intervals: with whole-second ends, "less than a second
    # apart" is touching, so the coverage is the unit cells [k, k + 1] some range holds
    cells = {k for a, b in intervals for k in range(a, b)}
    assert both.seconds("m") == covered_seconds(ranges) == len(cells)
    assert both.intervals.get("m", ()) == merge_intervals(ranges)
    assert both.positions == {0: 2}
    merged = both.intervals.get("m", ())
    assert all(a[1] < b[0] for a, b in itertools.pairwise(merged))
