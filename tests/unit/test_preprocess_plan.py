"""Planning of a preprocess chunk: windows to recompute, files that need de-duplication."""

from __future__ import annotations

from datetime import UTC, datetime

from etl.state.domain import Batch, BatchSource, BatchStatus
from etl.steps.preprocess import merge_windows, needs_deduplication

NOW = datetime(2026, 1, 5, tzinfo=UTC)


def batch(id_: int, machine: str, first: float, last: float, duplicates: int = 0) -> Batch:
    return Batch(
        id=id_,
        pipeline="p",
        machine_uuid=machine,
        key=f"{machine}/{int(first * 1000)}.parquet",
        url="file:///x",
        source=BatchSource.LISTING,
        status=BatchStatus.PREPROCESSED,
        first_timestamp=first,
        last_timestamp=last,
        rows=1,
        size_bytes=1,
        etag=None,
        content_hash=None,
        reason=None,
        warnings=(),
        quality={"duplicates_dropped": duplicates},
        duplicate_of=None,
        kafka_partition=None,
        kafka_offset=None,
        announced_at=None,
        discovered_at=NOW,
        updated_at=NOW,
        delta_version=None,
        run_id=None,
        attempts=0,
    )


def test_windows_widen_by_context_and_merge_per_machine() -> None:
    ranges = [("b", 1000.0, 1599.9), ("a", 0.5, 599.9), ("a", 600.0, 1199.9), ("a", 5000.0, 5599.0)]
    assert merge_windows(ranges, 31) == [
        ("a", -31, 1232),
        ("a", 4969, 5631),
        ("b", 969, 1632),
    ]


def test_only_overlapping_files_are_deduplicated() -> None:
    sources = [
        batch(1, "a", 0, 599.9),
        batch(2, "a", 600, 1199.9),
        batch(3, "a", 1190, 1799.9),  # overlaps 2
        batch(4, "a", 1800, 2399.9, duplicates=3),  # repeats inside: validation dropped them
        batch(5, "b", 0, 599.9),
        batch(6, "b", 100, 200),  # inside 5
        batch(7, "b", 650, 700),  # after 5, not overlapping
    ]
    assert needs_deduplication(sources) == {2, 3, 5, 6}
