"""Planning of a preprocess chunk: windows to recompute, which group reads which file."""

from __future__ import annotations

from datetime import UTC, datetime

from etl.preprocess.spark import plan_groups
from etl.preprocess.validate import Verdict
from etl.state.domain import Batch, BatchSource, BatchStatus
from etl.steps.preprocess import (
    ANNOUNCED_SLACK_S,
    Checked,
    announced_range,
    merge_windows,
    outside_announced,
)


def test_windows_widen_by_context_and_merge_per_machine() -> None:
    ranges = [("b", 1000.0, 1599.9), ("a", 0.5, 599.9), ("a", 600.0, 1199.9), ("a", 5000.0, 5599.0)]
    assert merge_windows(ranges, 31) == [
        ("a", -31, 1232),
        ("a", 4969, 5631),
        ("b", 969, 1632),
    ]


def test_groups_read_the_files_within_reach_of_their_part_of_the_windows() -> None:
    sources = [
        ("a", 1, "a/1", 0.0, 599.9),
        ("a", 2, "a/2", 600.0, 1199.9),
        ("a", 3, "a/3", 1200.0, 1799.9),
        ("a", 4, "a/4", 5000.0, 5599.0),
        ("b", 5, "b/5", 0.0, 599.9),  # no window of b
    ]
    windows = [("a", 500, 1300), ("a", 4990, 5610)]
    machines, parts, work = plan_groups(sources, windows, reach_s=32, slice_s=1000)
    assert machines == ["a"]
    # a window is cut at the slices' bounds; the parts of one slice stay together
    assert parts == {
        (0, 0): [(500, 1000)],
        (0, 1): [(1000, 1300)],
        (0, 4): [(4990, 5000)],
        (0, 5): [(5000, 5610)],
    }
    reads = {}
    for machine, piece, batch_id, key, first in work:
        reads.setdefault(piece, []).append(batch_id)
        assert (machine, key, first) == (0, f"a/{batch_id}", sources[batch_id - 1][3])
    # slice 0 computes 500..1000: files 1 and 2, not 3 (1200 is beyond 1000 + 32)
    assert reads == {0: [1, 2], 1: [2, 3], 4: [4], 5: [4]}


def test_no_windows_no_work() -> None:
    assert plan_groups([("a", 1, "a/1", 0.0, 9.0)], [], reach_s=32) == ([], {}, [])


def _announced(batch_id: int, first: float | None, last: float | None) -> Batch:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Batch(
        batch_id, "p", "a", f"a/{batch_id}", "url", BatchSource.LISTING, BatchStatus.DISCOVERED,
        first, last, None, None, None, None, None, (), None, None, None, None, None, now, now,
        None, None, 0,
    )  # fmt: skip


def _validated(first: float, last: float) -> Verdict:
    return Verdict(accepted=True, quality={"first_timestamp": first, "last_timestamp": last})


def test_an_announced_range_is_widened_by_the_slack() -> None:
    assert announced_range(_announced(1, 600.0, 1199.9)) == (
        600.0 - ANNOUNCED_SLACK_S,
        1199.9 + ANNOUNCED_SLACK_S,
    )
    assert announced_range(_announced(2, 600.0, None)) == (
        600.0 - ANNOUNCED_SLACK_S,
        600.0 + ANNOUNCED_SLACK_S,
    )
    assert announced_range(_announced(3, None, None)) is None


def test_files_whose_samples_leave_their_announced_range_are_found() -> None:
    slack = ANNOUNCED_SLACK_S
    checked = [
        Checked(_announced(1, 600.0, 1200.0), _validated(600.0, 1200.0 + slack)),  # at the edge
        Checked(_announced(2, 600.0, 1200.0), _validated(600.0 - slack, 1200.0)),
        Checked(_announced(3, 600.0, 1200.0), _validated(600.0, 1200.0 + slack + 0.1)),
        Checked(_announced(4, 600.0, 1200.0), _validated(600.0 - slack - 0.1, 1200.0)),
        Checked(_announced(5, 4200.0, 4800.0), _validated(600.0, 1200.0)),  # an hour off
        Checked(_announced(6, None, None), _validated(600.0, 1200.0)),  # never announced
    ]
    assert [b.id for b in outside_announced(checked)] == [3, 4, 5, 6]
