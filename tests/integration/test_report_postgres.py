"""The report against the stack's PostgreSQL ``mining_results`` database.

Same fabricated rows and page checks as tests/unit/test_report.py, in a
schema of its own per test (``report_<unique>``, dropped at the end), so the
real ``uuid``, ``timestamptz``, ``real`` and ``boolean`` types and a quoted
schema name go through the report's SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from etl.config import Config
from etl.report import build_report, load_report_data, terminal_summary
from etl.report.summary import summarise_machine
from etl.stack import Stack
from tests.unit.test_report import (
    ASSETS,
    DUMPER,
    LOADER,
    PIPELINE,
    assert_full_page,
    fabricated_state,
    load_rows,
)


@pytest.fixture
def results_schema(stack: Stack, demo_config: Config, unique: str) -> Iterator[tuple[str, str]]:
    """``(url, schema)``: a fresh schema in the results database, dropped afterwards."""
    url = demo_config.results.url
    assert url is not None
    schema = f"report_{unique}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def test_report_from_postgres(results_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = results_schema
    engine = create_engine(url)
    try:
        load_rows(engine, schema)
        with engine.connect() as conn:
            types = dict(
                conn.execute(
                    text(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = :s AND table_name = 'machine_cycle'"
                    ),
                    {"s": schema},
                ).all()
            )
    finally:
        engine.dispose()
    assert (types["machine_uuid"], types["cycle_start"], types["duration_s"]) == (
        "uuid",
        "timestamp with time zone",
        "real",
    )
    assert (types["load_lat"], types["is_complete"]) == ("double precision", "boolean")

    path = build_report(url, schema, PIPELINE, fabricated_state(), tmp_path, assets=ASSETS)
    assert_full_page(path.read_text(encoding="utf-8"))

    data = load_report_data(url, schema, PIPELINE, fabricated_state(), ASSETS)
    dumper = summarise_machine(data, DUMPER, "dumper")
    assert (dumper.cycles, dumper.complete_cycles, dumper.median_cycle_min) == (13, 12, 10.0)
    assert dumper.shares == pytest.approx(
        {"returning": 0.4, "hauling": 0.3, "loading": 0.2, "dumping": 0.1}
    )
    summary = terminal_summary(url, schema, PIPELINE, fabricated_state(), assets=ASSETS)
    assert summary.splitlines()[0] == (
        "report report-test: 2026-01-05 23:00 to 2026-01-06 01:55 UTC, 3 machines"
    )


def test_times_are_utc_whatever_the_session_time_zone(results_schema: tuple[str, str]) -> None:
    url, schema = results_schema
    engine = create_engine(url)
    try:
        load_rows(engine, schema)
    finally:
        engine.dispose()
    tokyo = f"{url}?options=-c%20timezone%3DAsia%2FTokyo"
    summary = terminal_summary(tokyo, schema, PIPELINE, fabricated_state(), assets=ASSETS)
    assert summary.splitlines()[0] == (
        "report report-test: 2026-01-05 23:00 to 2026-01-06 01:55 UTC, 3 machines"
    )


def test_a_schema_without_tables_says_so(results_schema: tuple[str, str], tmp_path: Path) -> None:
    url, schema = results_schema
    path = build_report(url, schema, PIPELINE, fabricated_state(), tmp_path, assets=ASSETS)
    page = path.read_text(encoding="utf-8")
    assert "the results tables do not exist yet" in page
    assert re.findall(r'<section class="machine" id="machine-([0-9a-f-]+)">', page) == [
        uuid for uuid, _ in ASSETS
    ]
    assert f"{LOADER}/1767654000000.parquet" in page
