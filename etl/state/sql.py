"""The SQLAlchemy adapters of the state store's ports (PostgreSQL and SQLite).

One code path for both databases: the only dialect-specific statements are
the idempotent batch insert (``INSERT ... ON CONFLICT DO NOTHING`` has a
PostgreSQL and a SQLite spelling) and the advisory lock that numbers model
versions on PostgreSQL. Rows about to change are read ``FOR UPDATE`` so two
processes cannot both move the same batch on PostgreSQL; on SQLite the unit
of work already holds the database's write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from etl.state.domain import (
    PENDING_STATUSES,
    AnnouncedHistory,
    Batch,
    BatchEvent,
    BatchHealth,
    BatchHistory,
    BatchSource,
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
    unique_new_batches,
    utcnow,
)
from etl.state.models import (
    BatchEventRow,
    BatchRow,
    ExportRow,
    HistoryReadRow,
    InferenceRunRow,
    MachineHistoryRow,
    ModelRow,
    RunRow,
)
from etl.state.transitions import BatchTransitions, FileFacts, Move

_T = TypeVar("_T")
_Row = TypeVar("_Row", BatchRow, ModelRow, InferenceRunRow, ExportRow, RunRow)

INSERT_CHUNK = 500
"""Batches per INSERT statement: well under both databases' parameter limits."""
IN_LIST_SIZE = 500
"""Ids or hashes per ``IN (...)`` list, for the same reason."""

MODEL_VERSION_LOCK = 0x6574_6C6D
"""First half of the PostgreSQL advisory lock that serialises model numbering."""


def _record(cls: type[_T], row: object, **overrides: Any) -> _T:
    """A domain record from an ORM row: same field names, enums and tuples fixed up."""
    values = {f.name: getattr(row, f.name) for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**(values | overrides))


def _to_batch(row: BatchRow) -> Batch:
    return _record(
        Batch,
        row,
        source=BatchSource(row.source),
        status=BatchStatus(row.status),
        warnings=tuple(row.warnings),
    )


def _to_event(row: BatchEventRow) -> BatchEvent:
    previous = None if row.from_status is None else BatchStatus(row.from_status)
    return _record(BatchEvent, row, from_status=previous, to_status=BatchStatus(row.to_status))


def _to_run(row: RunRow) -> Run:
    return _record(Run, row, status=RunStatus(row.status))


def _to_model(row: ModelRow) -> ModelVersion:
    return _record(ModelVersion, row, status=ModelStatus(row.status))


def _to_inference_run(row: InferenceRunRow) -> InferenceRun:
    return _record(InferenceRun, row, status=RunStatus(row.status))


def _to_export(row: ExportRow) -> Export:
    return _record(Export, row, status=RunStatus(row.status))


class _SqlRepository:
    """Shared helpers: a session, and reading one row for update or failing clearly."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _locked(self, entity: type[_Row], row_id: int) -> _Row:
        stmt = (
            select(entity)
            .where(entity.id == row_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        row = self.session.scalars(stmt).one_or_none()
        if row is None:
            raise NotFoundError(entity.__tablename__, row_id)
        return row

    def _row(self, entity: type[_Row], row_id: int) -> _Row:
        """The row with this id, or NotFoundError naming its table."""
        row = self.session.get(entity, row_id)
        if row is None:
            raise NotFoundError(entity.__tablename__, row_id)
        return row

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name


class SqlAlchemyBatchRepository(_SqlRepository, BatchTransitions):
    """Batches in PostgreSQL or SQLite."""

    def add_discovered(self, records: Iterable[NewBatch], run_id: int | None = None) -> list[Batch]:
        """Insert-if-absent on (pipeline, key) with the dialect's ON CONFLICT DO NOTHING."""
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(self._dialect)
        if insert is None:
            raise NotImplementedError(f"no idempotent insert for {self._dialect}")
        now = utcnow()
        values = [
            {
                "pipeline": record.pipeline,
                "machine_uuid": record.machine_uuid,
                "key": record.key,
                "url": record.url,
                "source": record.source.value,
                "status": BatchStatus.DISCOVERED.value,
                "first_timestamp": record.first_timestamp,
                "last_timestamp": record.last_timestamp,
                "rows": record.rows,
                "size_bytes": record.size_bytes,
                "etag": record.etag,
                "content_hash": record.content_hash,
                "warnings": [],
                "kafka_partition": record.kafka_partition,
                "kafka_offset": record.kafka_offset,
                "announced_at": record.announced_at,
                "discovered_at": now,
                "updated_at": now,
                "run_id": run_id,
                "attempts": 0,
            }
            for record in unique_new_batches(records)
        ]
        added: list[BatchRow] = []
        for start in range(0, len(values), INSERT_CHUNK):
            stmt = (
                insert(BatchRow)
                .values(values[start : start + INSERT_CHUNK])
                .on_conflict_do_nothing(index_elements=["pipeline", "key"])
                .returning(BatchRow)
            )
            added.extend(self.session.scalars(stmt).all())
        added.sort(key=lambda row: row.id)
        for row in added:
            self._event(row.id, None, BatchStatus.DISCOVERED, run_id=run_id, at=now, reason=None)
        self.session.flush()
        return [_to_batch(row) for row in added]

    def get(self, batch_id: int) -> Batch:
        """The batch with this id."""
        row = self._row(BatchRow, batch_id)
        return _to_batch(row)

    def _select(self, pipeline: str) -> Select[tuple[BatchRow]]:
        return select(BatchRow).where(BatchRow.pipeline == pipeline)

    def _all(self, stmt: Select[tuple[BatchRow]]) -> list[Batch]:
        return [_to_batch(row) for row in self.session.scalars(stmt)]

    def by_key(self, pipeline: str, key: str) -> Batch | None:
        """The batch stored under this key."""
        found = self._all(self._select(pipeline).where(BatchRow.key == key))
        return found[0] if found else None

    def by_status(
        self, pipeline: str, status: BatchStatus, limit: int | None = None
    ) -> list[Batch]:
        """Batches in ``status`` by id."""
        stmt = self._select(pipeline).where(BatchRow.status == status.value)
        return self._all(stmt.order_by(BatchRow.id).limit(limit))

    def by_machine(
        self, pipeline: str, machine_uuid: str, status: BatchStatus | None = None
    ) -> list[Batch]:
        """One machine's batches in data order."""
        stmt = self._select(pipeline).where(BatchRow.machine_uuid == machine_uuid)
        if status is not None:
            stmt = stmt.where(BatchRow.status == status.value)
        order = (BatchRow.first_timestamp.is_(None), BatchRow.first_timestamp, BatchRow.id)
        return self._all(stmt.order_by(*order))

    def by_content_hash(self, pipeline: str, content_hash: str) -> list[Batch]:
        """Batches with these bytes, by id."""
        stmt = self._select(pipeline).where(BatchRow.content_hash == content_hash)
        return self._all(stmt.order_by(BatchRow.id))

    def by_content_hashes(self, pipeline: str, hashes: Iterable[str]) -> dict[str, list[Batch]]:
        """Batches with each of these contents, by id (hashes without one are left out)."""
        wanted = sorted(set(hashes))
        found: dict[str, list[Batch]] = {}
        for first in range(0, len(wanted), IN_LIST_SIZE):
            stmt = self._select(pipeline).where(
                BatchRow.content_hash.in_(wanted[first : first + IN_LIST_SIZE])
            )
            for batch in self._all(stmt.order_by(BatchRow.id)):
                found.setdefault(str(batch.content_hash), []).append(batch)
        return found

    def for_pipeline(self, pipeline: str) -> list[Batch]:
        """Every batch of the pipeline, by id."""
        return self._all(self._select(pipeline).order_by(BatchRow.id))

    def count_by_status(self, pipeline: str) -> dict[BatchStatus, int]:
        """Batches per status."""
        stmt = (
            select(BatchRow.status, func.count())
            .where(BatchRow.pipeline == pipeline)
            .group_by(BatchRow.status)
        )
        return {BatchStatus(status): count for status, count in self.session.execute(stmt)}

    def health(self, pipeline: str, since: datetime) -> BatchHealth:
        """Backlog, rejections since ``since`` and data freshness per machine (aggregates)."""
        mine = BatchRow.pipeline == pipeline
        pending = BatchRow.status.in_([s.value for s in PENDING_STATUSES])
        oldest = self.session.scalar(select(func.min(BatchRow.discovered_at)).where(mine, pending))
        recent = select(
            func.count(),
            func.count().filter(BatchRow.status == BatchStatus.REJECTED.value),
        ).where(mine, BatchRow.discovered_at >= since)
        discovered, rejected = self.session.execute(recent).one()
        newest = (
            select(BatchRow.machine_uuid, func.max(BatchRow.last_timestamp))
            .where(mine, BatchRow.status == BatchStatus.EXPORTED.value)
            .where(BatchRow.last_timestamp.is_not(None))
            .group_by(BatchRow.machine_uuid)
        )
        return BatchHealth(
            by_status=self.count_by_status(pipeline),
            oldest_pending_at=oldest,
            discovered_since=int(discovered),
            rejected_since=int(rejected),
            newest_exported={m: float(t) for m, t in self.session.execute(newest)},
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
        row = self._locked(BatchRow, batch_id)
        facts = FileFacts(content_hash, size_bytes, rows, first_timestamp, last_timestamp)
        for name, value in facts.changes().items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        self.session.flush()
        return _to_batch(row)

    def _event(
        self,
        batch_id: int,
        previous: str | None,
        target: BatchStatus,
        *,
        run_id: int | None,
        at: datetime,
        reason: str | None,
    ) -> None:
        """Add one row to the batch's history (flushed with the status change)."""
        self.session.add(
            BatchEventRow(
                batch_id=batch_id,
                run_id=run_id,
                at=at,
                from_status=previous,
                to_status=target.value,
                reason=reason,
            )
        )

    def _move_all(self, moves: Sequence[Move], run_id: int | None) -> list[Batch]:
        rows = self._locked_batches([move.batch_id for move in moves])
        now = utcnow()
        for move in moves:
            row = rows[move.batch_id]
            current = BatchStatus(row.status)
            check_transition(row.key, current, move.target)
            for name, value in move.changes.items():
                setattr(row, name, value)
            row.status = move.target.value
            row.updated_at = now
            if run_id is not None:
                row.run_id = run_id
            self._event(row.id, current.value, move.target, run_id=run_id, at=now, reason=move.note)
        self.session.flush()
        return [_to_batch(rows[move.batch_id]) for move in moves]

    def _locked_batches(self, ids: Sequence[int]) -> dict[int, BatchRow]:
        """The rows of these batches by id, locked, in as few selects as the id list allows."""
        rows: dict[int, BatchRow] = {}
        wanted = sorted(set(ids))
        for first in range(0, len(wanted), IN_LIST_SIZE):
            stmt = (
                select(BatchRow)
                .where(BatchRow.id.in_(wanted[first : first + IN_LIST_SIZE]))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            rows.update((row.id, row) for row in self.session.scalars(stmt))
        for batch_id in wanted:
            if batch_id not in rows:
                raise NotFoundError(BatchRow.__tablename__, batch_id)
        return rows

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
        """Back to discovered; the time filter mirrors :func:`etl.state.domain.overlaps`."""
        stmt = self._select(pipeline).where(BatchRow.status != BatchStatus.DISCOVERED.value)
        if machine_uuid is not None:
            stmt = stmt.where(BatchRow.machine_uuid == machine_uuid)
        if key is not None:
            stmt = stmt.where(BatchRow.key == key)
        if status is not None:
            stmt = stmt.where(BatchRow.status == status.value)
        if ts_from is not None or ts_to is not None:
            stmt = stmt.where(BatchRow.first_timestamp.is_not(None))
        if ts_to is not None:
            stmt = stmt.where(BatchRow.first_timestamp < ts_to)
        if ts_from is not None:
            end = func.coalesce(BatchRow.last_timestamp, BatchRow.first_timestamp)
            stmt = stmt.where(end >= ts_from)
        rows = self.session.scalars(stmt.order_by(BatchRow.id).with_for_update()).all()
        now = utcnow()
        for row in rows:
            self._event(
                row.id, row.status, BatchStatus.DISCOVERED, run_id=run_id, at=now, reason="reset"
            )
            row.status = BatchStatus.DISCOVERED.value
            row.reason = None
            row.warnings = []
            row.quality = None
            row.duplicate_of = None
            row.delta_version = None
            row.attempts += 1
            row.updated_at = now
            if run_id is not None:
                row.run_id = run_id
        self.session.flush()
        return len(rows)

    def history(self, pipeline: str, key: str) -> BatchHistory | None:
        """The batch, its events by id and the runs they name, by id."""
        batch = self.by_key(pipeline, key)
        if batch is None:
            return None
        events = [
            _to_event(row)
            for row in self.session.scalars(
                select(BatchEventRow)
                .where(BatchEventRow.batch_id == batch.id)
                .order_by(BatchEventRow.id)
            )
        ]
        run_ids = {event.run_id for event in events} | {batch.run_id}
        run_ids.discard(None)
        runs = self.session.scalars(
            select(RunRow).where(RunRow.id.in_(run_ids)).order_by(RunRow.id)
        )
        return BatchHistory(batch, tuple(events), tuple(_to_run(row) for row in runs))


class SqlAlchemyModelRepository(_SqlRepository):
    """Models in PostgreSQL or SQLite."""

    def add(self, model: NewModel) -> ModelVersion:
        """Next version per (pipeline, machine type); serialised on PostgreSQL."""
        if self._dialect == "postgresql":
            name = f"{model.pipeline}/{model.machine_type}"
            self.session.execute(
                select(func.pg_advisory_xact_lock(MODEL_VERSION_LOCK, func.hashtext(name)))
            )
        latest = self.session.scalar(
            select(func.max(ModelRow.version)).where(
                ModelRow.pipeline == model.pipeline, ModelRow.machine_type == model.machine_type
            )
        )
        row = ModelRow(
            pipeline=model.pipeline,
            machine_type=model.machine_type,
            version=(latest or 0) + 1,
            mlflow_run_id=model.mlflow_run_id,
            registry_name=model.registry_name,
            registry_version=model.registry_version,
            url=model.url,
            metrics=json_document(model.metrics),
            data_from=model.data_from,
            data_to=model.data_to,
            trained_at=model.trained_at or utcnow(),
            status=ModelStatus.CHALLENGER.value,
            reason=None,
        )
        self.session.add(row)
        self.session.flush()
        return _to_model(row)

    def get(self, model_id: int) -> ModelVersion:
        """The model with this id."""
        row = self._row(ModelRow, model_id)
        return _to_model(row)

    def _champion_row(self, pipeline: str, machine_type: str) -> ModelRow | None:
        return self.session.scalars(
            select(ModelRow)
            .where(
                ModelRow.pipeline == pipeline,
                ModelRow.machine_type == machine_type,
                ModelRow.status == ModelStatus.CHAMPION.value,
            )
            .with_for_update()
        ).one_or_none()

    def champion(self, pipeline: str, machine_type: str) -> ModelVersion | None:
        """The current champion."""
        row = self._champion_row(pipeline, machine_type)
        return None if row is None else _to_model(row)

    def set_champion(self, model_id: int, reason: str | None = None) -> ModelVersion:
        """Demote the old champion first: the partial unique index allows only one."""
        row = self._locked(ModelRow, model_id)
        previous = self._champion_row(row.pipeline, row.machine_type)
        if previous is not None and previous.id != row.id:
            previous.status = ModelStatus.CHALLENGER.value
            previous.reason = f"replaced by version {row.version}"
            self.session.flush()
        row.status = ModelStatus.CHAMPION.value
        row.reason = None if reason is None else one_line(reason)
        self.session.flush()
        return _to_model(row)

    def retire(self, model_id: int, reason: str) -> ModelVersion:
        """Retire a model."""
        row = self._locked(ModelRow, model_id)
        row.status = ModelStatus.RETIRED.value
        row.reason = one_line(reason)
        self.session.flush()
        return _to_model(row)

    def for_pipeline(self, pipeline: str, machine_type: str | None = None) -> list[ModelVersion]:
        """Models by id."""
        stmt = select(ModelRow).where(ModelRow.pipeline == pipeline)
        if machine_type is not None:
            stmt = stmt.where(ModelRow.machine_type == machine_type)
        return [_to_model(row) for row in self.session.scalars(stmt.order_by(ModelRow.id))]


class SqlAlchemyInferenceRunRepository(_SqlRepository):
    """Inference runs in PostgreSQL or SQLite."""

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
        self._row(ModelRow, model_id)  # the model must exist
        row = InferenceRunRow(
            pipeline=pipeline,
            machine_uuid=machine_uuid,
            model_id=model_id,
            ts_from=ts_from,
            ts_to=ts_to,
            input_versions=json_document(input_versions or {}),
            output_url=output_url,
            rows=None,
            status=RunStatus.RUNNING.value,
            reason=None,
            started_at=utcnow(),
            finished_at=None,
            run_id=run_id,
        )
        self.session.add(row)
        self.session.flush()
        return _to_inference_run(row)

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
        row = self._locked(InferenceRunRow, inference_run_id)
        check_finish(f"inference run {row.id}", RunStatus(row.status), status)
        row.status = status.value
        row.rows = rows
        row.output_url = output_url or row.output_url
        row.reason = None if reason is None else one_line(reason)
        row.finished_at = utcnow()
        self.session.flush()
        return _to_inference_run(row)

    def get(self, inference_run_id: int) -> InferenceRun:
        """The pass with this id."""
        row = self._row(InferenceRunRow, inference_run_id)
        return _to_inference_run(row)

    def for_pipeline(
        self, pipeline: str, machine_uuid: str | None = None, status: RunStatus | None = None
    ) -> list[InferenceRun]:
        """Passes by id."""
        stmt = select(InferenceRunRow).where(InferenceRunRow.pipeline == pipeline)
        if machine_uuid is not None:
            stmt = stmt.where(InferenceRunRow.machine_uuid == machine_uuid)
        if status is not None:
            stmt = stmt.where(InferenceRunRow.status == status.value)
        rows = self.session.scalars(stmt.order_by(InferenceRunRow.id))
        return [_to_inference_run(row) for row in rows]


class SqlAlchemyExportRepository(_SqlRepository):
    """Exports in PostgreSQL or SQLite."""

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
            self._row(InferenceRunRow, inference_run_id)  # it must exist
        row = ExportRow(
            pipeline=pipeline,
            inference_run_id=inference_run_id,
            table_name=table_name,
            rows_loaded=None,
            rows_rejected=None,
            status=RunStatus.RUNNING.value,
            reason=None,
            started_at=utcnow(),
            finished_at=None,
            run_id=run_id,
        )
        self.session.add(row)
        self.session.flush()
        return _to_export(row)

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
        row = self._locked(ExportRow, export_id)
        check_finish(f"export {row.id}", RunStatus(row.status), status)
        row.status = status.value
        row.rows_loaded = rows_loaded
        row.rows_rejected = rows_rejected
        row.reason = None if reason is None else one_line(reason)
        row.finished_at = utcnow()
        self.session.flush()
        return _to_export(row)

    def get(self, export_id: int) -> Export:
        """The load with this id."""
        row = self._row(ExportRow, export_id)
        return _to_export(row)

    def for_pipeline(self, pipeline: str, inference_run_id: int | None = None) -> list[Export]:
        """Loads by id."""
        stmt = select(ExportRow).where(ExportRow.pipeline == pipeline)
        if inference_run_id is not None:
            stmt = stmt.where(ExportRow.inference_run_id == inference_run_id)
        return [_to_export(row) for row in self.session.scalars(stmt.order_by(ExportRow.id))]


class SqlAlchemyRunRepository(_SqlRepository):
    """Step runs in PostgreSQL or SQLite."""

    def start(self, pipeline: str, step: str) -> Run:
        """A running step."""
        row = RunRow(
            pipeline=pipeline,
            step=step,
            status=RunStatus.RUNNING.value,
            started_at=utcnow(),
            finished_at=None,
            summary=None,
        )
        self.session.add(row)
        self.session.flush()
        return _to_run(row)

    def finish(self, run_id: int, status: RunStatus, summary: dict[str, Any] | None = None) -> Run:
        """Close a running step."""
        row = self._locked(RunRow, run_id)
        check_finish(f"run {row.id}", RunStatus(row.status), status)
        row.status = status.value
        row.summary = json_document(summary)
        row.finished_at = utcnow()
        self.session.flush()
        return _to_run(row)

    def get(self, run_id: int) -> Run:
        """The run with this id."""
        row = self._row(RunRow, run_id)
        return _to_run(row)

    def for_pipeline(self, pipeline: str, step: str | None = None) -> list[Run]:
        """Runs by id."""
        stmt = select(RunRow).where(RunRow.pipeline == pipeline)
        if step is not None:
            stmt = stmt.where(RunRow.step == step)
        return [_to_run(row) for row in self.session.scalars(stmt.order_by(RunRow.id))]


class SqlAlchemyHistoryRepository(_SqlRepository):
    """Catalog history reads in PostgreSQL or SQLite: one row of positions, one per machine."""

    def get(self, pipeline: str, source: str) -> AnnouncedHistory:
        """The history read so far from ``source``; empty when never read."""
        read = self.session.scalars(
            select(HistoryReadRow).where(
                HistoryReadRow.pipeline == pipeline, HistoryReadRow.source == source
            )
        ).one_or_none()
        machines = self.session.scalars(
            select(MachineHistoryRow).where(
                MachineHistoryRow.pipeline == pipeline, MachineHistoryRow.source == source
            )
        ).all()
        return AnnouncedHistory(
            source,
            {int(k): int(v) for k, v in (read.positions if read else {}).items()},
            {m.machine_uuid: tuple((float(a), float(b)) for a, b in m.intervals) for m in machines},
        )

    def put(self, pipeline: str, history: AnnouncedHistory) -> None:
        """Replace the positions and the intervals of every machine that changed."""
        now = utcnow()
        source = history.source
        read = self.session.scalars(
            select(HistoryReadRow)
            .where(HistoryReadRow.pipeline == pipeline, HistoryReadRow.source == source)
            .with_for_update()
        ).one_or_none()
        positions = {str(k): int(v) for k, v in sorted(history.positions.items())}
        if read is None:
            self.session.add(
                HistoryReadRow(
                    pipeline=pipeline, source=source, positions=positions, updated_at=now
                )
            )
        else:
            read.positions, read.updated_at = positions, now
        rows = {
            row.machine_uuid: row
            for row in self.session.scalars(
                select(MachineHistoryRow).where(
                    MachineHistoryRow.pipeline == pipeline, MachineHistoryRow.source == source
                )
            )
        }
        for machine, intervals in sorted(history.intervals.items()):
            stored = [[first, last] for first, last in intervals]
            row = rows.get(machine)
            if row is None:
                self.session.add(
                    MachineHistoryRow(
                        pipeline=pipeline,
                        source=source,
                        machine_uuid=machine,
                        seconds=history.seconds(machine),
                        intervals=stored,
                        updated_at=now,
                    )
                )
            elif row.intervals != stored:
                row.intervals, row.seconds, row.updated_at = stored, history.seconds(machine), now
        self.session.flush()
