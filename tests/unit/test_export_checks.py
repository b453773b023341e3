"""The export's pure parts and its step wired to fakes (no JVM, no database).

The Spark rules themselves are in tests/spark/test_export_rules.py; the load
against PostgreSQL in tests/integration/test_export_postgres.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from etl.bootstrap import Context
from etl.config import parse_config
from etl.export import LoadResult
from etl.export.checks import CONFIDENCE_OUT_OF_RANGE, OVERLAPPING_SEGMENT, rejection_summary
from etl.state.domain import (
    BatchSource,
    BatchStatus,
    Export,
    InferenceRun,
    NewBatch,
    NewModel,
    RunStatus,
)
from etl.state.fakes import fake_uow_factory
from etl.steps import export as step

MACHINE = "5f0c0000-0000-4000-8000-000000000001"
T0 = 1_767_600_000


def test_rejection_summary_counts_rules_most_frequent_first() -> None:
    summary = rejection_summary({OVERLAPPING_SEGMENT: 2, CONFIDENCE_OUT_OF_RANGE: 1}, 3)
    assert summary == "3 rows rejected: 2 overlaps the previous segment, 1 confidence not in [0, 1]"
    assert rejection_summary({CONFIDENCE_OUT_OF_RANGE: 1}, 1) == (
        "1 row rejected: 1 confidence not in [0, 1]"
    )
    assert rejection_summary({}, 0) is None


def inference_run(run_id: int, status: RunStatus, cuts: Any = None) -> InferenceRun:
    now = datetime(2026, 1, 6, tzinfo=UTC)
    return InferenceRun(
        id=run_id,
        pipeline="p",
        machine_uuid=None,
        model_id=1,
        ts_from=None,
        ts_to=None,
        input_versions={} if cuts is None else {"cuts": cuts},
        output_url=None,
        rows=None,
        status=status,
        reason=None,
        started_at=now,
        finished_at=now,
        run_id=None,
    )


def export_record(export_id: int, run_id: int, table: str, status: RunStatus) -> Export:
    now = datetime(2026, 1, 6, tzinfo=UTC)
    return Export(export_id, "p", run_id, table, 1, 0, status, None, now, now, None)


def test_pending_exports_are_succeeded_runs_tables_without_a_succeeded_export() -> None:
    runs = [
        inference_run(3, RunStatus.SUCCEEDED),
        inference_run(1, RunStatus.SUCCEEDED),
        inference_run(2, RunStatus.FAILED),
        inference_run(4, RunStatus.RUNNING),
    ]
    exports = {
        1: [
            export_record(10, 1, "machine_activity", RunStatus.SUCCEEDED),
            export_record(11, 1, "machine_cycle", RunStatus.FAILED),
        ],
        3: [export_record(12, 3, "machine_cycle", RunStatus.SUCCEEDED)],
    }
    pending = step.pending_exports(runs, exports)
    assert [(p.run.id, p.table) for p in pending] == [
        (1, "machine_cycle"),
        (3, "machine_activity"),
    ]


def test_run_cuts_are_whole_seconds_and_required() -> None:
    run = inference_run(1, RunStatus.SUCCEEDED, cuts={MACHINE: float(T0)})
    assert step.run_cuts(run) == {MACHINE: T0}
    with pytest.raises(ValueError, match=r"inference run 2 has no input_versions\.cuts"):
        step.run_cuts(inference_run(2, RunStatus.SUCCEEDED))


@dataclass
class FakeSink:
    """Records loads; fails the tables named in ``fail``."""

    fail: set[str] = field(default_factory=set)
    loads: list[tuple[str, dict[str, int], int]] = field(default_factory=list)
    ensured: int = 0
    closed: bool = False

    def ensure_tables(self) -> None:
        self.ensured += 1

    def load(
        self,
        frame: Any,
        table: str,
        *,
        pipeline: str,
        cuts: Mapping[str, int],
        export_id: int,
    ) -> LoadResult:
        assert frame == ("rows", table, dict(cuts))
        if table in self.fail:
            raise RuntimeError(f"connection refused\nstack trace of {table}")
        self.loads.append((table, dict(cuts), export_id))
        rejected = 1 if table == "machine_activity" else 0
        return LoadResult(5, rejected, {OVERLAPPING_SEGMENT: rejected} if rejected else {})

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def ctx(monkeypatch: pytest.MonkeyPatch) -> Context:
    config = parse_config(
        {
            "pipeline": {"name": "p"},
            "assets": [{"uuid": MACHINE, "type": "dumper"}],
            "storage": {"raw_url": "file:///tmp/raw", "processed_url": "file:///tmp/out"},
            "state": {"url": "sqlite:///unused.db"},
            "results": {"url": "postgresql+psycopg://u:p@127.0.0.1:1/r"},
        }
    )
    context = Context(config)
    context.__dict__["uow"] = fake_uow_factory()
    context.__dict__["spark"] = None

    def fake_rows(spark: Any, output_url: str, table: str, **kwargs: Any) -> Any:
        assert output_url == "file:///tmp/out/p"
        return ("rows", table, dict(kwargs["cuts"]))

    monkeypatch.setattr(step, "checked_rows", fake_rows)
    return context


def seed(ctx: Context) -> tuple[int, int]:
    """One inferred batch and one succeeded inference run; their ids."""
    with ctx.uow() as uow:
        (batch,) = uow.batches.add_discovered(
            [NewBatch("p", MACHINE, "k1", "file:///k1", BatchSource.LISTING, T0, T0 + 60)]
        )
        uow.batches.mark_preprocessed(batch.id, delta_version=0)
        uow.batches.mark_status(batch.id, BatchStatus.INFERRED)
        model = uow.models.add(NewModel("p", "dumper"))
        run = uow.inference_runs.start("p", model.id, input_versions={"cuts": {MACHINE: T0}})
        uow.inference_runs.finish(run.id, RunStatus.SUCCEEDED, rows=10)
        uow.commit()
    return batch.id, run.id


def test_export_loads_each_table_records_it_and_marks_batches(ctx: Context) -> None:
    batch_id, run_id = seed(ctx)
    sink = FakeSink()

    summary = step.export(ctx, sink=sink)

    assert [(t, c) for t, c, _ in sink.loads] == [
        ("machine_activity", {MACHINE: T0}),
        ("machine_cycle", {MACHINE: T0}),
    ]
    assert sink.ensured == 1 and not sink.closed  # a sink passed in belongs to the caller
    assert summary["rows_loaded"] == 10 and summary["rows_rejected"] == 1
    assert summary["batches_exported"] == 1
    with ctx.uow() as uow:
        exports = uow.exports.for_pipeline("p", inference_run_id=run_id)
        (step_run,) = uow.runs.for_pipeline("p", "export")
        assert uow.batches.get(batch_id).status == BatchStatus.EXPORTED
    assert [
        (e.table_name, e.status, e.rows_loaded, e.rows_rejected, e.reason) for e in exports
    ] == [
        (
            "machine_activity",
            RunStatus.SUCCEEDED,
            5,
            1,
            "1 row rejected: 1 overlaps the previous segment",
        ),
        ("machine_cycle", RunStatus.SUCCEEDED, 5, 0, None),
    ]
    assert [e.id for e in exports] == [load[2] for load in sink.loads]
    assert step_run.status == RunStatus.SUCCEEDED and step_run.summary == summary

    again = step.export(ctx, sink=sink)  # nothing pending any more
    assert again["exports"] == [] and again["batches_exported"] == 0
    assert len(sink.loads) == 2


def test_a_failed_load_marks_its_export_failed_and_a_rerun_redoes_it(ctx: Context) -> None:
    batch_id, run_id = seed(ctx)

    with pytest.raises(RuntimeError, match="connection refused"):
        step.export(ctx, sink=FakeSink(fail={"machine_cycle"}))

    with ctx.uow() as uow:
        exports = uow.exports.for_pipeline("p", inference_run_id=run_id)
        (failed_run,) = uow.runs.for_pipeline("p", "export")
        assert uow.batches.get(batch_id).status == BatchStatus.INFERRED
    assert [(e.table_name, e.status, e.reason) for e in exports] == [
        (
            "machine_activity",
            RunStatus.SUCCEEDED,
            "1 row rejected: 1 overlaps the previous segment",
        ),
        ("machine_cycle", RunStatus.FAILED, "RuntimeError: connection refused"),
    ]
    assert failed_run.status == RunStatus.FAILED

    sink = FakeSink()
    step.export(ctx, sink=sink)
    assert [t for t, _, _ in sink.loads] == ["machine_cycle"]
    with ctx.uow() as uow:
        assert uow.batches.get(batch_id).status == BatchStatus.EXPORTED


def test_a_batch_re_inferred_during_the_export_stays_inferred(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id, _ = seed(ctx)
    real = step.export_one

    def rescored_meanwhile(*args: Any, **kwargs: Any) -> dict[str, Any]:
        with ctx.uow() as uow:
            uow.batches.mark_status(batch_id, BatchStatus.INFERRED)  # a newer inference
            uow.commit()
        return real(*args, **kwargs)

    monkeypatch.setattr(step, "export_one", rescored_meanwhile)
    assert step.export(ctx, sink=FakeSink())["batches_exported"] == 0
    with ctx.uow() as uow:
        assert uow.batches.get(batch_id).status == BatchStatus.INFERRED


def test_no_results_database_skips_everything(ctx: Context) -> None:
    seed(ctx)
    config = ctx.config.model_copy(
        update={"results": ctx.config.results.model_copy(update={"url": None})}
    )
    quiet = Context(config)
    quiet.__dict__["uow"] = ctx.uow
    assert step.export(quiet) == {"skipped": "no results database configured"}
    with ctx.uow() as uow:
        assert uow.runs.for_pipeline("p", "export") == []
