"""etl train on the real stack: Kafka history, Delta on s3a, MLflow server with S3 artifacts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml

from etl.bootstrap import Context, bootstrap
from etl.config import Config, parse_config
from etl.io.objectstore import open_store
from etl.state.domain import ModelStatus
from etl.steps.discover import discover
from etl.steps.preprocess import preprocess, statevectors_url
from etl.steps.promote import promote
from etl.steps.simulate import simulate
from etl.steps.train import registry_name, train
from tests.integration.conftest import stack_pipeline
from tests.processes import ETL, run


def train_settings(
    demo: Config, unique: str, topic: str, min_days: float, data_rule: str = "pooled"
) -> dict[str, Any]:
    """The test pipeline's config as a dict: a sample cap small enough to be reached."""
    training = {
        "min_days": min_days,
        "data_rule": data_rule,
        "forward_fraction": 0.25,
        "sample": {"max_rows_per_class": 1500, "max_segment_s": 60, "eval_seconds": 3 * 3600},
        "model": {"num_trees": 20, "max_depth": 8},
    }
    return stack_pipeline(demo, "tr", unique, topic, training=training)


def train_config(
    demo: Config, unique: str, topic: str, min_days: float, data_rule: str = "pooled"
) -> Config:
    return parse_config(train_settings(demo, unique, topic, min_days, data_rule))


def assert_the_sample_is_stored_and_logged(
    manifest: dict[str, Any], keys: set[str], output_url: str, run: Any
) -> None:
    """The training set is a sample, capped per activity, stored with v1 and logged."""
    sample = manifest["training_data"]
    assert sample["url"] == f"{output_url}/models/dumper/v1/training_data"
    assert any(k.startswith("models/dumper/v1/training_data/") for k in keys)
    chosen = sample["chosen_seconds"]
    assert set(chosen) == {"training", "held_out", "forward"}
    assert max(chosen["training"].values()) < 1500 + 60
    assert sum(chosen["held_out"].values()) <= 3 * 3600 + 21_600
    # every chosen second with StateVectors, and each training one again per noisy copy
    copies = sample["augment"]["copies"]
    assert copies == 1
    chosen_total = sum(map(sum, (c.values() for c in chosen.values())))
    training = sum(chosen["training"].values())
    assert chosen_total < sample["rows"] <= chosen_total + copies * training
    names = {i.dataset.name for i in run.inputs.dataset_inputs}
    assert "training_data v1" in names, names


def assert_a_version_is_reproduced_from_its_training_data_alone(
    settings: dict[str, Any], version: int, macro_f1: float, folder: Path
) -> None:
    """``etl train --reproduce`` in a fresh process, the StateVectors gone (vacuumed)."""
    config = parse_config(settings)
    store = open_store(config.output_url, config.storage.s3)
    vectors = statevectors_url(config.output_url).removeprefix(config.output_url + "/")
    for obj in list(store.list(vectors + "/")):
        store.delete(obj.key)
    assert not list(store.list(vectors + "/"))
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(settings))
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}

    def reproduce(log: str, *, check: bool = True) -> Any:
        argv = [str(ETL), "--config", str(path), "train", "--reproduce", "dumper"]
        argv += ["--version", str(version)]
        return run(argv, env=env, cwd=folder, log=folder / log, check=check)

    done = reproduce("reproduce.log")
    outcome = json.loads(done.stdout)
    assert outcome["reproduced"] and not outcome["differing"], outcome
    assert outcome["macro_f1"] == macro_f1
    assert "reproduced from" in done.stderr
    # the comparison bites: a recorded figure that the data does not give fails the command
    key = f"models/dumper/v{version}/training_data.json"
    manifest = json.loads(store.get(key))
    manifest["metrics"]["macro_f1"] += 0.01
    store.put(key, json.dumps(manifest).encode())
    refused = reproduce("refused.log", check=False)
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert f"dumper v{version} not reproduced: macro_f1" in refused.stderr


def assert_pooled_rule_refuses(ctx: Context) -> None:
    """Not enough: 2 machines x 4 h is 0.3 machine-days of 14; nothing is registered."""
    pipeline = ctx.config.pipeline.name
    refused = train(ctx)["types"]["dumper"]
    assert not refused["trained"]
    assert refused["reason"].startswith("insufficient data: 0.3 of 14 days for dumpers")
    with ctx.uow() as uow:
        assert uow.models.for_pipeline(pipeline) == []
        last = uow.runs.for_pipeline(pipeline, "train")[-1]
        assert last.summary["types"]["dumper"]["reason"] == refused["reason"]
        assert last.summary["types"]["dumper"]["data"]["rule"] == "pooled"
    ctx.close()


def assert_every_asset_rule_refuses(demo_config: Config, unique: str, topic: str) -> None:
    """0.25 days for every asset: each dumper has a sixth of a day, so no (pooled: yes)."""
    each = train_config(demo_config, unique, topic, min_days=0.25, data_rule="every_asset")
    ctx = bootstrap(each)
    refused = train(ctx)["types"]["dumper"]
    assert not refused["trained"], refused
    assert refused["reason"].startswith("insufficient data: 0.2 of 0.25 days for every one")
    with ctx.uow() as uow:
        last = uow.runs.for_pipeline(each.pipeline.name, "train")[-1]
        # the first decision (same pipeline) stored the history read; this one read on
        # from its positions, found nothing new, and still counts each machine's 4 h
        history = uow.history.get(each.pipeline.name, f"kafka:{topic}")
    assert sum(history.positions.values()) >= 2 * 24  # 4 h of 10-minute files, 2 machines
    assert set(history.intervals) == {a.uuid for a in each.assets}
    recorded = last.summary["types"]["dumper"]["data"]
    assert recorded["rule"] == "every_asset" and set(recorded["assets"]) == {
        a.uuid for a in each.assets
    }
    for days in recorded["assets"].values():  # 4 h announced (each file 599.9 s), labelled
        assert days["announced_days"] == pytest.approx(4 / 24, abs=0.01)
        assert 0.1 < days["labelled_days"] <= days["announced_days"] + 0.01
    ctx.close()


def test_train_decides_registers_versions_and_promotes(
    demo_config: Config, unique: str, topic: str, tmp_path: Path
) -> None:
    strict = train_config(demo_config, unique, topic, min_days=14)
    ctx = bootstrap(strict)
    simulate(ctx, days=4 / 24, seed=11)
    discover(ctx)
    preprocess(ctx)

    assert_pooled_rule_refuses(ctx)
    assert_every_asset_rule_refuses(demo_config, unique, topic)

    config = train_config(demo_config, unique, topic, min_days=0.25)
    ctx = bootstrap(config)
    first = train(ctx)["types"]["dumper"]
    assert first["trained"] and first["version"] == 1 and first["champion"]
    assert 0.0 < first["macro_f1"] <= 1.0

    name = registry_name(config.pipeline.name, "dumper")
    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.version == first["registry"].split("/")[-1]
    run = client.get_run(champion.run_id)
    assert run.data.metrics["macro_f1"] == pytest.approx(first["macro_f1"])
    assert run.inputs.dataset_inputs, "the StateVectors' lineage is logged"
    artifacts = {a.path for a in client.list_artifacts(champion.run_id)}
    assert "confusion-dumper.png" in artifacts and "inputs.json" in artifacts

    store = open_store(config.output_url, config.storage.s3)
    keys = {o.key for o in store.list("models/dumper/v1/")}
    assert "models/dumper/v1/training_data.json" in keys
    assert any(k.startswith("models/dumper/v1/model/") for k in keys)
    manifest = json.loads(store.get("models/dumper/v1/training_data.json"))
    assert manifest["inputs"]["statevectors_version"] >= 0 and manifest["inputs"]["label_files"]
    assert manifest["split"]["holdout_machines"] in ([a.uuid] for a in config.assets)
    # the last quarter of every machine's time judges the model forward in time
    assert manifest["split"]["forward_after_ts"] > manifest["data_from"]
    assert 0.0 < first["forward_macro_f1"] == manifest["metrics"]["forward_macro_f1"] <= 1.0
    assert manifest["data"]["rule"] == "pooled" and len(manifest["data"]["assets"]) == 2
    assert_the_sample_is_stored_and_logged(manifest, keys, config.output_url, run)

    # the same inputs and seed give the same metrics: a tie keeps the champion
    second = train(ctx)["types"]["dumper"]
    assert second["version"] == 2 and not second["champion"]
    assert second["macro_f1"] == pytest.approx(first["macro_f1"], abs=1e-12)
    with ctx.uow() as uow:
        models = {m.version: m for m in uow.models.for_pipeline(config.pipeline.name, "dumper")}
    assert models[1].status == ModelStatus.CHAMPION and models[2].status == ModelStatus.CHALLENGER
    assert models[1].url.endswith("/models/dumper/v1") and models[1].mlflow_run_id
    assert models[1].data_from < models[1].data_to
    assert client.get_model_version_by_alias(name, "champion").version == champion.version

    # an operator promotes the challenger, then rolls back: both registries follow
    registered = {1: champion.version, 2: second["registry"].split("/")[-1]}
    for version in (2, 1):
        promote(ctx, "dumper", version, reason="operator check")
        assert client.get_model_version_by_alias(name, "champion").version == registered[version]
        with ctx.uow() as uow:
            assert uow.models.champion(config.pipeline.name, "dumper").version == version
    ctx.close()

    settings = train_settings(demo_config, unique, topic, min_days=0.25)
    assert_a_version_is_reproduced_from_its_training_data_alone(
        settings, 2, second["macro_f1"], tmp_path
    )
