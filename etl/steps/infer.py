"""``etl infer``: score the StateVectors that have not been scored yet with each type's champion.

Per machine type that has a champion model in the state store:

1. the work queue is the type's ``preprocessed`` batches; per machine, the
   first second whose inputs may have changed is the earliest first timestamp
   of those batches minus :data:`MARGIN_S` (preprocessing recomputes seconds
   near batch boundaries, and features look a minute around each second);
2. the *cut* per machine (:func:`etl.infer.results.find_cut`): the start of
   the last work cycle before that second, from the stored segments, so the
   cycle the new data continues or a late batch completes is rebuilt whole;
3. an inference run is recorded (model, StateVectors Delta version, cuts)
   before anything is written;
4. features (:func:`etl.train.features.statevector_features`) over the
   machine's StateVectors from ``cut - WARMUP_S``, the champion's MLlib
   pipeline loaded from its versioned copy (the one MLflow logged too) through
   this step's own session, the model's own smoothing per machine in
   ``applyInPandas``; every second from the cut on is replaced in the
   ``seconds`` table, then the segments and cycles from the cut on are
   rebuilt from those seconds and replace theirs (``replaceWhere``, one commit
   per table, ``txnAppId``/``txnVersion`` = the inference run);
5. the batches move to ``inferred`` and the run is closed with its row counts.

A job killed anywhere is safe to rerun: the batches are still
``preprocessed``, the same cuts are found, and each table's rows from the
cut on are replaced, not appended. Running inference runs left by a killed
job are closed as failed at the next start.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from etl.config import ACTIVITIES
from etl.infer.results import (
    cycles_with_travel,
    find_cut,
    segments_with_confidence,
    smooth_seconds,
)
from etl.infer.schema import (
    CYCLES,
    SECONDS,
    SEGMENTS,
    cycles_schema,
    seconds_schema,
    segments_schema,
    table_url,
)
from etl.io.delta import latest_commit, quote, replace_where, table_exists, utc_day
from etl.io.objectstore import open_store
from etl.state.domain import Batch, BatchStatus, ModelVersion, RunStatus
from etl.steps import recorded_run
from etl.steps.preprocess import statevectors_url
from etl.train.features import FEATURES_VERSION, statevector_features
from etl.train.model import (
    Smoothing,
    class_probabilities,
    learnt_other_features,
    load_model,
    manifest_key,
    version_url,
)

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

    from etl.bootstrap import Context

log = logging.getLogger(__name__)

MARGIN_S = 300
"""Seconds before a new batch whose StateVectors or features may have changed with it."""
WARMUP_S = 900
"""StateVectors read before the cut: feature windows (60 s) and the smoothing's past."""
LOOKBACK_S = 12 * 3600
"""How far back the last cycle start is looked for; a longer cycle is cut here."""


@dataclass(frozen=True)
class Champion:
    """The model a machine type is scored with, and how its output is smoothed."""

    row: ModelVersion
    model: PipelineModel
    smoothing: Smoothing

    @property
    def label(self) -> str:
        """``{registered name}/{version}``: what every output row names as its model."""
        return f"{self.row.registry_name}/{self.row.registry_version}"


def load_champion(ctx: Context, row: ModelVersion) -> Champion:
    """The champion's fitted pipeline and smoothing, from its versioned copy and manifest.

    Read through this step's own session (:func:`etl.train.model.load_model`):
    ``etl infer`` and ``jobs/infer.py`` start in a fresh process.
    """
    store = open_store(ctx.config.output_url, ctx.config.storage.s3)
    manifest = json.loads(store.get(manifest_key(row.machine_type, row.version)))
    if learnt_other_features(manifest):
        log.warning(
            "infer %s: champion v%d learnt from features version %s, this code computes %d; "
            "it scores until retrained (etl run retrains it at its next tick)",
            row.machine_type,
            row.version,
            manifest.get("features_version", 1),
            FEATURES_VERSION,
        )
    smoothing = Smoothing.from_record(manifest["smoothing"])
    return Champion(row, load_model(ctx.spark, version_url(ctx.config.output_url, row)), smoothing)


def first_changed(batches: list[Batch]) -> dict[str, int]:
    """Per machine: the first second whose results may change with these batches."""
    first: dict[str, int] = {}
    for batch in batches:
        if batch.first_timestamp is None:
            continue
        start = int(batch.first_timestamp) - MARGIN_S
        first[batch.machine_uuid] = min(first.get(batch.machine_uuid, start), start)
    return first


def find_cuts(
    ctx: Context, machine_types: dict[str, str], first_new: dict[str, int]
) -> dict[str, int]:
    """Per machine: the cut, from the stored segments near its first changed second."""
    url = table_url(ctx.config.output_url, SEGMENTS)
    if not table_exists(ctx.spark, url):
        return dict(first_new)
    near = " OR ".join(
        f"(machine_uuid = {quote(m)} AND `end` >= {t - LOOKBACK_S} AND start < {t})"
        for m, t in sorted(first_new.items())
    )
    old = (
        ctx.spark.read.format("delta")
        .load(url)
        .where(near)
        .select("machine_uuid", "start", "end", "activity")
        .toPandas()
    )
    by_machine = dict(tuple(old.groupby("machine_uuid")))
    return {
        m: find_cut(by_machine.get(m, old.iloc[:0]), machine_types[m], t)
        for m, t in first_new.items()
    }


def _from_cut(cuts: dict[str, int], column: str, *, days: bool = False) -> str:
    """SQL filter of each machine's rows at or after its cut (with day pruning)."""
    clauses = []
    for machine, cut in sorted(cuts.items()):
        day = f" AND day >= '{utc_day(cut)}'" if days else ""
        clauses.append(f"(machine_uuid = {quote(machine)}{day} AND `{column}` >= {cut})")
    return " OR ".join(clauses)


def score(
    vectors: DataFrame, champion: Champion, cuts: dict[str, int], provenance: dict[str, Any]
) -> DataFrame:
    """Per-second rows of the ``seconds`` table for every machine from its cut on."""
    machine_type = champion.row.machine_type
    classes = tuple(ACTIVITIES[machine_type])
    warm = {m: c - WARMUP_S for m, c in cuts.items()}
    inputs = vectors.where(_from_cut(warm, "ts", days=True))
    transformed = champion.model.transform(statevector_features(inputs))
    scored = transformed.select(
        "machine_uuid",
        "ts",
        class_probabilities(transformed, len(classes)).alias("probabilities"),
    )
    smoothing = champion.smoothing

    def per_machine(frame: pd.DataFrame) -> pd.DataFrame:
        machine = str(frame["machine_uuid"].iloc[0])
        out = smooth_seconds(frame, classes, smoothing, cuts[machine])
        out.insert(0, "machine_type", machine_type)
        out.insert(0, "machine_uuid", machine)
        for key, value in provenance.items():
            out[key] = value
        out["day"] = pd.to_datetime(out["ts"], unit="s", utc=True).dt.strftime("%Y-%m-%d")
        return out

    return scored.groupBy("machine_uuid").applyInPandas(per_machine, schema=seconds_schema())


def rebuild(
    ctx: Context,
    vectors: DataFrame,
    cuts: dict[str, int],
    provenance: dict[str, dict[str, Any]],
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Segments and cycles of every machine from its cut on, from the stored seconds.

    ``provenance`` is per machine type (each type has its own model and run).
    The joined input is cached, as both outputs are computed from it; it is
    returned third for the caller to unpersist.
    """
    seconds = (
        ctx.spark.read.format("delta")
        .load(table_url(ctx.config.output_url, SECONDS))
        .where(_from_cut(cuts, "ts", days=True))
        .select("machine_uuid", "machine_type", "ts", "activity", "confidence")
    )
    positions = vectors.where(_from_cut(cuts, "ts", days=True)).select(
        "machine_uuid", "ts", "latitude", "longitude", "speed"
    )
    joined = seconds.join(positions, ["machine_uuid", "ts"], "left").persist()
    max_gap_s = ctx.config.preprocess.max_gap_s

    def labelled(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        machine_type = str(frame["machine_type"].iloc[0])
        rows.insert(0, "machine_type", machine_type)
        rows.insert(0, "machine_uuid", str(frame["machine_uuid"].iloc[0]))
        for key, value in provenance[machine_type].items():
            rows[key] = value
        return rows

    def segments(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
        return labelled(frame, segments_with_confidence(frame))

    def cycles(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
        machine_type = str(frame["machine_type"].iloc[0])
        return labelled(frame, cycles_with_travel(frame, machine_type, max_gap_s))

    grouped = joined.groupBy("machine_uuid")
    return (
        grouped.applyInPandas(segments, schema=segments_schema()),
        grouped.applyInPandas(cycles, schema=cycles_schema()),
        joined,
    )


def close_interrupted(ctx: Context, run_id: int) -> int:
    """Close inference runs a killed job left running; how many."""
    pipeline = ctx.config.pipeline.name
    with ctx.uow() as uow:
        stale = uow.inference_runs.for_pipeline(pipeline, status=RunStatus.RUNNING)
        for row in stale:
            uow.inference_runs.finish(
                row.id,
                RunStatus.FAILED,
                reason=f"interrupted: still running when run {run_id} started",
            )
        uow.commit()
    return len(stale)


def infer_batches(
    ctx: Context,
    champions: dict[str, Champion],
    batches: dict[str, list[Batch]],
    *,
    run_id: int,
) -> dict[str, Any]:
    """Score the machine types' new StateVectors and rebuild their segments and cycles.

    All types go through one pass: one read of the stored segments for the
    cuts, one write per table (each type's rows carry its own model and
    inference run), so a tick's fixed cost does not grow with the number of
    machine types.
    """
    started = clock = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = round(now - clock, 2)
        clock = now

    config = ctx.config
    pipeline = config.pipeline.name
    sv_url = statevectors_url(config.output_url)
    sv_version = latest_commit(ctx.spark, sv_url)[0]
    vectors = ctx.spark.read.format("delta").option("versionAsOf", sv_version).load(sv_url)
    type_of = {b.machine_uuid: t for t, rows in batches.items() for b in rows}
    first_new = first_changed([b for rows in batches.values() for b in rows])
    if not first_new:  # preprocessed batches always carry their time range
        raise RuntimeError("the batches to score have no time range")
    cuts = find_cuts(ctx, type_of, first_new)
    cuts_of = {t: {m: c for m, c in cuts.items() if type_of[m] == t} for t in batches}
    lap("cuts_s")
    with ctx.uow() as uow:
        runs = {
            t: uow.inference_runs.start(
                pipeline,
                champions[t].row.id,
                ts_from=float(min(cuts_of[t].values())),
                input_versions={
                    "statevectors_version": sv_version,
                    "model": champions[t].label,
                    "machine_type": t,
                    "cuts": cuts_of[t],
                },
                output_url=f"{config.output_url}/inference",
                run_id=run_id,
            )
            for t in sorted(batches)
        }
        uow.commit()
    provenance = {
        t: {
            "model_version": champions[t].label,
            "statevectors_version": sv_version,
            "inference_run_id": runs[t].id,
        }
        for t in runs
    }
    txn = max(r.id for r in runs.values())
    cached = None
    try:
        frames = [score(vectors, champions[t], cuts_of[t], provenance[t]) for t in sorted(runs)]
        written: dict[str, int] = {}
        _, written[SECONDS] = replace_where(
            functools.reduce(lambda a, b: a.unionByName(b), frames),
            table_url(config.output_url, SECONDS),
            _from_cut(cuts, "ts", days=True),
            partition_by=("machine_uuid", "day"),
            txn_app_id=f"{pipeline}-infer-{SECONDS}",
            txn_version=txn,
        )
        lap("score_s")
        segments, cycles, cached = rebuild(ctx, vectors, cuts, provenance)
        for table, frame, column in (
            (SEGMENTS, segments, "start"),
            (CYCLES, cycles, "cycle_start"),
        ):
            _, written[table] = replace_where(
                frame,
                table_url(config.output_url, table),
                _from_cut(cuts, column),
                partition_by=("machine_uuid",),
                txn_app_id=f"{pipeline}-infer-{table}",
                txn_version=txn,
            )
            lap(f"{table}_s")
    except Exception as exc:
        with ctx.uow() as uow:
            for inference in runs.values():
                uow.inference_runs.finish(inference.id, RunStatus.FAILED, reason=str(exc))
            uow.commit()
        raise
    finally:
        if cached is not None:
            cached.unpersist()
    seconds_of, confidence_of = _rows_per_type(ctx, cuts_of, runs)
    with ctx.uow() as uow:
        for t, inference in runs.items():
            for batch in batches[t]:
                uow.batches.mark_status(batch.id, BatchStatus.INFERRED, run_id=run_id)
            uow.inference_runs.finish(inference.id, RunStatus.SUCCEEDED, rows=seconds_of.get(t, 0))
        uow.commit()
    lap("record_s")
    return {
        "types": {
            t: {
                "scored": True,
                "model": champions[t].label,
                "inference_run": runs[t].id,
                "machines": len(cuts_of[t]),
                "batches": len(batches[t]),
                "seconds": seconds_of.get(t, 0),
                "mean_confidence": confidence_of.get(t),
            }
            for t in sorted(runs)
        },
        "seconds": written[SECONDS],
        "segments": written[SEGMENTS],
        "cycles": written[CYCLES],
        "statevectors_version": sv_version,
        "elapsed_s": round(time.monotonic() - started, 1),
        "timings": timings,
    }


def _rows_per_type(
    ctx: Context, cuts_of: dict[str, dict[str, int]], runs: dict[str, Any]
) -> tuple[dict[str, int], dict[str, float]]:
    """Seconds each type's inference run wrote, and their mean confidence.

    The count goes to the inference run's row; the mean confidence is the
    drift gauge of :mod:`etl.observe`.
    """
    from pyspark.sql import functions as F

    ids = ", ".join(str(r.id) for r in runs.values())
    counts = (
        ctx.spark.read.format("delta")
        .load(table_url(ctx.config.output_url, SECONDS))
        .where(
            _from_cut({m: c for cuts in cuts_of.values() for m, c in cuts.items()}, "ts", days=True)
        )
        .where(f"inference_run_id IN ({ids})")
        .groupBy("machine_type")
        .agg(F.count(F.lit(1)).alias("n"), F.avg("confidence").alias("confidence"))
        .collect()
    )
    return (
        {r["machine_type"]: int(r["n"]) for r in counts},
        {r["machine_type"]: round(float(r["confidence"]), 4) for r in counts},
    )


def infer(ctx: Context) -> dict[str, Any]:
    """Score every machine type's ``preprocessed`` batches with its champion."""
    config = ctx.config
    pipeline = config.pipeline.name
    type_of = {a.uuid: a.type for a in config.assets}
    with recorded_run(ctx, "infer", {"types": {}}) as (run, summary):
        with ctx.uow() as uow:
            pending = uow.batches.by_status(pipeline, BatchStatus.PREPROCESSED)
            rows = {t: uow.models.champion(pipeline, t) for t in sorted(set(type_of.values()))}
        summary["interrupted_closed"] = close_interrupted(ctx, run.id)
        by_type: dict[str, list[Batch]] = defaultdict(list)
        for batch in pending:
            if batch.machine_uuid in type_of:
                by_type[type_of[batch.machine_uuid]].append(batch)
        champions: dict[str, Champion] = {}
        clock = time.monotonic()
        for machine_type, batches in sorted(by_type.items()):
            row = rows.get(machine_type)
            if row is None:
                summary["types"][machine_type] = {
                    "scored": False,
                    "reason": f"no champion model for {machine_type}: {len(batches)} batches wait",
                }
                continue
            log.info("infer %s: %d batches with %s", machine_type, len(batches), row.registry_name)
            champions[machine_type] = load_champion(ctx, row)
        loaded = round(time.monotonic() - clock, 2)
        if champions:
            result = infer_batches(
                ctx, champions, {t: by_type[t] for t in champions}, run_id=run.id
            )
            summary["types"].update(result.pop("types"))
            summary.update(result)
            summary["timings"]["load_models_s"] = loaded
    return summary
