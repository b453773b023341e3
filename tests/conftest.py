"""Shared fixtures: one SparkSession per test session, markers from the folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from etl.config import Config
    from etl.stack import Stack

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
def demo_config(demo_config_path: Path) -> Config:
    from etl.config import load_config

    return load_config(demo_config_path)


@pytest.fixture(scope="session")
def stack(demo_config: Config) -> Stack:
    """The real local stack, readiness-checked once per session.

    `make test` starts it (`etl stack up`). If it is not ready the tests fail with
    the command to run; they are never skipped in its place.
    """
    from etl.stack import build_stack, status

    services = build_stack(demo_config)
    down = [row["service"] for row in status(services) if row["state"] != "ready"]
    if down:
        pytest.fail(
            f"local stack not ready ({', '.join(down)}): run `.venv/bin/etl --config "
            "conf/demo.yaml stack up` (make test does)"
        )
    return services


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
