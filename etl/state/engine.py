"""Engines for the state store, configured for what each database needs.

PostgreSQL needs little: ``pool_pre_ping`` so a restarted server does not
fail the next step. SQLite, the embedded store, needs more to be safe with
several processes (a discover and a preprocess started by cron at once):

* WAL, so readers (``etl status``) never block the writer;
* foreign keys, which SQLite ignores unless asked;
* a busy timeout, so a second writer waits instead of failing at once;
* Python's sqlite3 module told to stay out of transactions, and an explicit
  ``BEGIN`` emitted instead. Units of work begin ``IMMEDIATE`` (take the
  write lock up front) because a deferred transaction that read first and
  writes later fails with "database is locked" when another process wrote
  in between, however long it waits; plain reads begin ``DEFERRED``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL

SQLITE_BEGIN = "etl_sqlite_begin"
"""Execution option naming how a SQLite transaction begins (DEFERRED or IMMEDIATE)."""

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's transaction to end."""


def is_sqlite(url: str | URL) -> bool:
    """Whether the URL names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_state_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for the state store at ``url`` (PostgreSQL or SQLite).

    Args:
        url: any SQLAlchemy URL; PostgreSQL may carry
            ``?options=-csearch_path%3Dname`` to live in its own schema.
        **kwargs: passed on to :func:`sqlalchemy.create_engine`.

    """
    if not is_sqlite(url):
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)  # a fresh pipeline's folder
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, **kwargs.pop("connect_args", {})}
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per connection: SQLAlchemy drives transactions, WAL, foreign keys on."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    """Emit the BEGIN that sqlite3 no longer emits, in the mode the caller asked for."""
    mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    if mode not in ("DEFERRED", "IMMEDIATE"):
        raise ValueError(f"unknown SQLite begin mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")
