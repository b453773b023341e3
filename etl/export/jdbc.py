"""The results sink on PostgreSQL: Spark's JDBC writer into a stage, one SQL transaction after.

Loading straight into the target with Spark would commit each partition on
its own, so a failed task would leave half an export and a rerun would
duplicate or conflict. Instead every load:

1. writes the checked frame (good and rejected rows, one Spark pass) into an
   UNLOGGED stage table ``{schema}._stage_{table}_{export_id}``; timestamps
   travel as epoch microseconds and UUIDs as text, so neither the JVM's time
   zone nor the driver's type guessing can alter a value;
2. in ONE transaction: deletes the pipeline's target rows of every machine
   from its cut on (a rescore that moved a segment's start must not leave the
   old row behind), upserts the good rows with casts (``ON CONFLICT (key) DO
   UPDATE``), replaces the pipeline's quarantined rows of the same machines
   from the same cuts with the rejected ones, and drops the stage.

A rerun, or a rescore of the same period, therefore gives exactly the same
rows, and a failure at any point leaves the target as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from etl.export import LoadResult
from etl.export.adapt import RESULT_TABLES, ResultTable
from etl.export.checks import REASON_SEPARATOR, REJECT_REASON

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from etl.config import ResultsConfig

log = logging.getLogger(__name__)

DRIVER = "org.postgresql.Driver"
QUARANTINE = "quarantine"
DEFAULT_SCHEMA = "mining_insights"
_STAGE_TYPES = {"uuid": "text", "timestamptz": "bigint"}
"""Stage column types that differ from the target's (see the module docstring)."""


def ident(name: str) -> str:
    """A quoted SQL identifier (schema names come from the config)."""
    return '"' + name.replace('"', '""') + '"'


def _ts(expr: str) -> str:
    """Epoch microseconds (the stage) -> timestamptz, exactly."""
    return f"('epoch'::timestamptz + {expr} * interval '1 microsecond')"


def _from_stage(column: str, pg_type: str) -> str:
    """The stage column ``s.column`` cast to its target type."""
    source = f"s.{ident(column)}"
    if pg_type == "timestamptz":
        return _ts(source)
    if pg_type == "uuid":
        return f"CAST({source} AS uuid)"
    return source


class ResultsDatabase:
    """The contract's tables in an external PostgreSQL database, loaded through Spark JDBC."""

    def __init__(
        self,
        url: str | URL,
        schema: str = DEFAULT_SCHEMA,
        *,
        write_partitions: int = 4,
        batch_size: int = 10_000,
    ) -> None:
        """Nothing connects until first use.

        Args:
            url: SQLAlchemy URL, ``postgresql+psycopg://user:pw@host:port/db``.
            schema: where the tables live.
            write_partitions: at most this many JDBC connections write the stage at once.
            batch_size: rows per JDBC batch (rewritten into multi-row inserts).
        """
        self.url = make_url(url)
        self.schema = schema
        self.write_partitions = write_partitions
        self.batch_size = batch_size

    @classmethod
    def from_config(cls, results: ResultsConfig) -> ResultsDatabase:
        """The database ``results`` names.

        Raises:
            ValueError: ``results.url`` is not set (the export is disabled).
        """
        if results.url is None:
            raise ValueError("results.url is not set: no results database configured")
        return cls(results.url, results.db_schema)

    @cached_property
    def engine(self) -> Engine:
        """SQLAlchemy engine for DDL and the load transaction (created on first use)."""
        return create_engine(self.url, pool_pre_ping=True)

    @property
    def jdbc_url(self) -> str:
        """The same database for Spark; batched inserts are rewritten to multi-row ones."""
        port = self.url.port or 5432
        return (
            f"jdbc:postgresql://{self.url.host}:{port}/{self.url.database}"
            "?reWriteBatchedInserts=true"
        )

    def qualified(self, table: str) -> str:
        """``"schema"."table"``."""
        return f"{ident(self.schema)}.{ident(table)}"

    def close(self) -> None:
        """Release pooled connections (the engine is rebuilt if used again)."""
        if "engine" in self.__dict__:
            self.engine.dispose()
            del self.__dict__["engine"]

    # -- tables ----------------------------------------------------------------------------

    def ensure_tables(self) -> None:
        """Create the schema, both contract tables and the quarantine, if missing.

        Serialised by an advisory lock: concurrent ``CREATE ... IF NOT EXISTS``
        of the same object can still collide in PostgreSQL's catalogs.
        """
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('etl-export-ddl'))"))
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {ident(self.schema)}"))
            for table in RESULT_TABLES.values():
                conn.execute(text(self._create_sql(table)))
            quarantine = self.qualified(QUARANTINE)
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {quarantine} ("
                    "id bigserial PRIMARY KEY, "
                    "export_id bigint NOT NULL, "
                    "pipeline text NOT NULL, "
                    "table_name text NOT NULL, "
                    "machine_uuid text, "
                    "key_time timestamptz, "
                    "reason text NOT NULL, "
                    "row_json jsonb NOT NULL, "
                    "rejected_at timestamptz NOT NULL DEFAULT now())"
                )
            )
            conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS quarantine_pipeline_table_machine_time_idx "
                    f"ON {quarantine} (pipeline, table_name, machine_uuid, key_time)"
                )
            )

    def _create_sql(self, table: ResultTable) -> str:
        columns = [
            f"{ident(c.name)} {c.pg_type}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
        ]
        key = ", ".join(ident(k) for k in table.key)
        constraint = ident(f"{table.name}_pkey")
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified(table.name)} ("
            + ", ".join(columns)
            + f", CONSTRAINT {constraint} PRIMARY KEY ({key}))"
        )

    # -- load ------------------------------------------------------------------------------

    def load(
        self,
        frame: DataFrame,
        table: str,
        *,
        pipeline: str,
        cuts: Mapping[str, int],
        export_id: int,
    ) -> LoadResult:
        """Replace ``pipeline``'s rows of ``table`` from each machine's cut with ``frame``.

        Args:
            frame: rows with ``table``'s contract columns and optionally
                ``reject_reason`` (:mod:`etl.export.checks`); every row must
                belong to ``pipeline`` and start at or after its machine's cut.
            table: ``machine_activity`` or ``machine_cycle``.
            pipeline: whose rows are replaced.
            cuts: machine UUID -> epoch second: target and quarantine rows of
                that machine starting at or after it are replaced.
            export_id: the state store's export, named by the stage and the quarantine.

        Returns:
            Rows upserted into ``table``, rows quarantined, and per-rule counts.

        Raises:
            ValueError: the frame holds rows of another pipeline (nothing is changed).
        """
        spec = RESULT_TABLES[table]
        stage = f"_stage_{spec.name}_{int(export_id)}"
        self._create_stage(spec, stage)
        try:
            self._write_stage(frame, spec, stage)
            with self.engine.begin() as conn:
                result = self._apply(
                    conn, spec, stage, pipeline=pipeline, cuts=cuts, export_id=export_id
                )
        finally:
            self._drop(stage)
        log.info(
            "export %s: %d rows loaded, %d rejected (export %d)",
            spec.name,
            result.rows_loaded,
            result.rows_rejected,
            export_id,
        )
        return result

    def _create_stage(self, spec: ResultTable, stage: str) -> None:
        columns = [
            f"{ident(c.name)} {_STAGE_TYPES.get(c.pg_type, c.pg_type)}" for c in spec.columns
        ]
        columns.append(f"{ident(REJECT_REASON)} text")
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {self.qualified(stage)}"))
            conn.execute(
                text(f"CREATE UNLOGGED TABLE {self.qualified(stage)} ({', '.join(columns)})")
            )

    def _drop(self, stage: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {self.qualified(stage)}"))

    def _write_stage(self, frame: DataFrame, spec: ResultTable, stage: str) -> None:
        from pyspark.sql import functions as F

        columns = [
            F.unix_micros(F.col(c.name)).alias(c.name)
            if c.pg_type == "timestamptz"
            else F.col(c.name)
            for c in spec.columns
        ]
        reason = (
            F.col(REJECT_REASON)
            if REJECT_REASON in frame.columns
            else F.lit(None).cast("string").alias(REJECT_REASON)
        )
        (
            frame.select(*columns, reason)
            .write.format("jdbc")
            .mode("append")
            .option("url", self.jdbc_url)
            .option("driver", DRIVER)
            .option("dbtable", self.qualified(stage))
            .option("user", self.url.username or "")
            .option("password", self.url.password or "")
            .option("batchsize", str(self.batch_size))
            .option("numPartitions", str(self.write_partitions))
            .save()
        )

    def _apply(
        self,
        conn: Connection,
        spec: ResultTable,
        stage: str,
        *,
        pipeline: str,
        cuts: Mapping[str, int],
        export_id: int,
    ) -> LoadResult:
        """The load transaction: replace from the cuts, upsert, quarantine (see module doc)."""
        target = self.qualified(spec.name)
        quarantine = self.qualified(QUARANTINE)
        staged = self.qualified(stage)
        time_column = ident(spec.time_column)
        # one load per pipeline and table at a time: two interleaved ones could each delete
        # before the other inserts
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"etl-export:{self.schema}.{spec.name}:{pipeline}"},
        )
        foreign = conn.execute(
            text(f"SELECT count(*) FROM {staged} WHERE pipeline IS DISTINCT FROM :pipeline"),
            {"pipeline": pipeline},
        ).scalar_one()
        if foreign:
            raise ValueError(f"{foreign} rows of another pipeline than {pipeline!r} to load")

        params = [
            {"pipeline": pipeline, "machine": machine, "cut": float(cut)}
            for machine, cut in sorted(cuts.items())
        ]
        if params:
            conn.execute(
                text(
                    f"DELETE FROM {target} WHERE pipeline = :pipeline "
                    "AND machine_uuid = CAST(:machine AS uuid) "
                    f"AND {time_column} >= to_timestamp(CAST(:cut AS double precision))"
                ),
                params,
            )
        names = ", ".join(ident(c.name) for c in spec.columns)
        values = ", ".join(_from_stage(c.name, c.pg_type) for c in spec.columns)
        keys = ", ".join(ident(k) for k in spec.key)
        updates = ", ".join(
            f"{ident(c.name)} = EXCLUDED.{ident(c.name)}"
            for c in spec.columns
            if c.name not in spec.key
        )
        loaded = conn.execute(
            text(
                f"INSERT INTO {target} ({names}) SELECT {values} FROM {staged} s "
                f"WHERE s.{ident(REJECT_REASON)} IS NULL "
                f"ON CONFLICT ({keys}) DO UPDATE SET {updates}"
            )
        ).rowcount

        if params:
            conn.execute(
                text(
                    f"DELETE FROM {quarantine} WHERE pipeline = :pipeline "
                    "AND table_name = :table AND machine_uuid = :machine AND (key_time IS NULL "
                    "OR key_time >= to_timestamp(CAST(:cut AS double precision)))"
                ),
                [{**p, "table": spec.name} for p in params],
            )
        # timestamps readable, but the UUID kept as text: a rejected row may not hold one
        readable = ", ".join(
            f"{_ts(f's.{ident(c.name)}') if c.pg_type == 'timestamptz' else f's.{ident(c.name)}'}"
            f" AS {ident(c.name)}"
            for c in spec.columns
        )
        rejected = conn.execute(
            text(
                f"INSERT INTO {quarantine} "
                "(export_id, pipeline, table_name, machine_uuid, key_time, reason, row_json) "
                f"SELECT :export_id, :pipeline, :table, r.machine_uuid, r.{time_column}, "
                f"r.{ident(REJECT_REASON)}, to_jsonb(r) - :reason_column "
                f"FROM (SELECT {readable}, s.{ident(REJECT_REASON)} FROM {staged} s "
                f"WHERE s.{ident(REJECT_REASON)} IS NOT NULL) r"
            ),
            {
                "export_id": int(export_id),
                "pipeline": pipeline,
                "table": spec.name,
                "reason_column": REJECT_REASON,
            },
        ).rowcount
        reasons = conn.execute(
            text(
                f"SELECT reason, count(*) FROM {staged} s CROSS JOIN LATERAL "
                f"unnest(string_to_array(s.{ident(REJECT_REASON)}, :separator)) AS reason "
                "GROUP BY reason"
            ),
            {"separator": REASON_SEPARATOR},
        ).all()
        conn.execute(text(f"DROP TABLE {staged}"))
        return LoadResult(
            rows_loaded=loaded,
            rows_rejected=rejected,
            reasons={str(reason): int(count) for reason, count in reasons},
        )
