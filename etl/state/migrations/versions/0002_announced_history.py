"""What a pipeline has read of its catalog's history: positions and per-machine coverage.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    """Create ``history_reads`` and ``machine_history``."""
    op.create_table(
        "history_reads",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("positions", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history_reads"),
        sa.UniqueConstraint("pipeline", "source", name="uq_history_reads_pipeline_source"),
    )
    op.create_table(
        "machine_history",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("machine_uuid", sa.String(64), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("intervals", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_machine_history"),
        sa.UniqueConstraint(
            "pipeline",
            "source",
            "machine_uuid",
            name="uq_machine_history_pipeline_source_machine_uuid",
        ),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("machine_history")
    op.drop_table("history_reads")
