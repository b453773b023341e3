"""make bench-judging: how long judging "enough data" takes from a Kafka history of fleet size.

Fills a fresh topic on the local stack's broker with the announcements of ``--machines``
machines over ``--days`` days (one per 10-minute file: 500 machines x 14 days is about a
million messages), then times, side by side in one run:

* **per machine** (the implementation before session 11): the whole topic read once per
  machine, keeping that machine's records. Timed for ``--sample`` machines and multiplied
  out to the fleet (every read is the same full read);
* **once, from the start** (``etl train``'s first decision now): one read of the topic for
  every machine, merged into per-machine intervals and kept in the state store
  (PostgreSQL of the stack);
* **incremental** (every later decision): one more wave of announcements (one file per
  machine), read from the stored positions, merged and stored.

All three give the same per-machine days (checked). The topic is deleted afterwards.

Usage: python bench/judging.py [--machines 500] [--days 14] [--partitions 6] [--sample 3]
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_767_571_200.0  # 2026-01-05 00:00:00 UTC
FILE_S = 600.0


def announcement(machine: str, first: float) -> dict[str, object]:
    """One raw file's announcement, as the loggers send it."""
    return {
        "machine_uuid": machine,
        "key": f"{machine}/{int(first * 1000)}.parquet",
        "first_timestamp": first,
        "last_timestamp": first + FILE_S - 0.1,
        "rows": 6600,
        "created_at": "2026-01-05T00:10:00Z",
    }


def fill(kafka: object, machines: list[str], files: int, start: float) -> float:
    """Announce ``files`` consecutive files of every machine; seconds taken."""
    from kafka import KafkaProducer

    clock = time.monotonic()
    producer = KafkaProducer(
        **kafka.client_options(),  # type: ignore[attr-defined]
        acks=1,
        linger_ms=50,
        batch_size=1 << 20,
    )
    for i in range(files):
        for machine in machines:
            body = announcement(machine, start + i * FILE_S)
            producer.send(kafka.topic, key=machine.encode(), value=json.dumps(body).encode())  # type: ignore[attr-defined]
    producer.flush()
    producer.close()
    return time.monotonic() - clock


def per_machine_days(kafka: object, machine: str) -> float:
    """The pre-session-11 read: every partition from the start, one machine kept."""
    from kafka import KafkaConsumer, TopicPartition

    from etl.io.catalog import parse_announcement
    from etl.train.plan import DAY_S, covered_seconds

    consumer = KafkaConsumer(
        **kafka.client_options(),  # type: ignore[attr-defined]
        enable_auto_commit=False,
        group_id=None,
    )
    try:
        partitions = consumer.partitions_for_topic(kafka.topic) or set()  # type: ignore[attr-defined]
        assigned = [TopicPartition(kafka.topic, p) for p in sorted(partitions)]  # type: ignore[attr-defined]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        wanted = machine.encode()
        found = []
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            for records in consumer.poll(timeout_ms=2000).values():
                found.extend(
                    parse_announcement(r.key, r.value, partition=r.partition, offset=r.offset)
                    for r in records
                    if r.key == wanted
                )
    finally:
        consumer.close()
    return covered_seconds((a.first_timestamp, a.last_timestamp) for a in found) / DAY_S


def main() -> None:
    """Fill the topic, time the three ways, print the figures, delete the topic."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=500)
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--sample", type=int, default=3)
    args = parser.parse_args()

    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from etl.bootstrap import bootstrap
    from etl.config import load_config, parse_config
    from etl.steps.train import announced_days

    demo = load_config(ROOT / "conf" / "demo.yaml")
    unique = uuid.uuid4().hex[:10]
    data = demo.model_dump(mode="json", by_alias=True)
    data["pipeline"] = {"name": f"bench-judge-{unique}", "start_date": "2026-01-05"}
    data["catalog"]["kafka"]["topic"] = f"bench-judge-{unique}"
    config = parse_config(data)
    kafka = config.catalog.kafka
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    admin.create_topics([NewTopic(kafka.topic, args.partitions, 1)])
    machines = [f"5f0c0000-0000-4000-8000-{i:012d}" for i in range(args.machines)]
    files = int(args.days * 86_400 / FILE_S)
    try:
        produced = fill(kafka, machines, files, T0)
        messages = files * len(machines)
        print(
            f"topic: {messages:,} announcements ({len(machines)} machines x {files} files, "
            f"{args.partitions} partitions) written in {produced:.1f} s"
        )

        clock = time.monotonic()
        sampled = {m: per_machine_days(kafka, m) for m in machines[: args.sample]}
        one = (time.monotonic() - clock) / len(sampled)

        ctx = bootstrap(config)
        clock = time.monotonic()
        first = announced_days(ctx)
        once = time.monotonic() - clock
        # the same files; now the 0.1 s between consecutive files counts (one stretch)
        assert all(0 <= first[m] - d <= files * 0.1 / 86_400 + 1e-9 for m, d in sampled.items())

        fill(kafka, machines, 1, T0 + files * FILE_S)  # the next wave
        clock = time.monotonic()
        later = announced_days(ctx)
        incremental = time.monotonic() - clock
        grown = {round(later[m] - first[m], 6) for m in machines}
        assert grown == {round(FILE_S / 86_400, 6)}, grown  # one more file, joined on
        ctx.close()

        print(
            f"per machine (before): {one:.2f} s per machine read, x {len(machines)} machines "
            f"= {one * len(machines):,.0f} s (measured on {len(sampled)}, extrapolated)"
        )
        print(
            f"once, from the start:  {once:.2f} s for all {len(machines)} machines "
            f"({messages / once:,.0f} announcements/s, state store write included)"
        )
        print(f"incremental (1 wave):  {incremental:.2f} s")
        print(
            f"ratio before / once: {one * len(machines) / once:,.0f}x; "
            f"before / incremental: {one * len(machines) / incremental:,.0f}x"
        )
    finally:
        admin.delete_topics([kafka.topic])
        admin.close()


if __name__ == "__main__":
    main()
