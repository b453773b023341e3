"""The stack's services answer real requests: PostgreSQL, Kafka, S3, MLflow."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import psycopg
import yaml
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from etl.config import Config
from etl.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
ETL = str(ROOT / ".venv" / "bin" / "etl")


def test_postgres_has_state_and_results_databases(stack: Stack, demo_config: Config) -> None:
    for database in ("etl_state", "mining_results", "mlflow"):
        with psycopg.connect(stack.postgres.url(database, driver="postgresql")) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (database,)
    from sqlalchemy import create_engine, text

    engine = create_engine(demo_config.state.url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_database()")).scalar() == "etl_state"
    engine.dispose()


def test_raw_batches_topic_keeps_its_whole_history(stack: Stack) -> None:
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    try:
        assert "raw-batches" in admin.list_topics()
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "raw-batches")]
        )
        entries = described["topic"]["raw-batches"]
        assert entries["retention.ms"]["value"] == "-1"
        assert entries["retention.bytes"]["value"] == "-1"
    finally:
        admin.close()


def test_kafka_produce_and_consume(stack: Stack, unique: str) -> None:
    topic = f"it-{unique}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    messages = [
        {"machine_uuid": unique, "key": f"{unique}/{i}.parquet", "rows": i} for i in range(3)
    ]
    producer = KafkaProducer(bootstrap_servers=stack.kafka.bootstrap, acks="all")
    for message in messages:
        producer.send(topic, key=unique.encode(), value=json.dumps(message).encode())
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=stack.kafka.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10000,
        group_id=f"it-{unique}",
    )
    received = []
    for record in consumer:
        received.append((record.key.decode(), json.loads(record.value)))
        if len(received) == len(messages):
            break
    consumer.close()
    assert received == [(unique, message) for message in messages]


def test_s3_buckets_exist_and_hold_objects(stack: Stack, unique: str) -> None:
    client = stack.s3.client()
    buckets = {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}
    assert {"raw-telemetry", "etl-processed", "raw-telemetry-labels", "etl-mlflow"} <= buckets
    client.put_object(Bucket="raw-telemetry", Key=f"{unique}/1.parquet", Body=b"PAR1")
    body = client.get_object(Bucket="raw-telemetry", Key=f"{unique}/1.parquet")["Body"].read()
    assert body == b"PAR1"


def test_mlflow_tracks_in_postgres_and_stores_artifacts_in_s3(
    stack: Stack, unique: str, tmp_path: Path
) -> None:
    import mlflow

    mlflow.set_tracking_uri(stack.mlflow.uri)
    experiment_id = mlflow.create_experiment(f"it-{unique}")
    artifact = tmp_path / "note.txt"
    artifact.write_text(unique)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("seed", 7)
        mlflow.log_metric("macro_f1", 0.5)
        mlflow.log_artifact(str(artifact))
    fetched = mlflow.get_run(run.info.run_id)
    assert fetched.data.params == {"seed": "7"}
    assert fetched.data.metrics == {"macro_f1": 0.5}
    # the run lives in PostgreSQL ...
    with psycopg.connect(stack.postgres.url("mlflow", driver="postgresql")) as conn:
        row = conn.execute(
            "SELECT status FROM runs WHERE run_uuid = %s", (run.info.run_id,)
        ).fetchone()
    assert row == ("FINISHED",)
    # ... and its artifact in the S3 server
    keys = [
        obj["Key"]
        for obj in stack.s3.client().list_objects_v2(Bucket="etl-mlflow").get("Contents", [])
        if run.info.run_id in obj["Key"]
    ]
    assert len(keys) == 1 and keys[0].endswith("/note.txt")
    body = stack.s3.client().get_object(Bucket="etl-mlflow", Key=keys[0])["Body"].read()
    assert body.decode() == unique


def test_stack_up_is_idempotent(stack: Stack, demo_config_path: Path) -> None:
    pids = {service.name: service.pid() for service in stack.services}
    result = subprocess.run(
        [ETL, "--config", str(demo_config_path), "stack", "up"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "postgres",
        "s3",
        "kafka",
        "mlflow",
    ]
    assert all("already running" in line for line in result.stdout.splitlines())
    assert {service.name: service.pid() for service in stack.services} == pids


def test_stack_up_refuses_a_taken_port(tmp_path: Path, demo_config_path: Path) -> None:
    data = yaml.safe_load(demo_config_path.read_text())
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        data["stack"] = {"data_dir": str(tmp_path / "stack"), "postgres_port": port}
        config = tmp_path / "taken.yaml"
        config.write_text(yaml.safe_dump(data))
        result = subprocess.run(
            [ETL, "--config", str(config), "stack", "up"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"etl stack: StackError: port {port} for postgres is already in use by another process; "
        "choose another in the config's stack section or stop that process"
    ]
    assert not (tmp_path / "stack" / "run").exists(), "nothing may start when a port is taken"


def test_stack_status_json(demo_config_path: Path) -> None:
    result = subprocess.run(
        [ETL, "--config", str(demo_config_path), "stack", "status", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0
    rows = json.loads(result.stdout)
    assert [(row["service"], row["state"]) for row in rows] == [
        ("postgres", "ready"),
        ("s3", "ready"),
        ("kafka", "ready"),
        ("mlflow", "ready"),
    ]


def test_status_json_against_postgres_state_store(stack: Stack, demo_config_path: Path) -> None:
    result = subprocess.run(
        [ETL, "--config", str(demo_config_path), "status", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"batches", "models", "inference_runs", "exports"}
