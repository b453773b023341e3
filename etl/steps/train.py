"""``etl train``: one activity model per machine type, when there is enough data.

Per machine type:

1. judge the data: days announced in the catalog's history (read once for all
   machines, from where the last decision stopped) and days of StateVectors that
   carry a label, per asset, against ``training.min_days`` by the type's rule
   (``training.data_rule``); short of it the state store records "insufficient
   data: 9.5 of 14 days for dumpers" and nothing is trained;
2. features in Spark (:mod:`etl.train.features`), labels joined per second;
   whole machines held out for evaluation (a lone machine: its last stretch);
3. fit the MLlib pipeline, smooth and evaluate on the held-out data;
4. version the model under ``{processed_url}/{pipeline}/models/{type}/v{N}/``
   with a manifest of the exact inputs (StateVectors' Delta version, label
   files), log everything to MLflow and register it as
   ``{pipeline}-{type}-activity``; the alias ``champion`` moves only when the
   new version beats the champion on the same held-out data;
5. register the model in the state store (version, metrics, data range, URL).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.config import ACTIVITIES, ModelParams, TrainingConfig
from etl.io.delta import latest_commit, table_exists
from etl.io.objectstore import open_store
from etl.state.domain import NewModel
from etl.steps import recorded_run
from etl.steps.preprocess import denoise_params, statevectors_url
from etl.train.features import FEATURES_VERSION, second_ranges
from etl.train.metrics import plot_confusion
from etl.train.model import (
    LABEL,
    Smoothing,
    evaluate,
    fit_and_evaluate,
    load_model,
    manifest_key,
    models_url,
    read_manifest,
    save_model,
    score_seconds,
    segment_stats,
    version_url,
    with_label_index,
)
from etl.train.plan import (
    DAY_S,
    AssetDays,
    Decision,
    holdout_machines,
    should_promote,
    time_split,
)
from etl.train.sample import (
    Split,
    read_training_data,
    training_data_url,
    training_set,
    write_training_data,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from etl.bootstrap import Context

log = logging.getLogger(__name__)

PIP_REQUIREMENTS = ("pyspark==4.2.0", "mlflow==3.17.2", "numpy", "pandas")
"""What the logged model needs to be loaded (pinned like requirements.lock)."""


def registry_name(pipeline: str, machine_type: str) -> str:
    """The MLflow registered model of a pipeline's machine type."""
    return f"{pipeline}-{machine_type}-activity"


def read_labels(ctx: Context) -> DataFrame | None:
    """The label intervals under ``storage.labels_url`` (parquet files of any depth)."""
    url = ctx.config.storage.labels_url
    if url is None:
        return None
    try:
        return (
            ctx.spark.read.option("recursiveFileLookup", "true")
            .option("pathGlobFilter", "*.parquet")
            .parquet(url)
            .select("machine_uuid", "start", "end", "activity")
        )
    except Exception as exc:
        if "PATH_NOT_FOUND" in str(exc) or "UNABLE_TO_INFER_SCHEMA" in str(exc):
            return None
        raise


def _label_files(ctx: Context) -> list[str]:
    url = ctx.config.storage.labels_url
    if url is None:
        return []
    store = open_store(url, ctx.config.storage.s3)
    return sorted(o.key for o in store.list("") if o.key.endswith(".parquet"))


def announced_days(ctx: Context) -> dict[str, float]:
    """Per machine: the days the catalog's history announces (overlaps once).

    One read of the history for every machine, from where the last decision stopped:
    the positions and each machine's announced intervals are kept in the state store
    (:class:`etl.state.domain.AnnouncedHistory`), so a decision reads only what was
    announced since. The new read and what it adds commit together.
    """
    pipeline = ctx.config.pipeline.name
    catalog = ctx.catalog
    with ctx.uow() as uow:
        known = uow.history.get(pipeline, catalog.history_source)
    read = catalog.read_history(known.positions)
    history = known.extended(
        (
            (a.machine_uuid, a.first_timestamp, a.last_timestamp)
            for a in read.announcements
            if a.first_timestamp is not None and a.last_timestamp is not None
        ),
        read.positions,
    )
    with ctx.uow() as uow:
        uow.history.put(pipeline, history)
        uow.commit()
    log.info(
        "train: %d announcements read from %s (%d machines known)",
        len(read.announcements),
        catalog.history_source,
        len(history.intervals),
    )
    return {machine: history.seconds(machine) / DAY_S for machine in history.intervals}


def open_mlflow(ctx: Context) -> Any:
    """The ``mlflow`` module pointed at the pipeline's tracking server and experiment."""
    import mlflow

    config = ctx.config.mlflow
    uri, artifacts = config.tracking_uri, None
    if uri is None:  # the embedded mode: a local MLflow store next to our outputs
        if not ctx.config.output_url.startswith("file://"):
            raise ValueError("mlflow.tracking_uri is required when processed_url is not file://")
        # SQLite, not ./mlruns: MLflow 3 refuses its file store unless told otherwise
        folder = Path(ctx.config.output_url.removeprefix("file://")) / "mlflow"
        folder.mkdir(parents=True, exist_ok=True)
        uri, artifacts = f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()
    mlflow.set_tracking_uri(uri)
    experiment = config.experiment or ctx.config.pipeline.name
    if artifacts is not None and mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)
    return mlflow


def _champion_score(
    ctx: Context, test: DataFrame, machine_type: str, smoothing: Smoothing
) -> tuple[float | None, str | None]:
    """The champion's macro-F1 on the same held-out data, and its registered version.

    The champion is the state store's, the model inference scores with, loaded
    from its versioned copy. Smoothed like the candidate (its parameters come
    from this training split), so that the comparison is between the two
    classifiers on equal terms.
    """
    with ctx.uow() as uow:
        current = uow.models.champion(ctx.config.pipeline.name, machine_type)
    if current is None:
        return None, None
    model = load_model(ctx.spark, version_url(ctx.config.output_url, current))
    scored = score_seconds(model, test, len(ACTIVITIES[machine_type]))
    result = evaluate(scored, machine_type, smoothing)
    return float(result["macro_f1"]), str(current.registry_version or current.version)


def log_run(
    ctx: Context,
    mlflow: Any,
    model: Any,
    *,
    name: str,
    version: int,
    training_rows: DataFrame,
    inputs: dict[str, Any],
    evaluation: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, Any],
    machine_type: str,
    smoothing: Smoothing,
) -> tuple[str, str]:
    """One MLflow run: parameters, metrics, lineage, confusion picture, the registered model.

    Returns:
        The MLflow run id and the registered model version.
    """
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.spark_dataset import SparkDataset
    from mlflow.data.spark_dataset_source import SparkDatasetSource

    params = ctx.config.training.model
    classes = list(ACTIVITIES[machine_type])
    with mlflow.start_run(run_name=f"{machine_type}-v{version}") as run:
        mlflow.log_params(
            {
                **params.model_dump(),
                "machine_type": machine_type,
                **smoothing.as_params(classes),
            }
        )
        mlflow.log_metrics(metrics)
        # the rows the model was fitted and judged on, as stored with the version
        mlflow.log_input(
            SparkDataset(
                df=training_rows,
                source=SparkDatasetSource(path=inputs["training_data"]["url"]),
                targets="activity",
                name=f"training_data v{version}",
            ),
            context="training",
        )
        # built by hand: mlflow.data.from_spark recognises Delta tables on local paths only
        mlflow.log_input(
            SparkDataset(
                df=training_rows.select("machine_uuid", "ts", "activity"),
                source=DeltaDatasetSource(
                    path=inputs["statevectors_url"],
                    delta_table_version=int(inputs["statevectors_version"]),
                ),
                targets="activity",
                name=f"statevectors@v{inputs['statevectors_version']}",
            ),
            context="statevectors",
        )
        mlflow.log_input(
            SparkDataset(
                df=training_rows.select("machine_uuid", "ts", "activity"),
                source=SparkDatasetSource(path=inputs["labels_url"]),
                targets="activity",
                name=f"labels ({len(inputs['label_files'])} files)",
            ),
            context="labels",
        )
        mlflow.log_dict(inputs, "inputs.json")
        mlflow.log_dict(evaluation["report"], "evaluation.json")
        with tempfile.TemporaryDirectory() as folder:
            picture = Path(folder) / f"confusion-{machine_type}.png"
            plot_confusion(
                evaluation["report"]["confusion"],
                classes,
                str(picture),
                f"{name} v{version}: held-out seconds",
            )
            mlflow.log_artifact(str(picture))
        mlflow.set_tags(
            {k: json.dumps(v) if not isinstance(v, str) else v for k, v in tags.items()}
        )
        logged = mlflow.spark.log_model(
            model,
            "model",
            registered_model_name=name,
            pip_requirements=list(PIP_REQUIREMENTS),
        )
        return run.info.run_id, str(logged.registered_model_version)


def labelled_seconds(vectors: DataFrame, labels: DataFrame) -> dict[str, int]:
    """Per machine: labelled seconds that have StateVectors, counted per machine-day.

    A machine-day counts the lesser of its labelled seconds and its StateVectors:
    exact when, that day, the labels lie within the seconds that have data (or the
    data within the labelled seconds), and cheap at any fleet size (row counts per
    partition and the label intervals; no per-second join of the whole history).
    """
    from pyspark.sql import functions as F

    day_index = F.explode(
        F.sequence(F.floor(F.col("first") / DAY_S), F.floor(F.col("last") / DAY_S))
    )
    pieces = second_ranges(labels).withColumn("_day", day_index)
    per_day = pieces.select(
        "machine_uuid",
        F.date_format(F.timestamp_seconds(F.col("_day") * DAY_S), "yyyy-MM-dd").alias("day"),
        (
            F.least(F.col("last"), F.col("_day") * DAY_S + DAY_S - 1)
            - F.greatest(F.col("first"), F.col("_day") * DAY_S)
            + 1
        ).alias("seconds"),
    )
    labelled = per_day.groupBy("machine_uuid", "day").agg(F.sum("seconds").alias("labelled"))
    present = vectors.groupBy("machine_uuid", "day").agg(F.count(F.lit(1)).alias("vectors"))
    counted = (
        labelled.join(present, ["machine_uuid", "day"])
        .groupBy("machine_uuid")
        .agg(F.sum(F.least("labelled", "vectors")).alias("seconds"))
        .collect()
    )
    return {r["machine_uuid"]: int(r["seconds"]) for r in counted}


def choose_split(
    ranges: DataFrame, machines: list[str], settings: TrainingConfig
) -> tuple[Split, float, float]:
    """Whole machines held out (a lone machine: its last stretch), and the labels' time range.

    With ``training.forward_fraction`` every machine's latest share of the time is
    kept out of training as well, to judge the model forward in time.
    """
    from pyspark.sql import functions as F

    bounds = ranges.agg(F.min("first"), F.max("last")).first()
    data_from, data_to = float(bounds[0]), float(bounds[1] + 1)
    held = holdout_machines(machines, settings.holdout_fraction, settings.model.seed)
    if held:
        forward = None
        if settings.forward_fraction > 0:
            forward = math.ceil(time_split(data_from, data_to, settings.forward_fraction))
        return Split(holdout_machines=tuple(held), forward_after_ts=forward), data_from, data_to
    cut = math.ceil(time_split(data_from, data_to, settings.holdout_fraction))
    return Split(holdout_after_ts=cut), data_from, data_to


def train_type(
    ctx: Context,
    machine_type: str,
    vectors: DataFrame,
    labels: DataFrame,
    machines: list[str],
    *,
    inputs: dict[str, Any],
    decision: Decision,
) -> dict[str, Any]:
    """Sample, store, fit, evaluate, version, log, register and maybe promote one type's model.

    ``vectors`` and ``labels`` are the type's machines' StateVectors and label intervals.
    """
    from pyspark.sql import functions as F

    settings = ctx.config.training
    params = settings.model
    pipeline = ctx.config.pipeline.name
    started = time.monotonic()
    classes = list(ACTIVITIES[machine_type])
    ranges = with_label_index(second_ranges(labels), machine_type)
    split, data_from, data_to = choose_split(ranges, machines, settings)
    # durations of every training-side segment, not of the clipped sampled stretches
    segments = split.training_side(ranges).select(
        LABEL, (F.col("last") - F.col("first") + 1).alias("seconds")
    )
    smoothing = Smoothing.from_stats(segment_stats(segments), len(classes), params.min_segment_s)

    with ctx.uow() as uow:
        version = 1 + max(
            (m.version for m in uow.models.for_pipeline(pipeline, machine_type)), default=0
        )
    url = models_url(ctx.config.output_url, machine_type, version)
    sample = training_set(
        vectors,
        labels,
        split,
        settings.sample,
        params.seed,
        augment=settings.augment,
        denoise=denoise_params(ctx),
    )
    stored = training_data_url(url)
    stored_rows = write_training_data(sample.rows, stored)
    sampled_s = round(time.monotonic() - started, 1)
    fitted = fit_and_evaluate(
        read_training_data(ctx.spark, stored), machine_type, params, smoothing
    )
    evaluation, metrics = fitted.evaluation, fitted.metrics
    save_model(fitted.model, ctx.spark, url)
    training_data = {
        "url": stored,
        "rows": stored_rows,
        "limits": settings.sample.model_dump(),
        "augment": settings.augment.model_dump(),
        **sample.record(),
    }
    manifest = {
        "machine_type": machine_type,
        "version": version,
        "inputs": inputs,
        "split": split.record(),
        "training_data": training_data,
        "params": params.model_dump(),
        "features_version": FEATURES_VERSION,
        "smoothing": smoothing.record(),
        "data_from": data_from,
        "data_to": data_to,
        "metrics": metrics,
        "decision": decision.message,
        "data": decision.record(),
    }
    store = open_store(ctx.config.output_url, ctx.config.storage.s3)
    store.put(
        manifest_key(machine_type, version),
        json.dumps(manifest, indent=2, sort_keys=True).encode(),
    )

    name = registry_name(pipeline, machine_type)
    champion_f1, champion_version = _champion_score(ctx, fitted.test, machine_type, smoothing)
    mlflow = open_mlflow(ctx)
    promote = should_promote(metrics["macro_f1"], champion_f1)
    run_id, registered = log_run(
        ctx,
        mlflow,
        fitted.model,
        name=name,
        version=version,
        training_rows=read_training_data(ctx.spark, stored),
        inputs={**inputs, "training_data": training_data},
        evaluation=evaluation,
        metrics=metrics,
        tags={**split.record(), "model_url": url, "role": "champion" if promote else "challenger"},
        smoothing=smoothing,
        machine_type=machine_type,
    )
    client = mlflow.MlflowClient()
    reason = f"macro-F1 {metrics['macro_f1']:.4f} vs champion " + (
        f"{champion_f1:.4f} (v{champion_version})" if champion_f1 is not None else "none"
    )
    with ctx.uow() as uow:
        row = uow.models.add(
            NewModel(
                pipeline=pipeline,
                machine_type=machine_type,
                mlflow_run_id=run_id,
                registry_name=name,
                registry_version=registered,
                url=url,
                metrics=metrics,
                data_from=data_from,
                data_to=data_to,
                trained_at=datetime.now(UTC),
            )
        )
        if row.version != version:
            raise RuntimeError(f"model version raced: wrote v{version}, store gave v{row.version}")
        if promote:
            uow.models.set_champion(row.id, reason=reason)
        uow.commit()
    if promote:
        client.set_registered_model_alias(name, "champion", registered)
    else:
        client.set_model_version_tag(name, registered, "challenger_reason", reason)
    fitted.test.unpersist()
    return {
        "trained": True,
        "version": version,
        "registry": f"{name}/{registered}",
        "champion": promote,
        "reason": reason,
        "url": url,
        "macro_f1": metrics["macro_f1"],
        "macro_f1_unsmoothed": metrics["macro_f1_unsmoothed"],
        "forward_macro_f1": metrics.get("forward_macro_f1"),
        "eval_seconds": evaluation["seconds"],
        "cycles": evaluation["cycles"],
        "per_class_f1": {a: evaluation["report"]["per_class"][a]["f1"] for a in classes},
        "training_data": training_data,
        "sample_seconds": sampled_s,
        "seconds": round(time.monotonic() - started, 1),
        "decision": decision.message,
        "data": decision.record(),
    }


def reproduce(ctx: Context, machine_type: str, version: int) -> dict[str, Any]:
    """Fit a version again from its stored training data alone; compare the held-out metrics.

    Reads the version's manifest and ``training_data/`` under the pipeline's prefix
    (no StateVectors, no labels, no state store), fits with the recorded parameters,
    smooths with the recorded smoothing and evaluates on the recorded held-out rows.
    Nothing is registered: this checks that a version can be had again.
    """
    started = time.monotonic()
    store = open_store(ctx.config.output_url, ctx.config.storage.s3)
    manifest = read_manifest(store, machine_type, version)
    if manifest is None:
        raise ValueError(f"no {machine_type} model v{version} under {ctx.config.output_url}")
    if "training_data" not in manifest:
        raise ValueError(
            f"{machine_type} v{version} was trained before versions kept their training data"
        )
    fitted = fit_and_evaluate(
        read_training_data(ctx.spark, manifest["training_data"]["url"]),
        machine_type,
        ModelParams(**manifest["params"]),
        Smoothing.from_record(manifest["smoothing"]),
    )
    fitted.test.unpersist()
    recorded: dict[str, float] = manifest["metrics"]
    differing = {
        name: {"recorded": recorded.get(name), "reproduced": fitted.metrics.get(name)}
        for name in sorted(set(recorded) | set(fitted.metrics))
        if name not in recorded
        or name not in fitted.metrics
        or not math.isclose(recorded[name], fitted.metrics[name], rel_tol=1e-9, abs_tol=1e-12)
    }
    return {
        "machine_type": machine_type,
        "version": version,
        "reproduced": not differing,
        "training_data": manifest["training_data"]["url"],
        "macro_f1": fitted.metrics["macro_f1"],
        "metrics": fitted.metrics,
        "differing": differing,
        "seconds": round(time.monotonic() - started, 1),
    }


def train(ctx: Context, only: set[str] | None = None) -> dict[str, Any]:
    """Train every machine type (or those in ``only``) with enough data; record every decision."""
    from pyspark.sql import functions as F

    config = ctx.config
    with recorded_run(ctx, "train", {"types": {}}) as (_, summary):
        machines_by_type: dict[str, list[str]] = defaultdict(list)
        for asset in config.assets:
            if only is None or asset.type in only:
                machines_by_type[asset.type].append(asset.uuid)
        url = statevectors_url(config.output_url)
        vectors = labels = None
        inputs: dict[str, Any] = {"statevectors_url": url}
        if table_exists(ctx.spark, url):
            # pinned: the manifest and MLflow name the exact version the model learnt from
            inputs["statevectors_version"] = latest_commit(ctx.spark, url)[0]
            vectors = (
                ctx.spark.read.format("delta")
                .option("versionAsOf", inputs["statevectors_version"])
                .load(url)
            )
        labels = read_labels(ctx)
        inputs["labels_url"] = config.storage.labels_url
        inputs["label_files"] = _label_files(ctx) if labels is not None else []
        announced = announced_days(ctx) if machines_by_type else {}
        for machine_type, machines in sorted(machines_by_type.items()):
            mine = theirs = None
            counted: dict[str, int] = {}
            if vectors is not None and labels is not None:
                mine = vectors.where(F.col("machine_uuid").isin(machines))
                theirs = labels.where(F.col("machine_uuid").isin(machines))
                counted = labelled_seconds(mine, theirs)
            decision = Decision(
                machine_type,
                {m: AssetDays(announced.get(m, 0.0), counted.get(m, 0) / DAY_S) for m in machines},
                config.training.min_days,
                config.training.data_rule,
            )
            log.info("train %s: %s", machine_type, decision.message)
            if not decision.enough or mine is None or theirs is None:
                summary["types"][machine_type] = {
                    "trained": False,
                    "reason": decision.message,
                    "data": decision.record(),
                }
                continue
            summary["types"][machine_type] = train_type(
                ctx, machine_type, mine, theirs, machines, inputs=inputs, decision=decision
            )
    return summary
