"""Per-test keys and Kafka topics on the real local stack (``stack``: tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from etl.stack import Stack


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
