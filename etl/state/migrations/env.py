"""Alembic environment of the state store.

:func:`etl.state.migrate.upgrade` passes an open connection (inside the
transaction that holds the migration lock) through
``config.attributes["connection"]``; the ``alembic`` command line, used only
to author new revisions, gives a URL as ``sqlalchemy.url`` instead.
Revisions must run on PostgreSQL and SQLite alike, so SQLite gets batch mode
(table copies instead of ALTER, which it mostly lacks).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from etl.state.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or one made from ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url to migrate")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; migrate a database")
run_migrations_online()
