"""The unit of work: one transaction over all the state store's repositories.

A step writes what it decided inside ``with uow: ...; uow.commit()``; leaving
the block without committing, or through an exception, rolls everything
back, so a crash never leaves half a decision (a batch marked preprocessed
without its Delta version, a champion demoted without a successor).

:func:`open_state` is the one way production code gets a store: it creates
the engine, migrates the schema to head and hands back a factory of units of
work.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from etl.state.engine import SQLITE_BEGIN, create_state_engine
from etl.state.migrate import upgrade
from etl.state.repository import (
    BatchRepository,
    ExportRepository,
    HistoryRepository,
    InferenceRunRepository,
    ModelRepository,
    RunRepository,
)
from etl.state.sql import (
    SqlAlchemyBatchRepository,
    SqlAlchemyExportRepository,
    SqlAlchemyHistoryRepository,
    SqlAlchemyInferenceRunRepository,
    SqlAlchemyModelRepository,
    SqlAlchemyRunRepository,
)


class AbstractUnitOfWork(abc.ABC):
    """Repositories that commit or roll back together."""

    batches: BatchRepository
    models: ModelRepository
    inference_runs: InferenceRunRepository
    exports: ExportRepository
    runs: RunRepository
    history: HistoryRepository

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed (a no-op after ``commit``)."""
        self.rollback()

    @abc.abstractmethod
    def commit(self) -> None:
        """Make every change since the last commit durable."""

    @abc.abstractmethod
    def rollback(self) -> None:
        """Discard every change since the last commit."""


UnitOfWorkFactory = Callable[[], AbstractUnitOfWork]
"""What steps receive: call it for a fresh unit of work per transaction."""


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    """A unit of work over one SQLAlchemy session, opened on ``__enter__``."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def __enter__(self) -> Self:
        self.session = self.session_factory()
        self.batches = SqlAlchemyBatchRepository(self.session)
        self.models = SqlAlchemyModelRepository(self.session)
        self.inference_runs = SqlAlchemyInferenceRunRepository(self.session)
        self.exports = SqlAlchemyExportRepository(self.session)
        self.runs = SqlAlchemyRunRepository(self.session)
        self.history = SqlAlchemyHistoryRepository(self.session)
        return super().__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back anything uncommitted and give the connection back to the pool."""
        try:
            super().__exit__(exc_type, exc, traceback)
        finally:
            self.session.close()

    def commit(self) -> None:
        """Commit the session's transaction."""
        self.session.commit()

    def rollback(self) -> None:
        """Roll back the session's transaction."""
        self.session.rollback()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for units of work; on SQLite they take the write lock when they begin.

    ``expire_on_commit`` is off because repositories hand out detached
    records anyway and nothing should reload after a commit.
    """
    bind = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    return sessionmaker(bind=bind, expire_on_commit=False)


def open_state(url: str | URL, **engine_kwargs: Any) -> tuple[Engine, UnitOfWorkFactory]:
    """The engine and a unit-of-work factory for the store at ``url``, migrated to head.

    Args:
        url: ``postgresql+psycopg://...`` or ``sqlite:////path/state.db``.
        **engine_kwargs: passed on to :func:`sqlalchemy.create_engine`.

    Returns:
        The engine (for ``etl status`` and for ``dispose()`` at exit) and a
        callable that returns a new :class:`SqlAlchemyUnitOfWork`.

    """
    engine = create_state_engine(url, **engine_kwargs)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine, partial(SqlAlchemyUnitOfWork, session_factory(engine))
