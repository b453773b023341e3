"""simulate -> discover -> preprocess on the real stack: Kafka, S3, PostgreSQL, Delta on s3a."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from pyspark.sql import SparkSession

from etl.bootstrap import bootstrap
from etl.cli import main
from etl.config import Config, parse_config
from etl.stack import Stack
from etl.state.domain import BatchStatus
from etl.steps.discover import discover
from etl.steps.preprocess import preprocess, statevectors_url
from etl.steps.simulate import simulate


def stack_config(demo: Config, unique: str, topic: str) -> Config:
    data = demo.model_dump(mode="json", by_alias=True)
    data["pipeline"] = {"name": f"it-{unique}", "start_date": "2026-01-05"}
    data["assets"] = [{"uuid": f"00000000-0000-4000-8000-{unique}", "type": "dumper"}]
    data["storage"]["raw_url"] = f"s3a://raw-telemetry/it-{unique}"
    data["storage"]["labels_url"] = f"s3a://raw-telemetry-labels/it-{unique}"
    data["catalog"]["kafka"]["topic"] = topic
    data["simulate"]["workers"] = 1
    return parse_config(data)


@pytest.fixture
def config(stack: Stack, demo_config: Config, unique: str) -> Config:
    topic = f"raw-{unique}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    return stack_config(demo_config, unique, topic)


def test_fleet_flows_through_the_real_stack(
    spark: SparkSession, config: Config, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    ctx = bootstrap(config)
    simulated = simulate(ctx, days=2 / 24, seed=4)
    first = discover(ctx)
    assert first["new"] == simulated["files"] - simulated["faults"].get("duplicate_same_key", 0)
    assert discover(ctx)["new"] == 0, "offsets were committed after the state store had the files"
    result = preprocess(ctx)
    assert result["files"] == first["new"]

    rows = spark.read.format("delta").load(statevectors_url(config.output_url))
    assert rows.count() == rows.select("machine_uuid", "ts").distinct().count() > 3000
    ctx.close()

    path = tmp_path / "it.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True)))
    assert main(["--config", str(path), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    mine = [b for b in status["batches"] if b["pipeline"] == config.pipeline.name]
    assert len(mine) == first["new"]
    assert {b["status"] for b in mine} <= {BatchStatus.PREPROCESSED, BatchStatus.REJECTED}
    assert all(b["reason"] for b in mine if b["status"] == BatchStatus.REJECTED)
    assert all(b["delta_version"] is not None for b in mine if b["status"] == "preprocessed")
