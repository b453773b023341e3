"""A late file is computed with its accepted neighbours; a neighbour that vanished stops the run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from etl.state.domain import BatchStatus, RunStatus
from etl.steps.discover import discover
from etl.steps.preprocess import preprocess
from etl.steps.simulate import simulate
from tests.e2e.conftest import context, embedded_config

ASSET = {"uuid": "e2e00000-0000-4000-8000-0000000000a1", "type": "dumper"}


def test_a_vanished_neighbour_is_named_and_nothing_is_written(
    spark: SparkSession, tmp_path: Path
) -> None:
    source = embedded_config(tmp_path / "src", "src", [ASSET], simulate={"no_faults": True})
    ctx = context(source)
    simulate(ctx, days=1 / 24, seed=5)
    ctx.close()
    files = sorted((tmp_path / "src" / "raw").rglob("*.parquet"))
    assert len(files) >= 4

    path = embedded_config(tmp_path / "run", "run", [ASSET])
    raw = tmp_path / "run" / "raw" / ASSET["uuid"]
    raw.mkdir(parents=True)
    for file in files[:3]:
        shutil.copy(file, raw / file.name)
    ctx = context(path)
    discover(ctx)
    assert preprocess(ctx)["accepted"] == 3

    (raw / files[2].name).unlink()  # the neighbour of the next file is gone
    shutil.copy(files[3], raw / files[3].name)
    discover(ctx)
    with pytest.raises(RuntimeError, match=f"{ASSET['uuid']}/{files[2].name}: file not found"):
        preprocess(ctx)
    with ctx.uow() as uow:
        late = uow.batches.by_status("run", BatchStatus.DISCOVERED, None)
        runs = uow.runs.for_pipeline("run", "preprocess")
    assert [b.key for b in late] == [f"{ASSET['uuid']}/{files[3].name}"]
    assert runs[-1].status == RunStatus.FAILED

    shutil.copy(files[2], raw / files[2].name)  # restored: the late file goes through
    assert preprocess(ctx)["accepted"] == 1
    ctx.close()
