"""``etl status --json``: the state store as one JSON document (shared/contracts/cli.md).

The tables are created by the state store's migrations; a store that has not
been migrated yet (a fresh pipeline) reports empty lists rather than failing,
because "nothing has happened yet" is a valid answer.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, MetaData, inspect, select

SECTIONS: dict[str, str] = {
    "batches": "batches",
    "models": "models",
    "inference_runs": "inference_runs",
    "exports": "exports",
}
"""JSON key -> table name."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def read_status(engine: Engine, pipeline: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tracked tables, oldest first, as JSON-ready dicts.

    With ``pipeline``, only that pipeline's rows: one state store may serve several
    pipelines (sites, environments), and each one's status is its own.
    """
    existing = set(inspect(engine).get_table_names())
    metadata = MetaData()
    status: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for key, table_name in SECTIONS.items():
            if table_name not in existing:
                status[key] = []
                continue
            metadata.reflect(conn, only=[table_name])
            table = metadata.tables[table_name]
            order = list(table.primary_key.columns) or list(table.columns)[:1]
            query = select(table).order_by(*order)
            if pipeline is not None and "pipeline" in table.c:
                query = query.where(table.c.pipeline == pipeline)
            rows = conn.execute(query).mappings()
            status[key] = [{k: _jsonable(v) for k, v in row.items()} for row in rows]
    return status
