"""Every accepted ``training.model.kind`` trains, registers, scores, smooths and exports.

One tick per kind on the real stack (Kafka, S3, MLflow, PostgreSQL), two dumpers for
two hours: the model must become the champion in the state store and in MLflow, the
seconds must be scored with graded confidences (the smoothing weighs them), and the
segments and cycles must reach the results database.
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from etl.bootstrap import bootstrap
from etl.config import Config, ModelParams, parse_config
from etl.infer.schema import SECONDS, table_url
from etl.steps.simulate import simulate
from etl.steps.tick import run_tick
from etl.steps.train import open_mlflow
from tests.integration.conftest import stack_pipeline
from tests.results_db import pipeline_results

KINDS = typing.get_args(ModelParams.model_fields["kind"].annotation)


def kind_config(demo: Config, unique: str, topic: str, kind: str) -> Config:
    training = {"min_days": 0.1, "model": {"kind": kind, "num_trees": 8, "max_depth": 6}}
    return parse_config(stack_pipeline(demo, "kind", unique, topic, training=training))


@pytest.mark.parametrize("kind", KINDS)
def test_each_model_kind_goes_from_training_to_the_results_database(
    spark: SparkSession, demo_config: Config, unique: str, topic: str, kind: str
) -> None:
    config = kind_config(demo_config, unique, topic, kind)
    ctx = bootstrap(config)
    simulate(ctx, days=2 / 24, seed=11, start=datetime(2026, 1, 5, 7, tzinfo=UTC))

    tick = run_tick(ctx)
    trained = tick["steps"]["train"]["summary"]["types"]["dumper"]
    assert trained["trained"] and trained["champion"], trained
    name, version = trained["registry"].split("/")
    alias = open_mlflow(ctx).MlflowClient().get_model_version_by_alias(name, "champion")
    assert alias.version == version

    scored = tick["steps"]["infer"]["summary"]["types"]["dumper"]
    assert scored["scored"] and scored["seconds"] > 0, scored
    assert 0.0 < scored["mean_confidence"] < 1.0, scored
    seconds = spark.read.format("delta").load(table_url(config.output_url, SECONDS))
    graded = seconds.where(F.col("confidence") < 0.99).count()
    assert graded > 0, "every second certain: probabilities are a one-hot"

    rows = pipeline_results(config.results.url, config.results.db_schema, config.pipeline.name)
    assert len(rows["machine_activity"]) > 0 and len(rows["machine_cycle"]) > 0
    assert set(rows["machine_activity"]["model_version"]) == {
        trained["registry"].replace(config.pipeline.name, "PIPELINE")
    }
    ctx.close()
