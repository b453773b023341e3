"""What the state store remembers, as plain immutable records, and the rules it keeps.

Repositories hand out these frozen dataclasses rather than ORM rows so that a
pipeline step can keep using them after its unit of work has closed, and so
that the in-memory fake and the SQL adapters return exactly the same thing.
The lifecycle of a raw batch is a small state machine; it lives here, once,
and both adapters enforce it through :func:`check_transition`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

MAX_REASON_CHARS = 1000
"""Reasons are for people reading ``etl status``; longer ones are cut."""


class BatchStatus(StrEnum):
    """Where a raw file is in the pipeline (shared/contracts/cli.md fixes these values)."""

    DISCOVERED = "discovered"
    REJECTED = "rejected"
    PREPROCESSED = "preprocessed"
    INFERRED = "inferred"
    EXPORTED = "exported"


PENDING_STATUSES = frozenset(
    {BatchStatus.DISCOVERED, BatchStatus.PREPROCESSED, BatchStatus.INFERRED}
)
"""Statuses of a batch that still has work ahead of it (the backlog an operator watches)."""


class BatchSource(StrEnum):
    """How a batch became known: a Kafka announcement or a listing of the raw store."""

    KAFKA = "kafka"
    LISTING = "listing"


class ModelStatus(StrEnum):
    """The role of a trained model: at most one champion per pipeline and machine type."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"
    RETIRED = "retired"


class RunStatus(StrEnum):
    """Outcome of a pipeline step run, an inference run or an export."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TRANSITIONS: dict[BatchStatus, frozenset[BatchStatus]] = {
    BatchStatus.DISCOVERED: frozenset({BatchStatus.REJECTED, BatchStatus.PREPROCESSED}),
    BatchStatus.REJECTED: frozenset(),
    BatchStatus.PREPROCESSED: frozenset({BatchStatus.INFERRED}),
    BatchStatus.INFERRED: frozenset({BatchStatus.INFERRED, BatchStatus.EXPORTED}),
    BatchStatus.EXPORTED: frozenset({BatchStatus.INFERRED, BatchStatus.EXPORTED}),
}
"""Allowed moves. Re-scoring (``inferred``/``exported`` -> ``inferred``) is allowed
because a new champion model re-scores data that was already exported; anything
that has to redo preprocessing, including leaving ``rejected``, goes through
``reset`` so that it is a deliberate operator action that bumps ``attempts``."""


class StateError(Exception):
    """Base of the state store's errors."""


class NotFoundError(StateError, LookupError):
    """A row that the caller named by id does not exist."""

    def __init__(self, table: str, row_id: int) -> None:
        super().__init__(f"no {table} row with id {row_id}")
        self.table = table
        self.row_id = row_id


class IllegalTransitionError(StateError):
    """A status change the lifecycle does not allow (for example rejected -> preprocessed)."""

    def __init__(self, what: str, current: str, target: str) -> None:
        super().__init__(f"{what}: cannot go from {current} to {target}")
        self.what = what
        self.current = current
        self.target = target


def check_transition(key: str, current: BatchStatus, target: BatchStatus) -> None:
    """Raise :class:`IllegalTransitionError` unless batch ``key`` may move to ``target``."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransitionError(f"batch {key}", current, target)


def one_line(reason: str) -> str:
    """A reason as one trimmed line, so status listings stay one row per batch.

    Raises:
        ValueError: the reason is empty; a rejection must say why.

    """
    line = " ".join(reason.split())
    if not line:
        raise ValueError("a reason must not be empty")
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"


def json_document(value: Any) -> Any:
    """``value`` as plain JSON that PostgreSQL's JSONB and SQLite both store alike.

    Quality reports and metrics come from pandas and numpy: NaN and infinities
    (which JSONB rejects) become None, numpy scalars become Python numbers,
    tuples become lists and datetimes ISO strings.

    Raises:
        TypeError: something with no JSON form (the message names its type).

    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_document(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_document(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return json_document(value.item())
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


def unique_new_batches(records: Iterable[NewBatch]) -> list[NewBatch]:
    """One record per (pipeline, key), the first seen, sorted by (pipeline, key).

    The sort is what keeps concurrent discoveries deadlock-free on PostgreSQL:
    every transaction takes the unique-index locks in the same order.
    """
    seen: dict[tuple[str, str], NewBatch] = {}
    for record in records:
        seen.setdefault((record.pipeline, record.key), record)
    return [seen[pair] for pair in sorted(seen)]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the store never holds naive times)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewBatch:
    """A raw file as discovery sees it, before the store has given it an id.

    Times of data (``first_timestamp``, ``last_timestamp``) are unix seconds
    like the raw files; wall-clock times of bookkeeping are aware datetimes.
    """

    pipeline: str
    machine_uuid: str
    key: str
    url: str
    source: BatchSource
    first_timestamp: float | None = None
    last_timestamp: float | None = None
    rows: int | None = None
    size_bytes: int | None = None
    etag: str | None = None
    content_hash: str | None = None
    kafka_partition: int | None = None
    kafka_offset: int | None = None
    announced_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a batch needs a key")
        object.__setattr__(self, "source", BatchSource(self.source))


@dataclass(frozen=True)
class Batch:
    """One raw file and everything the pipeline decided about it."""

    id: int
    pipeline: str
    machine_uuid: str
    key: str
    url: str
    source: BatchSource
    status: BatchStatus
    first_timestamp: float | None
    last_timestamp: float | None
    rows: int | None
    size_bytes: int | None
    etag: str | None
    content_hash: str | None
    reason: str | None
    warnings: tuple[str, ...]
    quality: dict[str, Any] | None
    duplicate_of: int | None
    kafka_partition: int | None
    kafka_offset: int | None
    announced_at: datetime | None
    discovered_at: datetime
    updated_at: datetime
    delta_version: int | None
    run_id: int | None
    attempts: int


@dataclass(frozen=True)
class BatchHealth:
    """What an operator alerts on, from the batches of one pipeline.

    Aggregates rather than rows, so that a job can report them every tick
    for a fleet of hundreds of machines without reading every batch.
    """

    by_status: dict[BatchStatus, int]
    oldest_pending_at: datetime | None
    """When the oldest batch not yet exported (nor rejected) was discovered."""
    discovered_since: int
    """Batches discovered at or after the window's start."""
    rejected_since: int
    """Of those, how many are rejected now."""
    newest_exported: dict[str, float]
    """Per machine: the last data second (epoch s) of its exported batches."""


@dataclass(frozen=True)
class BatchEvent:
    """One status change of a batch: the audit trail behind ``batch_history``."""

    id: int
    batch_id: int
    run_id: int | None
    at: datetime
    from_status: BatchStatus | None
    to_status: BatchStatus
    reason: str | None


CONTIGUOUS_GAP_S = 1.0
"""Announced ranges closer than this are one stretch of data: a file ends at its last
sample and the next file starts one sample period (at most a second) later."""


def merge_intervals(
    *groups: Iterable[tuple[float, float]], gap_s: float = CONTIGUOUS_GAP_S
) -> tuple[tuple[float, float], ...]:
    """The union of ``[first, last]`` intervals, sorted; ranges less than ``gap_s`` apart join.

    The rule :func:`etl.train.plan.covered_seconds` counts by, so a history kept merged
    loses nothing when announcements are added to it later, and a machine's steady
    stream of files is one interval, not one per file.
    """
    merged: list[list[float]] = []
    for first, last in sorted(i for group in groups for i in group):
        if merged and first < merged[-1][1] + gap_s:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple((first, last) for first, last in merged)


@dataclass(frozen=True)
class AnnouncedHistory:
    """How far a pipeline has read its catalog's history, and the time it announced per machine.

    ``positions`` is the next offset to read per partition (empty: from the start, or a
    catalog without offsets, which is read whole each time); ``intervals`` per machine
    are the merged ``[first, last]`` announced time ranges. Kept in the state store so
    that judging whether there is enough data reads only what was announced since.
    """

    source: str
    positions: dict[int, int] = field(default_factory=dict)
    intervals: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)

    def seconds(self, machine_uuid: str) -> float:
        """Seconds announced for one machine (overlaps and re-sent files once)."""
        return sum(last - first for first, last in self.intervals.get(machine_uuid, ()))

    def extended(
        self, announced: Iterable[tuple[str, float, float]], positions: dict[int, int]
    ) -> AnnouncedHistory:
        """This history plus new ``(machine, first, last)`` ranges, read up to ``positions``."""
        new: dict[str, list[tuple[float, float]]] = {}
        for machine, first, last in announced:
            new.setdefault(machine, []).append((first, last))
        intervals = dict(self.intervals)
        for machine, ranges in new.items():
            intervals[machine] = merge_intervals(intervals.get(machine, ()), ranges)
        return AnnouncedHistory(self.source, {**self.positions, **positions}, intervals)


@dataclass(frozen=True)
class Run:
    """One execution of a pipeline step (discover, preprocess, ...)."""

    id: int
    pipeline: str
    step: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] | None


@dataclass(frozen=True)
class BatchHistory:
    """What happened to one file: its row, every status change, and the runs involved."""

    batch: Batch
    events: tuple[BatchEvent, ...]
    runs: tuple[Run, ...]


@dataclass(frozen=True)
class NewModel:
    """A trained model to register; the store assigns its version."""

    pipeline: str
    machine_type: str
    mlflow_run_id: str | None = None
    registry_name: str | None = None
    registry_version: str | None = None
    url: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    data_from: float | None = None
    data_to: float | None = None
    trained_at: datetime | None = None


@dataclass(frozen=True)
class ModelVersion:
    """A registered model: version counts 1, 2, ... per pipeline and machine type."""

    id: int
    pipeline: str
    machine_type: str
    version: int
    mlflow_run_id: str | None
    registry_name: str | None
    registry_version: str | None
    url: str | None
    metrics: dict[str, Any]
    data_from: float | None
    data_to: float | None
    trained_at: datetime
    status: ModelStatus
    reason: str | None


@dataclass(frozen=True)
class InferenceRun:
    """One scoring pass of a model over a time range of StateVectors."""

    id: int
    pipeline: str
    machine_uuid: str | None
    model_id: int
    ts_from: float | None
    ts_to: float | None
    input_versions: dict[str, Any]
    output_url: str | None
    rows: int | None
    status: RunStatus
    reason: str | None
    started_at: datetime
    finished_at: datetime | None
    run_id: int | None


@dataclass(frozen=True)
class Export:
    """One load of results into a table of the external results database."""

    id: int
    pipeline: str
    inference_run_id: int | None
    table_name: str
    rows_loaded: int | None
    rows_rejected: int | None
    status: RunStatus
    reason: str | None
    started_at: datetime
    finished_at: datetime | None
    run_id: int | None


def check_finish(what: str, current: RunStatus, target: RunStatus) -> None:
    """Only a running run/inference/export can finish, and only as succeeded or failed."""
    if target is RunStatus.RUNNING:
        raise ValueError(f"{what}: finish with succeeded or failed, not running")
    if current is not RunStatus.RUNNING:
        raise IllegalTransitionError(what, current, target)


def overlaps(batch: Batch, ts_from: float | None, ts_to: float | None) -> bool:
    """Whether the batch's data touches ``[ts_from, ts_to)``; the SQL adapter mirrors this.

    A batch without a known first timestamp matches no time filter; one
    without a last timestamp is taken as the instant it starts.
    """
    if ts_from is None and ts_to is None:
        return True
    if batch.first_timestamp is None:
        return False
    end = batch.last_timestamp if batch.last_timestamp is not None else batch.first_timestamp
    return (ts_to is None or batch.first_timestamp < ts_to) and (ts_from is None or end >= ts_from)
