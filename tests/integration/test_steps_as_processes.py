"""Every command as the first and only command of a fresh process, on the real stack.

Kubeflow and the Spark operator run each step as its own job: no SparkSession, engine
or MLflow client is left over from an earlier step. Two pipelines read the same
simulated fleet (one Kafka topic, one raw prefix, one set of labels):

* ``whole`` runs ``etl run`` (one process per tick);
* ``steps`` runs ``etl discover``, ``preprocess``, ``train``, ``infer`` and ``export``,
  each a fresh ``etl`` process, as the Kubeflow pipeline does.

The results in PostgreSQL must be the same rows after the first day's data; after
the next hour (where ``steps`` runs discover and preprocess alone, then a tick whose
preprocess has nothing to do while infer has); after one batch is reprocessed and
rescored step by step (the report of the issue: ``reprocess``, ``preprocess``,
``infer``); and after every command has run once more with nothing to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
import yaml
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from etl.config import Config, parse_config
from etl.stack import Stack
from tests.integration.conftest import DUMPERS, stack_pipeline
from tests.processes import ETL, Finished, run
from tests.results_db import pipeline_results

START = "2026-01-05T06:00:00"
NEXT_HOUR = "2026-01-05T09:00:00"
PIPELINE_STEPS = ("discover", "preprocess", "train", "infer", "export")
IDLE = (
    ("discover",),
    ("preprocess",),
    ("train", "--if-due"),
    ("infer",),
    ("export",),
    ("compact",),
    ("promote", "--type", "dumper", "--version", "1"),
    ("report",),
    ("reprocess", "--key", "no/such-file.parquet"),
)
"""Every contract command once more, with nothing (new) to do."""


def pipeline_config(demo: Config, name: str, unique: str, topic: str) -> dict[str, Any]:
    """The demo stack's config for one pipeline over this module's fleet."""
    training = {"min_days": 0.2, "model": {"num_trees": 10, "max_depth": 8}}
    machines = (*DUMPERS, ("a000", "excavator"))
    data = stack_pipeline(
        demo, name, unique, topic, training=training, machines=machines, prefix="procs"
    )
    parse_config(data)  # valid before any process reads it
    return data


def results(config: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """A pipeline's results rows, comparable with the other pipeline's."""
    parsed = parse_config(config)
    return pipeline_results(parsed.results.url, parsed.results.db_schema, parsed.pipeline.name)


@dataclass
class Story:
    """What both pipelines did, and the results rows at each point compared."""

    whole: dict[str, Any]
    steps: dict[str, Any]
    compared: dict[str, tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]] = field(
        default_factory=dict
    )
    commands: list[Finished] = field(default_factory=list)
    """Every command run, in order."""
    named: dict[str, Finished] = field(default_factory=dict)
    """The commands the tests read, by what they were run for."""
    idle: list[Finished] = field(default_factory=list)
    reprocessed: str = ""
    promoted: int = 0
    models: list[dict[str, Any]] = field(default_factory=list)

    def summary(self, name: str) -> dict[str, Any]:
        """The JSON summary a named command printed."""
        return json.loads(self.named[name].stdout)


@pytest.fixture(scope="module")
def story(
    stack: Stack, demo_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    import uuid

    unique = uuid.uuid4().hex[:12]
    topic = f"raw-{unique}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    root = tmp_path_factory.mktemp("processes")
    logs = root / "logs"
    logs.mkdir()
    story = Story(
        whole=pipeline_config(demo_config, "whole", unique, topic),
        steps=pipeline_config(demo_config, "steps", unique, topic),
    )
    paths = {}
    for name in ("whole", "steps"):
        paths[name] = root / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(getattr(story, name)))
    env = dict(os.environ)
    env.pop("PYSPARK_GATEWAY_PORT", None)  # nothing of this test's own JVM

    def etl(name: str, *args: str) -> Finished:
        log = logs / f"{len(story.commands):02d}-{name}-{args[0]}.log"
        done = run([str(ETL), "--config", str(paths[name]), *args], env=env, cwd=root, log=log)
        story.commands.append(done)
        return done

    def compare(point: str) -> None:
        story.compared[point] = (results(story.whole), results(story.steps))

    etl("whole", "simulate", "--days", str(3 / 24), "--seed", "3", "--start", START)
    etl("whole", "run")
    for step in PIPELINE_STEPS:
        etl("steps", step)
    compare("first day")

    etl("whole", "simulate", "--days", str(1 / 24), "--seed", "4", "--start", NEXT_HOUR)
    etl("whole", "run")
    etl("steps", "discover")
    etl("steps", "preprocess")
    story.named["idle preprocess tick"] = etl("steps", "run")
    compare("next hour")

    status = json.loads(etl("steps", "status", "--json").stdout)
    dumper = story.steps["assets"][0]["uuid"]
    story.reprocessed = min(
        b["key"] for b in status["batches"] if b["machine_uuid"] == dumper and b["rows"]
    )
    story.named["reprocess"] = etl("steps", "reprocess", "--key", story.reprocessed)
    for step in ("preprocess", "infer", "export"):
        story.named[f"rescore {step}"] = etl("steps", step)
    compare("reprocessed")

    for command in IDLE:
        extra = ("--out", str(root / "report")) if command[0] == "report" else ()
        story.idle.append(etl("steps", *command, *extra))
    compare("idle")

    # promote with work to do: a second version, then whichever is not the champion
    etl("steps", "train")
    models = json.loads(etl("steps", "status", "--json").stdout)["models"]
    dumpers = {m["version"]: m["status"] for m in models if m["machine_type"] == "dumper"}
    story.promoted = min(v for v, status in dumpers.items() if status != "champion")
    story.named["promote"] = etl(
        "steps", "promote", "--type", "dumper", "--version", str(story.promoted)
    )
    story.models = json.loads(etl("steps", "status", "--json").stdout)["models"]
    yield story


def test_every_step_alone_gives_the_results_of_one_tick(story: Story) -> None:
    first = story.compared["first day"]
    assert len(first[0]["machine_activity"]) > 0 and len(first[0]["machine_cycle"]) > 0
    for point, (whole, steps) in story.compared.items():
        for table in whole:
            assert len(steps[table]) == len(whole[table]), (point, table)
            pd.testing.assert_frame_equal(steps[table], whole[table], obj=f"{point}: {table}")


def test_a_tick_with_nothing_to_preprocess_still_scores(story: Story) -> None:
    steps = story.summary("idle preprocess tick")["steps"]
    assert steps["preprocess"]["summary"]["files"] == 0, steps["preprocess"]
    scored = steps["infer"]["summary"]["types"]
    assert scored["dumper"]["scored"] and scored["dumper"]["seconds"] > 0, scored
    assert steps["export"]["summary"]["rows_loaded"] > 0, steps["export"]


def test_a_reprocessed_batch_is_rescored_by_fresh_processes(story: Story) -> None:
    assert story.summary("reprocess") == {"reset": 1}
    assert story.summary("rescore preprocess")["files"] == 1
    assert story.summary("rescore infer")["types"]["dumper"]["batches"] == 1
    assert story.summary("rescore export")["rows_loaded"] > 0


def test_promote_alone_moves_the_champion(story: Story) -> None:
    promote = story.summary("promote")
    assert promote["changed"] and promote["champion"] == story.promoted, promote
    champions = {
        (m["machine_type"], m["version"]) for m in story.models if m["status"] == "champion"
    }
    assert ("dumper", story.promoted) in champions, story.models


def test_every_command_runs_alone_with_nothing_to_do(story: Story) -> None:
    assert [c.argv[3] for c in story.idle] == [command[0] for command in IDLE]
    assert all(c.returncode == 0 for c in story.idle)
    summaries = {c.argv[3]: c.stdout for c in story.idle}
    assert json.loads(summaries["discover"])["new"] == 0
    assert json.loads(summaries["preprocess"])["files"] == 0
    waiting = json.loads(summaries["infer"])["types"]
    assert all(not outcome["scored"] for outcome in waiting.values()), waiting
    assert json.loads(summaries["export"])["rows_loaded"] == 0
    assert json.loads(summaries["promote"])["changed"] is False
    assert json.loads(summaries["reprocess"]) == {"reset": 0}
    assert "report:" in summaries["report"]
    # no stack trace on a user's console for a command that did not fail
    for command in story.commands:
        assert "Traceback" not in command.stderr, (command.argv, command.stderr[-2000:])
