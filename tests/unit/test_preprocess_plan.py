"""Planning of a preprocess chunk: windows to recompute, which group reads which file."""

from __future__ import annotations

from etl.preprocess.spark import plan_groups
from etl.steps.preprocess import merge_windows


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
