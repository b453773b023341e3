"""The batch catalog port: which raw files exist, and which are new.

Two adapters:

* :class:`KafkaCatalog` (production) reads the announcement topic with a consumer
  group whose offsets are committed only after the state store holds the files,
  so a crash in between re-reads them and registration (idempotent) absorbs the
  repeat. ``read_history(positions)`` reads the topic (the authority on which files
  exist) for every machine at once, from where an earlier read stopped.
* :class:`ListingCatalog` (embedded) lists ``storage.raw_url``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from etl.config import KafkaConfig
from etl.io.objectstore import ObjectStore
from etl.preprocess.validate import parse_key

log = logging.getLogger(__name__)

NOMINAL_BATCH_S = 600.0
"""A listed file's duration when nothing better is known (loggers upload ~10 minutes)."""


@dataclass(frozen=True)
class Announcement:
    """One raw file as the catalog knows it (before anyone has read it)."""

    machine_uuid: str
    key: str
    first_timestamp: float | None
    last_timestamp: float | None
    rows: int | None = None
    size_bytes: int | None = None
    created_at: str | None = None
    source: str = "listing"
    partition: int | None = None
    offset: int | None = None
    error: str | None = None
    """Set when the announcement itself is malformed (it is recorded, not dropped)."""


@dataclass(frozen=True)
class HistoryRead:
    """What one read of a catalog's history found, and where it stopped."""

    announcements: list[Announcement]
    """Every well-formed announcement read, all machines, in each partition's order."""
    positions: dict[int, int]
    """The next offset to read per partition (empty for a catalog without offsets)."""


class BatchCatalog(Protocol):
    """Where new raw files are learnt of."""

    def poll(self) -> list[Announcement]:
        """Announcements not yet acknowledged, oldest first."""
        ...

    def acknowledge(self) -> None:
        """Mark everything returned by :meth:`poll` as recorded (commit offsets)."""
        ...

    @property
    def history_source(self) -> str:
        """What the history is read from (positions are only valid for the same source)."""
        ...

    def read_history(self, positions: Mapping[int, int]) -> HistoryRead:
        """Every file announced after ``positions`` (all of them when empty), all machines."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def parse_announcement(
    raw_key: bytes | None, raw_value: bytes | None, *, partition: int, offset: int
) -> Announcement:
    """Decode one Kafka record; a malformed one becomes an Announcement with ``error``."""
    where = {"source": "kafka", "partition": partition, "offset": offset}
    try:
        body: dict[str, Any] = json.loads((raw_value or b"").decode("utf-8"))
        if not isinstance(body, dict):
            raise ValueError("value is not a JSON object")
        machine = str(body["machine_uuid"]).lower()
        key = str(body["key"])
        return Announcement(
            machine_uuid=machine,
            key=key,
            first_timestamp=float(body["first_timestamp"]),
            last_timestamp=float(body["last_timestamp"]),
            rows=int(body["rows"]) if body.get("rows") is not None else None,
            created_at=body.get("created_at"),
            **where,
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        machine = (raw_key or b"").decode("utf-8", "replace").lower() or "unknown"
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)[:120]
        return Announcement(
            machine_uuid=machine,
            key=f"kafka/{partition}/{offset}",
            first_timestamp=None,
            last_timestamp=None,
            error=f"malformed announcement: {detail}",
            **where,
        )


class KafkaCatalog:
    """Announcements from the Kafka topic (at-least-once, whole history kept)."""

    def __init__(self, kafka: KafkaConfig, group_id: str, poll_timeout_ms: int = 2000) -> None:
        self._kafka = kafka
        self._group_id = group_id
        self._poll_timeout_ms = poll_timeout_ms
        self._consumer: Any = None

    def _group_consumer(self) -> Any:
        from kafka import KafkaConsumer

        if self._consumer is None:
            self._consumer = KafkaConsumer(
                self._kafka.topic,
                **self._kafka.client_options(),
                group_id=self._group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=5000,
            )
        return self._consumer

    def poll(self) -> list[Announcement]:
        """Read until the consumer has caught up with the end of every partition."""
        consumer = self._group_consumer()
        found: list[Announcement] = []
        while True:
            batches = consumer.poll(timeout_ms=self._poll_timeout_ms)
            for records in batches.values():
                found.extend(
                    parse_announcement(r.key, r.value, partition=r.partition, offset=r.offset)
                    for r in records
                )
            assigned = consumer.assignment()
            if not batches and assigned:
                ends = consumer.end_offsets(list(assigned))
                if all(consumer.position(tp) >= ends[tp] for tp in assigned):
                    break
            elif not batches:
                break
        return found

    def acknowledge(self) -> None:
        """Commit the positions reached by :meth:`poll`."""
        if self._consumer is not None:
            self._consumer.commit()

    @property
    def history_source(self) -> str:
        """The topic."""
        return f"kafka:{self._kafka.topic}"

    def read_history(self, positions: Mapping[int, int]) -> HistoryRead:
        """Read every partition from ``positions`` (or its start) to its end, without a group.

        The ends are taken when the read starts, so announcements that arrive during it
        are left for the next read, which starts exactly there.
        """
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            **self._kafka.client_options(),
            enable_auto_commit=False,
            group_id=None,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        try:
            partitions = consumer.partitions_for_topic(self._kafka.topic) or set()
            assigned = [TopicPartition(self._kafka.topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            ends = consumer.end_offsets(assigned)
            starts = consumer.beginning_offsets(assigned)
            for tp in assigned:
                position = positions.get(tp.partition, 0)
                if position > ends[tp]:  # the topic was recreated under the same name
                    position = 0
                # a position the retention has passed starts at the oldest record kept
                consumer.seek(tp, max(position, starts[tp]))
            found: list[Announcement] = []
            while any(consumer.position(tp) < ends[tp] for tp in assigned):
                polled = consumer.poll(timeout_ms=self._poll_timeout_ms, max_records=100_000)
                for tp, records in polled.items():
                    found.extend(
                        parse_announcement(r.key, r.value, partition=r.partition, offset=r.offset)
                        for r in records
                        if r.offset < ends[tp]
                    )
        finally:
            consumer.close()
        return HistoryRead(
            [a for a in found if a.error is None],
            {tp.partition: int(ends[tp]) for tp in assigned},
        )

    def close(self) -> None:
        """Close the group consumer (without committing)."""
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None


class ListingCatalog:
    """Every file below the raw location of the configured machines."""

    def __init__(self, store: ObjectStore, machine_uuids: Iterable[str]) -> None:
        self._store = store
        self._machines = list(machine_uuids)

    def _listed(self, machine_uuid: str) -> list[Announcement]:
        found = []
        for info in self._store.list(f"{machine_uuid}/"):
            parsed = parse_key(info.key)
            first = parsed[1] / 1000.0 if parsed else None
            found.append(
                Announcement(
                    machine_uuid=machine_uuid,
                    key=info.key,
                    first_timestamp=first,
                    last_timestamp=None if first is None else first + NOMINAL_BATCH_S,
                    size_bytes=info.size,
                    source="listing",
                    error=None if parsed else "key does not match {uuid}/{first_ts_ms}.parquet",
                )
            )
        return found

    def poll(self) -> list[Announcement]:
        """All listed files; the state store tells which are new."""
        return [a for machine in self._machines for a in self._listed(machine)]

    def acknowledge(self) -> None:
        """Nothing to commit: the listing is stateless."""

    @property
    def history_source(self) -> str:
        """The raw location."""
        return f"listing:{self._store.url}"

    def read_history(self, positions: Mapping[int, int]) -> HistoryRead:
        """Every file listed for the configured machines (a listing has no positions)."""
        return HistoryRead([a for a in self.poll() if a.error is None], {})

    def close(self) -> None:
        """Nothing to release."""
