"""The real local stack, readiness-checked once per session.

`make test` starts it (`etl stack up`). If it is not ready the tests fail with
the command to run; they are never skipped in its place.
"""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from etl.config import Config, load_config
from etl.stack import Stack, build_stack, status


@pytest.fixture(scope="session")
def demo_config(demo_config_path) -> Config:
    return load_config(demo_config_path)


@pytest.fixture(scope="session")
def stack(demo_config: Config) -> Stack:
    services = build_stack(demo_config)
    down = [row["service"] for row in status(services) if row["state"] != "ready"]
    if down:
        pytest.fail(
            f"local stack not ready ({', '.join(down)}): run `.venv/bin/etl --config "
            "conf/demo.yaml stack up` (make test does)"
        )
    return services


@pytest.fixture
def unique() -> str:
    """A key no other test (or earlier run) uses: no teardown needed."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def topic(stack: Stack, unique: str) -> str:
    """A fresh Kafka topic of one partition: a pipeline's own announcements."""
    name = f"raw-{unique}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    admin.close()
    return name
