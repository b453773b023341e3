"""The export against the stack's real PostgreSQL: contract tables, idempotent loads, quarantine.

The results database is shared with ``etl`` runs on the demo config, so the
session works in its own schema (``export_test_<hex>``) and every test in its
own pipeline; nothing is dropped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from etl.config import Config
from etl.export import checks
from etl.export.adapt import MACHINE_ACTIVITY, MACHINE_CYCLE, activity_rows, cycle_rows
from etl.export.jdbc import QUARANTINE, ResultsDatabase
from etl.infer.schema import (
    CYCLES,
    PHASE_COLUMNS,
    SEGMENTS,
    cycles_schema,
    segments_schema,
    table_url,
)
from etl.stack import Stack
from etl.state.domain import BatchSource, BatchStatus, NewBatch, NewModel, RunStatus
from etl.steps.export import export
from tests.e2e.conftest import context, embedded_config

DUMPER = "5f0c0000-0000-4000-8000-0000000000d1"
EXCAVATOR = "5f0c0000-0000-4000-8000-0000000000e1"
T0 = 1_767_600_000  # 2026-01-05 08:00:00 UTC
LIMITS = {"min_epoch_s": 946_684_800.0, "max_epoch_s": T0 + 365 * 86_400.0}
DUMPER_PHASES = {
    "idle_s": 10.0,
    "queuing_s": 50.0,
    "loading_s": 120.0,
    "hauling_s": 200.0,
    "dumping_s": 40.0,
    "returning_s": 170.0,
}


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.fixture(scope="session")
def results_schema() -> str:
    return f"export_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def results_db(stack: Stack, demo_config: Config, results_schema: str) -> Iterator[ResultsDatabase]:
    assert demo_config.results.url is not None
    db = ResultsDatabase(demo_config.results.url, results_schema, write_partitions=2)
    db.ensure_tables()
    db.ensure_tables()  # a second time is a no-op
    yield db
    db.close()


@dataclass(frozen=True)
class Results:
    """The session's results database, an engine to read it back and its schema."""

    db: ResultsDatabase
    engine: Engine
    schema: str


@pytest.fixture(scope="session")
def results(results_db: ResultsDatabase, results_schema: str) -> Iterator[Results]:
    engine = create_engine(results_db.url)
    yield Results(results_db, engine, results_schema)
    engine.dispose()


def segment(
    machine: str, start: int, end: int, activity: str, confidence: float = 0.9
) -> tuple[Any, ...]:
    machine_type = "dumper" if machine == DUMPER else "excavator"
    return (machine, machine_type, start, end, activity, end - start, confidence, "m/1", 3, 1)


def cycle(machine: str, start: int, duration: int = 600, **changes: float) -> tuple[Any, ...]:
    phases = DUMPER_PHASES | changes
    covered = sum(phases.values())
    values = [phases.get(c) for c in PHASE_COLUMNS]
    return (
        machine,
        "dumper",
        start,
        start + duration,
        duration,
        *values,
        1500.0,
        1400.0,
        27.0,
        29.5,
        -23.5,
        133.25,
        -23.51,
        133.26,
        True,
        covered / duration,
        "m/1",
        3,
        1,
    )


def checked_segments(spark: SparkSession, pipeline: str, rows: list[tuple[Any, ...]]) -> DataFrame:
    adapted = activity_rows(spark.createDataFrame(rows, segments_schema()), pipeline)
    return checks.check_activities(adapted, **LIMITS)


def checked_cycles(spark: SparkSession, pipeline: str, rows: list[tuple[Any, ...]]) -> DataFrame:
    adapted = cycle_rows(spark.createDataFrame(rows, cycles_schema()), pipeline)
    return checks.check_cycles(adapted, **LIMITS)


def target_rows(results: Results, table: str, pipeline: str) -> list[tuple[Any, ...]]:
    key = "start_time" if table == "machine_activity" else "cycle_start"
    with results.engine.connect() as conn:
        rows = conn.execute(
            text(
                f'SELECT * FROM "{results.schema}".{table} WHERE pipeline = :p '
                f"ORDER BY machine_uuid, {key}"
            ),
            {"p": pipeline},
        )
        return [tuple(r) for r in rows]


def activities(results: Results, pipeline: str) -> list[tuple[Any, ...]]:
    """(machine, start, end, activity) of the pipeline's loaded segments."""
    return [
        (str(r[1]), int(r[3].timestamp()), int(r[4].timestamp()), r[5])
        for r in target_rows(results, "machine_activity", pipeline)
    ]


def quarantined(results: Results, pipeline: str) -> list[dict[str, Any]]:
    with results.engine.connect() as conn:
        rows = conn.execute(
            text(
                f'SELECT * FROM "{results.schema}".{QUARANTINE} WHERE pipeline = :p '
                "ORDER BY table_name, machine_uuid, key_time"
            ),
            {"p": pipeline},
        ).mappings()
        return [dict(r) for r in rows]


def test_tables_have_the_contract_types_and_keys(results: Results) -> None:
    with results.engine.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = :s ORDER BY table_name, ordinal_position"
            ),
            {"s": results.schema},
        ).all()
        keys = conn.execute(
            text(
                "SELECT tc.table_name, kcu.column_name "
                "FROM information_schema.table_constraints tc "
                "JOIN information_schema.key_column_usage kcu "
                "USING (constraint_schema, constraint_name) "
                "WHERE tc.table_schema = :s AND tc.constraint_type = 'PRIMARY KEY' "
                "ORDER BY tc.table_name, kcu.ordinal_position"
            ),
            {"s": results.schema},
        ).all()
    pg_names = {"timestamptz": "timestamp with time zone"}
    for table in (MACHINE_ACTIVITY, MACHINE_CYCLE):
        assert [(c, t) for n, c, t in columns if n == table.name] == [
            (c.name, pg_names.get(c.pg_type, c.pg_type)) for c in table.columns
        ]
        assert tuple(c for n, c in keys if n == table.name) == table.key
    assert dict(
        (c, t)
        for n, c, t in columns
        if n == "machine_activity" and c in ("machine_uuid", "confidence")
    ) == {"machine_uuid": "uuid", "confidence": "real"}
    assert {c for n, c, _ in columns if n == QUARANTINE} >= {
        "export_id",
        "table_name",
        "machine_uuid",
        "key_time",
        "reason",
        "row_json",
        "rejected_at",
    }


def test_loading_twice_gives_the_same_rows(
    spark: SparkSession,
    results: Results,
    unique: str,
) -> None:
    pipeline = f"ex-{unique}"
    rows = [
        segment(DUMPER, T0, T0 + 30, "loading"),
        segment(DUMPER, T0 + 30, T0 + 95, "hauling", 0.75),
        segment(EXCAVATOR, T0, T0 + 12, "digging"),
    ]
    cuts = {DUMPER: T0, EXCAVATOR: T0}
    frame = checked_segments(spark, pipeline, rows)

    first = results.db.load(frame, "machine_activity", pipeline=pipeline, cuts=cuts, export_id=1)
    loaded = target_rows(results, "machine_activity", pipeline)
    again = results.db.load(frame, "machine_activity", pipeline=pipeline, cuts=cuts, export_id=2)

    assert (first.rows_loaded, first.rows_rejected) == (3, 0)
    assert (again.rows_loaded, again.rows_rejected) == (3, 0)
    assert target_rows(results, "machine_activity", pipeline) == loaded
    assert loaded == [
        (pipeline, uuid.UUID(DUMPER), "dumper", at(T0), at(T0 + 30), "loading", 0.9, "m/1"),
        (pipeline, uuid.UUID(DUMPER), "dumper", at(T0 + 30), at(T0 + 95), "hauling", 0.75, "m/1"),
        (pipeline, uuid.UUID(EXCAVATOR), "excavator", at(T0), at(T0 + 12), "digging", 0.9, "m/1"),
    ]
    with results.engine.connect() as conn:
        stages = conn.execute(
            text(
                "SELECT count(*) FROM pg_tables "
                "WHERE schemaname = :s AND tablename LIKE '\\_stage%'"
            ),
            {"s": results.schema},
        ).scalar_one()
    assert stages == 0


def test_cycles_load_twice_with_their_phases(
    spark: SparkSession,
    results: Results,
    unique: str,
) -> None:
    pipeline = f"ex-{unique}"
    frame = checked_cycles(spark, pipeline, [cycle(DUMPER, T0), cycle(DUMPER, T0 + 600)])
    for export_id in (1, 2):
        result = results.db.load(
            frame, "machine_cycle", pipeline=pipeline, cuts={DUMPER: T0}, export_id=export_id
        )
        assert (result.rows_loaded, result.rows_rejected) == (2, 0)
    rows = target_rows(results, "machine_cycle", pipeline)
    names = MACHINE_CYCLE.column_names
    assert [(r[names.index("cycle_start")], r[names.index("duration_s")]) for r in rows] == [
        (at(T0), 600.0),
        (at(T0 + 600), 600.0),
    ]
    first = dict(zip(names, rows[0], strict=True))
    assert {c: first[c] for c in DUMPER_PHASES} == DUMPER_PHASES
    assert first["digging_s"] is None and first["carrying_s"] is None
    assert first["load_lat"] == -23.5 and first["is_complete"] is True
    assert first["data_coverage"] == pytest.approx(590 / 600, rel=1e-6)


def test_a_rescore_replaces_rows_from_the_cut_and_keeps_those_before(
    spark: SparkSession,
    results: Results,
    unique: str,
) -> None:
    pipeline = f"ex-{unique}"
    first = [
        segment(DUMPER, T0 - 100, T0, "idle"),
        segment(DUMPER, T0, T0 + 30, "loading"),
        segment(DUMPER, T0 + 30, T0 + 95, "hauling"),
        segment(DUMPER, T0 + 95, T0 + 120, "dumping"),
    ]
    results.db.load(
        checked_segments(spark, pipeline, first),
        "machine_activity",
        pipeline=pipeline,
        cuts={DUMPER: T0 - 100},
        export_id=1,
    )
    # the new model moves the hauling start and no longer sees the dumping
    rescored = [
        segment(DUMPER, T0, T0 + 40, "loading"),
        segment(DUMPER, T0 + 40, T0 + 120, "hauling"),
    ]
    result = results.db.load(
        checked_segments(spark, pipeline, rescored),
        "machine_activity",
        pipeline=pipeline,
        cuts={DUMPER: T0},
        export_id=2,
    )
    assert result.rows_loaded == 2
    assert activities(results, pipeline) == [
        (DUMPER, T0 - 100, T0, "idle"),
        (DUMPER, T0, T0 + 40, "loading"),
        (DUMPER, T0 + 40, T0 + 120, "hauling"),
    ]


def test_rejected_rows_go_to_the_quarantine_with_their_reasons_once(
    spark: SparkSession,
    results: Results,
    unique: str,
) -> None:
    pipeline = f"ex-{unique}"
    rows = [
        segment(DUMPER, T0, T0 + 30, "loading"),
        segment(DUMPER, T0 + 20, T0 + 50, "hauling"),  # overlaps
        segment(DUMPER, T0 + 50, T0 + 60, "digging", 1.5),  # not a dumper's, confidence > 1
    ]
    frame = checked_segments(spark, pipeline, rows)
    for export_id in (7, 8):
        result = results.db.load(
            frame, "machine_activity", pipeline=pipeline, cuts={DUMPER: T0}, export_id=export_id
        )
        assert (result.rows_loaded, result.rows_rejected) == (1, 2)
        assert result.reasons == {
            checks.OVERLAPPING_SEGMENT: 1,
            checks.UNKNOWN_ACTIVITY: 1,
            checks.CONFIDENCE_OUT_OF_RANGE: 1,
        }

    assert activities(results, pipeline) == [(DUMPER, T0, T0 + 30, "loading")]
    bad = quarantined(results, pipeline)
    assert [
        (q["export_id"], q["table_name"], q["machine_uuid"], q["key_time"], q["reason"])
        for q in bad
    ] == [
        (8, "machine_activity", DUMPER, at(T0 + 20), checks.OVERLAPPING_SEGMENT),
        (
            8,
            "machine_activity",
            DUMPER,
            at(T0 + 50),
            f"{checks.UNKNOWN_ACTIVITY}; {checks.CONFIDENCE_OUT_OF_RANGE}",
        ),
    ]
    row = bad[1]["row_json"]
    row = json.loads(row) if isinstance(row, str) else row
    assert row["activity"] == "digging" and row["confidence"] == 1.5
    assert row["machine_uuid"] == DUMPER and row["start_time"].startswith("2026-01-05T08:00:50")
    assert checks.REJECT_REASON not in row

    # fixed by a rescore: the rows leave the quarantine and load
    fixed = [segment(DUMPER, T0, T0 + 30, "loading"), segment(DUMPER, T0 + 30, T0 + 60, "hauling")]
    results.db.load(
        checked_segments(spark, pipeline, fixed),
        "machine_activity",
        pipeline=pipeline,
        cuts={DUMPER: T0},
        export_id=9,
    )
    assert quarantined(results, pipeline) == []
    assert len(activities(results, pipeline)) == 2


def test_a_frame_of_another_pipeline_changes_nothing(
    spark: SparkSession,
    results: Results,
    unique: str,
) -> None:
    pipeline = f"ex-{unique}"
    frame = checked_segments(spark, pipeline, [segment(DUMPER, T0, T0 + 30, "loading")])
    results.db.load(frame, "machine_activity", pipeline=pipeline, cuts={DUMPER: T0}, export_id=1)
    with pytest.raises(ValueError, match="another pipeline"):
        results.db.load(
            frame, "machine_activity", pipeline=f"{pipeline}-x", cuts={DUMPER: T0}, export_id=2
        )
    assert activities(results, pipeline) == [(DUMPER, T0, T0 + 30, "loading")]


def test_a_failed_load_leaves_target_quarantine_and_stage_as_they_were(
    spark: SparkSession, results: Results, unique: str
) -> None:
    pipeline = f"ex-{unique}"
    good = [segment(DUMPER, T0, T0 + 30, "loading"), segment(DUMPER, T0 + 30, T0 + 40, "digging")]
    results.db.load(
        checked_segments(spark, pipeline, good),
        "machine_activity",
        pipeline=pipeline,
        cuts={DUMPER: T0},
        export_id=1,
    )
    before = (activities(results, pipeline), quarantined(results, pipeline))
    # unchecked rows: the second is no UUID, so the cast fails inside the transaction
    unchecked = activity_rows(
        spark.createDataFrame(
            [
                segment(DUMPER, T0, T0 + 50, "idle"),
                ("machine-7", *segment(DUMPER, T0, T0 + 5, "idle")[1:]),
            ],
            segments_schema(),
        ),
        pipeline,
    )
    with pytest.raises(DBAPIError, match="uuid"):
        results.db.load(
            unchecked, "machine_activity", pipeline=pipeline, cuts={DUMPER: T0}, export_id=2
        )
    assert (activities(results, pipeline), quarantined(results, pipeline)) == before
    assert len(before[1]) == 1
    with results.engine.connect() as conn:
        stage = conn.execute(
            text("SELECT to_regclass(:name)"),
            {"name": f'"{results.schema}"._stage_machine_activity_2'},
        ).scalar_one()
    assert stage is None


# -- the step ------------------------------------------------------------------------------


def write_delta(spark: SparkSession, url: str, rows: list[tuple[Any, ...]], schema: Any) -> None:
    spark.createDataFrame(rows, schema).write.format("delta").mode("overwrite").save(url)


def add_inference_run(ctx: Any, pipeline: str, cuts: dict[str, int], batch_keys: list[str]) -> int:
    """What ``etl infer`` leaves: a succeeded inference run and its batches inferred."""
    with ctx.uow() as uow:
        batches = uow.batches.add_discovered(
            [
                NewBatch(pipeline, DUMPER, key, f"file:///{key}", BatchSource.LISTING, T0, T0 + 60)
                for key in batch_keys
            ]
        )
        for batch in batches:
            uow.batches.mark_preprocessed(batch.id, delta_version=0)
            uow.batches.mark_status(batch.id, BatchStatus.INFERRED)
        model = uow.models.add(NewModel(pipeline, "dumper"))
        run = uow.inference_runs.start(
            pipeline,
            model.id,
            input_versions={"statevectors_version": 0, "model": "m/1", "cuts": cuts},
        )
        uow.inference_runs.finish(run.id, RunStatus.SUCCEEDED, rows=10)
        uow.commit()
    return run.id


def test_the_export_step_loads_records_and_marks_batches(
    spark: SparkSession,
    results: Results,
    demo_config: Config,
    tmp_path: Path,
    unique: str,
) -> None:
    pipeline = f"ex-{unique}"
    path = embedded_config(
        tmp_path,
        pipeline,
        [{"uuid": DUMPER, "type": "dumper"}],
        results={"url": demo_config.results.url, "schema": results.schema},
    )
    ctx = context(path)
    output = ctx.config.output_url
    segments_url = table_url(output, SEGMENTS)
    cycles_url = table_url(output, CYCLES)
    write_delta(
        spark,
        segments_url,
        [
            segment(DUMPER, T0, T0 + 30, "loading"),
            segment(DUMPER, T0 + 30, T0 + 95, "hauling"),
            segment(DUMPER, T0 + 90, T0 + 100, "dumping"),  # overlaps: quarantined
        ],
        segments_schema(),
    )
    write_delta(spark, cycles_url, [cycle(DUMPER, T0)], cycles_schema())
    first_run = add_inference_run(ctx, pipeline, {DUMPER: T0}, ["b1", "b2"])

    summary = export(ctx)

    assert (summary["rows_loaded"], summary["rows_rejected"], summary["batches_exported"]) == (
        3,
        1,
        2,
    )
    with ctx.uow() as uow:
        exports = uow.exports.for_pipeline(pipeline, inference_run_id=first_run)
        statuses = {b.key: b.status for b in uow.batches.for_pipeline(pipeline)}
        (step_run,) = uow.runs.for_pipeline(pipeline, "export")
    assert [
        (e.table_name, e.status, e.rows_loaded, e.rows_rejected, e.reason) for e in exports
    ] == [
        (
            "machine_activity",
            RunStatus.SUCCEEDED,
            2,
            1,
            "1 row rejected: 1 overlaps the previous segment",
        ),
        ("machine_cycle", RunStatus.SUCCEEDED, 1, 0, None),
    ]
    assert all(e.run_id == step_run.id for e in exports)
    assert statuses == {"b1": BatchStatus.EXPORTED, "b2": BatchStatus.EXPORTED}
    assert activities(results, pipeline) == [
        (DUMPER, T0, T0 + 30, "loading"),
        (DUMPER, T0 + 30, T0 + 95, "hauling"),
    ]
    assert len(target_rows(results, "machine_cycle", pipeline)) == 1
    assert [q["export_id"] for q in quarantined(results, pipeline)] == [exports[0].id]

    # a rerun has nothing to do and changes nothing
    assert export(ctx)["exports"] == []
    assert len(activities(results, pipeline)) == 2

    # a rescore from T0 + 30 (a new inference run): the hauling now starts later; the context
    # row before the cut (loading, until T0 + 30) is checked against but not reloaded
    write_delta(
        spark,
        segments_url,
        [
            segment(DUMPER, T0, T0 + 30, "loading"),
            segment(DUMPER, T0 + 30, T0 + 40, "idle"),
            segment(DUMPER, T0 + 40, T0 + 100, "hauling"),
        ],
        segments_schema(),
    )
    second_run = add_inference_run(ctx, pipeline, {DUMPER: T0 + 30}, ["b3"])
    summary = export(ctx)

    assert [(e["inference_run_id"], e["table"], e["rows_loaded"]) for e in summary["exports"]] == [
        (second_run, "machine_activity", 2),
        (second_run, "machine_cycle", 0),
    ]
    assert activities(results, pipeline) == [
        (DUMPER, T0, T0 + 30, "loading"),
        (DUMPER, T0 + 30, T0 + 40, "idle"),
        (DUMPER, T0 + 40, T0 + 100, "hauling"),
    ]
    # the cycle starts before the new cut: the rescore did not touch it, nor does the export
    assert len(target_rows(results, "machine_cycle", pipeline)) == 1
    assert quarantined(results, pipeline) == []
    with ctx.uow() as uow:
        assert {b.status for b in uow.batches.for_pipeline(pipeline)} == {BatchStatus.EXPORTED}
    ctx.close()
