"""Per-test keys and Kafka topics on the real local stack (``stack``: tests/conftest.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from etl.config import Config
from etl.stack import Stack

DUMPERS = (("8000", "dumper"), ("9000", "dumper"))
"""Two dumpers: the machines most stack tests simulate (UUID part, type)."""


def stack_pipeline(
    demo: Config,
    name: str,
    unique: str,
    topic: str,
    *,
    training: dict[str, Any],
    machines: tuple[tuple[str, str], ...] = DUMPERS,
    prefix: str | None = None,
) -> dict[str, Any]:
    """The demo stack's config for one test's pipeline ``{name}-{unique}``, as a dict.

    Its machines are ``00000000-0000-4000-{part}-{unique}``; raw files and labels live
    under ``{prefix or name}-{unique}`` (pipelines that share a fleet share a prefix),
    announced on ``topic``; one simulator worker.
    """
    data = demo.model_dump(mode="json", by_alias=True)
    data["pipeline"] = {"name": f"{name}-{unique}", "start_date": "2026-01-05"}
    data["assets"] = [
        {"uuid": f"00000000-0000-4000-{part}-{unique}", "type": machine_type}
        for part, machine_type in machines
    ]
    folder = f"{prefix or name}-{unique}"
    data["storage"]["raw_url"] = f"s3a://raw-telemetry/{folder}"
    data["storage"]["labels_url"] = f"s3a://raw-telemetry-labels/{folder}"
    data["catalog"]["kafka"]["topic"] = topic
    data["simulate"]["workers"] = 1
    data["training"] = training
    return data


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
