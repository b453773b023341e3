"""The postprocessor: inference Delta rows -> the external results database.

:mod:`etl.export.adapt` converts our rows to the results contract's tables,
:mod:`etl.export.checks` judges them, and a :class:`ResultsSink` (in
production :class:`etl.export.jdbc.ResultsDatabase`, Spark's JDBC writer into
PostgreSQL) loads the good rows and quarantines the bad ones in one
transaction; :func:`etl.steps.export.export` wires them to the state store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class LoadResult:
    """What one load did: rows upserted, rows quarantined, and how often each rule failed."""

    rows_loaded: int
    rows_rejected: int
    reasons: dict[str, int] = field(default_factory=dict)


class ResultsSink(Protocol):
    """Where checked results go: the target tables and a quarantine for rejected rows."""

    def ensure_tables(self) -> None:
        """Create the contract's tables and the quarantine if they do not exist."""
        ...

    def load(
        self,
        frame: DataFrame,
        table: str,
        *,
        pipeline: str,
        cuts: Mapping[str, int],
        export_id: int,
    ) -> LoadResult:
        """Replace the pipeline's rows from each machine's cut with ``frame``, atomically.

        Rows with a ``reject_reason`` go to the quarantine instead of ``table``.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


__all__ = ["LoadResult", "ResultsSink"]
