"""The state store's tables as SQLAlchemy 2 typed declarative models.

The same models serve PostgreSQL (production) and SQLite (embedded), so only
portable types are used: ids are BIGINT on PostgreSQL but INTEGER on SQLite
(the only type SQLite auto-increments), JSON is JSONB on PostgreSQL, and
timestamps go through :class:`UtcDateTime` because SQLite forgets time zones.
Data times (the batch's first and last sample, a model's training range) are
unix seconds like the raw files; bookkeeping times are aware datetimes.

The schema itself is created by the Alembic migrations in
``etl/state/migrations``; these models must stay in step with them (a unit
test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from etl.state.domain import BatchSource, BatchStatus, ModelStatus, RunStatus

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Stable constraint names, so later migrations can alter them on both databases."""

Id = BigInteger().with_variant(Integer(), "sqlite")
"""Primary and foreign keys: BIGINT, but INTEGER on SQLite so rowid auto-increments."""

Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
"""JSON documents; SQL NULL (not JSON ``null``) for None."""


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every database.

    PostgreSQL keeps the instant (``timestamptz``) but answers in the session's
    time zone; SQLite keeps text and drops the zone. Normalising to UTC on both
    sides makes the adapters return identical values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes: a time without a zone is a bug upstream."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the state store needs aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to SQLite's naive values and convert PostgreSQL's to UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_of(column: str, values: type[Any]) -> str:
    """A CHECK expression limiting ``column`` to the values of a StrEnum."""
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


class Base(DeclarativeBase):
    """Declarative base with the naming convention and the portable JSON type."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: Json, list[str]: Json, datetime: UtcDateTime()}


class RunRow(Base):
    """One execution of a pipeline step."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RunStatus), name="status"),
        Index(None, "pipeline", "step", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    summary: Mapped[dict[str, Any] | None]


class BatchRow(Base):
    """One raw file per row; unique per pipeline and object key."""

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("pipeline", "key"),
        CheckConstraint(_one_of("status", BatchStatus), name="status"),
        CheckConstraint(_one_of("source", BatchSource), name="source"),
        Index(None, "pipeline", "status", "id"),
        Index(None, "pipeline", "machine_uuid", "first_timestamp"),
        Index(None, "pipeline", "content_hash"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(64))
    machine_uuid: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(1024))
    url: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    first_timestamp: Mapped[float | None] = mapped_column(Double)
    last_timestamp: Mapped[float | None] = mapped_column(Double)
    rows: Mapped[int | None] = mapped_column(BigInteger)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    etag: Mapped[str | None] = mapped_column(String(128))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[str]]
    quality: Mapped[dict[str, Any] | None]
    duplicate_of: Mapped[int | None] = mapped_column(Id, ForeignKey("batches.id"))
    kafka_partition: Mapped[int | None] = mapped_column(Integer)
    kafka_offset: Mapped[int | None] = mapped_column(BigInteger)
    announced_at: Mapped[datetime | None]
    discovered_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delta_version: Mapped[int | None] = mapped_column(BigInteger)
    run_id: Mapped[int | None] = mapped_column(Id, ForeignKey("runs.id"))
    attempts: Mapped[int] = mapped_column(Integer)


class BatchEventRow(Base):
    """One status change of a batch, kept forever: the answer to "what happened?"."""

    __tablename__ = "batch_events"
    __table_args__ = (Index(None, "batch_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(Id, ForeignKey("batches.id"))
    run_id: Mapped[int | None] = mapped_column(Id, ForeignKey("runs.id"))
    at: Mapped[datetime]
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)


class ModelRow(Base):
    """A registered model; at most one champion per pipeline and machine type."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("pipeline", "machine_type", "version"),
        CheckConstraint(_one_of("status", ModelStatus), name="status"),
        Index(
            "uq_models_one_champion",
            "pipeline",
            "machine_type",
            unique=True,
            postgresql_where=text("status = 'champion'"),
            sqlite_where=text("status = 'champion'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(64))
    machine_type: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    registry_name: Mapped[str | None] = mapped_column(String(256))
    registry_version: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]]
    data_from: Mapped[float | None] = mapped_column(Double)
    data_to: Mapped[float | None] = mapped_column(Double)
    trained_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)


class InferenceRunRow(Base):
    """One scoring pass of a model over a time range."""

    __tablename__ = "inference_runs"
    __table_args__ = (
        CheckConstraint(_one_of("status", RunStatus), name="status"),
        Index(None, "pipeline", "machine_uuid", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(64))
    machine_uuid: Mapped[str | None] = mapped_column(String(64))
    model_id: Mapped[int] = mapped_column(Id, ForeignKey("models.id"))
    ts_from: Mapped[float | None] = mapped_column(Double)
    ts_to: Mapped[float | None] = mapped_column(Double)
    input_versions: Mapped[dict[str, Any]]
    output_url: Mapped[str | None] = mapped_column(Text)
    rows: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    run_id: Mapped[int | None] = mapped_column(Id, ForeignKey("runs.id"))


class ExportRow(Base):
    """One load into a table of the external results database."""

    __tablename__ = "exports"
    __table_args__ = (
        CheckConstraint(_one_of("status", RunStatus), name="status"),
        Index(None, "pipeline", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(64))
    inference_run_id: Mapped[int | None] = mapped_column(Id, ForeignKey("inference_runs.id"))
    table_name: Mapped[str] = mapped_column(String(128))
    rows_loaded: Mapped[int | None] = mapped_column(BigInteger)
    rows_rejected: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    run_id: Mapped[int | None] = mapped_column(Id, ForeignKey("runs.id"))


class HistoryReadRow(Base):
    """How far a pipeline has read one catalog's history (next offset per partition)."""

    __tablename__ = "history_reads"
    __table_args__ = (UniqueConstraint("pipeline", "source"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(512))
    positions: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class MachineHistoryRow(Base):
    """The time one machine's announcements cover, as merged intervals and in seconds."""

    __tablename__ = "machine_history"
    __table_args__ = (UniqueConstraint("pipeline", "source", "machine_uuid"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(512))
    machine_uuid: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Double)
    intervals: Mapped[list[Any]] = mapped_column(Json)
    updated_at: Mapped[datetime]
