from __future__ import annotations

import pytest

from etl.config import Config
from etl.io.objectstore import ObjectStore, open_store
from etl.stack import Stack
from tests.contracts.object_store import ObjectStoreContract


class TestS3ObjectStore(ObjectStoreContract):
    @pytest.fixture
    def store(self, stack: Stack, demo_config: Config, unique: str) -> ObjectStore:
        return open_store(f"s3a://etl-processed/contract/{unique}", demo_config.storage.s3)


def test_keys_live_below_the_prefix(stack: Stack, demo_config: Config, unique: str) -> None:
    store = open_store(f"s3://raw-telemetry/pre/{unique}", demo_config.storage.s3)
    store.put("m/1.parquet", b"data")
    raw = stack.s3.client().get_object(Bucket="raw-telemetry", Key=f"pre/{unique}/m/1.parquet")
    assert raw["Body"].read() == b"data"
