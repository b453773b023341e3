from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from etl.state.engine import create_state_engine
from etl.state.migrate import MIGRATIONS, current_revision, head_revision, upgrade
from etl.state.models import Base
from etl.state.uow import open_state
from tests.contracts.state_store import MACHINE_A, T0, new_batch, register

TABLES = {
    "alembic_version",
    "batches",
    "batch_events",
    "exports",
    "inference_runs",
    "models",
    "runs",
}


def test_the_migrations_ship_inside_the_package() -> None:
    assert {p.name for p in MIGRATIONS.iterdir()} >= {"env.py", "script.py.mako", "versions"}
    assert (MIGRATIONS / "versions" / "0001_initial.py").is_file()
    assert head_revision() == "0001"


def test_upgrade_creates_the_tables_then_is_a_no_op(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = create_state_engine(url)
    assert current_revision(engine) is None

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES
    _, factory = open_state(url)
    (batch,) = register(factory, new_batch("p", MACHINE_A, T0))

    upgrade(engine)
    upgrade(url)

    assert current_revision(engine) == head_revision()
    with factory() as uow:
        assert uow.batches.for_pipeline("p") == [batch]
    engine.dispose()


def test_the_models_match_the_migrated_schema(tmp_path: Path) -> None:
    engine = create_state_engine(f"sqlite:///{tmp_path / 'state.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_processes_starting_at_once_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    code = f"from etl.state.migrate import upgrade; upgrade({url!r})"
    workers = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
    assert [worker.wait(120) for worker in workers] == [0, 0, 0, 0]
    engine = create_state_engine(url)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES
    engine.dispose()
