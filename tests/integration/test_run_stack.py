"""`etl run` ticks on the real stack, results read back from the results PostgreSQL.

Kafka announces the batches, S3 holds raw data and Delta tables, MLflow the
models, PostgreSQL the state and the results. The first tick trains the
dumpers' model (the lone excavator has too little data and waits), scores and
exports; the second tick brings another hour of data; the third has nothing
new. The results database must hold exactly the current segments and cycles,
once each.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql import SparkSession
from sqlalchemy import create_engine, text

from etl.bootstrap import bootstrap
from etl.config import Config, parse_config
from etl.infer.schema import CYCLES, SEGMENTS, table_url
from etl.state.domain import BatchStatus
from etl.steps.simulate import simulate
from etl.steps.tick import run_tick
from tests.integration.conftest import DUMPERS, stack_pipeline


def run_config(demo: Config, unique: str, topic: str) -> Config:
    training = {"min_days": 0.2, "model": {"num_trees": 10, "max_depth": 8}}
    machines = (*DUMPERS, ("a000", "excavator"))
    return parse_config(
        stack_pipeline(demo, "run", unique, topic, training=training, machines=machines)
    )


def _results(config: Config) -> dict[str, list[tuple]]:
    engine = create_engine(config.results.url)
    schema, pipeline = config.results.db_schema, config.pipeline.name
    queries = {
        "activity": f"SELECT machine_uuid::text, start_time, end_time, activity, model_version "
        f"FROM {schema}.machine_activity WHERE pipeline = :p ORDER BY 1, 2",
        "cycle": f"SELECT machine_uuid::text, cycle_start, cycle_end, duration_s "
        f"FROM {schema}.machine_cycle WHERE pipeline = :p ORDER BY 1, 2",
        "overlaps": f"SELECT count(*) FROM (SELECT start_time, lag(end_time) OVER "
        f"(PARTITION BY machine_uuid ORDER BY start_time) AS prev_end "
        f"FROM {schema}.machine_activity WHERE pipeline = :p) s WHERE start_time < prev_end",
    }
    with engine.connect() as conn:
        out = {
            k: [tuple(r) for r in conn.execute(text(q), {"p": pipeline})]
            for k, q in queries.items()
        }
    engine.dispose()
    return out


def test_ticks_train_score_export_and_catch_up(
    spark: SparkSession,
    demo_config: Config,
    unique: str,
    topic: str,
) -> None:
    config = run_config(demo_config, unique, topic)
    dumpers = {a.uuid for a in config.assets if a.type == "dumper"}
    ctx = bootstrap(config)
    start = datetime(2026, 1, 5, 6, tzinfo=UTC)
    simulate(ctx, days=3 / 24, seed=3, start=start)

    first = run_tick(ctx)
    trained = first["steps"]["train"]["summary"]["types"]
    assert trained["dumper"]["trained"] and trained["dumper"]["champion"]
    assert trained["excavator"]["reason"].startswith("insufficient data")
    scored = first["steps"]["infer"]["summary"]["types"]
    assert scored["dumper"]["scored"] and not scored["excavator"]["scored"]
    after_first = _results(config)
    assert {r[0] for r in after_first["activity"]} == dumpers
    assert after_first["cycle"] and after_first["overlaps"] == [(0,)]
    model = trained["dumper"]["registry"]
    assert {r[4] for r in after_first["activity"]} == {model}

    simulate(ctx, days=1 / 24, seed=4, start=start + timedelta(hours=3))
    second = run_tick(ctx)
    assert second["steps"]["train"]["summary"] == {"skipped": "no machine type due"}
    after_second = _results(config)
    assert max(r[2] for r in after_second["activity"]) > max(r[2] for r in after_first["activity"])
    assert after_second["overlaps"] == [(0,)]

    third = run_tick(ctx)  # nothing new: the same rows
    assert third["steps"]["infer"]["summary"]["types"].get("dumper") is None
    assert _results(config) == after_second

    # what was loaded is exactly the current dump, once
    for table, key in ((SEGMENTS, "activity"), (CYCLES, "cycle")):
        dumped = spark.read.format("delta").load(table_url(config.output_url, table)).count()
        assert len(after_second[key]) == dumped
    with ctx.uow() as uow:
        statuses = {}
        for batch in uow.batches.for_pipeline(config.pipeline.name):
            statuses.setdefault(batch.machine_uuid in dumpers, set()).add(batch.status)
        exports = uow.exports.for_pipeline(config.pipeline.name)
    assert statuses[True] <= {BatchStatus.EXPORTED, BatchStatus.REJECTED}
    assert statuses[False] <= {BatchStatus.PREPROCESSED, BatchStatus.REJECTED}
    assert exports and all(e.status.value == "succeeded" for e in exports)
    ctx.close()
