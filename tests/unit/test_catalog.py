from __future__ import annotations

import json
from pathlib import Path

from etl.io.announce import encode_message
from etl.io.catalog import ListingCatalog, parse_announcement
from etl.io.objectstore import LocalObjectStore

UUID = "0b6f1c4e-0000-4000-8000-000000000001"
OTHER = "0b6f1c4e-0000-4000-8000-000000000002"
MESSAGE = {
    "machine_uuid": UUID,
    "bucket": "raw-telemetry",
    "key": f"{UUID}/1767225600000.parquet",
    "first_timestamp": 1767225600.0,
    "last_timestamp": 1767226199.9,
    "rows": 6600,
    "created_at": "2026-01-01T00:10:41Z",
}


def test_contract_message_round_trips() -> None:
    key, value = encode_message(MESSAGE)
    assert key == UUID.encode()
    announcement = parse_announcement(key, value, partition=2, offset=17)
    assert announcement.error is None
    assert (announcement.machine_uuid, announcement.key) == (UUID, MESSAGE["key"])
    assert (announcement.first_timestamp, announcement.last_timestamp) == (
        1767225600.0,
        1767226199.9,
    )
    assert (announcement.rows, announcement.partition, announcement.offset) == (6600, 2, 17)
    assert announcement.source == "kafka"


def test_malformed_announcements_are_kept_with_a_reason() -> None:
    not_json = parse_announcement(UUID.encode(), b"{nope", partition=0, offset=5)
    assert not_json.error.startswith("malformed announcement: ")
    assert (not_json.machine_uuid, not_json.key) == (UUID, "kafka/0/5")
    body = {k: v for k, v in MESSAGE.items() if k != "key"}
    missing = parse_announcement(None, json.dumps(body).encode(), partition=1, offset=9)
    assert missing.error == "malformed announcement: missing field 'key'"
    assert missing.machine_uuid == "unknown"


def test_listing_catalog_lists_configured_machines(tmp_path: Path) -> None:
    store = LocalObjectStore(f"file://{tmp_path}")
    store.put(f"{UUID}/1767225600000.parquet", b"a")
    store.put(f"{UUID}/1767226200000.parquet", b"bb")
    store.put(f"{UUID}/notes.txt", b"c")
    store.put(f"{OTHER}/1767225600000.parquet", b"d")
    catalog = ListingCatalog(store, [UUID])
    polled = catalog.poll()
    assert [(a.key, a.size_bytes, a.first_timestamp, a.error) for a in polled] == [
        (f"{UUID}/1767225600000.parquet", 1, 1767225600.0, None),
        (f"{UUID}/1767226200000.parquet", 2, 1767226200.0, None),
        (f"{UUID}/notes.txt", 1, None, "key does not match {uuid}/{first_ts_ms}.parquet"),
    ]
    read = catalog.read_history({})
    assert [a.key for a in read.announcements] == [a.key for a in polled[:2]]
    assert read.positions == {} and catalog.history_source == f"listing:{store.url}"
    both = ListingCatalog(store, [UUID, OTHER]).read_history({5: 9})  # no positions to honour
    assert {a.machine_uuid for a in both.announcements} == {UUID, OTHER}
