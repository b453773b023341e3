"""What the report reads: the results tables and the state store's JSON, normalised once.

The results database is read with plain SQL (shared/contracts/results.md) so
that the report sees exactly what analysts downstream see, whoever loaded it.
The state comes in as the dict ``etl status --json`` prints, so the report does
not care whether it was read from the state store or from a file.

Everything is normalised here, once: machine UUIDs as lowercase strings (the
PostgreSQL ``uuid`` type arrives as :class:`uuid.UUID`), times as UTC pandas
timestamps (SQLite hands back text), and only the rows of one pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text

from etl.config import ACTIVITIES

ACTIVITY_TABLE = "machine_activity"
CYCLE_TABLE = "machine_cycle"

ACTIVITY_COLUMNS = (
    "machine_uuid",
    "machine_type",
    "start_time",
    "end_time",
    "activity",
    "confidence",
    "model_version",
)
"""The columns of ``machine_activity`` the report uses (``pipeline`` is filtered on)."""

CYCLE_BASE_COLUMNS = (
    "machine_uuid",
    "machine_type",
    "cycle_start",
    "cycle_end",
    "duration_s",
    "is_complete",
    "data_coverage",
    "model_version",
)
"""The columns of ``machine_cycle`` every report needs; ``<activity>_s`` come on top."""

ACCEPTED_STATUSES = frozenset({"preprocessed", "inferred", "exported"})
"""Batch statuses that mean "the file's data is in the StateVectors"."""


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows, for one pipeline, already normalised.

    Attributes:
        pipeline: The pipeline name the rows were filtered on.
        schema: The results schema, named in the page so a reader can find the tables.
        machines: ``(machine_uuid, machine_type)`` in report order: the configured
            assets first, then machines that only the results know.
        activity: ``machine_activity`` rows; times as UTC timestamps.
        cycles: ``machine_cycle`` rows, with every ``<activity>_s`` column present.
        batches: The state's batches of this pipeline (``machine_uuid``, ``key``,
            ``status``, ``reason``, ...).
        models: The state's models of this pipeline, ``metrics`` as a dict.
        tables_found: Whether both results tables exist (a fresh database has none).
        results_configured: False when there is no results database to read.

    """

    pipeline: str
    schema: str
    machines: list[tuple[str, str]]
    activity: pd.DataFrame
    cycles: pd.DataFrame
    batches: pd.DataFrame
    models: list[dict[str, Any]] = field(default_factory=list)
    tables_found: bool = True
    results_configured: bool = True

    @property
    def has_results(self) -> bool:
        """Whether there is any activity or cycle row to plot."""
        return not (self.activity.empty and self.cycles.empty)


def phase_columns(machine_type: str) -> list[str]:
    """The ``<activity>_s`` columns of a machine type, in taxonomy order."""
    return [f"{a}_s" for a in ACTIVITIES.get(machine_type, ())]


def _all_phase_columns() -> list[str]:
    return list(dict.fromkeys(c for t in ACTIVITIES for c in phase_columns(t)))


def results_engine(url: str, schema: str) -> Engine:
    """An engine on the results database in which ``{schema}.<table>`` resolves.

    PostgreSQL needs nothing. SQLite has no schemas: the embedded convention is
    one database file per schema next to the main file (``results.db`` and
    ``mining_insights.db`` in the same folder), attached under the schema's name
    on every connection. A missing file is not created (reading must not write);
    the tables then simply do not exist and the report says so.
    """
    engine = create_engine(url, pool_pre_ping=make_url(url).get_backend_name() != "sqlite")
    if engine.dialect.name != "sqlite" or schema in ("main", "temp"):
        return engine
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return engine
    attached = Path(database).parent / f"{schema}.db"
    if not attached.exists():
        return engine

    def attach(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("ATTACH DATABASE ? AS " + _quote_sqlite(schema), (str(attached),))
        cursor.close()

    event.listen(engine, "connect", attach)
    return engine


def _quote_sqlite(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _utc(values: pd.Series) -> pd.Series:
    """UTC timestamps from aware datetimes (PostgreSQL) or ISO text (SQLite)."""
    if values.empty:
        return pd.Series(pd.DatetimeIndex([], tz="UTC"), index=values.index)
    return pd.to_datetime(values, utc=True, format="ISO8601")


def _uuids(values: pd.Series) -> pd.Series:
    return values.astype(str).str.lower()


def _read_table(conn: Connection, schema: str, table: str, pipeline: str) -> pd.DataFrame:
    preparer = conn.dialect.identifier_preparer
    name = f"{preparer.quote_schema(schema)}.{preparer.quote(table)}"
    query = text(f"SELECT * FROM {name} WHERE pipeline = :pipeline")  # identifiers quoted above
    return pd.read_sql(query, conn, params={"pipeline": pipeline})


def normalise_activity(frame: pd.DataFrame) -> pd.DataFrame:
    """``machine_activity`` rows with UTC times, sorted, without empty segments."""
    out = frame.reindex(columns=list(ACTIVITY_COLUMNS)).copy()
    out["machine_uuid"] = _uuids(out["machine_uuid"])
    out["start_time"] = _utc(out["start_time"])
    out["end_time"] = _utc(out["end_time"])
    out["confidence"] = pd.to_numeric(out["confidence"], errors="coerce")
    out = out[out["end_time"] > out["start_time"]]
    return out.sort_values(["machine_uuid", "start_time"], ignore_index=True)


def normalise_cycles(frame: pd.DataFrame) -> pd.DataFrame:
    """``machine_cycle`` rows with UTC times, numeric phases and a boolean ``is_complete``."""
    phases = _all_phase_columns()
    extra = [c for c in frame.columns if c.endswith("_s") and c not in (*phases, "duration_s")]
    out = frame.reindex(columns=[*CYCLE_BASE_COLUMNS, *phases, *extra]).copy()
    out["machine_uuid"] = _uuids(out["machine_uuid"])
    out["cycle_start"] = _utc(out["cycle_start"])
    out["cycle_end"] = _utc(out["cycle_end"])
    for column in ("duration_s", "data_coverage", *phases, *extra):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    # SQLite keeps booleans as 0/1; a missing flag counts as incomplete (the cautious side).
    out["is_complete"] = out["is_complete"].map(lambda v: bool(v) if pd.notna(v) else False)
    return out.sort_values(["machine_uuid", "cycle_start"], ignore_index=True)


def read_results(
    engine: Engine, schema: str, pipeline: str
) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """The pipeline's activity and cycle rows, and whether both tables exist.

    A database that has not received an export yet has no tables; that is a
    state to report ("no results yet"), not an error.
    """
    inspector = inspect(engine)
    found = all(inspector.has_table(t, schema=schema) for t in (ACTIVITY_TABLE, CYCLE_TABLE))
    if not found:
        return normalise_activity(pd.DataFrame()), normalise_cycles(pd.DataFrame()), False
    with engine.connect() as conn:
        activity = _read_table(conn, schema, ACTIVITY_TABLE, pipeline)
        cycles = _read_table(conn, schema, CYCLE_TABLE, pipeline)
    return normalise_activity(activity), normalise_cycles(cycles), True


def _of_pipeline(rows: Iterable[Mapping[str, Any]], pipeline: str) -> list[dict[str, Any]]:
    """Rows of this pipeline; rows without a ``pipeline`` key (the minimal contract) kept."""
    return [dict(r) for r in rows if r.get("pipeline", pipeline) == pipeline]


def normalise_batches(state: Mapping[str, Any], pipeline: str) -> pd.DataFrame:
    """The state's batches of one pipeline as a frame with the columns the report uses."""
    rows = _of_pipeline(state.get("batches") or [], pipeline)
    columns = ["machine_uuid", "key", "status", "reason", "first_timestamp", "last_timestamp"]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    frame["machine_uuid"] = _uuids(frame["machine_uuid"].fillna(""))
    frame["status"] = frame["status"].fillna("unknown").astype(str)
    return frame.sort_values(["machine_uuid", "key"], ignore_index=True)


def normalise_models(state: Mapping[str, Any], pipeline: str) -> list[dict[str, Any]]:
    """The state's models of one pipeline, ``metrics`` decoded when it arrived as JSON text."""
    models = _of_pipeline(state.get("models") or [], pipeline)
    for model in models:
        metrics = model.get("metrics")
        if isinstance(metrics, str):
            try:
                metrics = json.loads(metrics)
            except ValueError:
                metrics = None
        model["metrics"] = metrics if isinstance(metrics, dict) else {}
    return models


def report_machines(
    assets: Iterable[tuple[str, str]], activity: pd.DataFrame, cycles: pd.DataFrame
) -> list[tuple[str, str]]:
    """Configured assets first (even without data), then machines only the results know."""
    machines = {str(uuid).lower(): machine_type for uuid, machine_type in assets}
    seen = pd.concat(
        [activity[["machine_uuid", "machine_type"]], cycles[["machine_uuid", "machine_type"]]]
    ).drop_duplicates("machine_uuid")
    extra = sorted(
        (u, str(t)) for u, t in seen.itertuples(index=False, name=None) if u not in machines
    )
    return [*machines.items(), *extra]


def load_report_data(
    results_url: str | None,
    schema: str,
    pipeline: str,
    state: Mapping[str, Any],
    assets: Iterable[tuple[str, str]],
) -> ReportData:
    """Read the results database (None: not configured) and normalise the state.

    Args:
        results_url: SQLAlchemy URL of the results database, or None when the
            pipeline has none configured (the report then shows the state only).
        schema: Schema of the results tables.
        pipeline: Only rows of this pipeline are reported.
        state: The dict ``etl status --json`` prints.
        assets: ``(machine_uuid, machine_type)`` of the configured machines.

    """
    if results_url is None:
        activity, cycles, found = (
            normalise_activity(pd.DataFrame()),
            normalise_cycles(pd.DataFrame()),
            False,
        )
    else:
        engine = results_engine(results_url, schema)
        try:
            activity, cycles, found = read_results(engine, schema, pipeline)
        finally:
            engine.dispose()
    return ReportData(
        pipeline=pipeline,
        schema=schema,
        machines=report_machines(assets, activity, cycles),
        activity=activity,
        cycles=cycles,
        batches=normalise_batches(state, pipeline),
        models=normalise_models(state, pipeline),
        tables_found=found,
        results_configured=results_url is not None,
    )
