"""`etl run` orchestration: when training is due, and a failing step does not stop the others."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from etl.bootstrap import Context, bootstrap
from etl.config import parse_config
from etl.state.domain import ModelVersion, NewModel, RunStatus
from etl.steps import tick
from etl.steps.compact import compact_due
from etl.steps.tick import TickFailedError, due_types, run_tick


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    config = parse_config(
        {
            "pipeline": {"name": "ticktest"},
            "assets": [
                {"uuid": "0b6f1c4e-0000-4000-8000-000000000001", "type": "dumper"},
                {"uuid": "0b6f1c4e-0000-4000-8000-000000000002", "type": "excavator"},
            ],
            "storage": {
                "raw_url": f"file://{tmp_path}/raw",
                "processed_url": f"file://{tmp_path}/processed",
            },
            "catalog": {"kind": "listing"},
            "state": {"url": f"sqlite:///{tmp_path}/state.db"},
            "training": {"retrain_every_h": 24, "recheck_every_h": 6},
        },
        {},
    )
    context = bootstrap(config)
    yield context
    context.close()


def _judged(ctx: Context, types: list[str]) -> None:
    with ctx.uow() as uow:
        run = uow.runs.start("ticktest", "train")
        uow.runs.finish(run.id, RunStatus.SUCCEEDED, {"types": {t: {} for t in types}})
        uow.commit()


def _champion(ctx: Context, machine_type: str, trained_at: datetime) -> ModelVersion:
    with ctx.uow() as uow:
        model = uow.models.add(NewModel("ticktest", machine_type, trained_at=trained_at))
        uow.models.set_champion(model.id)
        uow.commit()
    return model


def test_a_type_never_judged_is_due_and_a_recent_judgement_waits(ctx: Context) -> None:
    now = datetime.now(UTC)
    assert due_types(ctx, now) == {"dumper", "excavator"}
    _judged(ctx, ["excavator"])
    assert due_types(ctx, now + timedelta(hours=1)) == {"dumper"}
    assert due_types(ctx, now + timedelta(hours=7)) == {"dumper", "excavator"}


def test_a_champion_is_retrained_only_when_old(ctx: Context) -> None:
    now = datetime.now(UTC)
    _champion(ctx, "dumper", now)
    _judged(ctx, ["dumper", "excavator"])
    assert due_types(ctx, now + timedelta(hours=1)) == set()
    assert due_types(ctx, now + timedelta(hours=25)) == {"dumper", "excavator"}


def test_a_champion_that_learnt_other_features_is_retrained_at_once(ctx: Context) -> None:
    from etl.io.objectstore import open_store
    from etl.train.features import FEATURES_VERSION

    now = datetime.now(UTC)
    model = _champion(ctx, "dumper", now)
    _judged(ctx, ["dumper", "excavator"])
    store = open_store(ctx.config.output_url, ctx.config.storage.s3)
    key = f"models/dumper/v{model.version}/training_data.json"
    store.put(key, json.dumps({"features_version": FEATURES_VERSION}).encode())
    assert due_types(ctx, now + timedelta(hours=1)) == set()
    store.put(key, json.dumps({}).encode())  # from before features had versions
    assert due_types(ctx, now + timedelta(hours=1)) == {"dumper"}


def test_a_failing_step_is_reported_and_the_others_still_run(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[str] = []

    def fake(name: str, fail: bool = False) -> Any:
        def step(*args: Any, **kwargs: Any) -> dict[str, str]:
            called.append(name)
            if fail:
                raise RuntimeError(f"{name} broke\nsecond line")
            return {"ok": name}

        return step

    import etl.steps.compact
    import etl.steps.discover
    import etl.steps.export
    import etl.steps.infer
    import etl.steps.preprocess
    import etl.steps.train

    monkeypatch.setattr(etl.steps.discover, "discover", fake("discover"))
    monkeypatch.setattr(etl.steps.preprocess, "preprocess", fake("preprocess", fail=True))
    monkeypatch.setattr(etl.steps.train, "train", fake("train"))
    monkeypatch.setattr(etl.steps.infer, "infer", fake("infer"))
    monkeypatch.setattr(etl.steps.export, "export", fake("export"))
    monkeypatch.setattr(etl.steps.compact, "compact", fake("compact"))
    monkeypatch.setattr(tick, "due_types", lambda ctx: {"dumper"})
    with pytest.raises(TickFailedError, match=r"1 step\(s\) failed: preprocess \(RuntimeError"):
        run_tick(ctx)
    # never compacted: compaction is due and runs last
    assert called == ["discover", "preprocess", "train", "infer", "export", "compact"]
    with ctx.uow() as uow:
        last = uow.runs.for_pipeline("ticktest", "run")[-1]
    assert last.status is RunStatus.FAILED
    assert last.summary["failed"] == {"preprocess": "RuntimeError: preprocess broke"}


def test_compaction_is_due_once_a_day(ctx: Context) -> None:
    now = datetime.now(UTC)
    assert compact_due(ctx, now)
    with ctx.uow() as uow:
        failed = uow.runs.start("ticktest", "compact")
        uow.runs.finish(failed.id, RunStatus.FAILED, {})
        uow.commit()
    assert compact_due(ctx, now), "a failed compaction is retried"
    with ctx.uow() as uow:
        run = uow.runs.start("ticktest", "compact")
        uow.runs.finish(run.id, RunStatus.SUCCEEDED, {})
        uow.commit()
    assert not compact_due(ctx, now + timedelta(hours=23))
    assert compact_due(ctx, now + timedelta(hours=24, minutes=1))
