"""The state store's ports: one Protocol per kind of record, and where the adapters live.

Pipeline steps depend on these Protocols only. They get the SQLAlchemy
adapters of :mod:`etl.state.sql` (PostgreSQL or SQLite) in production and
those of :mod:`etl.state.fakes` in unit tests; both pass the one contract
suite in ``tests/contracts/state_store.py``. Every method returns the frozen
records of :mod:`etl.state.domain`, never ORM rows, so nothing a step holds
changes or expires behind its back when its unit of work ends.

Repositories never commit; the unit of work does (``with uow: ...;
uow.commit()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from etl.state.domain import (
    AnnouncedHistory,
    Batch,
    BatchHealth,
    BatchHistory,
    BatchStatus,
    Export,
    InferenceRun,
    ModelVersion,
    NewBatch,
    NewModel,
    Run,
    RunStatus,
)
from etl.state.sql import (
    SqlAlchemyBatchRepository,
    SqlAlchemyExportRepository,
    SqlAlchemyInferenceRunRepository,
    SqlAlchemyModelRepository,
    SqlAlchemyRunRepository,
)
from etl.state.transitions import Move

__all__ = [
    "BatchRepository",
    "ExportRepository",
    "InferenceRunRepository",
    "ModelRepository",
    "RunRepository",
    "SqlAlchemyBatchRepository",
    "SqlAlchemyExportRepository",
    "SqlAlchemyInferenceRunRepository",
    "SqlAlchemyModelRepository",
    "SqlAlchemyRunRepository",
]


class BatchRepository(Protocol):
    """Raw files and their lifecycle: discovered -> preprocessed -> inferred -> exported."""

    def add_discovered(self, records: Iterable[NewBatch], run_id: int | None = None) -> list[Batch]:
        """Register files not seen before; the same (pipeline, key) again is ignored.

        Safe against concurrent discovery of the same file: exactly one
        caller gets it back as new. Returns the new batches, oldest id first.
        """
        ...

    def get(self, batch_id: int) -> Batch:
        """The batch with this id; NotFoundError otherwise."""
        ...

    def by_key(self, pipeline: str, key: str) -> Batch | None:
        """The batch stored under this object key, if registered."""
        ...

    def by_status(
        self, pipeline: str, status: BatchStatus, limit: int | None = None
    ) -> list[Batch]:
        """Batches in ``status``, first discovered first (a fair work queue)."""
        ...

    def by_machine(
        self, pipeline: str, machine_uuid: str, status: BatchStatus | None = None
    ) -> list[Batch]:
        """One machine's batches in data order (first timestamp, unknown last, then id)."""
        ...

    def by_content_hash(self, pipeline: str, content_hash: str) -> list[Batch]:
        """Batches whose bytes hash to ``content_hash`` (the same file under other keys)."""
        ...

    def by_content_hashes(self, pipeline: str, hashes: Iterable[str]) -> dict[str, list[Batch]]:
        """:meth:`by_content_hash` for many hashes in one go (hashes without a batch left out)."""
        ...

    def for_pipeline(self, pipeline: str) -> list[Batch]:
        """Every batch of the pipeline, by id."""
        ...

    def count_by_status(self, pipeline: str) -> dict[BatchStatus, int]:
        """How many batches are in each status (statuses with none are left out)."""
        ...

    def health(self, pipeline: str, since: datetime) -> BatchHealth:
        """Backlog, rejections since ``since`` and data freshness per machine (for metrics)."""
        ...

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
        """Store facts read from the file itself; None leaves a fact as it was."""
        ...

    def move_many(self, moves: Sequence[Move], *, run_id: int | None = None) -> list[Batch]:
        """Apply many status changes at once (:mod:`etl.state.transitions` builds them)."""
        ...

    def mark_rejected(
        self,
        batch_id: int,
        reason: str,
        *,
        run_id: int | None = None,
        warnings: Sequence[str] = (),
        quality: dict[str, Any] | None = None,
    ) -> Batch:
        """Discovered -> rejected, with a one-line reason for ``etl status``."""
        ...

    def mark_duplicate(self, batch_id: int, of_id: int, *, run_id: int | None = None) -> Batch:
        """Discovered -> rejected as ``duplicate of {key}`` of batch ``of_id``."""
        ...

    def mark_preprocessed(
        self,
        batch_id: int,
        *,
        delta_version: int,
        warnings: Sequence[str] = (),
        quality: dict[str, Any] | None = None,
        run_id: int | None = None,
    ) -> Batch:
        """Discovered -> preprocessed, with the StateVectors Delta version it wrote."""
        ...

    def mark_status(
        self, batch_id: int, status: BatchStatus, *, run_id: int | None = None
    ) -> Batch:
        """Move to ``inferred`` or ``exported`` (the other statuses have their own method)."""
        ...

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
        """Send matching batches back to ``discovered`` (``etl reprocess``); how many moved.

        Filters combine with AND; the time filter keeps batches whose data
        overlaps ``[ts_from, ts_to)`` (unix seconds). Reason, warnings,
        quality, duplicate_of and delta_version are cleared and ``attempts``
        goes up by one. Batches already ``discovered`` are left alone.
        """
        ...

    def history(self, pipeline: str, key: str) -> BatchHistory | None:
        """What happened to this file: its row, its status changes and the runs behind them."""
        ...


class ModelRepository(Protocol):
    """Trained models and which one is the champion per pipeline and machine type."""

    def add(self, model: NewModel) -> ModelVersion:
        """Register a challenger with the next version number of its pipeline and type."""
        ...

    def get(self, model_id: int) -> ModelVersion:
        """The model with this id; NotFoundError otherwise."""
        ...

    def champion(self, pipeline: str, machine_type: str) -> ModelVersion | None:
        """The model inference should use, if any was promoted."""
        ...

    def set_champion(self, model_id: int, reason: str | None = None) -> ModelVersion:
        """Promote this model; the previous champion becomes a challenger."""
        ...

    def retire(self, model_id: int, reason: str) -> ModelVersion:
        """Take a model out of use for good (it keeps its row and version)."""
        ...

    def for_pipeline(self, pipeline: str, machine_type: str | None = None) -> list[ModelVersion]:
        """The pipeline's models by id, optionally of one machine type."""
        ...


class InferenceRunRepository(Protocol):
    """Scoring passes: which model scored which StateVectors versions, and the outcome."""

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
        """Record a pass as running before it writes anything."""
        ...

    def finish(
        self,
        inference_run_id: int,
        status: RunStatus,
        *,
        rows: int | None = None,
        output_url: str | None = None,
        reason: str | None = None,
    ) -> InferenceRun:
        """Close a running pass as succeeded or failed."""
        ...

    def get(self, inference_run_id: int) -> InferenceRun:
        """The pass with this id; NotFoundError otherwise."""
        ...

    def for_pipeline(
        self, pipeline: str, machine_uuid: str | None = None, status: RunStatus | None = None
    ) -> list[InferenceRun]:
        """The pipeline's passes by id, optionally of one machine and status."""
        ...


class ExportRepository(Protocol):
    """Loads into the external results database."""

    def start(
        self,
        pipeline: str,
        table_name: str,
        *,
        inference_run_id: int | None = None,
        run_id: int | None = None,
    ) -> Export:
        """Record a load as running before it writes anything."""
        ...

    def finish(
        self,
        export_id: int,
        status: RunStatus,
        *,
        rows_loaded: int | None = None,
        rows_rejected: int | None = None,
        reason: str | None = None,
    ) -> Export:
        """Close a running load as succeeded or failed."""
        ...

    def get(self, export_id: int) -> Export:
        """The load with this id; NotFoundError otherwise."""
        ...

    def for_pipeline(self, pipeline: str, inference_run_id: int | None = None) -> list[Export]:
        """The pipeline's loads by id, optionally of one inference run."""
        ...


class RunRepository(Protocol):
    """Executions of pipeline steps, so every change can be traced to one."""

    def start(self, pipeline: str, step: str) -> Run:
        """Record a step as running (commit at once, so a crash leaves a trace)."""
        ...

    def finish(self, run_id: int, status: RunStatus, summary: dict[str, Any] | None = None) -> Run:
        """Close a running step as succeeded or failed, with what it did."""
        ...

    def get(self, run_id: int) -> Run:
        """The run with this id; NotFoundError otherwise."""
        ...

    def for_pipeline(self, pipeline: str, step: str | None = None) -> list[Run]:
        """The pipeline's runs by id, optionally of one step."""
        ...


class HistoryRepository(Protocol):
    """What each pipeline has read of its catalog's history (:class:`AnnouncedHistory`)."""

    def get(self, pipeline: str, source: str) -> AnnouncedHistory:
        """The history read so far from ``source``; empty when never read."""
        ...

    def put(self, pipeline: str, history: AnnouncedHistory) -> None:
        """Keep ``history`` as the pipeline's read of its source (replacing the earlier one)."""
        ...
