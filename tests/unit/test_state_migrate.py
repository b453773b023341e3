from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import etl
from etl.state.engine import create_state_engine
from etl.state.migrate import MIGRATIONS, current_revision, head_revision, upgrade
from etl.state.models import Base
from etl.state.uow import open_state
from tests.contracts.state_store import MACHINE_A, T0, new_batch, register
from tests.contracts.state_store import STATE_TABLES as TABLES


def test_the_migrations_ship_inside_the_package() -> None:
    assert {p.name for p in MIGRATIONS.iterdir()} >= {"env.py", "script.py.mako", "versions"}
    assert (MIGRATIONS / "versions" / "0001_initial.py").is_file()
    assert (MIGRATIONS / "versions" / "0002_announced_history.py").is_file()
    assert head_revision() == "0002"


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


def test_upgrade_works_when_the_package_is_imported_from_a_zip(tmp_path: Path) -> None:
    """As on a spark-submit driver with ``--py-files fleet_etl.zip``: the zip first on the path.

    The subprocess imports ``etl`` from the zip (the editable install's finder comes
    after the path), so Alembic must get the migrations copied out of it, and the
    copy is gone once the process exited.
    """
    package = tmp_path / "fleet_etl.zip"
    source = Path(etl.__file__).parent
    with zipfile.ZipFile(package, "w") as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, f"etl/{path.relative_to(source).as_posix()}")
    url = f"sqlite:///{tmp_path / 'state.db'}"
    code = (
        "import json, etl; from etl.state import migrate; "
        f"migrate.upgrade({url!r}); "
        "print(json.dumps([etl.__file__, str(migrate.script_location())]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=dict(os.environ, PYTHONPATH=str(package)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    imported, copied = map(Path, json.loads(done.stdout))
    assert imported.is_relative_to(package), imported
    assert not copied.is_relative_to(package) and not copied.exists(), copied
    engine = create_state_engine(url)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == TABLES
    engine.dispose()
