"""make bench-robustness: how each type's model holds up on data it did not learn from.

A fleet of ``--machines`` (default 6: two per type) is simulated for ``--days`` days
with the default noise, and ``etl train`` fits one model per type on it (whole
machines held out, as always). Then the same machines' next ``--hours`` hours are
simulated as variants, each into its own embedded pipeline (raw files, labels,
StateVectors) and preprocessed by ``etl``:

- ``forward``: nothing changed, later in time;
- ``gnss x2``, ``gnss x3`` and ``gnss x4``: GNSS position and speed noise doubled,
  tripled and quadrupled (``simulate.gps_noise_m`` 2 m -> 4, 6, 8 m;
  ``simulate.speed_noise`` 0.3 -> 0.6, 0.9, 1.2 m/s). Training's noise augmentation
  (``training.augment``, default 2-6 m and 0.3-0.9 m/s) spans x1 to x3; x4 lies
  beyond it;
- ``any mount``: every logger mounted in another orientation (``simulate.mounting:
  any``; the training fleet's sit upright);
- ``other site``: the same machines in another pit (``simulate.site_seed: 1``: other
  depth and grades, haul distances, dump approaches, loader V-cycles, pace).

Each variant's seconds are scored by the training pipeline's champion in this
process, as ``etl infer`` scores them (the same features, the version's fitted
pipeline and its smoothing), and compared with the simulator's labels: per-second
macro-F1 per type, next to the training's own held-out figure. Runs on the
embedded defaults (files, SQLite, MLflow in a local store): no stack needed.

Usage: python bench/robustness.py [--machines 6] [--days 1] [--hours 6] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from common import ETL, bench_env, embedded_pipeline, run_etl

START = datetime(2026, 1, 5, tzinfo=UTC)
VARIANTS: dict[str, dict[str, Any]] = {
    "forward": {},
    "gnss x2": {"gps_noise_m": 4.0, "speed_noise": 0.6},
    "gnss x3": {"gps_noise_m": 6.0, "speed_noise": 0.9},
    "gnss x4": {"gps_noise_m": 8.0, "speed_noise": 1.2},
    "any mount": {"mounting": "any"},
    "other site": {"site_seed": 1},
}


def fleet(machines: int) -> list[dict[str, str]]:
    """The simulator's fleet with two machine types in turn: dumper, excavator, wheel loader."""
    kinds = ("dumper", "excavator", "wheel_loader")
    return [
        {"uuid": f"00000000-0000-4000-8000-{index:012d}", "type": kinds[index % 3]}
        for index in range(machines)
    ]


def write_config(
    folder: Path, name: str, assets: list[dict[str, str]], simulate: dict[str, Any]
) -> Path:
    """An embedded pipeline under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = embedded_pipeline(
        folder,
        name,
        assets,
        pipeline={"name": name, "start_date": START.date().isoformat()},
        training={"min_days": 0.1},
        simulate={"workers": 2, **simulate},
    )
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def score_variant(trained: Path, variant: Path, seed: int) -> dict[str, dict[str, Any]]:
    """Per type: the training champion's evaluation on the variant's labelled seconds."""
    from pyspark.sql import functions as F

    from etl.bootstrap import bootstrap
    from etl.config import ACTIVITIES, SampleParams, load_config
    from etl.io.objectstore import open_store
    from etl.steps.preprocess import statevectors_url
    from etl.steps.train import read_labels
    from etl.train.model import (
        HELD_OUT,
        SPLIT,
        Smoothing,
        evaluate,
        load_model,
        manifest_key,
        score_seconds,
        version_url,
        with_label_index,
    )
    from etl.train.sample import Split, training_set

    source = load_config(trained)
    ctx = bootstrap(load_config(variant))
    ctx.spark.sparkContext.setLogLevel("ERROR")  # the table, not the JVM's warnings
    vectors = ctx.spark.read.format("delta").load(statevectors_url(ctx.config.output_url))
    labels = read_labels(ctx)
    assert labels is not None
    store = open_store(source.output_url, source.storage.s3)
    results = {}
    with bootstrap(source).uow() as uow:
        champions = {t: uow.models.champion(source.pipeline.name, t) for t in ACTIVITIES}
    for machine_type, row in sorted(champions.items()):
        machines = tuple(a.uuid for a in ctx.config.assets if a.type == machine_type)
        if row is None or not machines:
            continue
        manifest = json.loads(store.get(manifest_key(machine_type, row.version)))
        model = load_model(ctx.spark, version_url(source.output_url, row))
        every = SampleParams(max_rows_per_class=None, eval_seconds=None)
        sample = training_set(
            vectors.where(F.col("machine_uuid").isin(list(machines))),
            labels.where(F.col("machine_uuid").isin(list(machines))),
            Split(holdout_machines=machines),
            every,
            seed,
        )
        rows = with_label_index(sample.rows, machine_type).where(F.col(SPLIT) == HELD_OUT)
        scored = score_seconds(model, rows, len(ACTIVITIES[machine_type]))
        results[machine_type] = evaluate(
            scored, machine_type, Smoothing.from_record(manifest["smoothing"])
        )
    ctx.close()
    return results


def main() -> None:
    """Train on the first days; score each variant of the following hours; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=6)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--keep", help="work in this folder and keep it")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-robustness-"))
    env = bench_env()
    assets = fleet(args.machines)
    seed = ["--seed", str(args.seed)]
    try:
        trained = write_config(root / "train", "robust-train", assets, {})
        run_etl([ETL, "--config", str(trained), "simulate", "--days", str(args.days), *seed], env)
        run_etl([ETL, "--config", str(trained), "discover"], env)
        run_etl([ETL, "--config", str(trained), "preprocess"], env)
        train_s, summary = run_etl([ETL, "--config", str(trained), "train"], env)
        print(
            f"trained on {args.machines} machines x {args.days} days in {train_s:.0f} s", flush=True
        )
        later = (START + timedelta(days=args.days)).isoformat()
        scores: dict[str, dict[str, dict[str, Any]]] = {}
        for name, noise in VARIANTS.items():
            folder = root / name.replace(" ", "-")
            variant = write_config(folder, f"robust-{folder.name}", assets, noise)
            days = str(args.hours / 24)
            run_etl(
                [
                    ETL,
                    "--config",
                    str(variant),
                    "simulate",
                    "--days",
                    days,
                    "--start",
                    later,
                    *seed,
                ],
                env,
            )
            run_etl([ETL, "--config", str(variant), "discover"], env)
            run_etl([ETL, "--config", str(variant), "preprocess"], env)
            scores[name] = score_variant(trained, variant, args.seed)
            print(f"scored {name}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nper-second macro-F1 (smoothed), models trained on day 1; next {args.hours:g} h:")
    print(f"{'type':<14}{'held-out':>9}" + "".join(f"{name:>11}" for name in VARIANTS))
    for machine_type, outcome in sorted(summary["types"].items()):
        if not outcome.get("trained"):
            print(f"{machine_type:<14}{outcome['reason']}")
            continue
        figures = [scores[name].get(machine_type, {}).get("macro_f1") for name in VARIANTS]
        print(
            f"{machine_type:<14}{outcome['macro_f1']:>9.3f}"
            + "".join(f"{f:>11.3f}" if f is not None else f"{'-':>11}" for f in figures)
        )
    print("\nper-class F1:")
    for name in VARIANTS:
        for machine_type, evaluation in sorted(scores[name].items()):
            per_class = evaluation["report"]["per_class"]
            line = ", ".join(f"{a} {v['f1']:.2f}" for a, v in per_class.items())
            print(f"  {name:<11}{machine_type:<14}{line}")


if __name__ == "__main__":
    main()
