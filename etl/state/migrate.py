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
"""

from __future__ import annotations

import logging
import threading
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
"""The Alembic script directory, shipped inside the package."""

ADVISORY_LOCK_KEY = 0x6574_6C5F_7374_6174  # "etl_stat"
"""PostgreSQL advisory lock id that serialises migrations of one database."""

_IN_PROCESS = threading.Lock()
"""Alembic's ``context`` and ``op`` are process globals: one migration at a time."""


def alembic_config() -> AlembicConfig:
    """An Alembic configuration pointing at the packaged scripts (no alembic.ini needed)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
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
