"""One contract for every ObjectStore adapter (local files, S3)."""

from __future__ import annotations

import pytest

from etl.io.objectstore import ObjectInfo, ObjectStore


class ObjectStoreContract:
    """Subclasses provide a ``store`` fixture: an empty store."""

    def test_is_an_object_store(self, store: ObjectStore) -> None:
        assert isinstance(store, ObjectStore)

    def test_put_get_round_trip(self, store: ObjectStore) -> None:
        store.put("m1/1767225600000.parquet", b"PAR1\x00\x01")
        assert store.get("m1/1767225600000.parquet") == b"PAR1\x00\x01"
        assert store.exists("m1/1767225600000.parquet")
        assert not store.exists("m1/other.parquet")

    def test_put_replaces(self, store: ObjectStore) -> None:
        store.put("k", b"one")
        store.put("k", b"second")
        assert store.get("k") == b"second"

    def test_missing_key_is_file_not_found(self, store: ObjectStore) -> None:
        with pytest.raises(FileNotFoundError):
            store.get("absent/key")

    def test_list_by_prefix_in_key_order(self, store: ObjectStore) -> None:
        for key in ("b/2.parquet", "a/1.parquet", "b/1.parquet", "bb/1.parquet"):
            store.put(key, key.encode())
        assert list(store.list("b/")) == [
            ObjectInfo("b/1.parquet", len(b"b/1.parquet")),
            ObjectInfo("b/2.parquet", len(b"b/2.parquet")),
        ]
        assert [info.key for info in store.list()] == [
            "a/1.parquet",
            "b/1.parquet",
            "b/2.parquet",
            "bb/1.parquet",
        ]

    def test_delete(self, store: ObjectStore) -> None:
        store.put("gone", b"x")
        store.delete("gone")
        store.delete("never-there")
        assert not store.exists("gone")
        assert list(store.list()) == []
