"""``etl run``: one recurring tick (discover, preprocess, train, infer, export, compact).

A tick is meant to run every 10 minutes and to catch up after downtime: each
step works off its own queue in the state store (announcements not yet
registered, files not yet preprocessed, StateVectors not yet scored, results
not yet exported), so a tick after a day of downtime simply has more to do.

One failing step does not stop the others: a training failure must not hold
back scoring with the current champion, and an export failure must not stop
new data from being preprocessed. The tick reports every step and fails (exit
1) at the end if any step failed; the next tick retries it.

Training is *due* for a machine type when its champion is older than
``training.retrain_every_h``, or when it has no champion and was not judged
in the last ``training.recheck_every_h`` hours (judging reads the catalog's
history from where the last decision stopped, and counts the labelled
StateVectors with Spark). Compaction of the Delta tables is due once every
``maintenance.compact_every_h`` (etl.steps.compact).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from etl.state.domain import RunStatus

if TYPE_CHECKING:
    from etl.bootstrap import Context

log = logging.getLogger(__name__)


class TickFailedError(RuntimeError):
    """At least one step of a tick failed; the others ran (``summary`` says how each went)."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


def due_types(ctx: Context, now: datetime | None = None) -> set[str]:
    """The machine types ``etl run`` should (re)train now.

    A type without a champion when last judged long enough ago; a champion when it
    is older than ``training.retrain_every_h``, or learnt from features other than
    this code computes (its manifest says which).
    """
    from etl.io.objectstore import open_store
    from etl.train.model import learnt_other_features, read_manifest

    now = now or datetime.now(UTC)
    config = ctx.config
    store = open_store(config.output_url, config.storage.s3)
    pipeline = config.pipeline.name
    retrain = timedelta(hours=config.training.retrain_every_h)
    recheck = timedelta(hours=config.training.recheck_every_h)
    due = set()
    with ctx.uow() as uow:
        judged: dict[str, datetime] = {}
        for run in uow.runs.for_pipeline(pipeline, "train"):
            if run.status is RunStatus.SUCCEEDED and run.summary:
                for machine_type in run.summary.get("types", {}):
                    judged[machine_type] = run.finished_at or run.started_at
        for machine_type in sorted({a.type for a in config.assets}):
            champion = uow.models.champion(pipeline, machine_type)
            if champion is not None:
                manifest = read_manifest(store, machine_type, champion.version)
                stale = manifest is not None and learnt_other_features(manifest)
                if stale or now - champion.trained_at >= retrain:
                    due.add(machine_type)
            elif machine_type not in judged or now - judged[machine_type] >= recheck:
                due.add(machine_type)
    return due


def run_tick(ctx: Context) -> dict[str, Any]:
    """Discover, preprocess, train when due, infer, export; each step's summary and time."""
    from etl.steps.compact import compact, compact_due
    from etl.steps.discover import discover
    from etl.steps.export import export
    from etl.steps.infer import infer
    from etl.steps.preprocess import preprocess
    from etl.steps.train import train

    pipeline = ctx.config.pipeline.name
    with ctx.uow() as uow:
        run = uow.runs.start(pipeline, "run")
        uow.commit()
    started = time.monotonic()
    summary: dict[str, Any] = {"steps": {}, "failed": {}}

    def step(name: str, action: Callable[[], Any]) -> None:
        clock = time.monotonic()
        try:
            result = action()
        except Exception as exc:
            log.exception("run: %s failed", name)
            summary["failed"][name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            result = None
        summary["steps"][name] = {
            "seconds": round(time.monotonic() - clock, 1),
            "summary": result,
        }

    completed = False
    try:
        step("discover", lambda: discover(ctx))
        step("preprocess", lambda: preprocess(ctx))
        due = due_types(ctx)
        step("train", lambda: train(ctx, only=due) if due else {"skipped": "no machine type due"})
        step("infer", lambda: infer(ctx))
        step("export", lambda: export(ctx))
        if compact_due(ctx):
            step("compact", lambda: compact(ctx))
        completed = True
    finally:  # also after a kill (SIGTERM) or an error outside a step: how far it got
        summary["seconds"] = round(time.monotonic() - started, 1)
        ok = completed and not summary["failed"]
        with ctx.uow() as uow:
            uow.runs.finish(
                run.id, RunStatus.SUCCEEDED if ok else RunStatus.FAILED, _brief(summary)
            )
            uow.commit()
    if summary["failed"]:
        names = ", ".join(f"{k} ({v})" for k, v in summary["failed"].items())
        raise TickFailedError(f"{len(summary['failed'])} step(s) failed: {names}", summary)
    return summary


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    """What the state store keeps of a tick: timings and failures (steps record their own)."""
    return {
        "seconds": summary["seconds"],
        "steps": {k: v["seconds"] for k, v in summary["steps"].items()},
        "failed": summary["failed"],
    }
