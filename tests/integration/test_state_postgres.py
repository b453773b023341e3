"""The state store on the stack's PostgreSQL, each test session in its own schema.

The database is shared with other tests and with ``etl`` runs on the demo
config, so nothing here touches the default schema or drops anything: a
session creates ``state_test_<hex>`` and every test works in its own pipeline.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError

from etl.config import Config
from etl.stack import Stack
from etl.state.domain import BatchStatus, NewModel
from etl.state.engine import create_state_engine
from etl.state.migrate import current_revision, head_revision, upgrade
from etl.state.models import Base
from etl.state.status import read_status
from etl.state.uow import UnitOfWorkFactory, open_state
from tests.contracts.state_store import (
    MACHINE_A,
    T0,
    StateStoreContract,
    new_batch,
    register,
)
from tests.contracts.state_store import (
    STATE_TABLES as TABLES,
)


def fresh_schema(config: Config) -> URL:
    """A new, empty schema in the state database and a URL that lives in it."""
    schema = f"state_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(config.state.url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    return make_url(config.state.url).update_query_dict({"options": f"-csearch_path={schema}"})


@pytest.fixture(scope="session")
def pg_state(stack: Stack, demo_config: Config) -> Iterator[tuple[Engine, UnitOfWorkFactory]]:
    engine, factory = open_state(fresh_schema(demo_config))
    yield engine, factory
    engine.dispose()


class TestPostgresStateStore(StateStoreContract):
    @pytest.fixture
    def uow_factory(self, pg_state: tuple[Engine, UnitOfWorkFactory]) -> UnitOfWorkFactory:
        return pg_state[1]


def test_migrating_twice_is_a_no_op(stack: Stack, demo_config: Config) -> None:
    url = fresh_schema(demo_config)
    engine = create_state_engine(url)
    assert current_revision(engine) is None
    upgrade(engine)
    _, factory = open_state(url)
    (batch,) = register(factory, new_batch("p", MACHINE_A, T0))

    upgrade(engine)
    upgrade(url)

    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES
    with factory() as uow:
        assert uow.batches.for_pipeline("p") == [batch]
    engine.dispose()


def test_processes_starting_at_once_migrate_once(stack: Stack, demo_config: Config) -> None:
    url = fresh_schema(demo_config)
    at = time.time() + 4  # let every interpreter import first, then start together
    code = (
        "import time; from etl.state.migrate import upgrade; "
        f"time.sleep(max(0.0, {at} - time.time())); "
        f"upgrade({url.render_as_string(hide_password=False)!r})"
    )
    workers = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
    assert [worker.wait(120) for worker in workers] == [0, 0, 0, 0]

    engine = create_state_engine(url)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_threads_migrating_at_once_wait_for_each_other(stack: Stack, demo_config: Config) -> None:
    urls = [fresh_schema(demo_config) for _ in range(3)]
    start = threading.Barrier(len(urls) * 2)

    def migrate(url: URL) -> None:
        start.wait(10)
        upgrade(url)

    with ThreadPoolExecutor(len(urls) * 2) as pool:
        for future in [pool.submit(migrate, url) for url in urls * 2]:
            future.result(120)
    for url in urls:
        engine = create_state_engine(url)
        assert current_revision(engine) == head_revision()
        engine.dispose()


def test_the_models_match_the_migrated_schema(pg_state: tuple[Engine, UnitOfWorkFactory]) -> None:
    engine, _ = pg_state
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("batches")}
    assert isinstance(columns["quality"], JSONB)


def test_status_reflection_reads_the_tables(
    pg_state: tuple[Engine, UnitOfWorkFactory], unique: str
) -> None:
    engine, factory = pg_state
    (batch,) = register(factory, new_batch(f"status-{unique}", MACHINE_A, T0))
    with factory() as uow:
        uow.batches.mark_rejected(batch.id, "missing column acc_x", quality={"rows": 3})
        model = uow.models.add(NewModel(f"status-{unique}", "dumper", metrics={"f1": 0.9}))
        uow.commit()

    status = read_status(engine)

    (row,) = [r for r in status["batches"] if r["id"] == batch.id]
    assert (row["machine_uuid"], row["key"], row["status"], row["reason"]) == (
        MACHINE_A,
        batch.key,
        "rejected",
        "missing column acc_x",
    )
    assert row["quality"] == {"rows": 3}
    assert isinstance(row["discovered_at"], str)  # JSON-ready
    (model_row,) = [m for m in status["models"] if m["id"] == model.id]
    assert (model_row["version"], model_row["status"], model_row["metrics"]) == (
        1,
        "challenger",
        {"f1": 0.9},
    )
    ids = [r["id"] for r in status["batches"]]
    assert ids == sorted(ids)


def test_the_database_allows_one_champion_only(
    pg_state: tuple[Engine, UnitOfWorkFactory], unique: str
) -> None:
    engine, factory = pg_state
    with factory() as uow:
        first = uow.models.add(NewModel(unique, "dumper"))
        second = uow.models.add(NewModel(unique, "dumper"))
        uow.models.set_champion(first.id)
        uow.commit()
    with engine.begin() as conn, pytest.raises(IntegrityError, match="uq_models_one_champion"):
        conn.execute(
            text("UPDATE models SET status = 'champion' WHERE id = :id"), {"id": second.id}
        )


def test_concurrent_trainings_get_distinct_versions(
    pg_state: tuple[Engine, UnitOfWorkFactory], unique: str
) -> None:
    _, factory = pg_state
    workers = 5
    start = threading.Barrier(workers)

    def train() -> int:
        start.wait(10)
        with factory() as uow:
            model = uow.models.add(NewModel(unique, "excavator"))
            uow.commit()
        return model.version

    with ThreadPoolExecutor(workers) as pool:
        versions = sorted(f.result(60) for f in [pool.submit(train) for _ in range(workers)])
    assert versions == [1, 2, 3, 4, 5]


def test_a_batch_moved_by_two_units_of_work_at_once_moves_once(
    pg_state: tuple[Engine, UnitOfWorkFactory], unique: str
) -> None:
    _, factory = pg_state
    (batch,) = register(factory, new_batch(unique, MACHINE_A, T0))
    start = threading.Barrier(2)

    def preprocess(version: int) -> int | str:
        start.wait(10)
        with factory() as uow:
            try:
                done = uow.batches.mark_preprocessed(batch.id, delta_version=version)
            except Exception as error:  # the loser sees the winner's committed status
                return type(error).__name__
            uow.commit()
            return done.delta_version or 0

    with ThreadPoolExecutor(2) as pool:
        outcomes = [f.result(60) for f in [pool.submit(preprocess, v) for v in (1, 2)]]

    winners = [outcome for outcome in outcomes if isinstance(outcome, int)]
    assert [outcome for outcome in outcomes if isinstance(outcome, str)] == [
        "IllegalTransitionError"
    ]
    with factory() as uow:
        stored = uow.batches.get(batch.id)
    assert (stored.status, stored.delta_version, len(winners)) == (
        BatchStatus.PREPROCESSED,
        winners[0],
        1,
    )
