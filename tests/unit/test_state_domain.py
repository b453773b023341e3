from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from etl.state.domain import (
    TRANSITIONS,
    BatchSource,
    BatchStatus,
    IllegalTransitionError,
    NewBatch,
    check_transition,
    json_document,
    one_line,
    unique_new_batches,
)


def test_every_status_of_the_cli_contract_has_rules() -> None:
    assert [s.value for s in BatchStatus] == [
        "discovered",
        "rejected",
        "preprocessed",
        "inferred",
        "exported",
    ]
    assert set(TRANSITIONS) == set(BatchStatus)
    assert TRANSITIONS[BatchStatus.REJECTED] == frozenset()


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (BatchStatus.REJECTED, BatchStatus.PREPROCESSED),
        (BatchStatus.PREPROCESSED, BatchStatus.PREPROCESSED),
        (BatchStatus.DISCOVERED, BatchStatus.INFERRED),
        (BatchStatus.EXPORTED, BatchStatus.REJECTED),
    ],
)
def test_illegal_moves_raise_a_typed_error(current: BatchStatus, target: BatchStatus) -> None:
    with pytest.raises(IllegalTransitionError, match=f"m/1.parquet: cannot go from {current}"):
        check_transition("m/1.parquet", current, target)


def test_one_line() -> None:
    assert one_line(" a\n\tb  c ") == "a b c"
    assert len(one_line("x" * 5000)) == 1000
    with pytest.raises(ValueError, match="empty"):
        one_line("\n")


def test_json_document_stores_what_pandas_and_numpy_produce() -> None:
    doc = {
        "nan": float("nan"),
        "inf": float("-inf"),
        "np": np.float64(1.5),
        "count": np.int64(3),
        "flag": np.bool_(True),
        "pair": (1, 2),
        "when": datetime(2026, 1, 1, tzinfo=UTC),
        "day": date(2026, 1, 2),
        1: "key",
    }
    assert json_document(doc) == {
        "nan": None,
        "inf": None,
        "np": 1.5,
        "count": 3,
        "flag": True,
        "pair": [1, 2],
        "when": "2026-01-01T00:00:00+00:00",
        "day": "2026-01-02",
        "1": "key",
    }
    with pytest.raises(TypeError, match="set"):
        json_document({"s": {1}})


def test_unique_new_batches_keeps_the_first_and_sorts() -> None:
    def record(key: str, url: str) -> NewBatch:
        return NewBatch("p", "m", key, url, BatchSource.KAFKA)

    records = [record("m/2", "first"), record("m/1", "a"), record("m/2", "second")]
    assert [(r.key, r.url) for r in unique_new_batches(records)] == [("m/1", "a"), ("m/2", "first")]


def test_a_new_batch_needs_a_key_and_a_known_source() -> None:
    with pytest.raises(ValueError, match="key"):
        NewBatch("p", "m", "", "url", BatchSource.KAFKA)
    with pytest.raises(ValueError):
        NewBatch("p", "m", "k", "url", "ftp")  # type: ignore[arg-type]
    assert NewBatch("p", "m", "k", "url", "kafka").source is BatchSource.KAFKA  # type: ignore[arg-type]
