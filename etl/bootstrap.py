"""``bootstrap(config)``: the one place that creates sessions, engines and clients.

Nothing is built at import time. Steps receive a :class:`Context` and take only
what they use; the SparkSession and database engines are created on first use,
so that ``etl status`` does not start a JVM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine

from etl.config import Config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class Context:
    """What a pipeline step may use: the config and lazily created resources."""

    config: Config
    _closers: list[object] = field(default_factory=list, repr=False)

    @cached_property
    def spark(self) -> SparkSession:
        """The SparkSession (created on first use)."""
        from etl.session import build_session

        return build_session(self.config)

    @cached_property
    def state_engine(self) -> Engine:
        """The state store's engine (PostgreSQL or SQLite)."""
        engine = create_engine(self.config.state.url, pool_pre_ping=True)
        self._closers.append(engine)
        return engine

    def close(self) -> None:
        """Release engines; the SparkSession stays for the life of the process."""
        for engine in self._closers:
            if isinstance(engine, Engine):
                engine.dispose()
        self._closers.clear()


def bootstrap(config: Config) -> Context:
    """The context a step runs in."""
    return Context(config=config)
