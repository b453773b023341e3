"""Adaptors: our inference Delta rows -> the external results tables (results contract).

The contract (``shared/contracts/results.md``) is declared once here, as
:data:`MACHINE_ACTIVITY` and :data:`MACHINE_CYCLE`: the column order and
PostgreSQL types that :mod:`etl.export.jdbc` creates and loads, and the Spark
types the adaptors produce. The adaptors only rename, convert epoch seconds to
timestamps, cast doubles to ``real`` precision and add the pipeline; they keep
every row, good or bad, because rejecting is the quality checks' job
(:mod:`etl.export.checks`) and a rejected row must still be reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from etl.infer.schema import PHASE_COLUMNS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class ResultColumn:
    """One column of an external table: its PostgreSQL and Spark types."""

    name: str
    pg_type: str
    spark_type: str
    nullable: bool = True


@dataclass(frozen=True)
class ResultTable:
    """An external results table: columns in contract order, primary key, time key."""

    name: str
    columns: tuple[ResultColumn, ...]
    key: tuple[str, ...]
    time_column: str
    """The key's time column: what the export's per-machine cut applies to."""

    @property
    def column_names(self) -> tuple[str, ...]:
        """Every column, in contract order."""
        return tuple(c.name for c in self.columns)


def _col(name: str, pg_type: str, nullable: bool = True) -> ResultColumn:
    spark_type = {
        "text": "string",
        "uuid": "string",
        "timestamptz": "timestamp",
        "real": "float",
        "double precision": "double",
        "boolean": "boolean",
    }[pg_type]
    return ResultColumn(name, pg_type, spark_type, nullable)


_IDENTITY = (
    _col("pipeline", "text", nullable=False),
    _col("machine_uuid", "uuid", nullable=False),
    _col("machine_type", "text", nullable=False),
)

MACHINE_ACTIVITY = ResultTable(
    name="machine_activity",
    columns=(
        *_IDENTITY,
        _col("start_time", "timestamptz", nullable=False),
        _col("end_time", "timestamptz", nullable=False),
        _col("activity", "text", nullable=False),
        _col("confidence", "real", nullable=False),
        _col("model_version", "text"),
    ),
    key=("pipeline", "machine_uuid", "start_time"),
    time_column="start_time",
)
"""``machine_activity``: one row per activity segment."""

MACHINE_CYCLE = ResultTable(
    name="machine_cycle",
    columns=(
        *_IDENTITY,
        _col("cycle_start", "timestamptz", nullable=False),
        _col("cycle_end", "timestamptz", nullable=False),
        _col("duration_s", "real", nullable=False),
        *(_col(c, "real") for c in PHASE_COLUMNS),
        _col("distance_loaded_m", "real"),
        _col("distance_empty_m", "real"),
        _col("avg_speed_loaded_kmh", "real"),
        _col("avg_speed_empty_kmh", "real"),
        _col("load_lat", "double precision"),
        _col("load_lon", "double precision"),
        _col("dump_lat", "double precision"),
        _col("dump_lon", "double precision"),
        _col("is_complete", "boolean"),
        _col("data_coverage", "real"),
        _col("model_version", "text"),
    ),
    key=("pipeline", "machine_uuid", "cycle_start"),
    time_column="cycle_start",
)
"""``machine_cycle``: one row per work cycle, every type's ``<activity>_s`` column."""

RESULT_TABLES: dict[str, ResultTable] = {t.name: t for t in (MACHINE_ACTIVITY, MACHINE_CYCLE)}
"""The external tables by name (the ``table_name`` of the state store's exports)."""

_EPOCH_COLUMNS = {
    "start_time": "start",
    "end_time": "end",
    "cycle_start": "cycle_start",
    "cycle_end": "cycle_end",
}
"""Contract timestamp column -> our epoch-seconds column."""


def _adapt(rows: DataFrame, table: ResultTable, pipeline: str) -> DataFrame:
    """Select ``table``'s columns from ``rows``: same names, epoch seconds to timestamps."""
    from pyspark.sql import functions as F

    columns = []
    for column in table.columns:
        if column.name == "pipeline":
            value = F.lit(pipeline)
        elif column.name in _EPOCH_COLUMNS:
            value = F.timestamp_seconds(F.col(_EPOCH_COLUMNS[column.name]))
        else:
            value = F.col(column.name)
        columns.append(value.cast(column.spark_type).alias(column.name))
    return rows.select(*columns)


def activity_rows(segments: DataFrame, pipeline: str) -> DataFrame:
    """Segments rows (:func:`etl.infer.schema.segments_schema`) as ``machine_activity`` rows."""
    return _adapt(segments, MACHINE_ACTIVITY, pipeline)


def cycle_rows(cycles: DataFrame, pipeline: str) -> DataFrame:
    """Cycles rows (:func:`etl.infer.schema.cycles_schema`) as ``machine_cycle`` rows."""
    return _adapt(cycles, MACHINE_CYCLE, pipeline)
