"""The initial state store: runs, batches, batch events, models, inference runs, exports.

Written by hand, not imported from ``etl.state.models``: a revision must keep
creating the schema it created on the day it was written, whatever the models
become later. ``tests/unit/test_state_migrate.py`` checks that head and the
models agree.

Revision ID: 0001
Revises:
Create Date: 2026-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
RUN_STATUS = "status IN ('running', 'succeeded', 'failed')"


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the six tables and their indexes."""
    op.create_table(
        "runs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("finished_at", _when(), nullable=True),
        sa.Column("summary", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.CheckConstraint(RUN_STATUS, name="ck_runs_status"),
    )
    op.create_index("ix_runs_pipeline_step_id", "runs", ["pipeline", "step", "id"])

    op.create_table(
        "batches",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("machine_uuid", sa.String(64), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_timestamp", sa.Double(), nullable=True),
        sa.Column("last_timestamp", sa.Double(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("etag", sa.String(128), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("warnings", JSON, nullable=False),
        sa.Column("quality", JSON, nullable=True),
        sa.Column("duplicate_of", ID, nullable=True),
        sa.Column("kafka_partition", sa.Integer(), nullable=True),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=True),
        sa.Column("announced_at", _when(), nullable=True),
        sa.Column("discovered_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("delta_version", sa.BigInteger(), nullable=True),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.UniqueConstraint("pipeline", "key", name="uq_batches_pipeline_key"),
        sa.CheckConstraint(
            "status IN ('discovered', 'rejected', 'preprocessed', 'inferred', 'exported')",
            name="ck_batches_status",
        ),
        sa.CheckConstraint("source IN ('kafka', 'listing')", name="ck_batches_source"),
        sa.ForeignKeyConstraint(
            ["duplicate_of"], ["batches.id"], name="fk_batches_duplicate_of_batches"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_batches_run_id_runs"),
    )
    op.create_index("ix_batches_pipeline_status_id", "batches", ["pipeline", "status", "id"])
    op.create_index(
        "ix_batches_pipeline_machine_uuid_first_timestamp",
        "batches",
        ["pipeline", "machine_uuid", "first_timestamp"],
    )
    op.create_index("ix_batches_pipeline_content_hash", "batches", ["pipeline", "content_hash"])

    op.create_table(
        "batch_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("batch_id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("at", _when(), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_batch_events"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_batch_events_batch_id_batches"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_batch_events_run_id_runs"),
    )
    op.create_index("ix_batch_events_batch_id_id", "batch_events", ["batch_id", "id"])

    op.create_table(
        "models",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("machine_type", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("registry_name", sa.String(256), nullable=True),
        sa.Column("registry_version", sa.String(64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("data_from", sa.Double(), nullable=True),
        sa.Column("data_to", sa.Double(), nullable=True),
        sa.Column("trained_at", _when(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.UniqueConstraint(
            "pipeline", "machine_type", "version", name="uq_models_pipeline_machine_type_version"
        ),
        sa.CheckConstraint(
            "status IN ('champion', 'challenger', 'retired')", name="ck_models_status"
        ),
    )
    op.create_index(
        "uq_models_one_champion",
        "models",
        ["pipeline", "machine_type"],
        unique=True,
        postgresql_where=sa.text("status = 'champion'"),
        sqlite_where=sa.text("status = 'champion'"),
    )

    op.create_table(
        "inference_runs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("machine_uuid", sa.String(64), nullable=True),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("ts_from", sa.Double(), nullable=True),
        sa.Column("ts_to", sa.Double(), nullable=True),
        sa.Column("input_versions", JSON, nullable=False),
        sa.Column("output_url", sa.Text(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("finished_at", _when(), nullable=True),
        sa.Column("run_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inference_runs"),
        sa.CheckConstraint(RUN_STATUS, name="ck_inference_runs_status"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_inference_runs_model_id_models"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_inference_runs_run_id_runs"),
    )
    op.create_index(
        "ix_inference_runs_pipeline_machine_uuid_id",
        "inference_runs",
        ["pipeline", "machine_uuid", "id"],
    )

    op.create_table(
        "exports",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("inference_run_id", ID, nullable=True),
        sa.Column("table_name", sa.String(128), nullable=False),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=True),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("finished_at", _when(), nullable=True),
        sa.Column("run_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_exports"),
        sa.CheckConstraint(RUN_STATUS, name="ck_exports_status"),
        sa.ForeignKeyConstraint(
            ["inference_run_id"],
            ["inference_runs.id"],
            name="fk_exports_inference_run_id_inference_runs",
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_exports_run_id_runs"),
    )
    op.create_index("ix_exports_pipeline_id", "exports", ["pipeline", "id"])


def downgrade() -> None:
    """Drop everything, children first."""
    for table in ("exports", "inference_runs", "models", "batch_events", "batches", "runs"):
        op.drop_table(table)
