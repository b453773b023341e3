"""Inference batch by batch, with a late batch filling a hole, equals one pass over everything.

The same model scores a fleet twice: once as the data arrives (two waves, the
second one bringing a batch the first was missing), once after every file was
reset and scored in a single pass. Segments and cycles that straddle the
waves' boundary, or the hole, must be stitched into the same rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from etl.bootstrap import Context
from etl.infer.schema import CYCLES, PROVENANCE, SECONDS, SEGMENTS, table_url
from etl.state.domain import BatchStatus, RunStatus
from etl.steps.discover import discover
from etl.steps.infer import infer
from etl.steps.preprocess import preprocess, statevectors_url
from etl.steps.simulate import simulate
from etl.steps.train import train
from tests.e2e.conftest import context, embedded_config

ASSETS = [
    {"uuid": "e2e00000-0000-4000-8000-0000000000b1", "type": "dumper"},
    {"uuid": "e2e00000-0000-4000-8000-0000000000b2", "type": "dumper"},
]
HOURS = 4
KEYS = {
    SECONDS: ["machine_uuid", "ts"],
    SEGMENTS: ["machine_uuid", "start"],
    CYCLES: ["machine_uuid", "cycle_start"],
}


def _copy(files: list[Path], raw: Path) -> None:
    for file in files:
        target = raw / file.parent.name / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, target)


def _table(spark: SparkSession, url: str, keys: list[str]) -> pd.DataFrame:
    frame = spark.read.format("delta").load(url).drop(*PROVENANCE).toPandas()
    if "probabilities" in frame:  # arrays compare badly in assert_frame_equal
        frame["probabilities"] = frame["probabilities"].map(
            lambda p: tuple(round(x, 12) for x in p)
        )
    return frame.sort_values(keys).reset_index(drop=True)


@dataclass
class Waves:
    """The fleet scored as it arrived: what the checks read."""

    ctx: Context
    hole: list[Path]
    first: dict[str, Any]
    second: dict[str, Any]
    urls: dict[str, str]
    tables: dict[str, pd.DataFrame]


def _split(files: list[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """Wave 1: the first 2.5 h without a half-hour hole of one machine; wave 2: the rest."""
    first_ms = min(int(f.stem) for f in files)

    def age(file: Path) -> float:
        return (int(file.stem) - first_ms) / 3_600_000

    hole = [f for f in files if 1.5 <= age(f) < 2.0 and f.parent.name == ASSETS[0]["uuid"]]
    wave1 = [f for f in files if age(f) < 2.5 and f not in hole]
    wave2 = [f for f in files if f not in wave1]
    return hole, wave1, wave2


@pytest.fixture(scope="module")
def waves(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Waves]:
    tmp_path = tmp_path_factory.mktemp("stitch")
    source = embedded_config(tmp_path / "src", "src", ASSETS)
    ctx = context(source)
    simulate(ctx, days=HOURS / 24, seed=21)
    ctx.close()
    hole, wave1, wave2 = _split(sorted((tmp_path / "src" / "raw").rglob("*.parquet")))
    assert hole and wave1 and wave2

    path = embedded_config(
        tmp_path / "run",
        "stitch",
        ASSETS,
        training={"min_days": 0.12, "model": {"num_trees": 8, "max_depth": 8}},
    )
    shutil.copytree(tmp_path / "src" / "labels", tmp_path / "run" / "labels")
    raw = tmp_path / "run" / "raw"
    ctx = context(path)
    _copy(wave1, raw)
    discover(ctx)
    preprocess(ctx)
    trained = train(ctx)["types"]["dumper"]
    assert trained["trained"] and trained["champion"], trained
    first = infer(ctx)["types"]["dumper"]
    assert infer(ctx)["types"] == {}  # nothing new: nothing scored, nothing rewritten

    _copy(wave2, raw)
    discover(ctx)
    preprocess(ctx)
    second = infer(ctx)["types"]["dumper"]
    urls = {t: table_url(ctx.config.output_url, t) for t in (SECONDS, SEGMENTS, CYCLES)}
    tables = {t: _table(spark, urls[t], KEYS[t]) for t in urls}
    yield Waves(ctx, hole, first, second, urls, tables)
    ctx.close()


def test_each_wave_scores_its_new_batches_and_the_late_batch_pulls_the_cut_back(
    waves: Waves,
) -> None:
    assert waves.first["scored"] and waves.first["batches"] > 0 and waves.first["seconds"] > 0
    assert waves.second["scored"] and waves.second["model"] == waves.first["model"]
    with waves.ctx.uow() as uow:
        statuses = {b.status for b in uow.batches.for_pipeline("stitch")}
        runs = uow.inference_runs.for_pipeline("stitch")
    assert statuses <= {BatchStatus.INFERRED, BatchStatus.REJECTED}
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    assert runs[1].input_versions["model"] == waves.first["model"]
    hole_start = min(int(f.stem) for f in waves.hole) // 1000
    assert runs[1].input_versions["cuts"][ASSETS[0]["uuid"]] < hole_start


def test_every_second_is_scored_once_and_segments_tile_it(
    spark: SparkSession, waves: Waves
) -> None:
    seconds, segments = waves.tables[SECONDS], waves.tables[SEGMENTS]
    vectors = spark.read.format("delta").load(statevectors_url(waves.ctx.config.output_url))
    assert len(seconds) == vectors.count()
    assert not seconds.duplicated(["machine_uuid", "ts"]).any()
    for _, seg in segments.groupby("machine_uuid"):
        assert (seg["start"].to_numpy()[1:] >= seg["end"].to_numpy()[:-1]).all()
    assert segments["duration_s"].sum() == len(seconds)


def test_incremental_inference_equals_one_pass(spark: SparkSession, waves: Waves) -> None:
    ctx = waves.ctx
    with ctx.uow() as uow:
        uow.batches.reset("stitch")
        uow.commit()
    preprocess(ctx)
    once = infer(ctx)["types"]["dumper"]
    assert once["model"] == waves.first["model"]
    for table in (SEGMENTS, CYCLES, SECONDS):
        again = _table(spark, waves.urls[table], KEYS[table])
        pd.testing.assert_frame_equal(waves.tables[table], again, check_exact=False, rtol=1e-9)
