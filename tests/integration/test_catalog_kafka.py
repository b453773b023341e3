"""The Kafka catalog against the real broker: group offsets and the topic's history."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from etl.config import KafkaConfig
from etl.io.announce import KafkaAnnouncer
from etl.io.catalog import KafkaCatalog
from etl.stack import Stack

A = "0b6f1c4e-0000-4000-8000-00000000000a"
B = "0b6f1c4e-0000-4000-8000-00000000000b"


def message(machine: str, i: int) -> dict:
    first = 1767225600.0 + 600 * i
    return {
        "machine_uuid": machine,
        "bucket": "raw-telemetry",
        "key": f"{machine}/{int(first * 1000)}.parquet",
        "first_timestamp": first,
        "last_timestamp": first + 599.9,
        "rows": 6600,
        "created_at": "2026-01-01T00:10:41Z",
    }


def make_topic(stack: Stack, unique: str) -> KafkaConfig:
    topic = f"raw-{unique}"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    return KafkaConfig(bootstrap_servers=stack.kafka.bootstrap, topic=topic)


def test_offsets_are_committed_only_on_acknowledge(stack: Stack, unique: str) -> None:
    kafka = make_topic(stack, unique)
    announcer = KafkaAnnouncer(kafka)
    sent = [message(A, i) for i in range(4)] + [message(B, i) for i in range(2)]
    assert announcer.announce(sent) == 6

    crashed = KafkaCatalog(kafka, group_id=f"g-{unique}")
    assert sorted(a.key for a in crashed.poll()) == sorted(m["key"] for m in sent)
    crashed.close()  # no acknowledge: as if the state store write had failed

    catalog = KafkaCatalog(kafka, group_id=f"g-{unique}")
    again = catalog.poll()
    assert sorted(a.key for a in again) == sorted(m["key"] for m in sent)
    catalog.acknowledge()
    catalog.close()

    announcer.announce([message(A, 9), message(A, 9)])  # at-least-once: a repeat
    announcer.close()
    later = KafkaCatalog(kafka, group_id=f"g-{unique}")
    assert [a.key for a in later.poll()] == [message(A, 9)["key"]] * 2
    later.close()


def test_history_is_read_whole_then_from_where_it_stopped(stack: Stack, unique: str) -> None:
    kafka = make_topic(stack, unique)
    announcer = KafkaAnnouncer(kafka)
    announcer.announce([message(A, 0), message(B, 0), message(A, 1), message(A, 2)])
    catalog = KafkaCatalog(kafka, group_id=f"g-{unique}")
    catalog.poll()
    catalog.acknowledge()  # the history ignores the group's position
    first = catalog.read_history({})
    assert [a.key for a in first.announcements if a.machine_uuid == A] == [
        message(A, i)["key"] for i in range(3)
    ]
    assert {a.machine_uuid for a in first.announcements} == {A, B}
    assert all(round(a.last_timestamp - a.first_timestamp, 6) == 599.9 for a in first.announcements)
    # three partitions: the next offset of each, four messages in all
    assert set(first.positions) == {0, 1, 2} and sum(first.positions.values()) == 4
    assert catalog.history_source == f"kafka:{kafka.topic}"

    announcer.announce([message(B, 1)])
    announcer.close()
    later = catalog.read_history(first.positions)
    assert [a.key for a in later.announcements] == [message(B, 1)["key"]]
    assert sum(later.positions.values()) == 5
    assert catalog.read_history(later.positions).announcements == []
    # positions past a partition's end: the topic was recreated, so read it from the start
    beyond = catalog.read_history(dict.fromkeys(later.positions, 10**9))
    assert len(beyond.announcements) == 5 and beyond.positions == later.positions
    catalog.close()
