"""An in-memory state store for unit tests of pipeline steps.

Hand-written rather than mocked, and held to the same contract suite as the
SQL adapters, so a step tested against it behaves the same on SQLite and
PostgreSQL. It keeps real transaction semantics: each unit of work works on
a snapshot and only ``commit()`` publishes its changes; units of work are
serialised by a lock (like SQLite's write lock), so concurrent threads see
each other's commits and never each other's uncommitted writes.

Usage::

    store = FakeStateStore()
    step(uow_factory=lambda: FakeUnitOfWork(store))
    with FakeUnitOfWork(store) as uow:
        assert uow.batches.by_status("demo", BatchStatus.PREPROCESSED) == [...]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from etl.state.domain import (
    PENDING_STATUSES,
    AnnouncedHistory,
    Batch,
    BatchEvent,
    BatchHealth,
    BatchHistory,
    BatchStatus,
    Export,
    InferenceRun,
    ModelStatus,
    ModelVersion,
    NewBatch,
    NewModel,
    NotFoundError,
    Run,
    RunStatus,
    check_finish,
    check_transition,
    json_document,
    one_line,
    overlaps,
    unique_new_batches,
    utcnow,
)
from etl.state.transitions import BatchTransitions, FileFacts, Move
from etl.state.uow import AbstractUnitOfWork

_R = TypeVar("_R")

TABLES = ("batches", "batch_events", "models", "inference_runs", "exports", "runs", "history")


class FakeStateStore:
    """The committed data, shared by every :class:`FakeUnitOfWork` made on it."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[int, Any]] = {name: {} for name in TABLES}
        self.lock = threading.RLock()
        self._last_id = dict.fromkeys(TABLES, 0)

    def next_id(self, table: str) -> int:
        """Ids are never reused, even after a rollback, like database sequences."""
        self._last_id[table] += 1
        return self._last_id[table]


class _Transaction:
    """A unit of work's private copy of the tables and what it changed."""

    def __init__(self, store: FakeStateStore) -> None:
        self.store = store
        self.begin()

    def begin(self) -> None:
        self.tables = {name: dict(rows) for name, rows in self.store.tables.items()}
        self.dirty: dict[str, set[int]] = {name: set() for name in TABLES}

    def publish(self) -> None:
        for name, ids in self.dirty.items():
            for row_id in ids:
                self.store.tables[name][row_id] = self.tables[name][row_id]
        self.begin()

    def rows(self, table: str) -> list[Any]:
        """Every row of ``table`` by id."""
        return [self.tables[table][key] for key in sorted(self.tables[table])]

    def get(self, table: str, row_id: int) -> Any:
        if row_id not in self.tables[table]:
            raise NotFoundError(table, row_id)
        return self.tables[table][row_id]

    def put(self, table: str, row: _R) -> _R:
        self.tables[table][row.id] = row  # type: ignore[attr-defined]
        self.dirty[table].add(row.id)  # type: ignore[attr-defined]
        return row


class _FakeRepository:
    def __init__(self, tx: _Transaction) -> None:
        self.tx = tx


class FakeBatchRepository(_FakeRepository, BatchTransitions):
    """Batches in memory; mirrors :class:`etl.state.sql.SqlAlchemyBatchRepository`."""

    def add_discovered(self, records: Iterable[NewBatch], run_id: int | None = None) -> list[Batch]:
        """Insert-if-absent on (pipeline, key)."""
        now = utcnow()
        taken = {(batch.pipeline, batch.key) for batch in self.tx.rows("batches")}
        added = []
        for record in unique_new_batches(records):
            if (record.pipeline, record.key) in taken:
                continue
            batch = Batch(
                id=self.tx.store.next_id("batches"),
                status=BatchStatus.DISCOVERED,
                reason=None,
                warnings=(),
                quality=None,
                duplicate_of=None,
                discovered_at=now,
                updated_at=now,
                delta_version=None,
                run_id=run_id,
                attempts=0,
                **{name: getattr(record, name) for name in _NEW_BATCH_FIELDS},
            )
            added.append(self.tx.put("batches", batch))
            self._event(batch, None, run_id, now, None)
        return added

    def _event(
        self,
        batch: Batch,
        previous: BatchStatus | None,
        run_id: int | None,
        at: Any,
        reason: str | None,
    ) -> None:
        event = BatchEvent(
            id=self.tx.store.next_id("batch_events"),
            batch_id=batch.id,
            run_id=run_id,
            at=at,
            from_status=previous,
            to_status=batch.status,
            reason=reason,
        )
        self.tx.put("batch_events", event)

    def get(self, batch_id: int) -> Batch:
        """The batch with this id."""
        return self.tx.get("batches", batch_id)

    def _where(self, pipeline: str, test: Callable[[Batch], bool] = bool) -> list[Batch]:
        return [b for b in self.tx.rows("batches") if b.pipeline == pipeline and test(b)]

    def by_key(self, pipeline: str, key: str) -> Batch | None:
        """The batch stored under this key."""
        found = self._where(pipeline, lambda b: b.key == key)
        return found[0] if found else None

    def by_status(
        self, pipeline: str, status: BatchStatus, limit: int | None = None
    ) -> list[Batch]:
        """Batches in ``status`` by id."""
        return self._where(pipeline, lambda b: b.status == status)[:limit]

    def by_machine(
        self, pipeline: str, machine_uuid: str, status: BatchStatus | None = None
    ) -> list[Batch]:
        """One machine's batches in data order."""
        found = self._where(
            pipeline,
            lambda b: b.machine_uuid == machine_uuid and (status is None or b.status == status),
        )
        return sorted(
            found, key=lambda b: (b.first_timestamp is None, b.first_timestamp or 0.0, b.id)
        )

    def by_content_hash(self, pipeline: str, content_hash: str) -> list[Batch]:
        """Batches with these bytes, by id."""
        return self._where(pipeline, lambda b: b.content_hash == content_hash)

    def by_content_hashes(self, pipeline: str, hashes: Iterable[str]) -> dict[str, list[Batch]]:
        """Batches with each of these contents, by id (hashes without one are left out)."""
        wanted = set(hashes)
        found: dict[str, list[Batch]] = {}
        for batch in self._where(pipeline, lambda b: b.content_hash in wanted):
            found.setdefault(str(batch.content_hash), []).append(batch)
        return found

    def for_pipeline(self, pipeline: str) -> list[Batch]:
        """Every batch of the pipeline, by id."""
        return self._where(pipeline)

    def count_by_status(self, pipeline: str) -> dict[BatchStatus, int]:
        """Batches per status."""
        counts: dict[BatchStatus, int] = {}
        for batch in self._where(pipeline):
            counts[batch.status] = counts.get(batch.status, 0) + 1
        return counts

    def health(self, pipeline: str, since: datetime) -> BatchHealth:
        """Backlog, rejections since ``since`` and data freshness per machine."""
        batches = self._where(pipeline)
        pending = [b.discovered_at for b in batches if b.status in PENDING_STATUSES]
        recent = [b for b in batches if b.discovered_at >= since]
        newest: dict[str, float] = {}
        for b in batches:
            if b.status == BatchStatus.EXPORTED and b.last_timestamp is not None:
                seen = newest.get(b.machine_uuid, b.last_timestamp)
                newest[b.machine_uuid] = max(seen, b.last_timestamp)
        return BatchHealth(
            by_status=self.count_by_status(pipeline),
            oldest_pending_at=min(pending, default=None),
            discovered_since=len(recent),
            rejected_since=sum(b.status == BatchStatus.REJECTED for b in recent),
            newest_exported=newest,
        )

    def record_file(
        self,
        batch_id: int,
        *,
        content_hash: str,
        size_bytes: int | None = None,
        rows: int | None = None,
        first_timestamp: float | None = None,
        last_timestamp: float | None = None,
    ) -> Batch:
        """Store the file's hash and whatever else was read from it."""
        facts = FileFacts(content_hash, size_bytes, rows, first_timestamp, last_timestamp)
        batch = replace(self.get(batch_id), updated_at=utcnow(), **facts.changes())
        return self.tx.put("batches", batch)

    def _move_all(self, moves: Sequence[Move], run_id: int | None) -> list[Batch]:
        for move in moves:
            self.get(move.batch_id)  # NotFoundError before anything moves, as in SQL
        return [self._move_one(move, run_id) for move in moves]

    def _move_one(self, move: Move, run_id: int | None) -> Batch:
        batch = self.get(move.batch_id)
        check_transition(batch.key, batch.status, move.target)
        now = utcnow()
        run = batch.run_id if run_id is None else run_id
        changes = dict(move.changes)
        if "warnings" in changes:
            changes["warnings"] = tuple(changes["warnings"])
        moved = replace(batch, status=move.target, updated_at=now, run_id=run, **changes)
        self._event(moved, batch.status, run_id, now, move.note)
        return self.tx.put("batches", moved)

    def reset(
        self,
        pipeline: str,
        *,
        machine_uuid: str | None = None,
        key: str | None = None,
        ts_from: float | None = None,
        ts_to: float | None = None,
        status: BatchStatus | None = None,
        run_id: int | None = None,
    ) -> int:
        """Back to discovered."""
        matched = self._where(
            pipeline,
            lambda b: (
                b.status != BatchStatus.DISCOVERED
                and (machine_uuid is None or b.machine_uuid == machine_uuid)
                and (key is None or b.key == key)
                and (status is None or b.status == status)
                and overlaps(b, ts_from, ts_to)
            ),
        )
        now = utcnow()
        for batch in matched:
            moved = replace(
                batch,
                status=BatchStatus.DISCOVERED,
                reason=None,
                warnings=(),
                quality=None,
                duplicate_of=None,
                delta_version=None,
                attempts=batch.attempts + 1,
                updated_at=now,
                run_id=batch.run_id if run_id is None else run_id,
            )
            self._event(moved, batch.status, run_id, now, "reset")
            self.tx.put("batches", moved)
        return len(matched)

    def history(self, pipeline: str, key: str) -> BatchHistory | None:
        """The batch, its events by id and the runs they name, by id."""
        batch = self.by_key(pipeline, key)
        if batch is None:
            return None
        events = tuple(e for e in self.tx.rows("batch_events") if e.batch_id == batch.id)
        run_ids = {event.run_id for event in events} | {batch.run_id}
        runs = tuple(run for run in self.tx.rows("runs") if run.id in run_ids)
        return BatchHistory(batch, events, runs)


_NEW_BATCH_FIELDS = tuple(NewBatch.__dataclass_fields__)


class FakeModelRepository(_FakeRepository):
    """Models in memory."""

    def add(self, model: NewModel) -> ModelVersion:
        """Next version per (pipeline, machine type)."""
        same = self.for_pipeline(model.pipeline, model.machine_type)
        row = ModelVersion(
            id=self.tx.store.next_id("models"),
            pipeline=model.pipeline,
            machine_type=model.machine_type,
            version=max((m.version for m in same), default=0) + 1,
            mlflow_run_id=model.mlflow_run_id,
            registry_name=model.registry_name,
            registry_version=model.registry_version,
            url=model.url,
            metrics=json_document(model.metrics),
            data_from=model.data_from,
            data_to=model.data_to,
            trained_at=model.trained_at or utcnow(),
            status=ModelStatus.CHALLENGER,
            reason=None,
        )
        return self.tx.put("models", row)

    def get(self, model_id: int) -> ModelVersion:
        """The model with this id."""
        return self.tx.get("models", model_id)

    def champion(self, pipeline: str, machine_type: str) -> ModelVersion | None:
        """The current champion."""
        found = [
            m for m in self.for_pipeline(pipeline, machine_type) if m.status == ModelStatus.CHAMPION
        ]
        return found[0] if found else None

    def set_champion(self, model_id: int, reason: str | None = None) -> ModelVersion:
        """Promote, demoting the previous champion."""
        model = self.get(model_id)
        previous = self.champion(model.pipeline, model.machine_type)
        if previous is not None and previous.id != model.id:
            demoted = replace(
                previous,
                status=ModelStatus.CHALLENGER,
                reason=f"replaced by version {model.version}",
            )
            self.tx.put("models", demoted)
        line = None if reason is None else one_line(reason)
        return self.tx.put("models", replace(model, status=ModelStatus.CHAMPION, reason=line))

    def retire(self, model_id: int, reason: str) -> ModelVersion:
        """Retire a model."""
        retired = replace(self.get(model_id), status=ModelStatus.RETIRED, reason=one_line(reason))
        return self.tx.put("models", retired)

    def for_pipeline(self, pipeline: str, machine_type: str | None = None) -> list[ModelVersion]:
        """Models by id."""
        return [
            m
            for m in self.tx.rows("models")
            if m.pipeline == pipeline and (machine_type is None or m.machine_type == machine_type)
        ]


class FakeInferenceRunRepository(_FakeRepository):
    """Inference runs in memory."""

    def start(
        self,
        pipeline: str,
        model_id: int,
        *,
        machine_uuid: str | None = None,
        ts_from: float | None = None,
        ts_to: float | None = None,
        input_versions: dict[str, Any] | None = None,
        output_url: str | None = None,
        run_id: int | None = None,
    ) -> InferenceRun:
        """A running pass."""
        self.tx.get("models", model_id)
        row = InferenceRun(
            id=self.tx.store.next_id("inference_runs"),
            pipeline=pipeline,
            machine_uuid=machine_uuid,
            model_id=model_id,
            ts_from=ts_from,
            ts_to=ts_to,
            input_versions=json_document(input_versions or {}),
            output_url=output_url,
            rows=None,
            status=RunStatus.RUNNING,
            reason=None,
            started_at=utcnow(),
            finished_at=None,
            run_id=run_id,
        )
        return self.tx.put("inference_runs", row)

    def finish(
        self,
        inference_run_id: int,
        status: RunStatus,
        *,
        rows: int | None = None,
        output_url: str | None = None,
        reason: str | None = None,
    ) -> InferenceRun:
        """Close a running pass."""
        row = self.get(inference_run_id)
        check_finish(f"inference run {row.id}", row.status, status)
        finished = replace(
            row,
            status=status,
            rows=rows,
            output_url=output_url or row.output_url,
            reason=None if reason is None else one_line(reason),
            finished_at=utcnow(),
        )
        return self.tx.put("inference_runs", finished)

    def get(self, inference_run_id: int) -> InferenceRun:
        """The pass with this id."""
        return self.tx.get("inference_runs", inference_run_id)

    def for_pipeline(
        self, pipeline: str, machine_uuid: str | None = None, status: RunStatus | None = None
    ) -> list[InferenceRun]:
        """Passes by id."""
        return [
            r
            for r in self.tx.rows("inference_runs")
            if r.pipeline == pipeline
            and (machine_uuid is None or r.machine_uuid == machine_uuid)
            and (status is None or r.status == status)
        ]


class FakeExportRepository(_FakeRepository):
    """Exports in memory."""

    def start(
        self,
        pipeline: str,
        table_name: str,
        *,
        inference_run_id: int | None = None,
        run_id: int | None = None,
    ) -> Export:
        """A running load."""
        if inference_run_id is not None:
            self.tx.get("inference_runs", inference_run_id)
        row = Export(
            id=self.tx.store.next_id("exports"),
            pipeline=pipeline,
            inference_run_id=inference_run_id,
            table_name=table_name,
            rows_loaded=None,
            rows_rejected=None,
            status=RunStatus.RUNNING,
            reason=None,
            started_at=utcnow(),
            finished_at=None,
            run_id=run_id,
        )
        return self.tx.put("exports", row)

    def finish(
        self,
        export_id: int,
        status: RunStatus,
        *,
        rows_loaded: int | None = None,
        rows_rejected: int | None = None,
        reason: str | None = None,
    ) -> Export:
        """Close a running load."""
        row = self.get(export_id)
        check_finish(f"export {row.id}", row.status, status)
        finished = replace(
            row,
            status=status,
            rows_loaded=rows_loaded,
            rows_rejected=rows_rejected,
            reason=None if reason is None else one_line(reason),
            finished_at=utcnow(),
        )
        return self.tx.put("exports", finished)

    def get(self, export_id: int) -> Export:
        """The load with this id."""
        return self.tx.get("exports", export_id)

    def for_pipeline(self, pipeline: str, inference_run_id: int | None = None) -> list[Export]:
        """Loads by id."""
        return [
            e
            for e in self.tx.rows("exports")
            if e.pipeline == pipeline
            and (inference_run_id is None or e.inference_run_id == inference_run_id)
        ]


class FakeRunRepository(_FakeRepository):
    """Step runs in memory."""

    def start(self, pipeline: str, step: str) -> Run:
        """A running step."""
        row = Run(
            id=self.tx.store.next_id("runs"),
            pipeline=pipeline,
            step=step,
            status=RunStatus.RUNNING,
            started_at=utcnow(),
            finished_at=None,
            summary=None,
        )
        return self.tx.put("runs", row)

    def finish(self, run_id: int, status: RunStatus, summary: dict[str, Any] | None = None) -> Run:
        """Close a running step."""
        row = self.get(run_id)
        check_finish(f"run {row.id}", row.status, status)
        finished = replace(row, status=status, summary=json_document(summary), finished_at=utcnow())
        return self.tx.put("runs", finished)

    def get(self, run_id: int) -> Run:
        """The run with this id."""
        return self.tx.get("runs", run_id)

    def for_pipeline(self, pipeline: str, step: str | None = None) -> list[Run]:
        """Runs by id."""
        return [
            r
            for r in self.tx.rows("runs")
            if r.pipeline == pipeline and (step is None or r.step == step)
        ]


@dataclass(frozen=True)
class _HistoryRow:
    id: int
    pipeline: str
    history: AnnouncedHistory


class FakeHistoryRepository(_FakeRepository):
    """Catalog history reads in memory, one row per pipeline and source."""

    def _find(self, pipeline: str, source: str) -> _HistoryRow | None:
        return next(
            (
                r
                for r in self.tx.rows("history")
                if r.pipeline == pipeline and r.history.source == source
            ),
            None,
        )

    def get(self, pipeline: str, source: str) -> AnnouncedHistory:
        """The history read so far from ``source``; empty when never read."""
        row = self._find(pipeline, source)
        return row.history if row is not None else AnnouncedHistory(source)

    def put(self, pipeline: str, history: AnnouncedHistory) -> None:
        """Keep ``history`` (a copy: callers may not change what was stored)."""
        row = self._find(pipeline, history.source)
        row_id = row.id if row is not None else self.tx.store.next_id("history")
        kept = AnnouncedHistory(history.source, dict(history.positions), dict(history.intervals))
        self.tx.put("history", _HistoryRow(row_id, pipeline, kept))


class FakeUnitOfWork(AbstractUnitOfWork):
    """A unit of work over a :class:`FakeStateStore` (a fresh one unless given).

    ``commits`` counts successful commits, for tests that check a step
    committed (or, after a failure, did not).
    """

    def __init__(self, store: FakeStateStore | None = None) -> None:
        self.store = store or FakeStateStore()
        self.commits = 0
        self._tx = _Transaction(self.store)
        self.batches = FakeBatchRepository(self._tx)
        self.models = FakeModelRepository(self._tx)
        self.inference_runs = FakeInferenceRunRepository(self._tx)
        self.exports = FakeExportRepository(self._tx)
        self.runs = FakeRunRepository(self._tx)
        self.history = FakeHistoryRepository(self._tx)

    def __enter__(self) -> Self:
        self.store.lock.acquire()
        self._tx.begin()
        return super().__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back anything uncommitted, then let other units of work in."""
        try:
            super().__exit__(exc_type, exc, traceback)
        finally:
            self.store.lock.release()

    def commit(self) -> None:
        """Publish this unit of work's changes to the store."""
        with self.store.lock:
            self._tx.publish()
        self.commits += 1

    def rollback(self) -> None:
        """Forget this unit of work's changes."""
        self._tx.begin()


def fake_uow_factory(store: FakeStateStore | None = None) -> Callable[[], FakeUnitOfWork]:
    """A factory of units of work sharing one in-memory store, like ``open_state``'s."""
    shared = store or FakeStateStore()
    return lambda: FakeUnitOfWork(shared)
