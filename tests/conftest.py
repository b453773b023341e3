"""Shared fixtures: one SparkSession per test session, markers from the folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("unit", "spark", "integration", "e2e")

# The environment `make test` exports, for runs of pytest straight from the venv.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "etl-local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "etl-local-secret")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its layer (the folder it lives in)."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def demo_config_path() -> Path:
    return ROOT / "conf" / "demo.yaml"


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The one local SparkSession of the run, built by our own factory."""
    from pyspark.sql import SparkSession

    from etl.config import load_config
    from etl.session import configure

    config = load_config(ROOT / "conf" / "demo.yaml")
    warehouse = tmp_path_factory.mktemp("warehouse")
    builder = (
        configure(SparkSession.builder.master("local[2]"), s3=config.storage.s3, local=True)
        .appName("etl-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.memory", "2g")
    )
    session = builder.getOrCreate()
    yield session
    session.stop()
