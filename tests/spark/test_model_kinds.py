"""Every accepted classifier kind fits, saves, loads and gives class probabilities.

Inference and evaluation read a model's output through one rule
(:func:`etl.train.model.class_probabilities`); a kind whose output that rule cannot read
(one-vs-rest GBT has no ``probability`` column) failed in inference only.
"""

from __future__ import annotations

import typing
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from etl.config import ModelParams
from etl.train.features import FEATURE_COLUMNS
from etl.train.model import LABEL, class_probabilities, fit, load_model, save_model

KINDS = typing.get_args(ModelParams.model_fields["kind"].annotation)
CLASSES = 3


def labelled(spark: SparkSession, rows: int = 600) -> typing.Any:
    """Seconds of three classes told apart by every 8th feature, the rest noise.

    A share of the features, not one: a small forest draws a random subset of features
    per split, and with one telling feature its accuracy fell with every feature added.
    """
    rng = np.random.default_rng(5)
    label = np.arange(rows) % CLASSES
    features = rng.normal(size=(rows, len(FEATURE_COLUMNS)))
    features[:, ::8] += 2.0 * label[:, None]
    data = [("m", int(t), float(label[t]), *map(float, features[t])) for t in range(rows)]
    schema = ", ".join(
        ["machine_uuid string", "ts long", f"{LABEL} double"]
        + [f"`{c}` double" for c in FEATURE_COLUMNS]
    )
    return spark.createDataFrame(data, schema)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_scores_probabilities_after_a_save_and_load(
    spark: SparkSession, tmp_path: Path, kind: str
) -> None:
    frame = labelled(spark)
    model = fit(frame, ModelParams(kind=kind, num_trees=5, max_depth=4))
    url = (tmp_path / kind).as_uri()
    save_model(model, spark, url)
    loaded = load_model(spark, url)

    scored = loaded.transform(frame)
    rows = scored.select(
        F.col(LABEL), "prediction", class_probabilities(scored, CLASSES).alias("p")
    ).collect()
    probabilities = np.array([r["p"] for r in rows])
    assert probabilities.shape == (len(rows), CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    # the most probable class is the model's prediction, and mostly the label
    predicted = np.array([r["prediction"] for r in rows])
    np.testing.assert_array_equal(probabilities.argmax(axis=1), predicted)
    assert (predicted == np.array([r[LABEL] for r in rows])).mean() > 0.9
    # graded, not a one-hot of the prediction: the smoothing weighs unsure seconds less
    assert ((probabilities >= 0.0) & (probabilities <= 1.0)).all()
    assert (probabilities.max(axis=1) < 1.0).mean() > 0.5
    assert len(np.unique(probabilities.max(axis=1).round(6))) > 5
