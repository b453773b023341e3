from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from etl.state.domain import BatchSource, NewBatch
from etl.state.status import read_status
from etl.state.uow import open_state
from tests.contracts.state_store import (
    MACHINE_A,
    T0,
    StateStoreContract,
    UowFactory,
    new_batch,
    register,
)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[tuple[Engine, UowFactory]]:
    engine, factory = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    yield engine, factory
    engine.dispose()


class TestSqliteStateStore(StateStoreContract):
    @pytest.fixture
    def uow_factory(self, state: tuple[Engine, UowFactory]) -> UowFactory:
        return state[1]


def test_wal_and_foreign_keys_are_on(state: tuple[Engine, UowFactory]) -> None:
    engine, _ = state
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_foreign_keys_are_enforced(state: tuple[Engine, UowFactory]) -> None:
    _, factory = state
    with factory() as uow, pytest.raises(Exception, match="FOREIGN KEY"):
        uow.batches.add_discovered([new_batch("p", MACHINE_A, T0)], run_id=424242)


def test_a_unit_of_work_holds_the_write_lock_from_its_first_statement(
    tmp_path: Path, state: tuple[Engine, UowFactory]
) -> None:
    """Deferred transactions that read then write fail under concurrency; ours begin IMMEDIATE."""
    _, factory = state
    other = sqlite3.connect(tmp_path / "state.db", timeout=0, isolation_level=None)
    try:
        with factory() as uow:
            uow.batches.for_pipeline("p")  # a read only
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the unit of work ended
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_times_come_back_aware_in_utc(state: tuple[Engine, UowFactory]) -> None:
    _, factory = state
    (batch,) = register(factory, new_batch("p", MACHINE_A, T0))
    with factory() as uow:
        stored = uow.batches.get(batch.id)
    assert stored.discovered_at.tzinfo is not None
    assert stored.discovered_at == batch.discovered_at


def test_status_reflection_reads_the_tables(state: tuple[Engine, UowFactory]) -> None:
    engine, factory = state
    record = NewBatch("p", MACHINE_A, f"{MACHINE_A}/1.parquet", "file:///raw", BatchSource.LISTING)
    (batch,) = register(factory, record)
    with factory() as uow:
        uow.batches.mark_rejected(batch.id, "not a parquet file", warnings=["w"])
        uow.commit()

    status = read_status(engine)

    assert set(status) == {"batches", "models", "inference_runs", "exports"}
    (row,) = status["batches"]
    assert {"machine_uuid", "key", "status", "reason"} <= set(row)
    assert (row["machine_uuid"], row["key"], row["status"], row["reason"]) == (
        MACHINE_A,
        f"{MACHINE_A}/1.parquet",
        "rejected",
        "not a parquet file",
    )
    assert row["warnings"] == ["w"]
    assert (status["models"], status["inference_runs"], status["exports"]) == ([], [], [])


def test_status_of_one_pipeline_leaves_the_others_out(state: tuple[Engine, UowFactory]) -> None:
    """One state store may serve several pipelines; `etl status` reports its own."""
    engine, factory = state
    register(
        factory,
        NewBatch("p1", MACHINE_A, f"{MACHINE_A}/1.parquet", "file:///raw", BatchSource.LISTING),
        NewBatch("p2", MACHINE_A, f"{MACHINE_A}/2.parquet", "file:///raw", BatchSource.LISTING),
    )
    assert [b["key"] for b in read_status(engine, "p1")["batches"]] == [f"{MACHINE_A}/1.parquet"]
    assert [b["key"] for b in read_status(engine, "p2")["batches"]] == [f"{MACHINE_A}/2.parquet"]
    assert len(read_status(engine)["batches"]) == 2
