"""simulate -> discover -> preprocess on a faulty fleet: every fault handled, nothing lost.

Two pipelines read the same fleet: one sees every file at once, the other
receives them in a shuffled order over three rounds (late and out-of-order
arrival). The StateVectors must be the same table.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from etl.simulate import FaultRates
from etl.state.domain import BatchStatus
from etl.steps.discover import discover
from etl.steps.preprocess import preprocess, statevectors_url
from etl.steps.simulate import simulate
from tests.e2e.conftest import context, embedded_config

ASSETS = [
    {"uuid": "e2e00000-0000-4000-8000-000000000001", "type": "dumper"},
    {"uuid": "e2e00000-0000-4000-8000-000000000002", "type": "excavator"},
]
FAULTS = {
    "duplicate_same_key": 0.08,
    "duplicate_other_key": 0.08,
    "corrupt_file": 0.06,
    "truncated_file": 0.06,
    "missing_column": 0.06,
    "wrong_clock": 0.06,
    "rows_shuffled": 0.1,
    "rows_duplicated": 0.1,
    "overlap": 0.1,
    "gap": 0.08,
    "late_upload": 0.1,
    "out_of_order_upload": 0.1,
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("fleet")
    path = embedded_config(root, "e2e", ASSETS, simulate={"faults": FAULTS, "workers": 1})
    ctx = context(path)
    summary = simulate(ctx, days=0.25, seed=11)
    ctx.close()
    record_file = next((root / "labels" / "_simulation").glob("*.json"))
    return {
        "root": root,
        "config": path,
        "summary": summary,
        "record": json.loads(record_file.read_text()),
    }


def statevectors(spark: SparkSession, ctx) -> pd.DataFrame:
    url = statevectors_url(ctx.config.output_url)
    frame = spark.read.format("delta").load(url).drop("day").toPandas()
    return frame.sort_values(["machine_uuid", "ts"], ignore_index=True)


def test_every_fault_kind_was_injected(fleet: dict) -> None:
    kinds = {fault["kind"] for fault in fleet["record"]["faults"]}
    assert set(FaultRates.kinds()) == kinds


def test_all_at_once_handles_every_fault(spark: SparkSession, fleet: dict) -> None:
    ctx = context(fleet["config"])
    found = discover(ctx)
    result = preprocess(ctx)
    with ctx.uow() as uow:
        batches = {b.key: b for b in uow.batches.for_pipeline("e2e")}
    faults = fleet["record"]["faults"]
    expected_reasons = {
        "corrupt_file": ("not a parquet file", "corrupt parquet file", "truncated parquet file"),
        "truncated_file": ("truncated parquet file", "corrupt parquet file"),
        "missing_column": ("missing column",),
        "wrong_clock": ("timestamps before 2000-01-01", "timestamps in the future"),
        "duplicate_other_key": ("duplicate of ",),
    }
    kinds_by_key: dict[str, set[str]] = {}
    for fault in faults:
        kinds_by_key.setdefault(fault["key"], set()).add(fault["kind"])
    for key, kinds in kinds_by_key.items():
        batch = batches[key]
        allowed = tuple(r for kind in kinds & set(expected_reasons) for r in expected_reasons[kind])
        if allowed:
            assert batch.status == BatchStatus.REJECTED, (key, kinds)
            assert batch.reason.startswith(allowed), (key, kinds, batch.reason)
        elif kinds & {"rows_shuffled", "rows_duplicated"}:
            assert batch.status == BatchStatus.PREPROCESSED, (key, kinds, batch.reason)
            assert batch.warnings, (key, kinds)
    # same key announced twice is one batch; every listed file is accounted for
    assert found["new"] == len(batches)
    assert result["files"] == len(batches)
    # every file's samples lie within its announced ten minutes (and the slack): one pass
    assert result["replanned_chunks"] == 0
    statuses = {b.status for b in batches.values()}
    assert statuses <= {BatchStatus.PREPROCESSED, BatchStatus.REJECTED}
    assert all(b.reason for b in batches.values() if b.status == BatchStatus.REJECTED)

    vectors = statevectors(spark, ctx)
    assert not vectors.duplicated(["machine_uuid", "ts"]).any()
    for _, frame in vectors.groupby("machine_uuid"):
        steps = np.diff(frame["ts"].to_numpy())
        assert (steps >= 1).all()
        # power-off gaps leave holes longer than max_gap_s; inside coverage the grid is exact
        assert set(np.unique(steps[steps <= 10])) <= {1}
    gaps = [f for f in faults if f["kind"] == "gap"]
    for gap in gaps:
        frame = vectors[vectors["machine_uuid"] == gap["machine_uuid"]]
        start, end = gap["detail"]["start"], gap["detail"]["end"]
        inside = frame["ts"].between(start + 11, end - 11)
        assert not inside.any(), gap
    # delta-rs reads the same table (the contract: any Delta reader)
    from deltalake import DeltaTable

    url = statevectors_url(ctx.config.output_url).removeprefix("file://")
    by_rust = DeltaTable(url).to_pandas().drop(columns=["day"])
    by_rust = by_rust.sort_values(["machine_uuid", "ts"], ignore_index=True)[vectors.columns]
    pd.testing.assert_frame_equal(by_rust, vectors, check_dtype=False)
    # created with statistics on ts only (the readers' time ranges), which delta-rs reads too
    assert DeltaTable(url).metadata().configuration["delta.dataSkippingStatsColumns"] == "ts"
    # every accepted file records the Delta version that holds its seconds
    versions = {b.delta_version for b in batches.values() if b.status == BatchStatus.PREPROCESSED}
    assert None not in versions and max(versions) == DeltaTable(url).version()
    # the second run finds nothing new and writes nothing
    again = preprocess(ctx)
    assert again["files"] == 0
    ctx.close()


def test_arrival_order_does_not_matter(spark: SparkSession, fleet: dict, tmp_path: Path) -> None:
    reference_ctx = context(fleet["config"])
    reference = statevectors(spark, reference_ctx)
    reference_ctx.close()

    late_root = tmp_path / "late"
    path = embedded_config(late_root, "late", ASSETS)
    ctx = context(path)
    files = sorted((fleet["root"] / "raw").rglob("*.parquet"))
    random.Random(3).shuffle(files)
    for part in np.array_split(np.arange(len(files)), 3):
        for index in part:
            relative = files[index].relative_to(fleet["root"] / "raw")
            (late_root / "raw" / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(files[index], late_root / "raw" / relative)
        discover(ctx)
        preprocess(ctx)
    late = statevectors(spark, ctx)
    ctx.close()
    assert_same_vectors(late, reference)


def assert_same_vectors(table: pd.DataFrame, reference: pd.DataFrame) -> None:
    """The same seconds with the same values (floats to 1e-9)."""
    assert table["ts"].tolist() == reference["ts"].tolist()
    assert table["machine_uuid"].tolist() == reference["machine_uuid"].tolist()
    for column in reference.columns:
        if reference[column].dtype.kind == "f":
            np.testing.assert_allclose(
                table[column], reference[column], atol=1e-9, rtol=0, equal_nan=True, err_msg=column
            )
        else:
            assert table[column].tolist() == reference[column].tolist(), column


def test_a_file_announced_far_from_its_samples_replans_its_chunk(
    spark: SparkSession, fleet: dict, tmp_path: Path
) -> None:
    reference_ctx = context(fleet["config"])
    reference = statevectors(spark, reference_ctx)
    with reference_ctx.uow() as uow:
        batches = uow.batches.for_pipeline("e2e")
    reference_ctx.close()
    hashes = Counter(b.content_hash for b in batches)
    clean = [
        b
        for b in batches
        if b.status == BatchStatus.PREPROCESSED and not b.warnings and hashes[b.content_hash] == 1
    ]
    moved = clean[len(clean) // 2]
    machine, name = moved.key.split("/")
    moved_key = f"{machine}/{int(name.removesuffix('.parquet')) + 3 * 3600 * 1000}.parquet"

    root = tmp_path / "moved"
    path = embedded_config(root, "moved", ASSETS)
    for file in (fleet["root"] / "raw").rglob("*.parquet"):
        key = file.relative_to(fleet["root"] / "raw").as_posix()
        target = root / "raw" / (moved_key if key == moved.key else key)
        assert not target.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, target)
    ctx = context(path)
    discover(ctx)
    # the listing announces the key's ten minutes: three hours from the file's samples
    result = preprocess(ctx)
    with ctx.uow() as uow:
        stored = uow.batches.by_key("moved", moved_key)
    table = statevectors(spark, ctx)
    ctx.close()
    assert result["replanned_chunks"] == 1
    assert stored.status == BatchStatus.PREPROCESSED
    assert any("from the key's time" in w for w in stored.warnings)
    assert_same_vectors(table, reference)
