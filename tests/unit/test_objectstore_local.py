from __future__ import annotations

from pathlib import Path

import pytest

from etl.io.objectstore import LocalObjectStore, ObjectStore, open_store
from tests.contracts.object_store import ObjectStoreContract


class TestLocalObjectStore(ObjectStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return open_store(f"file://{tmp_path}/root")


def test_unfinished_writes_are_not_listed(tmp_path: Path) -> None:
    store = LocalObjectStore(f"file://{tmp_path}")
    store.put("m/1.parquet", b"x")
    (tmp_path / "m" / ".tmp-abc.parquet").write_bytes(b"half")
    assert [info.key for info in store.list()] == ["m/1.parquet"]


def test_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    store = LocalObjectStore(f"file://{tmp_path}/root")
    with pytest.raises(ValueError, match="escapes"):
        store.put("../outside", b"x")


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="no object store"):
        open_store("ftp://host/x")
