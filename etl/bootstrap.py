"""``bootstrap(config)``: the one place that creates sessions, engines and clients.

Nothing is built at import time. Steps receive a :class:`Context` and take only
what they use; every resource is created on first use, so that ``etl status``
does not start a JVM and ``etl discover`` does not need Spark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine

from etl.config import Config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from etl.io.catalog import BatchCatalog
    from etl.io.objectstore import ObjectStore
    from etl.state.uow import UnitOfWorkFactory


@dataclass
class Context:
    """What a pipeline step may use: the config and lazily created resources."""

    config: Config
    _closers: list[Any] = field(default_factory=list, repr=False)

    @cached_property
    def spark(self) -> SparkSession:
        """The SparkSession (created on first use; it lives as long as the process).

        A SIGTERM while the JVM starts is raised once it runs (:func:`etl.signals.shielded`).
        """
        from etl.session import build_session
        from etl.signals import shielded

        with shielded():
            return build_session(self.config)

    @cached_property
    def state_engine(self) -> Engine:
        """A read-only view of the state store, without migrating it (``etl status``)."""
        engine = create_engine(self.config.state.url, pool_pre_ping=True)
        self._closers.append(engine.dispose)
        return engine

    @cached_property
    def uow(self) -> UnitOfWorkFactory:
        """Units of work on the state store, migrated to the newest schema first."""
        from etl.state.uow import open_state

        engine, factory = open_state(self.config.state.url)
        self._closers.append(engine.dispose)
        return factory

    @cached_property
    def raw_store(self) -> ObjectStore:
        """Where the raw batch files are."""
        from etl.io.objectstore import open_store

        return open_store(self.config.storage.raw_url, self.config.storage.s3)

    @cached_property
    def catalog(self) -> BatchCatalog:
        """Where new raw files are learnt of: Kafka or a listing of the raw store."""
        from etl.io.catalog import KafkaCatalog, ListingCatalog

        settings = self.config.catalog
        if settings.kind == "kafka":
            group = settings.kafka.group_id or f"etl-{self.config.pipeline.name}"
            catalog: BatchCatalog = KafkaCatalog(settings.kafka, group_id=group)
        else:
            catalog = ListingCatalog(self.raw_store, self.config.asset_types())
        self._closers.append(catalog.close)
        return catalog

    def close(self) -> None:
        """Release clients and engines; the SparkSession stays for the process."""
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def bootstrap(config: Config) -> Context:
    """The context a step runs in."""
    return Context(config=config)
