"""One contract for every state store adapter: the in-memory fake, SQLite, PostgreSQL.

Subclasses provide a ``uow_factory`` fixture (a callable returning a fresh
unit of work on a migrated store). The store may be shared with other tests
(PostgreSQL is), so every test works in its own pipeline name and never
looks beyond it.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from etl.state.domain import (
    AnnouncedHistory,
    Batch,
    BatchSource,
    BatchStatus,
    IllegalTransitionError,
    ModelStatus,
    NewBatch,
    NewModel,
    NotFoundError,
    RunStatus,
)
from etl.state.transitions import FileFacts, duplicate, preprocessed, rejected
from etl.state.uow import AbstractUnitOfWork

UowFactory = Callable[[], AbstractUnitOfWork]

STATE_TABLES = {
    "alembic_version",
    "batches",
    "batch_events",
    "exports",
    "history_reads",
    "inference_runs",
    "machine_history",
    "models",
    "runs",
}
"""The tables a state store migrated to head has (written out, not read from the models)."""

MACHINE_A = "5f0c0000-0000-4000-8000-0000000000a1"
MACHINE_B = "5f0c0000-0000-4000-8000-0000000000b2"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
BATCH_S = 599.9


def new_batch(pipeline: str, machine: str, first_s: float, **facts: object) -> NewBatch:
    """A ten-minute raw file of ``machine`` starting at ``first_s``, found by listing."""
    key = f"{machine}/{int(first_s * 1000)}.parquet"
    defaults: dict[str, object] = {
        "source": BatchSource.LISTING,
        "first_timestamp": first_s,
        "last_timestamp": first_s + BATCH_S,
        "rows": 6600,
        "size_bytes": 123_456,
    }
    return NewBatch(
        pipeline=pipeline,
        machine_uuid=machine,
        key=key,
        url=f"s3a://raw-telemetry/{key}",
        **(defaults | facts),  # type: ignore[arg-type]
    )


def register(uow_factory: UowFactory, *records: NewBatch) -> list[Batch]:
    with uow_factory() as uow:
        added = uow.batches.add_discovered(records)
        uow.commit()
    return added


def snapshot(uow_factory: UowFactory, pipeline: str) -> list[Batch]:
    with uow_factory() as uow:
        return uow.batches.for_pipeline(pipeline)


def assert_recent(moment: datetime) -> None:
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=5)


class StateStoreContract:
    """Subclasses provide ``uow_factory``: units of work on one migrated store."""

    @pytest.fixture
    def pipeline(self) -> str:
        return f"t{uuid.uuid4().hex[:16]}"

    # ------------------------------------------------------------ catalog history

    def test_a_history_never_read_is_empty(self, uow_factory: UowFactory, pipeline: str) -> None:
        with uow_factory() as uow:
            history = uow.history.get(pipeline, "kafka:raw")
        assert history == AnnouncedHistory("kafka:raw")

    def test_a_history_read_is_kept_per_pipeline_and_source(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        read = AnnouncedHistory("kafka:raw").extended(
            [(MACHINE_A, T0, T0 + 600), (MACHINE_A, T0 + 600, T0 + 1200), (MACHINE_B, T0, T0 + 60)],
            {0: 3, 1: 7},
        )
        with uow_factory() as uow:
            uow.history.put(pipeline, read)
            uow.commit()
        with uow_factory() as uow:
            assert uow.history.get(pipeline, "kafka:raw") == read
            assert uow.history.get(pipeline, "kafka:other").positions == {}
            assert uow.history.get(f"{pipeline}x", "kafka:raw").intervals == {}
        assert read.intervals[MACHINE_A] == ((T0, T0 + 1200),)
        assert read.seconds(MACHINE_A) == 1200.0

    def test_a_later_read_replaces_positions_and_changed_machines(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        first = AnnouncedHistory("kafka:raw").extended([(MACHINE_A, T0, T0 + 600)], {0: 1})
        with uow_factory() as uow:
            uow.history.put(pipeline, first)
            uow.commit()
        later = first.extended([(MACHINE_A, T0 + 3600, T0 + 4200), (MACHINE_B, T0, T0 + 9)], {0: 3})
        with uow_factory() as uow:
            uow.history.put(pipeline, later)
            # not committed: invisible, and rolled back on leaving the block
        with uow_factory() as uow:
            assert uow.history.get(pipeline, "kafka:raw") == first
            uow.history.put(pipeline, later)
            uow.commit()
        with uow_factory() as uow:
            got = uow.history.get(pipeline, "kafka:raw")
        assert got == later and got.positions == {0: 3}
        assert got.intervals[MACHINE_A] == ((T0, T0 + 600), (T0 + 3600, T0 + 4200))

    # ------------------------------------------------------------------ discovery

    def test_add_discovered_returns_the_new_rows(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        announced = datetime(2026, 1, 1, 0, 10, 41, tzinfo=UTC)
        kafka = new_batch(
            pipeline,
            MACHINE_A,
            T0,
            source=BatchSource.KAFKA,
            kafka_partition=3,
            kafka_offset=2**40,
            announced_at=announced,
            etag="abc",
        )
        listed = new_batch(pipeline, MACHINE_B, T0 + 5, content_hash="f" * 64)

        added = register(uow_factory, listed, kafka)

        assert [b.key for b in added] == sorted([kafka.key, listed.key])
        assert added[0].id < added[1].id
        first = next(b for b in added if b.key == kafka.key)
        assert (first.pipeline, first.machine_uuid, first.url) == (
            pipeline,
            MACHINE_A,
            f"s3a://raw-telemetry/{MACHINE_A}/1767225600000.parquet",
        )
        assert first.source is BatchSource.KAFKA
        assert (first.kafka_partition, first.kafka_offset) == (3, 2**40)
        assert first.announced_at == announced
        assert (first.first_timestamp, first.last_timestamp) == (T0, T0 + BATCH_S)
        assert (first.rows, first.size_bytes, first.etag) == (6600, 123_456, "abc")
        assert first.status is BatchStatus.DISCOVERED
        assert (first.reason, first.warnings, first.quality) == (None, (), None)
        assert (first.duplicate_of, first.delta_version, first.attempts) == (None, None, 0)
        assert_recent(first.discovered_at)
        assert first.updated_at == first.discovered_at
        second = next(b for b in added if b.key == listed.key)
        assert second.source is BatchSource.LISTING
        assert second.content_hash == "f" * 64
        assert second.kafka_offset is None
        assert snapshot(uow_factory, pipeline) == added

    def test_registering_twice_adds_nothing_the_second_time(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        records = [new_batch(pipeline, MACHINE_A, T0 + 600 * i) for i in range(3)]
        first = register(uow_factory, *records)

        again = register(uow_factory, *records)
        more = register(uow_factory, *records, new_batch(pipeline, MACHINE_A, T0 + 1800))

        assert again == []
        assert register(uow_factory) == []
        assert [b.key for b in more] == [f"{MACHINE_A}/{int((T0 + 1800) * 1000)}.parquet"]
        assert snapshot(uow_factory, pipeline) == [*first, *more]

    def test_the_same_key_twice_in_one_call_is_one_batch(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        record = new_batch(pipeline, MACHINE_A, T0)
        resent = replace(record, source=BatchSource.KAFKA, kafka_offset=9)

        added = register(uow_factory, record, resent)

        assert [(b.key, b.source) for b in added] == [(record.key, BatchSource.LISTING)]

    def test_keys_are_unique_per_pipeline_only(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        register(uow_factory, new_batch(pipeline, MACHINE_A, T0))
        other = register(uow_factory, new_batch(f"{pipeline}x", MACHINE_A, T0))
        assert [(b.pipeline, b.key) for b in other] == [
            (f"{pipeline}x", f"{MACHINE_A}/1767225600000.parquet")
        ]
        assert len(snapshot(uow_factory, pipeline)) == 1

    def test_a_file_registered_by_two_units_of_work_at_once_is_new_to_one(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        records = [new_batch(pipeline, MACHINE_A, T0), new_batch(pipeline, MACHINE_A, T0 + 600)]
        inserted = threading.Event()

        def first() -> list[Batch]:
            with uow_factory() as uow:
                added = uow.batches.add_discovered(records)
                inserted.set()
                time.sleep(0.3)  # the second one tries while this is uncommitted
                uow.commit()
            return added

        def second() -> list[Batch]:
            assert inserted.wait(10)
            with uow_factory() as uow:
                added = uow.batches.add_discovered(records)
                uow.commit()
            return added

        with ThreadPoolExecutor(2) as pool:
            first_added, second_added = pool.submit(first), pool.submit(second)
            first_added, second_added = first_added.result(30), second_added.result(30)

        assert [b.key for b in first_added] == [r.key for r in records]
        assert second_added == []
        assert snapshot(uow_factory, pipeline) == first_added

    def test_concurrent_overlapping_discoveries_register_each_file_once(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        records = [new_batch(pipeline, MACHINE_A, T0 + 600 * i) for i in range(12)]
        workers = 4
        start = threading.Barrier(workers)

        def discover(seed: int) -> list[Batch]:
            mine = records[seed * 2 : seed * 2 + 6]  # overlaps its neighbours
            random.Random(seed).shuffle(mine)
            start.wait(10)
            with uow_factory() as uow:
                added = uow.batches.add_discovered(mine)
                uow.commit()
            return added

        with ThreadPoolExecutor(workers) as pool:
            results = [f.result(60) for f in [pool.submit(discover, i) for i in range(workers)]]

        new_keys = sorted(b.key for added in results for b in added)
        expected = sorted(r.key for r in records[: 2 * (workers - 1) + 6])
        assert new_keys == expected
        assert sorted(b.key for b in snapshot(uow_factory, pipeline)) == expected

    # ------------------------------------------------------------------ queries

    def test_by_status_is_a_first_discovered_first_queue(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        late = register(uow_factory, new_batch(pipeline, MACHINE_A, T0 + 6000))
        early = register(uow_factory, new_batch(pipeline, MACHINE_A, T0))
        other = register(uow_factory, new_batch(pipeline, MACHINE_B, T0))
        with uow_factory() as uow:
            uow.batches.mark_rejected(other[0].id, "not a parquet file")
            uow.commit()

        with uow_factory() as uow:
            pending = uow.batches.by_status(pipeline, BatchStatus.DISCOVERED)
            first = uow.batches.by_status(pipeline, BatchStatus.DISCOVERED, limit=1)
            rejected = uow.batches.by_status(pipeline, BatchStatus.REJECTED)
            none = uow.batches.by_status(pipeline, BatchStatus.EXPORTED)

        assert [b.id for b in pending] == [late[0].id, early[0].id]
        assert first == pending[:1]
        assert [(b.key, b.reason) for b in rejected] == [(other[0].key, "not a parquet file")]
        assert none == []

    def test_by_machine_is_in_data_order(self, uow_factory: UowFactory, pipeline: str) -> None:
        register(
            uow_factory,
            new_batch(pipeline, MACHINE_A, T0 + 1200),
            new_batch(pipeline, MACHINE_B, T0),
            new_batch(pipeline, MACHINE_A, T0),
        )
        register(uow_factory, new_batch(pipeline, MACHINE_A, T0 + 600))
        with uow_factory() as uow:
            rows = uow.batches.by_machine(pipeline, MACHINE_A)
            uow.batches.mark_preprocessed(rows[1].id, delta_version=4)
            uow.commit()
        with uow_factory() as uow:
            preprocessed = uow.batches.by_machine(pipeline, MACHINE_A, BatchStatus.PREPROCESSED)
            unknown = uow.batches.by_machine(pipeline, "nobody")

        assert [b.first_timestamp for b in rows] == [T0, T0 + 600, T0 + 1200]
        assert {b.machine_uuid for b in rows} == {MACHINE_A}
        assert [(b.first_timestamp, b.delta_version) for b in preprocessed] == [(T0 + 600, 4)]
        assert unknown == []

    def test_by_key(self, uow_factory: UowFactory, pipeline: str) -> None:
        (added,) = register(uow_factory, new_batch(pipeline, MACHINE_A, T0))
        with uow_factory() as uow:
            assert uow.batches.by_key(pipeline, added.key) == added
            assert uow.batches.by_key(pipeline, "absent.parquet") is None
            assert uow.batches.by_key(f"{pipeline}x", added.key) is None

    def test_record_file_and_find_the_same_bytes_under_another_key(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        original, resent = register(
            uow_factory,
            new_batch(pipeline, MACHINE_A, T0, last_timestamp=None, rows=None),
            new_batch(pipeline, MACHINE_A, T0 + 0.5),
        )
        digest = "ab" * 32
        with uow_factory() as uow:
            recorded = uow.batches.record_file(
                original.id,
                content_hash=digest,
                size_bytes=999,
                rows=6601,
                last_timestamp=T0 + 600.1,
            )
            uow.batches.record_file(resent.id, content_hash=digest)
            uow.commit()

        with uow_factory() as uow:
            same = uow.batches.by_content_hash(pipeline, digest)
            other = uow.batches.by_content_hash(pipeline, "cd" * 32)

        assert recorded == replace(
            original,
            content_hash=digest,
            size_bytes=999,
            rows=6601,
            last_timestamp=T0 + 600.1,
            updated_at=recorded.updated_at,
        )
        assert recorded.updated_at >= original.updated_at
        assert [(b.id, b.content_hash) for b in same] == [
            (original.id, digest),
            (resent.id, digest),
        ]
        assert same[1].rows == 6600  # None left it as announced
        assert other == []

    def test_count_by_status(self, uow_factory: UowFactory, pipeline: str) -> None:
        added = register(
            uow_factory, *[new_batch(pipeline, MACHINE_A, T0 + 600 * i) for i in range(3)]
        )
        with uow_factory() as uow:
            uow.batches.mark_rejected(added[0].id, "missing column acc_x")
            uow.commit()
            assert uow.batches.count_by_status(pipeline) == {
                BatchStatus.DISCOVERED: 2,
                BatchStatus.REJECTED: 1,
            }
            assert uow.batches.count_by_status(f"{pipeline}x") == {}

    def test_health_reports_backlog_rejections_and_freshness(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        empty = None
        with uow_factory() as uow:
            empty = uow.batches.health(pipeline, datetime(2000, 1, 1, tzinfo=UTC))
        a = register(uow_factory, *[new_batch(pipeline, MACHINE_A, T0 + 600 * i) for i in range(4)])
        b = register(uow_factory, new_batch(pipeline, MACHINE_B, T0 + 300))
        with uow_factory() as uow:
            uow.batches.mark_rejected(a[3].id, "missing column acc_x")
            for batch in (a[0], a[1], b[0]):
                uow.batches.mark_preprocessed(batch.id, delta_version=1)
                uow.batches.mark_status(batch.id, BatchStatus.INFERRED)
            uow.batches.mark_status(a[0].id, BatchStatus.EXPORTED)
            uow.batches.mark_status(a[1].id, BatchStatus.EXPORTED)
            uow.commit()
        with uow_factory() as uow:
            health = uow.batches.health(pipeline, datetime(2000, 1, 1, tzinfo=UTC))
            later = uow.batches.health(pipeline, datetime.now(UTC) + timedelta(hours=1))

        assert empty.by_status == {} and empty.oldest_pending_at is None
        assert empty.newest_exported == {}
        assert health.by_status == {
            BatchStatus.EXPORTED: 2,
            BatchStatus.INFERRED: 1,
            BatchStatus.DISCOVERED: 1,
            BatchStatus.REJECTED: 1,
        }
        # the oldest batch still pending is a[2] (discovered with the first group)
        assert health.oldest_pending_at == a[2].discovered_at
        assert (health.discovered_since, health.rejected_since) == (5, 1)
        assert (later.discovered_since, later.rejected_since) == (0, 0)
        # freshness: only exported batches count, per machine, their last second
        assert health.newest_exported == {MACHINE_A: T0 + 600 + BATCH_S}

    # ------------------------------------------------------------------ transitions

    def test_mark_preprocessed_records_the_outcome(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        (batch,) = register(uow_factory, new_batch(pipeline, MACHINE_A, T0))
        quality = {
            "gps_rows": 600,
            "imu_rows": 6000,
            "gap_s": [1.5, 12.0],
            "mean_hdop": float("nan"),
        }
        with uow_factory() as uow:
            run = uow.runs.start(pipeline, "preprocess")
            done = uow.batches.mark_preprocessed(
                batch.id,
                delta_version=17,
                warnings=["12 s GPS gap", "3 duplicated rows"],
                quality=quality,
                run_id=run.id,
            )
            uow.commit()

        with uow_factory() as uow:
            stored = uow.batches.get(batch.id)
        assert stored == done
        assert stored.status is BatchStatus.PREPROCESSED
        assert stored.delta_version == 17
        assert stored.warnings == ("12 s GPS gap", "3 duplicated rows")
        assert stored.quality == {
            "gps_rows": 600,
            "imu_rows": 6000,
            "gap_s": [1.5, 12.0],
            "mean_hdop": None,  # NaN has no JSON form
        }
        assert stored.run_id == run.id
        assert stored.reason is None
        assert stored.updated_at >= batch.updated_at

    def test_mark_rejected_keeps_one_line_of_reason(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        (batch,) = register(uow_factory, new_batch(pipeline, MACHINE_A, T0))
        with uow_factory() as uow:
            rejected = uow.batches.mark_rejected(
                batch.id,
                "  timestamps before\n 2000-01-01 ",
                warnings=["clock reset"],
                quality={"rows": 10},
            )
            uow.commit()
        with uow_factory() as uow:
            assert uow.batches.get(batch.id) == rejected
        assert rejected.status is BatchStatus.REJECTED
        assert rejected.reason == "timestamps before 2000-01-01"
        assert (rejected.warnings, rejected.quality) == (("clock reset",), {"rows": 10})

    def test_an_empty_reason_is_refused(self, uow_factory: UowFactory, pipeline: str) -> None:
        (batch,) = register(uow_factory, new_batch(pipeline, MACHINE_A, T0))
        with uow_factory() as uow, pytest.raises(ValueError, match="reason"):
            uow.batches.mark_rejected(batch.id, " \n ")

    def test_mark_duplicate_names_the_original(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        original, copy = register(
            uow_factory, new_batch(pipeline, MACHINE_A, T0), new_batch(pipeline, MACHINE_A, T0 + 1)
        )
        with uow_factory() as uow:
            duplicate = uow.batches.mark_duplicate(copy.id, original.id)
            uow.commit()
        with uow_factory() as uow:
            stored = uow.batches.get(copy.id)
            with pytest.raises(ValueError, match="itself"):
                uow.batches.mark_duplicate(original.id, original.id)
        assert stored == duplicate
        assert (stored.status, stored.reason, stored.duplicate_of) == (
            BatchStatus.REJECTED,
            f"duplicate of {original.key}",
            original.id,
        )

    def test_move_many_records_verdicts_and_file_facts_at_once(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        good, bad, copy, unknown_bytes = register(
            uow_factory,
            *[new_batch(pipeline, MACHINE_A, T0 + 600 * i) for i in range(3)],
            new_batch(pipeline, MACHINE_B, T0, rows=None),
        )
        facts = FileFacts("ab" * 32, size_bytes=1234, rows=6601, last_timestamp=T0 + 600.5)
        moves = [
            preprocessed(
                good.id, delta_version=7, warnings=["1 GPS jumps"], quality={"r": 1}, facts=facts
            ),
            rejected(bad.id, "missing column acc_x\nand more", facts=FileFacts("cd" * 32)),
            duplicate(copy, good, facts=FileFacts("ab" * 32)),
            rejected(unknown_bytes.id, "file not found: x"),
        ]
        with uow_factory() as uow:
            moved = uow.batches.move_many(moves, run_id=None)
            assert uow.batches.move_many([]) == []
            uow.commit()
        with uow_factory() as uow:
            stored = [uow.batches.get(b.id) for b in (good, bad, copy, unknown_bytes)]
            by_hash = uow.batches.by_content_hashes(pipeline, ["ab" * 32, "cd" * 32, "ef" * 32])
            history = uow.batches.history(pipeline, bad.key)

        assert stored == moved
        assert stored[0] == replace(
            good,
            status=BatchStatus.PREPROCESSED,
            delta_version=7,
            warnings=("1 GPS jumps",),
            quality={"r": 1},
            content_hash="ab" * 32,
            size_bytes=1234,
            rows=6601,
            last_timestamp=T0 + 600.5,  # None left first_timestamp as announced
            updated_at=stored[0].updated_at,
        )
        assert (stored[1].status, stored[1].reason, stored[1].rows) == (
            BatchStatus.REJECTED,
            "missing column acc_x and more",  # one line
            bad.rows,
        )
        assert (stored[2].reason, stored[2].duplicate_of) == (f"duplicate of {good.key}", good.id)
        assert (stored[3].content_hash, stored[3].reason) == (None, "file not found: x")
        assert {h: [b.id for b in found] for h, found in by_hash.items()} == {
            "ab" * 32: [good.id, copy.id],
            "cd" * 32: [bad.id],
        }
        assert history is not None and history.events[-1].reason == "missing column acc_x and more"

    def test_move_many_refuses_an_illegal_move_or_an_unknown_batch(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        first, second = register(
            uow_factory,
            new_batch(pipeline, MACHINE_A, T0),
            new_batch(pipeline, MACHINE_A, T0 + 600),
        )
        with uow_factory() as uow:
            uow.batches.mark_rejected(second.id, "not a parquet file")
            uow.commit()
        before = snapshot(uow_factory, pipeline)
        with uow_factory() as uow:
            with pytest.raises(IllegalTransitionError):
                uow.batches.move_many(
                    [
                        preprocessed(first.id, delta_version=1),
                        preprocessed(second.id, delta_version=1),
                    ]
                )
            with pytest.raises(NotFoundError):
                uow.batches.move_many([rejected(987_654_321, "x")])
        with pytest.raises(ValueError, match="itself"):
            duplicate(first, first)
        with pytest.raises(ValueError, match="another pipeline"):
            duplicate(first, replace(second, pipeline=f"{pipeline}x"))
        assert snapshot(uow_factory, pipeline) == before

    def test_an_illegal_transition_raises_and_changes_nothing(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        rejected, done = register(
            uow_factory,
            new_batch(pipeline, MACHINE_A, T0),
            new_batch(pipeline, MACHINE_A, T0 + 600),
        )
        with uow_factory() as uow:
            rejected = uow.batches.mark_rejected(rejected.id, "not a parquet file")
            done = uow.batches.mark_preprocessed(done.id, delta_version=1)
            uow.commit()

        with uow_factory() as uow:
            with pytest.raises(IllegalTransitionError) as error:
                uow.batches.mark_preprocessed(rejected.id, delta_version=2)
            with pytest.raises(IllegalTransitionError):
                uow.batches.mark_preprocessed(done.id, delta_version=2)
            with pytest.raises(IllegalTransitionError):
                uow.batches.mark_rejected(done.id, "too late")
            with pytest.raises(IllegalTransitionError):
                uow.batches.mark_status(rejected.id, BatchStatus.INFERRED)
            with pytest.raises(ValueError, match="inferred or exported"):
                uow.batches.mark_status(done.id, BatchStatus.PREPROCESSED)
            uow.commit()

        assert (error.value.current, error.value.target) == ("rejected", "preprocessed")
        assert rejected.key in str(error.value)
        assert snapshot(uow_factory, pipeline) == [rejected, done]

    def test_discovered_cannot_skip_to_exported(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        (batch,) = register(uow_factory, new_batch(pipeline, MACHINE_A, T0))
        with uow_factory() as uow, pytest.raises(IllegalTransitionError):
            uow.batches.mark_status(batch.id, BatchStatus.EXPORTED)

    def test_inferred_then_exported_then_rescored(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        (batch,) = register(uow_factory, new_batch(pipeline, MACHINE_A, T0))
        with uow_factory() as uow:
            uow.batches.mark_preprocessed(batch.id, delta_version=3)
            inferred = uow.batches.mark_status(batch.id, BatchStatus.INFERRED)
            exported = uow.batches.mark_status(batch.id, BatchStatus.EXPORTED)
            rescored = uow.batches.mark_status(batch.id, BatchStatus.INFERRED)
            uow.commit()
        assert [inferred.status, exported.status, rescored.status] == [
            BatchStatus.INFERRED,
            BatchStatus.EXPORTED,
            BatchStatus.INFERRED,
        ]
        assert rescored.delta_version == 3
        assert snapshot(uow_factory, pipeline) == [rescored]

    def test_unknown_ids_are_not_found(self, uow_factory: UowFactory, pipeline: str) -> None:
        with uow_factory() as uow:
            with pytest.raises(NotFoundError) as error:
                uow.batches.get(987_654_321)
            with pytest.raises(NotFoundError):
                uow.batches.mark_rejected(987_654_321, "x")
            with pytest.raises(NotFoundError):
                uow.models.get(987_654_321)
            with pytest.raises(NotFoundError):
                uow.runs.finish(987_654_321, RunStatus.FAILED)
            with pytest.raises(NotFoundError):
                uow.inference_runs.start(pipeline, 987_654_321)
        assert (error.value.table, error.value.row_id) == ("batches", 987_654_321)
        assert isinstance(error.value, LookupError)

    # ------------------------------------------------------------------ reset

    def _six_batches(self, uow_factory: UowFactory, pipeline: str) -> list[Batch]:
        """A and B each with three consecutive batches, all processed one way or another."""
        added = register(
            uow_factory,
            *[
                new_batch(pipeline, m, T0 + 600 * i)
                for m in (MACHINE_A, MACHINE_B)
                for i in range(3)
            ],
        )
        with uow_factory() as uow:
            for batch in added:
                if batch.first_timestamp == T0 + 1200:
                    uow.batches.mark_rejected(batch.id, "missing column acc_x", quality={"x": 1})
                else:
                    uow.batches.mark_preprocessed(
                        batch.id, delta_version=5, warnings=["gap"], quality={"rows": 1}
                    )
            uow.commit()
        return snapshot(uow_factory, pipeline)

    def test_reset_by_machine(self, uow_factory: UowFactory, pipeline: str) -> None:
        before = self._six_batches(uow_factory, pipeline)
        with uow_factory() as uow:
            run = uow.runs.start(pipeline, "reprocess")
            count = uow.batches.reset(pipeline, machine_uuid=MACHINE_B, run_id=run.id)
            uow.commit()

        after = snapshot(uow_factory, pipeline)
        assert count == 3
        for old, new in zip(before, after, strict=True):
            if old.machine_uuid == MACHINE_A:
                assert new == old
                continue
            assert new == replace(
                old,
                status=BatchStatus.DISCOVERED,
                reason=None,
                warnings=(),
                quality=None,
                delta_version=None,
                attempts=1,
                run_id=run.id,
                updated_at=new.updated_at,
            )

    def test_reset_by_key_clears_a_duplicate(self, uow_factory: UowFactory, pipeline: str) -> None:
        original, copy = register(
            uow_factory, new_batch(pipeline, MACHINE_A, T0), new_batch(pipeline, MACHINE_A, T0 + 1)
        )
        with uow_factory() as uow:
            uow.batches.mark_duplicate(copy.id, original.id)
            uow.commit()
        with uow_factory() as uow:
            count = uow.batches.reset(pipeline, key=copy.key)
            uow.commit()
            again = uow.batches.get(copy.id)
        assert count == 1
        assert (again.status, again.reason, again.duplicate_of, again.attempts) == (
            BatchStatus.DISCOVERED,
            None,
            None,
            1,
        )

    def test_reset_by_time_range_takes_overlapping_batches(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        self._six_batches(uow_factory, pipeline)
        with uow_factory() as uow:
            middle = uow.batches.reset(
                pipeline, machine_uuid=MACHINE_A, ts_from=T0 + 600, ts_to=T0 + 1200
            )
            uow.commit()
        assert middle == 1
        assert [
            (b.machine_uuid, b.first_timestamp)
            for b in snapshot(uow_factory, pipeline)
            if b.status is BatchStatus.DISCOVERED
        ] == [(MACHINE_A, T0 + 600)]

        with uow_factory() as uow:
            tail = uow.batches.reset(pipeline, ts_from=T0 + 1000)
            uow.commit()
        assert tail == 3  # A's last, B's middle and last; A's middle is pending already
        statuses = {
            (b.machine_uuid, b.first_timestamp): b.status for b in snapshot(uow_factory, pipeline)
        }
        assert statuses == {
            (MACHINE_A, T0): BatchStatus.PREPROCESSED,
            (MACHINE_A, T0 + 600): BatchStatus.DISCOVERED,
            (MACHINE_A, T0 + 1200): BatchStatus.DISCOVERED,
            (MACHINE_B, T0): BatchStatus.PREPROCESSED,
            (MACHINE_B, T0 + 600): BatchStatus.DISCOVERED,
            (MACHINE_B, T0 + 1200): BatchStatus.DISCOVERED,
        }

    def test_reset_by_status_then_process_again(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        self._six_batches(uow_factory, pipeline)
        with uow_factory() as uow:
            count = uow.batches.reset(pipeline, status=BatchStatus.REJECTED)
            nothing = uow.batches.reset(f"{pipeline}x")
            uow.commit()
        with uow_factory() as uow:
            pending = uow.batches.by_status(pipeline, BatchStatus.DISCOVERED)
            redone = [uow.batches.mark_preprocessed(b.id, delta_version=9) for b in pending]
            uow.commit()
        assert (count, nothing) == (2, 0)
        assert [(b.first_timestamp, b.attempts, b.delta_version) for b in redone] == [
            (T0 + 1200, 1, 9),
            (T0 + 1200, 1, 9),
        ]

    def test_history_tells_what_happened_to_a_file(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        with uow_factory() as uow:
            discover = uow.runs.start(pipeline, "discover")
            (batch,) = uow.batches.add_discovered(
                [new_batch(pipeline, MACHINE_A, T0)], run_id=discover.id
            )
            uow.runs.finish(discover.id, RunStatus.SUCCEEDED, {"new": 1})
            uow.commit()
        with uow_factory() as uow:
            first = uow.runs.start(pipeline, "preprocess")
            uow.batches.mark_rejected(batch.id, "missing column acc_x", run_id=first.id)
            reprocess = uow.runs.start(pipeline, "reprocess")
            uow.batches.reset(pipeline, key=batch.key, run_id=reprocess.id)
            second = uow.runs.start(pipeline, "preprocess")
            uow.batches.mark_preprocessed(batch.id, delta_version=2, run_id=second.id)
            uow.commit()

        with uow_factory() as uow:
            history = uow.batches.history(pipeline, batch.key)
            assert uow.batches.history(pipeline, "absent") is None
            assert history is not None

        assert history.batch == replace(
            batch,
            status=BatchStatus.PREPROCESSED,
            delta_version=2,
            attempts=1,
            run_id=second.id,
            updated_at=history.batch.updated_at,
        )
        assert [(e.from_status, e.to_status, e.run_id, e.reason) for e in history.events] == [
            (None, BatchStatus.DISCOVERED, discover.id, None),
            (BatchStatus.DISCOVERED, BatchStatus.REJECTED, first.id, "missing column acc_x"),
            (BatchStatus.REJECTED, BatchStatus.DISCOVERED, reprocess.id, "reset"),
            (BatchStatus.DISCOVERED, BatchStatus.PREPROCESSED, second.id, None),
        ]
        assert {e.batch_id for e in history.events} == {batch.id}
        assert [(r.id, r.step) for r in history.runs] == [
            (discover.id, "discover"),
            (first.id, "preprocess"),
            (reprocess.id, "reprocess"),
            (second.id, "preprocess"),
        ]
        assert history.runs[0].summary == {"new": 1}

    # ------------------------------------------------------------------ models

    def test_model_versions_count_per_pipeline_and_type(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        trained = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
        with uow_factory() as uow:
            first = uow.models.add(
                NewModel(
                    pipeline,
                    "dumper",
                    mlflow_run_id="r1",
                    registry_name=f"{pipeline}-dumper",
                    registry_version="1",
                    url="s3a://etl-processed/m/1",
                    metrics={"f1": 0.91, "per_class": {"idle": 0.99}},
                    data_from=T0,
                    data_to=T0 + 14 * 86_400,
                    trained_at=trained,
                )
            )
            second = uow.models.add(NewModel(pipeline, "dumper"))
            excavator = uow.models.add(NewModel(pipeline, "excavator"))
            elsewhere = uow.models.add(NewModel(f"{pipeline}x", "dumper"))
            uow.commit()

        assert [first.version, second.version, excavator.version, elsewhere.version] == [1, 2, 1, 1]
        assert (first.status, first.reason) == (ModelStatus.CHALLENGER, None)
        assert (first.mlflow_run_id, first.registry_name, first.registry_version, first.url) == (
            "r1",
            f"{pipeline}-dumper",
            "1",
            "s3a://etl-processed/m/1",
        )
        assert first.metrics == {"f1": 0.91, "per_class": {"idle": 0.99}}
        assert (first.data_from, first.data_to, first.trained_at) == (T0, T0 + 14 * 86_400, trained)
        assert second.metrics == {}
        assert_recent(second.trained_at)
        with uow_factory() as uow:
            assert uow.models.for_pipeline(pipeline) == [first, second, excavator]
            assert uow.models.for_pipeline(pipeline, "excavator") == [excavator]
            assert uow.models.get(first.id) == first

    def test_setting_a_champion_demotes_the_previous_one(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        with uow_factory() as uow:
            v1, v2, v3 = (uow.models.add(NewModel(pipeline, "dumper")) for _ in range(3))
            excavator = uow.models.add(NewModel(pipeline, "excavator"))
            assert uow.models.champion(pipeline, "dumper") is None
            uow.models.set_champion(v1.id, "first model")
            uow.models.set_champion(excavator.id)
            uow.commit()
        with uow_factory() as uow:
            promoted = uow.models.set_champion(v3.id, "better f1")
            uow.commit()
        with uow_factory() as uow:
            back = uow.models.set_champion(v1.id, "v3 misbehaves")  # older id than the champion
            retired = uow.models.retire(v3.id, "misclassifies dumping")
            uow.commit()

        with uow_factory() as uow:
            assert uow.models.champion(pipeline, "dumper") == back
            assert uow.models.champion(pipeline, "excavator") == replace(
                excavator, status=ModelStatus.CHAMPION
            )
            states = [
                (m.version, m.status, m.reason) for m in uow.models.for_pipeline(pipeline, "dumper")
            ]
        assert (promoted.status, promoted.reason) == (ModelStatus.CHAMPION, "better f1")
        assert retired.status is ModelStatus.RETIRED
        assert states == [
            (1, ModelStatus.CHAMPION, "v3 misbehaves"),
            (2, ModelStatus.CHALLENGER, None),
            (3, ModelStatus.RETIRED, "misclassifies dumping"),
        ]
        assert v2.status is ModelStatus.CHALLENGER

    def test_promoting_the_champion_again_keeps_it(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        with uow_factory() as uow:
            model = uow.models.add(NewModel(pipeline, "wheel_loader"))
            uow.models.set_champion(model.id)
            again = uow.models.set_champion(model.id, "still best")
            uow.commit()
        assert (again.status, again.reason) == (ModelStatus.CHAMPION, "still best")

    # ------------------------------------------------------------------ inference and export

    def test_inference_run_and_its_exports(self, uow_factory: UowFactory, pipeline: str) -> None:
        with uow_factory() as uow:
            run = uow.runs.start(pipeline, "infer")
            model = uow.models.add(NewModel(pipeline, "dumper"))
            started = uow.inference_runs.start(
                pipeline,
                model.id,
                machine_uuid=MACHINE_A,
                ts_from=T0,
                ts_to=T0 + 3600,
                input_versions={"state_vectors": 12},
                output_url="s3a://etl-processed/demo/activities",
                run_id=run.id,
            )
            fleet = uow.inference_runs.start(pipeline, model.id)
            uow.commit()
        with uow_factory() as uow:
            done = uow.inference_runs.finish(started.id, RunStatus.SUCCEEDED, rows=3600)
            failed = uow.inference_runs.finish(
                fleet.id, RunStatus.FAILED, reason="executor lost\nretry"
            )
            export = uow.exports.start(pipeline, "activities", inference_run_id=done.id)
            loaded = uow.exports.finish(
                export.id, RunStatus.SUCCEEDED, rows_loaded=3598, rows_rejected=2
            )
            orphan = uow.exports.start(pipeline, "cycles")
            uow.commit()

        assert (started.status, started.finished_at, started.rows) == (
            RunStatus.RUNNING,
            None,
            None,
        )
        assert_recent(started.started_at)
        assert done == replace(
            started, status=RunStatus.SUCCEEDED, rows=3600, finished_at=done.finished_at
        )
        assert done.finished_at is not None and done.finished_at >= done.started_at
        assert (fleet.machine_uuid, fleet.input_versions, fleet.output_url) == (None, {}, None)
        assert (failed.status, failed.reason) == (RunStatus.FAILED, "executor lost retry")
        assert (loaded.table_name, loaded.inference_run_id, loaded.status) == (
            "activities",
            done.id,
            RunStatus.SUCCEEDED,
        )
        assert (loaded.rows_loaded, loaded.rows_rejected, loaded.reason) == (3598, 2, None)
        with uow_factory() as uow:
            assert uow.inference_runs.for_pipeline(pipeline) == [done, failed]
            assert uow.inference_runs.for_pipeline(pipeline, machine_uuid=MACHINE_A) == [done]
            assert uow.inference_runs.for_pipeline(pipeline, status=RunStatus.FAILED) == [failed]
            assert uow.inference_runs.get(done.id) == done
            assert uow.exports.for_pipeline(pipeline) == [loaded, orphan]
            assert uow.exports.for_pipeline(pipeline, inference_run_id=done.id) == [loaded]
            assert uow.exports.get(orphan.id).inference_run_id is None

    def test_a_finished_run_cannot_finish_again(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        with uow_factory() as uow:
            model = uow.models.add(NewModel(pipeline, "dumper"))
            inference = uow.inference_runs.start(pipeline, model.id)
            export = uow.exports.start(pipeline, "cycles")
            run = uow.runs.start(pipeline, "export")
            uow.inference_runs.finish(inference.id, RunStatus.FAILED)
            uow.exports.finish(export.id, RunStatus.FAILED, reason="results db down")
            uow.runs.finish(run.id, RunStatus.FAILED)
            with pytest.raises(IllegalTransitionError):
                uow.inference_runs.finish(inference.id, RunStatus.SUCCEEDED)
            with pytest.raises(IllegalTransitionError):
                uow.exports.finish(export.id, RunStatus.SUCCEEDED)
            with pytest.raises(IllegalTransitionError):
                uow.runs.finish(run.id, RunStatus.SUCCEEDED)
            with pytest.raises(ValueError, match="not running"):
                uow.runs.finish(uow.runs.start(pipeline, "x").id, RunStatus.RUNNING)

    def test_runs_start_and_finish(self, uow_factory: UowFactory, pipeline: str) -> None:
        with uow_factory() as uow:
            discover = uow.runs.start(pipeline, "discover")
            preprocess = uow.runs.start(pipeline, "preprocess")
            uow.commit()
        with uow_factory() as uow:
            finished = uow.runs.finish(
                discover.id, RunStatus.SUCCEEDED, {"new": 3, "skipped": ["a", "b"]}
            )
            uow.commit()

        assert (discover.status, discover.finished_at, discover.summary) == (
            RunStatus.RUNNING,
            None,
            None,
        )
        assert_recent(discover.started_at)
        assert finished == replace(
            discover,
            status=RunStatus.SUCCEEDED,
            summary={"new": 3, "skipped": ["a", "b"]},
            finished_at=finished.finished_at,
        )
        with uow_factory() as uow:
            assert uow.runs.for_pipeline(pipeline) == [finished, preprocess]
            assert uow.runs.for_pipeline(pipeline, "preprocess") == [preprocess]
            assert uow.runs.get(discover.id) == finished

    # ------------------------------------------------------------------ unit of work

    def test_an_exception_rolls_everything_back(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        (kept,) = register(uow_factory, new_batch(pipeline, MACHINE_A, T0))
        with pytest.raises(RuntimeError, match="spark died"), uow_factory() as uow:
            uow.batches.add_discovered([new_batch(pipeline, MACHINE_A, T0 + 600)])
            uow.batches.mark_preprocessed(kept.id, delta_version=1)
            uow.models.add(NewModel(pipeline, "dumper"))
            uow.runs.start(pipeline, "preprocess")
            raise RuntimeError("spark died")

        assert snapshot(uow_factory, pipeline) == [kept]
        with uow_factory() as uow:
            assert uow.models.for_pipeline(pipeline) == []
            assert uow.runs.for_pipeline(pipeline) == []

    def test_leaving_without_commit_rolls_back(
        self, uow_factory: UowFactory, pipeline: str
    ) -> None:
        with uow_factory() as uow:
            uow.batches.add_discovered([new_batch(pipeline, MACHINE_A, T0)])
        assert snapshot(uow_factory, pipeline) == []

    def test_only_committed_work_survives(self, uow_factory: UowFactory, pipeline: str) -> None:
        uow = uow_factory()
        with uow:
            (batch,) = uow.batches.add_discovered([new_batch(pipeline, MACHINE_A, T0)])
            uow.commit()
            uow.batches.mark_rejected(batch.id, "changed my mind")
        with uow:  # the same unit of work can be used again
            assert uow.batches.get(batch.id) == batch
            uow.batches.mark_preprocessed(batch.id, delta_version=1)
            uow.rollback()
            assert uow.batches.get(batch.id) == batch
        assert snapshot(uow_factory, pipeline) == [batch]
