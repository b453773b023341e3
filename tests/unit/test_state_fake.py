from __future__ import annotations

import pytest

from etl.state.domain import BatchSource, BatchStatus, NewBatch
from etl.state.fakes import FakeStateStore, FakeUnitOfWork, fake_uow_factory
from tests.contracts.state_store import StateStoreContract, UowFactory


class TestFakeStateStore(StateStoreContract):
    @pytest.fixture
    def uow_factory(self) -> UowFactory:
        return fake_uow_factory()


def test_counts_commits_for_step_tests() -> None:
    uow = FakeUnitOfWork()
    with uow:
        uow.runs.start("demo", "discover")
    assert uow.commits == 0
    with uow:
        uow.runs.start("demo", "discover")
        uow.commit()
    assert uow.commits == 1
    assert [run.step for run in FakeUnitOfWork(uow.store).runs.for_pipeline("demo")] == ["discover"]


def test_units_of_work_on_one_store_share_committed_data() -> None:
    store = FakeStateStore()
    record = NewBatch(
        "demo", "m", "m/1000.parquet", "file:///raw/m/1000.parquet", BatchSource.LISTING
    )
    with FakeUnitOfWork(store) as uow:
        (batch,) = uow.batches.add_discovered([record])
        uow.commit()
    with FakeUnitOfWork(store) as uow:
        assert uow.batches.by_status("demo", BatchStatus.DISCOVERED) == [batch]


def test_ids_are_not_reused_after_a_rollback() -> None:
    store = FakeStateStore()
    with FakeUnitOfWork(store) as uow:
        lost = uow.runs.start("demo", "discover")
    with FakeUnitOfWork(store) as uow:
        kept = uow.runs.start("demo", "discover")
        uow.commit()
    assert kept.id == lost.id + 1
