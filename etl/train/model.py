"""The activity model of one machine type: a Spark MLlib pipeline plus temporal smoothing.

The classifier scores each second from its features; the smoothing (a sticky
HMM/Viterbi pass and a minimum segment duration, :mod:`etl.train.smoothing`)
runs per machine on the class probabilities so that activities do not
flicker. Evaluation is per second (precision, recall, F1 per class, macro-F1,
confusion) and per cycle (count and median duration errors) on held-out data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from etl.config import ACTIVITIES, ModelParams
from etl.train.features import FEATURE_COLUMNS, FEATURES_VERSION
from etl.train.metrics import classification_report, cycle_metrics
from etl.train.segments import activity_segments, build_cycles
from etl.train.smoothing import smooth_activities

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import Column, DataFrame, SparkSession

    from etl.io.objectstore import ObjectStore
    from etl.state.domain import ModelVersion

LABEL = "label"
SPLIT = "split"
"""Column of a training set: which side a second is on (one of SIDES)."""
TRAINING, HELD_OUT, FORWARD = "training", "held_out", "forward"
SIDES = (TRAINING, HELD_OUT, FORWARD)
"""Learnt from; judged on (held-out machines); judged forward in time (every machine's
later days, when training keeps them out)."""
DEFAULT_STAY = 0.98
"""Self-transition probability of a class the training data does not show."""
STAY_RANGE = (0.5, 0.999)


@dataclass(frozen=True)
class SegmentStats:
    """How long the labelled segments of one class last in the training data."""

    mean_s: float
    p10_s: float


@dataclass(frozen=True)
class Smoothing:
    """How predictions are smoothed: per-class stay probabilities and minimum segments.

    Derived from the training labels, never from the held-out data. A class whose
    segments last ``d`` seconds on average keeps its class from one second to the
    next with probability ``1 - 1/d`` (the HMM that matches those durations); a
    predicted segment shorter than half the class's 10th-percentile duration is
    not believed and is merged into a neighbour. One sticky probability for all
    classes erased an excavator's 3-second dumps (macro-F1 0.92 -> 0.86), and one
    5-second minimum let 6-25 s "loading" blips start extra dumper cycles.
    Classes the training data does not show fall back to ``DEFAULT_STAY`` and
    ``training.model.min_segment_s``.
    """

    stays: tuple[float, ...]
    min_segments_s: tuple[int, ...]

    @classmethod
    def from_stats(
        cls, stats: dict[int, SegmentStats], classes: int, default_min_segment_s: int
    ) -> Smoothing:
        """From the training segments' statistics per class index."""
        low, high = STAY_RANGE
        stays, minimums = [], []
        for c in range(classes):
            seen = stats.get(c)
            if seen is None or seen.mean_s <= 1.0:
                stays.append(DEFAULT_STAY)
            else:
                stays.append(min(max(1.0 - 1.0 / seen.mean_s, low), high))
            minimums.append(default_min_segment_s if seen is None else max(1, int(seen.p10_s // 2)))
        return cls(tuple(stays), tuple(minimums))

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Smoothing:
        """From a version's manifest (:meth:`record`): what inference applies with it."""
        return cls(
            tuple(float(s) for s in record["stays"]),
            tuple(int(m) for m in record["min_segments_s"]),
        )

    def record(self) -> dict[str, list[float] | list[int]]:
        """For the version's manifest."""
        return {"stays": list(self.stays), "min_segments_s": list(self.min_segments_s)}

    def as_params(self, classes: list[str]) -> dict[str, float]:
        """For MLflow and the manifest: what inference must apply with this model."""
        params: dict[str, float] = {}
        for name, stay, minimum in zip(classes, self.stays, self.min_segments_s, strict=True):
            params[f"smoothing_stay_{name}"] = stay
            params[f"smoothing_min_segment_s_{name}"] = float(minimum)
        return params


def runs(rows: DataFrame) -> DataFrame:
    """The labelled segments of per-second rows: runs of one machine's seconds with one label.

    A label change, a gap or another machine starts a new segment.

    Returns:
        ``label`` and ``seconds`` per segment, as :func:`segment_stats` takes them.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_time = Window.partitionBy("machine_uuid").orderBy("ts")
    previous_label = F.lag(LABEL).over(by_time)
    starts = (
        previous_label.isNull()
        | (previous_label != F.col(LABEL))
        | (F.col("ts") - F.lag("ts").over(by_time) > 1)
    )
    running = by_time.rowsBetween(Window.unboundedPreceding, 0)
    return (
        rows.select("machine_uuid", "ts", LABEL, starts.cast("long").alias("_start"))
        .withColumn("_segment", F.sum("_start").over(running))
        .groupBy("machine_uuid", "_segment", LABEL)
        .agg(F.count(F.lit(1)).alias("seconds"))
        .select(LABEL, "seconds")
    )


def segment_stats(segments: DataFrame) -> dict[int, SegmentStats]:
    """Duration statistics per class of labelled segments (``label``, ``seconds``; Spark).

    Training takes the segments from the label intervals themselves (every one of
    the training side, not only the sampled stretches, which are clipped).
    """
    from pyspark.sql import functions as F

    rows = (
        segments.groupBy(LABEL)
        .agg(
            F.avg("seconds").alias("mean_s"),
            F.percentile_approx("seconds", 0.1).alias("p10_s"),
        )
        .collect()
    )
    return {int(r[LABEL]): SegmentStats(float(r["mean_s"]), float(r["p10_s"])) for r in rows}


def with_label_index(frame: DataFrame, machine_type: str) -> DataFrame:
    """``label`` = the activity's position in the taxonomy (a fixed order, not by frequency)."""
    from pyspark.sql import functions as F

    index = F.lit(None).cast("double")
    for position, activity in reversed(list(enumerate(ACTIVITIES[machine_type]))):
        index = F.when(F.col("activity") == activity, F.lit(float(position))).otherwise(index)
    return frame.withColumn(LABEL, index).where(F.col(LABEL).isNotNull())


def fit(train: DataFrame, params: ModelParams) -> PipelineModel:
    """Assemble the features and fit the classifier (random forest, or one-vs-rest GBT)."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import (
        GBTClassifier,
        OneVsRest,
        RandomForestClassifier,
    )
    from pyspark.ml.feature import VectorAssembler

    assembler = VectorAssembler(inputCols=list(FEATURE_COLUMNS), outputCol="features")
    if params.kind == "gbt":
        classifier: Any = OneVsRest(
            classifier=GBTClassifier(maxDepth=min(params.max_depth, 8), seed=params.seed),
            labelCol=LABEL,
        )
    else:
        classifier = RandomForestClassifier(
            labelCol=LABEL,
            numTrees=params.num_trees,
            maxDepth=params.max_depth,
            seed=params.seed,
            subsamplingRate=0.5,
        )
    return Pipeline(stages=[assembler, classifier]).fit(train)


def models_url(output_url: str, machine_type: str, version: int) -> str:
    """Where version ``version`` of a type's model and its manifest live."""
    return f"{output_url}/models/{machine_type}/v{version}"


def manifest_key(machine_type: str, version: int) -> str:
    """The key of a version's manifest (inputs, split, training data, smoothing, metrics)."""
    return f"models/{machine_type}/v{version}/training_data.json"


def read_manifest(store: ObjectStore, machine_type: str, version: int) -> dict[str, Any] | None:
    """A version's manifest from the pipeline's object store (``store`` at its prefix)."""
    key = manifest_key(machine_type, version)
    return json.loads(store.get(key)) if store.exists(key) else None


def learnt_other_features(manifest: dict[str, Any]) -> bool:
    """Whether a version learnt from features other than this code computes.

    Versions from before the features were versioned learnt from version 1.
    """
    return int(manifest.get("features_version", 1)) != FEATURES_VERSION


def version_url(output_url: str, row: ModelVersion) -> str:
    """Where a registered version lives: its recorded URL, or the layout's (older rows)."""
    return row.url or models_url(output_url, row.machine_type, row.version)


def model_path(url: str) -> str:
    """Where the fitted pipeline of the model version at ``url`` is saved."""
    return f"{url}/model"


def save_model(model: PipelineModel, spark: SparkSession, url: str) -> None:
    """Save the fitted pipeline with the version's manifest, under the pipeline's own prefix."""
    model.write().session(spark).overwrite().save(model_path(url))


def load_model(spark: SparkSession, url: str) -> PipelineModel:
    """The fitted pipeline saved by :func:`save_model`, read through ``spark``.

    The session is an argument, not found as a global: a step that scores in a
    fresh process (spark-submit, a Kubeflow step) must have created it, so no
    step relies on an earlier one having done so. The path is under the
    pipeline's object-store prefix, which every executor can read; MLflow's
    ``load_model`` hands executors the driver's local download instead.
    """
    from pyspark.ml import PipelineModel

    return PipelineModel.read().session(spark).load(model_path(url))


def class_probabilities(scored: DataFrame, classes: int) -> Column:
    """Each scored row's class probabilities as an array: one rule for evaluation and inference.

    A random forest gives them (``probability``). One-vs-rest GBT gives each class's
    margin ``m`` in ``rawPrediction`` (its binary model's own score); the binary model's
    probability of its class is GBT's logistic link ``1 / (1 + e^(-2m))``, and the
    classes' are normalised to sum to 1, so the smoothing weighs confident and unsure
    seconds as it does for a forest (a one-hot of the prediction would make every
    second certain).
    """
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    if "probability" in scored.columns:
        return vector_to_array("probability")
    if "rawPrediction" not in scored.columns:
        raise ValueError(f"a model without probabilities or margins: {scored.columns}")
    odds = F.transform(vector_to_array("rawPrediction"), lambda m: 1.0 / (1.0 + F.exp(-2.0 * m)))
    total = F.aggregate(odds, F.lit(0.0), lambda acc, p: acc + p)
    return F.transform(odds, lambda p: F.when(total > 0, p / total).otherwise(F.lit(1.0 / classes)))


def score_seconds(model: PipelineModel, frame: DataFrame, classes: int) -> pd.DataFrame:
    """Per machine and second: the true label (if any) and the class probabilities.

    Collected to pandas for the per-machine smoothing: evaluation data only.
    """
    from pyspark.sql import functions as F

    scored = model.transform(frame)
    columns = [F.col("machine_uuid"), F.col("ts")]
    if LABEL in scored.columns:
        columns.append(F.col(LABEL))
    probability = class_probabilities(scored, classes).alias("probability")
    out = scored.select(*columns, probability).toPandas()
    return out.sort_values(["machine_uuid", "ts"]).reset_index(drop=True)


def smoothed(scored: pd.DataFrame, smoothing: Smoothing) -> np.ndarray:
    """Smoothed class indices, machine by machine (smoothing never crosses machines)."""
    result = np.empty(len(scored), dtype=np.int64)
    stays = np.asarray(smoothing.stays)
    for _, rows in scored.groupby("machine_uuid", sort=False):
        proba = np.vstack(rows["probability"].to_numpy())
        result[rows.index.to_numpy()] = smooth_activities(
            rows["ts"].to_numpy(np.int64),
            proba,
            stay=stays,
            min_segment_s=np.asarray(smoothing.min_segments_s),
        )
    return result


def _cycles(scored: pd.DataFrame, codes: np.ndarray, machine_type: str) -> pd.DataFrame:
    names = np.asarray(ACTIVITIES[machine_type], dtype=object)
    frames = []
    for _, rows in scored.groupby("machine_uuid", sort=False):
        index = rows.index.to_numpy()
        segments = activity_segments(rows["ts"].to_numpy(np.int64), names[codes[index]])
        frames.append(build_cycles(segments, machine_type))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def evaluate(scored: pd.DataFrame, machine_type: str, smoothing: Smoothing) -> dict[str, Any]:
    """Per-second and per-cycle metrics of the smoothed predictions against the labels.

    Also reports the raw (unsmoothed) macro-F1, so that the smoothing's worth is visible.
    """
    classes = list(ACTIVITIES[machine_type])
    names = np.asarray(classes, dtype=object)
    truth = scored[LABEL].to_numpy(np.int64)
    raw = np.vstack(scored["probability"].to_numpy()).argmax(axis=1)
    smooth = smoothed(scored, smoothing)
    report = classification_report(names[truth], names[smooth], classes)
    unsmoothed = classification_report(names[truth], names[raw], classes)
    cycles = cycle_metrics(
        _cycles(scored, truth, machine_type), _cycles(scored, smooth, machine_type)
    )
    return {
        "report": report,
        "macro_f1": report["macro_f1"],
        "macro_f1_unsmoothed": unsmoothed["macro_f1"],
        "accuracy": report["accuracy"],
        "cycles": cycles,
        "seconds": len(scored),
    }


def flat_metrics(evaluation: dict[str, Any], classes: list[str]) -> dict[str, float]:
    """The figures MLflow and the state store keep (numbers only, NaN as absent)."""
    metrics: dict[str, float] = {
        "macro_f1": evaluation["macro_f1"],
        "macro_f1_unsmoothed": evaluation["macro_f1_unsmoothed"],
        "accuracy": evaluation["accuracy"],
        "eval_seconds": float(evaluation["seconds"]),
    }
    for activity in classes:
        per_class = evaluation["report"]["per_class"][activity]
        for name in ("precision", "recall", "f1"):
            metrics[f"{name}_{activity}"] = float(per_class[name])
    for name, value in evaluation["cycles"].items():
        metrics[f"cycle_{name}" if not name.startswith("cycle") else name] = float(value)
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


@dataclass(frozen=True)
class Fitted:
    """A classifier fitted on a training set's training rows and judged on the others."""

    model: PipelineModel
    test: DataFrame
    """The held-out rows (cached), on which a champion is judged too."""
    evaluation: dict[str, Any]
    metrics: dict[str, float]
    """The held-out figures, and the forward ones prefixed ``forward_`` when there are any."""
    forward: dict[str, Any] | None = None
    """The evaluation on the forward rows, if the training set has some."""


def fit_and_evaluate(
    rows: DataFrame, machine_type: str, params: ModelParams, smoothing: Smoothing
) -> Fitted:
    """Fit on the training rows; smooth and evaluate on the held-out (and forward) rows.

    ``rows`` is a training set as :func:`etl.train.sample.read_training_data` reads
    it back (features, ``activity``, ``split``): training and ``etl train
    --reproduce`` both go through here, from the same stored rows in the same
    order, so that a version's metrics can be had again.
    """
    from pyspark.sql import functions as F

    data = with_label_index(rows, machine_type).cache()
    train, test = data.where(F.col(SPLIT) == TRAINING), data.where(F.col(SPLIT) == HELD_OUT)
    model = fit(train, params)
    classes = list(ACTIVITIES[machine_type])
    evaluation = evaluate(score_seconds(model, test, len(classes)), machine_type, smoothing)
    metrics = flat_metrics(evaluation, classes)
    forward = None
    ahead = score_seconds(model, data.where(F.col(SPLIT) == FORWARD), len(classes))
    if len(ahead):
        forward = evaluate(ahead, machine_type, smoothing)
        metrics |= {f"forward_{k}": v for k, v in flat_metrics(forward, classes).items()}
    return Fitted(model, test, evaluation, metrics, forward)
