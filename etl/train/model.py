"""The activity model of one machine type: a Spark MLlib pipeline plus temporal smoothing.

The classifier scores each second from its features; the smoothing (a sticky
HMM/Viterbi pass and a minimum segment duration, :mod:`etl.train.smoothing`)
runs per machine on the class probabilities so that activities do not
flicker. Evaluation is per second (precision, recall, F1 per class, macro-F1,
confusion) and per cycle (count and median duration errors) on held-out data.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from etl.config import ACTIVITIES, ModelParams
from etl.train.features import FEATURE_COLUMNS
from etl.train.metrics import classification_report, cycle_metrics
from etl.train.segments import activity_segments, build_cycles
from etl.train.smoothing import smooth_activities

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

LABEL = "label"
SMOOTHING_STAY = 0.98


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


def score_seconds(model: PipelineModel, frame: DataFrame, classes: int) -> pd.DataFrame:
    """Per machine and second: the true label (if any) and the class probabilities.

    Collected to pandas for the per-machine smoothing: evaluation data only.
    """
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    scored = model.transform(frame)
    if "probability" in scored.columns:
        probability = vector_to_array("probability")
    else:  # one-vs-rest has no probabilities: a one-hot of its prediction
        probability = F.transform(
            F.sequence(F.lit(0), F.lit(classes - 1)),
            lambda i: F.when(i == F.col("prediction").cast("int"), 1.0).otherwise(0.0),
        )
    columns = [F.col("machine_uuid"), F.col("ts")]
    if LABEL in scored.columns:
        columns.append(F.col(LABEL))
    out = scored.select(*columns, probability.alias("probability")).toPandas()
    return out.sort_values(["machine_uuid", "ts"]).reset_index(drop=True)


def smoothed(scored: pd.DataFrame, params: ModelParams) -> np.ndarray:
    """Smoothed class indices, machine by machine (smoothing never crosses machines)."""
    result = np.empty(len(scored), dtype=np.int64)
    for _, rows in scored.groupby("machine_uuid", sort=False):
        proba = np.vstack(rows["probability"].to_numpy())
        result[rows.index.to_numpy()] = smooth_activities(
            rows["ts"].to_numpy(np.int64),
            proba,
            stay=SMOOTHING_STAY,
            min_segment_s=params.min_segment_s,
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


def evaluate(scored: pd.DataFrame, machine_type: str, params: ModelParams) -> dict[str, Any]:
    """Per-second and per-cycle metrics of the smoothed predictions against the labels.

    Also reports the raw (unsmoothed) macro-F1, so that the smoothing's worth is visible.
    """
    classes = list(ACTIVITIES[machine_type])
    names = np.asarray(classes, dtype=object)
    truth = scored[LABEL].to_numpy(np.int64)
    raw = np.vstack(scored["probability"].to_numpy()).argmax(axis=1)
    smooth = smoothed(scored, params)
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
