"""Bring a state store's schema to the newest Alembic revision, from code.

Every entry point migrates before it touches the store, so a fresh pipeline
needs no set-up step and an upgraded one catches up on its first run. That
means several processes (Kubeflow steps, a cron tick) may migrate the same
database at the same moment, so the whole upgrade runs in one transaction
that first takes a lock: a transaction-scoped advisory lock on PostgreSQL,
the database write lock (``BEGIN IMMEDIATE``) on SQLite. The second process
waits, then finds the schema at head and does nothing. Within one process a
plain lock comes first, because Alembic keeps the running migration in
module-level state that two threads would share.

Alembic reads its scripts from a folder. Under spark-submit the driver may import
``etl`` from a zip (``--py-files`` puts it first on the driver's path too), so
:func:`script_location` then copies the scripts out of the zip once per process.
"""

from __future__ import annotations

import atexit
import functools
import logging
import shutil
import tempfile
import threading
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

from etl.state.engine import SQLITE_BEGIN, create_state_engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
"""The Alembic script directory, shipped inside the package (not a folder in a zip)."""

ADVISORY_LOCK_KEY = 0x6574_6C5F_7374_6174  # "etl_stat"
"""PostgreSQL advisory lock id that serialises migrations of one database."""

_IN_PROCESS = threading.Lock()
"""Alembic's ``context`` and ``op`` are process globals: one migration at a time."""


@functools.cache
def script_location() -> Path:
    """The migrations as a folder Alembic can read: :data:`MIGRATIONS`, or a copy of them.

    When ``etl`` was imported from a zip, :data:`MIGRATIONS` is a path inside it,
    which Alembic cannot list nor load ``env.py`` from. The scripts are then copied
    to a temporary folder, once per process (cached), removed when the process exits.
    """
    if MIGRATIONS.is_dir():
        return MIGRATIONS
    folder = Path(tempfile.mkdtemp(prefix="etl-migrations-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    _copy_tree(resources.files(__package__) / "migrations", folder)
    log.debug("state store migrations copied from %s to %s", MIGRATIONS, folder)
    return folder


def _copy_tree(source: Traversable, target: Path) -> None:
    """Copy a package resource folder (e.g. inside a zip) to an existing folder."""
    for child in source.iterdir():
        if child.is_dir():
            (target / child.name).mkdir()
            _copy_tree(child, target / child.name)
        else:
            (target / child.name).write_bytes(child.read_bytes())


def alembic_config() -> AlembicConfig:
    """An Alembic configuration pointing at the packaged scripts (no alembic.ini needed)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(script_location()))
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {script_location()}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(bind: Engine | str | URL, revision: str = "head") -> None:
    """Migrate the store to ``revision``; a no-op when it is there already.

    Safe to call from several processes at once (see the module docstring).

    Args:
        bind: an engine, or a URL to open (and close) one for.
        revision: target revision; tests use older ones to exercise upgrades.

    """
    engine = create_state_engine(bind) if isinstance(bind, str | URL) else bind
    try:
        with _IN_PROCESS, engine.connect() as conn:
            conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
            with conn.begin():
                _lock(conn)
                before = MigrationContext.configure(conn).get_current_revision()
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                after = MigrationContext.configure(conn).get_current_revision()
        if before != after:
            log.info("state store migrated from %s to %s", before or "empty", after)
    finally:
        if engine is not bind:
            engine.dispose()


def _lock(conn: Connection) -> None:
    """Serialise migrations; PostgreSQL releases the lock when the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
