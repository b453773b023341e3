"""make bench-train: training cost and quality at three fleet sizes, sampled and on every second.

Simulates the largest fleet (``--sizes``, machines; the simulator's mix of dumpers,
excavators and wheel loaders) for ``--days`` days into local files and preprocesses
it once. Then, for each fleet size (the first machines of each type) it runs
``etl train`` twice on the same StateVectors and labels, each a fresh process: with
the default sample (``training.sample``, a cap per activity) and on every labelled
second (no cap, no evaluation budget: what training did before sampling). Both
judge every second of the same held-out machines. Prints per size and type: rows trained on,
StateVector seconds the features were computed on, wall time of the type's
training, held-out macro-F1, per-class F1, cycle count and median duration errors;
and the wall time of each ``etl train``.

Usage: python bench/train.py [--sizes 3,6,12] [--days 1] [--cap 20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from common import ETL, ROOT, bench_env, embedded_pipeline, run_etl


def fleet(machines: int) -> list[dict[str, str]]:
    """The simulator's fleet of ``machines`` assets."""
    from etl.simulate import SimulationSettings, fleet_assets

    return [
        {"uuid": u, "type": kind}
        for u, kind in fleet_assets(SimulationSettings(machines=machines, seed=1))
    ]


def subset(assets: list[dict[str, str]], size: int, largest: int) -> list[dict[str, str]]:
    """The first machines of each type, in the largest fleet's proportions."""
    by_type: dict[str, list[dict[str, str]]] = defaultdict(list)
    for asset in assets:
        by_type[asset["type"]].append(asset)
    return [a for group in by_type.values() for a in group[: max(1, len(group) * size // largest)]]


def write_config(
    root: Path, name: str, assets: list[dict[str, str]], sample: dict[str, Any] | None
) -> Path:
    """An embedded pipeline (files, SQLite, listing) that logs to the stack's MLflow."""
    from etl.config import load_config

    demo = load_config(ROOT / "conf" / "demo.yaml")
    # every type trains, whatever the size
    training = {"min_days": 0.1, **({"sample": sample} if sample is not None else {})}
    config = embedded_pipeline(
        root, name, assets, mlflow={"tracking_uri": demo.mlflow.tracking_uri}, training=training
    )
    path = root / f"{len(list(root.glob('*.yaml'))):02d}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def row(size: int, mode: str, kind: str, outcome: dict[str, Any], machine_days: float) -> str:
    """One line of the table."""
    if not outcome.get("trained"):
        return f"{size:>5} {mode:<8}{kind:<13}{outcome['reason']}"
    cycles, data = outcome["cycles"], outcome["training_data"]
    chosen = data["chosen_seconds"]
    return (
        f"{size:>5} {mode:<8}{kind:<13}{machine_days:>6.1f}{sum(chosen['training'].values()):>9,}"
        f"{data['feature_seconds']:>11,}{outcome['eval_seconds']:>9,}{outcome['seconds']:>8.1f}"
        f"{outcome['macro_f1']:>8.3f}{cycles['cycle_count_error']:>8.3f}"
        f"{cycles['median_duration_error']:>8.3f}"
    )


def main() -> None:
    """Simulate and preprocess the largest fleet; train each size sampled and in full."""
    from etl.config import SampleParams

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,6,12", help="fleet sizes (machines)")
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--cap", type=int, default=SampleParams().max_rows_per_class)
    parser.add_argument("--keep", help="work in this folder and keep it")
    parser.add_argument(
        "--modes", default="sampled,full", help="sampled, full or both (the baseline)"
    )
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-train-"))
    root.mkdir(parents=True, exist_ok=True)
    env = bench_env()
    name = f"bench-train-{uuid.uuid4().hex[:8]}"
    assets = fleet(sizes[-1])
    # both judged on every held-out second, so that their figures compare (the default
    # evaluation budget, 2 days, only cuts in past 10 held-out machine-days)
    modes = {
        "sampled": {"max_rows_per_class": args.cap, "eval_seconds": None},
        "full": {"max_rows_per_class": None, "eval_seconds": None},
    }
    modes = {k: v for k, v in modes.items() if k in args.modes.split(",")}
    lines, walls = [], []
    try:
        base = [ETL, "--config", str(write_config(root, name, assets, None))]
        sim_s, simulated = run_etl(
            [*base, "simulate", "--days", str(args.days), "--seed", "3"], env
        )
        run_etl([*base, "discover"], env)
        pre_s, pre = run_etl([*base, "preprocess"], env)
        print(
            f"fleet: {sizes[-1]} machines x {args.days} days, {simulated['rows']:,} raw rows; "
            f"simulate {sim_s:.0f} s, preprocess {pre_s:.0f} s "
            f"({pre['vectors_written']:,} StateVectors)",
            flush=True,
        )
        for size in sizes:
            mine = subset(assets, size, sizes[-1])
            per_type = {
                k: sum(a["type"] == k for a in mine) * args.days for k in {a["type"] for a in mine}
            }
            for mode, sample in modes.items():
                config = write_config(root, name, mine, sample)
                wall, trained = run_etl([ETL, "--config", str(config), "train"], env)
                walls.append(f"{len(mine):>5} {mode:<8}etl train {wall:.0f} s")
                for kind, outcome in sorted(trained["types"].items()):
                    lines.append(row(len(mine), mode, kind, outcome, per_type[kind]))
                    if outcome.get("trained"):
                        f1 = ", ".join(f"{a} {f:.2f}" for a, f in outcome["per_class_f1"].items())
                        lines.append(f"{'':>27}per-class F1: {f1}")
                print(walls[-1], flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\ncap {args.cap:,} rows per activity (sampled); full: every labelled second")
    print(
        f"{'fleet':>5} {'mode':<8}{'type':<13}{'m-days':>6}{'trained':>9}{'features':>11}"
        f"{'held-out':>9}{'time s':>8}{'F1':>8}{'cyc err':>8}{'dur err':>8}"
    )
    print("\n".join(lines))
    print("\n".join(walls))


if __name__ == "__main__":
    main()
