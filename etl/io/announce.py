"""Announcing raw batches: the producer side of the batch catalog.

In the field the loggers' uploader announces each file on Kafka; our simulator
plays that part. With the ``listing`` catalog nothing is announced (discovery
scans the raw location instead), so that adapter only counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from etl.config import KafkaConfig


class BatchAnnouncer(Protocol):
    """Publishes one message per raw file (shared/contracts/raw-data.md)."""

    def announce(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Publish the messages in order; returns how many were sent."""
        ...

    def close(self) -> None:
        """Flush and release connections."""
        ...


def encode_message(message: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """Kafka key (the machine UUID) and value (compact UTF-8 JSON) of an announcement."""
    key = str(message["machine_uuid"]).encode()
    value = json.dumps(dict(message), separators=(",", ":"), sort_keys=True).encode()
    return key, value


class KafkaAnnouncer:
    """Announces on the configured topic, keyed by machine so one machine keeps its order."""

    def __init__(self, kafka: KafkaConfig) -> None:
        from kafka import KafkaProducer

        self.topic = kafka.topic
        self._producer = KafkaProducer(
            **kafka.client_options(),
            acks="all",
            linger_ms=20,
            retries=5,
            compression_type=None,
        )

    def announce(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Send all, then wait until the broker has acknowledged every one."""
        futures = []
        for message in messages:
            key, value = encode_message(message)
            futures.append(self._producer.send(self.topic, key=key, value=value))
        self._producer.flush()
        for future in futures:
            future.get(timeout=30)  # raises if a send failed: never lose one silently
        return len(futures)

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close()


class NullAnnouncer:
    """The listing catalog's announcer: files speak for themselves."""

    def announce(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """Count without sending."""
        return sum(1 for _ in messages)

    def close(self) -> None:
        """Nothing to release."""
