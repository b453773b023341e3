"""The report from a SQLite results database (schema attached as its own file).

The fabricated rows follow shared/contracts/results.md; the integration test
(tests/integration/test_report_postgres.py) loads the same rows into the
stack's PostgreSQL and runs the same page checks.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import (
    REAL,
    Boolean,
    Column,
    DateTime,
    Double,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    insert,
)

from etl.config import ACTIVITIES
from etl.report import build_report, load_report_data, render_terminal, terminal_summary
from etl.report.data import results_engine
from etl.report.summary import (
    match_model,
    reason_kind,
    short_ids,
    split_by_day,
    summarise_machine,
)

PIPELINE = "report-test"
SCHEMA = "mining_insights"
DUMPER = "5f0c0000-0000-4000-8000-0000000000d1"
EXCAVATOR = "5f0c0000-0000-4000-8000-0000000000e2"
LOADER = "5f0c0000-0000-4000-8000-0000000000f3"
STRANGER = "5f0c0000-0000-4000-8000-0000000000aa"  # another pipeline's machine
ASSETS = [(DUMPER, "dumper"), (EXCAVATOR, "excavator"), (LOADER, "wheel_loader")]
T0 = datetime(2026, 1, 5, 23, 0, tzinfo=UTC)
DUMPER_MODEL = "report-test-dumper-activity/2"

PHASES = tuple(dict.fromkeys(f"{a}_s" for acts in ACTIVITIES.values() for a in acts))
CYCLE_PLAN = (("loading", 120), ("hauling", 180), ("dumping", 60), ("returning", 240))
"""One dumper cycle: 10 minutes."""


def results_tables(metadata: MetaData, schema: str) -> tuple[Table, Table]:
    """The two results tables exactly per the contract (portable to SQLite)."""
    uuid_type = Uuid(as_uuid=False).with_variant(String(36), "sqlite")
    ts = DateTime(timezone=True)
    activity = Table(
        "machine_activity",
        metadata,
        Column("pipeline", Text, nullable=False),
        Column("machine_uuid", uuid_type, nullable=False),
        Column("machine_type", Text, nullable=False),
        Column("start_time", ts, nullable=False),
        Column("end_time", ts, nullable=False),
        Column("activity", Text, nullable=False),
        Column("confidence", REAL),
        Column("model_version", Text),
        PrimaryKeyConstraint("pipeline", "machine_uuid", "start_time"),
        schema=schema,
    )
    cycle = Table(
        "machine_cycle",
        metadata,
        Column("pipeline", Text, nullable=False),
        Column("machine_uuid", uuid_type, nullable=False),
        Column("machine_type", Text, nullable=False),
        Column("cycle_start", ts, nullable=False),
        Column("cycle_end", ts, nullable=False),
        Column("duration_s", REAL),
        *(Column(c, REAL) for c in PHASES),
        *(
            Column(c, REAL)
            for c in (
                "distance_loaded_m",
                "distance_empty_m",
                "avg_speed_loaded_kmh",
                "avg_speed_empty_kmh",
            )
        ),
        *(Column(c, Double) for c in ("load_lat", "load_lon", "dump_lat", "dump_lon")),
        Column("is_complete", Boolean),
        Column("data_coverage", REAL),
        Column("model_version", Text),
        PrimaryKeyConstraint("pipeline", "machine_uuid", "cycle_start"),
        schema=schema,
    )
    return activity, cycle


def _segment(machine: str, kind: str, start: datetime, seconds: float, activity: str) -> dict:
    return {
        "pipeline": PIPELINE,
        "machine_uuid": machine,
        "machine_type": kind,
        "start_time": start,
        "end_time": start + timedelta(seconds=seconds),
        "activity": activity,
        "confidence": 0.9,
        "model_version": DUMPER_MODEL if kind == "dumper" else "report-test-excavator-activity/1",
    }


def fabricated_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Activity and cycle rows.

    * dumper: 12 ten-minute cycles from 23:00 over midnight, a 20-minute gap,
      then one cycle that a data gap interrupts (35 minutes, incomplete);
    * excavator: activity segments, no cycle at all;
    * wheel loader: nothing (a configured asset without results);
    * another pipeline's machine, which must not show.
    """
    activity: list[dict[str, Any]] = []
    cycles: list[dict[str, Any]] = []
    start = T0
    for index in range(13):
        cycle_start = start
        for name, seconds in CYCLE_PLAN:
            activity.append(_segment(DUMPER, "dumper", start, seconds, name))
            start += timedelta(seconds=seconds)
        complete = index < 12
        end = start if complete else start + timedelta(minutes=25)
        phases = {c: None for c in PHASES} | {f"{n}_s": float(s) for n, s in CYCLE_PLAN}
        cycles.append(
            {
                "pipeline": PIPELINE,
                "machine_uuid": DUMPER,
                "machine_type": "dumper",
                "cycle_start": cycle_start,
                "cycle_end": end,
                "duration_s": (end - cycle_start).total_seconds(),
                **phases,
                "distance_loaded_m": 2100.0,
                "distance_empty_m": 2050.0,
                "avg_speed_loaded_kmh": 24.0,
                "avg_speed_empty_kmh": 31.0,
                "load_lat": -23.36,
                "load_lon": 119.73,
                "dump_lat": -23.35,
                "dump_lon": 119.74,
                "is_complete": complete,
                "data_coverage": 1.0 if complete else 0.5,
                "model_version": DUMPER_MODEL,
            }
        )
        if index == 11:
            start += timedelta(minutes=20)  # the machine stopped sending
    for index, name in enumerate(("idle", "digging", "swinging_loaded", "dumping", "traveling")):
        start = T0 + timedelta(minutes=10 * index)
        activity.append(_segment(EXCAVATOR, "excavator", start, 600, name))
    activity.append(
        _segment(STRANGER, "dumper", T0, 600, "idle") | {"pipeline": "another-pipeline"}
    )
    return activity, cycles


def _batch(machine: str, key: str, status: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "pipeline": PIPELINE,
        "machine_uuid": machine,
        "key": key,
        "status": status,
        "reason": reason,
        "first_timestamp": T0.timestamp(),
        "last_timestamp": T0.timestamp() + 599.9,
    }


def fabricated_state() -> dict[str, list[dict[str, Any]]]:
    """The dict ``etl status --json`` prints, for the fabricated fleet."""
    batches = [_batch(DUMPER, f"{DUMPER}/17676540{i:02d}000.parquet", "exported") for i in range(9)]
    batches += [
        _batch(DUMPER, f"{DUMPER}/1767654999000.parquet", "rejected", "missing column acc_x"),
        _batch(
            DUMPER,
            f"{DUMPER}/1767655000000.parquet",
            "rejected",
            f"duplicate of {DUMPER}/1767654000000.parquet",
        ),
        _batch(LOADER, f"{LOADER}/1767654000000.parquet", "rejected", "not a parquet file <x>"),
        _batch(LOADER, f"{LOADER}/1767654600000.parquet", "discovered"),
        _batch("", "garbage/what.parquet", "rejected", "malformed announcement: no machine_uuid"),
        _batch(STRANGER, f"{STRANGER}/1.parquet", "rejected", "x") | {"pipeline": "another"},
    ]
    models = [
        {
            "pipeline": PIPELINE,
            "machine_type": "dumper",
            "version": 2,
            "registry_name": "report-test-dumper-activity",
            "registry_version": "2",
            "metrics": {"macro_f1": 0.9123, "accuracy": 0.95},
            "status": "champion",
        },
        {
            "pipeline": PIPELINE,
            "machine_type": "dumper",
            "version": 1,
            "registry_name": "report-test-dumper-activity",
            "registry_version": "1",
            "metrics": {"macro_f1": 0.8},
            "status": "challenger",
        },
    ]
    return {"batches": batches, "models": models, "inference_runs": [], "exports": []}


def load_rows(engine: Engine, schema: str) -> None:
    """Create the two tables in ``schema`` and insert the fabricated rows."""
    metadata = MetaData()
    activity_table, cycle_table = results_tables(metadata, schema)
    metadata.create_all(engine)
    activity, cycles = fabricated_rows()
    with engine.begin() as conn:
        conn.execute(insert(activity_table), activity)
        conn.execute(insert(cycle_table), cycles)


def _png_payloads(page: str) -> list[bytes]:
    return [
        base64.b64decode(p) for p in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    ]


def assert_full_page(page: str) -> None:
    """What every report of the fabricated fleet shows, whatever the database."""
    sections = re.findall(r'<section class="machine" id="machine-([0-9a-f-]+)">', page)
    assert sections == [DUMPER, EXCAVATOR, LOADER]
    assert STRANGER not in page
    pictures = _png_payloads(page)
    assert len(pictures) == 5
    assert all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pictures)
    alts = {
        machine: re.findall(r'<img src="data:image/png;base64,[^"]+" alt="([^"]+)">', section)
        for machine, section in zip(
            sections, page.split('<section class="machine"')[1:], strict=True
        )
    }
    assert alts == {
        # the dumper's data span two days: hours per day too; the excavator's one
        DUMPER: ["activity timeline", "cycle-time histogram", "phases", "hours per day"],
        EXCAVATOR: ["activity timeline"],
        LOADER: [],
    }
    assert "<script" not in page
    for reason in (
        "missing column acc_x",
        f"duplicate of {DUMPER}/1767654000000.parquet",
        "not a parquet file &lt;x&gt;",
        "malformed announcement: no machine_uuid",
    ):
        assert reason in page
    assert "not a parquet file <x>" not in page
    assert re.search(r"<td>dumper</td><td>report-test-dumper-activity/2</td><td[^>]*>0\.912<", page)
    assert "No cycles for this machine." in page
    assert "No activity segments for this machine." in page
    assert "median 10.0 min over complete cycles" in page
    assert "One row per UTC day (2 of 2 days)" in page


@pytest.fixture
def sqlite_results(tmp_path: Path) -> str:
    """A SQLite results database with ``mining_insights`` attached from its own file."""
    (tmp_path / f"{SCHEMA}.db").touch()
    url = f"sqlite:///{tmp_path / 'results.db'}"
    engine = results_engine(url, SCHEMA)
    load_rows(engine, SCHEMA)
    engine.dispose()
    return url


def test_the_page_has_a_section_per_machine_with_pictures_and_reasons(
    sqlite_results: str, tmp_path: Path
) -> None:
    path = build_report(
        sqlite_results, SCHEMA, PIPELINE, fabricated_state(), tmp_path / "out", assets=ASSETS
    )
    assert path == tmp_path / "out" / "index.html"
    assert_full_page(path.read_text(encoding="utf-8"))
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_machine_figures(sqlite_results: str) -> None:
    data = load_report_data(sqlite_results, SCHEMA, PIPELINE, fabricated_state(), ASSETS)
    dumper = summarise_machine(data, DUMPER, "dumper")
    assert dumper.first == pd.Timestamp(T0)
    assert dumper.last == pd.Timestamp(T0) + pd.Timedelta(minutes=12 * 10 + 20 + 35)
    assert dumper.hours == pytest.approx(13 * 600 / 3600)
    assert dumper.shares == pytest.approx(
        {"returning": 0.4, "hauling": 0.3, "loading": 0.2, "dumping": 0.1}
    )
    assert list(dumper.shares) == ["returning", "hauling", "loading", "dumping"]
    assert (dumper.cycles, dumper.complete_cycles) == (13, 12)
    assert dumper.median_cycle_min == pytest.approx(10.0)
    assert dumper.phase_means_s == pytest.approx(
        {
            "idle": 0.0,
            "queuing": 0.0,
            "loading": 120.0,
            "hauling": 180.0,
            "dumping": 60.0,
            "returning": 240.0,
        }
    )
    assert dumper.incomplete_share == pytest.approx(1 / 13)
    assert dumper.cycle_coverage == pytest.approx((12 + 0.5) / 13)
    # 130 minutes of segments over a 150-minute span (the 20-minute gap)
    assert dumper.coverage == pytest.approx(130 / 150)
    assert dumper.batches == {"exported": 9, "rejected": 2}
    assert (dumper.accepted, dumper.rejected_count, dumper.pending) == (9, 2, 0)
    assert dumper.model_versions == [DUMPER_MODEL]

    excavator = summarise_machine(data, EXCAVATOR, "excavator")
    assert (excavator.cycles, excavator.median_cycle_min, excavator.incomplete_share) == (
        0,
        None,
        None,
    )
    assert excavator.shares == pytest.approx({a: 0.2 for a in excavator.shares})
    assert excavator.coverage == pytest.approx(1.0)

    loader = summarise_machine(data, LOADER, "wheel_loader")
    assert (loader.hours, loader.first, loader.coverage) == (0.0, None, None)
    assert loader.rejected == [(f"{LOADER}/1767654000000.parquet", "not a parquet file <x>")]
    assert loader.pending == 1


def test_terminal_summary(sqlite_results: str) -> None:
    text = terminal_summary(sqlite_results, SCHEMA, PIPELINE, fabricated_state(), assets=ASSETS)
    lines = text.splitlines()
    assert lines[0] == "report report-test: 2026-01-05 23:00 to 2026-01-06 01:55 UTC, 3 machines"
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["…000000d1"][1:7] == ["dumper", "2.2", "13", "10.0", "min", "9/2"]
    assert "returning 40%, hauling 30%, loading 20%" in text
    assert rows["…000000e2"][1:5] == ["excavator", "0.8", "0", "-"]
    assert rows["…000000f3"][1:6] == ["wheel_loader", "0.0", "0", "-", "0/1"]


def test_an_empty_database_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'results.db'}"  # no schema file: no tables at all
    path = build_report(url, SCHEMA, PIPELINE, {}, tmp_path / "out", assets=ASSETS)
    page = path.read_text(encoding="utf-8")
    assert "the results tables do not exist yet" in page
    assert len(re.findall(r'<section class="machine"', page)) == 3
    assert not _png_payloads(page)
    assert "No rejected files." in page
    text = terminal_summary(url, SCHEMA, PIPELINE, {}, assets=ASSETS)
    assert (
        "no activity or cycle rows for this pipeline (schema mining_insights, tables missing)"
        in (text)
    )
    assert not (tmp_path / f"{SCHEMA}.db").exists()  # reading created nothing


def test_empty_tables_and_no_assets(tmp_path: Path) -> None:
    (tmp_path / f"{SCHEMA}.db").touch()
    url = f"sqlite:///{tmp_path / 'results.db'}"
    engine = results_engine(url, SCHEMA)
    metadata = MetaData()
    results_tables(metadata, SCHEMA)
    metadata.create_all(engine)
    engine.dispose()
    page = build_report(url, SCHEMA, PIPELINE, {}, tmp_path / "out", assets=[]).read_text()
    assert "the results tables hold no rows for pipeline report-test" in page
    assert "No machines: no assets configured and no results rows." in page


def test_without_a_results_database_the_state_is_still_reported(tmp_path: Path) -> None:
    page = build_report(
        None, SCHEMA, PIPELINE, fabricated_state(), tmp_path, assets=ASSETS
    ).read_text()
    assert "missing column acc_x" in page
    assert "no results database is configured (results.url)" in page


def test_machines_only_the_results_know_get_a_section_after_the_assets(
    sqlite_results: str,
) -> None:
    data = load_report_data(sqlite_results, SCHEMA, PIPELINE, {}, [(LOADER, "wheel_loader")])
    assert data.machines == [(LOADER, "wheel_loader"), (DUMPER, "dumper"), (EXCAVATOR, "excavator")]
    assert render_terminal(data).splitlines()[0].endswith("3 machines")


def test_split_by_day_cuts_segments_at_midnight() -> None:
    segments = pd.DataFrame(
        {
            "start_time": [pd.Timestamp("2026-01-05 23:30", tz="UTC")],
            "end_time": [pd.Timestamp("2026-01-06 00:15", tz="UTC")],
            "activity": ["hauling"],
        }
    )
    pieces = split_by_day(segments)
    expected = pd.DataFrame(
        {
            "day": [pd.Timestamp("2026-01-05", tz="UTC"), pd.Timestamp("2026-01-06", tz="UTC")],
            "start_h": [23.5, 0.0],
            "hours": [0.5, 0.25],
            "activity": ["hauling", "hauling"],
        }
    )
    pd.testing.assert_frame_equal(pieces, expected, check_dtype=False)


@pytest.mark.parametrize(
    ("spelling", "version"),
    [
        ("report-test-dumper-activity/2", 2),
        ("v1", 1),
        ("2", 2),
        ("dumper-model-v1", 1),
        ("excavator/v2", None),
    ],
)
def test_match_model(spelling: str, version: int | None) -> None:
    model = match_model(spelling, "dumper", fabricated_state()["models"])
    assert (model or {}).get("version") == version


def test_reasons_count_by_kind_and_ids_are_short() -> None:
    assert reason_kind(f"duplicate of {DUMPER}/1767654000000.parquet") == "duplicate of …"
    assert reason_kind("timestamps before 2000-01-01") == "timestamps before …"
    assert reason_kind("missing column acc_x") == "missing column acc_x"
    assert short_ids([DUMPER, EXCAVATOR]) == {DUMPER: "…000000d1", EXCAVATOR: "…000000e2"}
