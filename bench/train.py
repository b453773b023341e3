"""make bench-train: train on a simulated fleet and print the evaluation table per machine type.

Simulates ``--machines`` assets (the simulator's mix of dumpers, excavators and
wheel loaders) for ``--days`` days into local files, preprocesses them, and runs
``etl train`` with ``training.min_days`` set to what was simulated, against the
local stack's MLflow server. Prints per machine type: held-out seconds, macro-F1
after and before smoothing, per-class F1, cycle count error, median cycle
duration error, and the wall time of each step.

Usage: python bench/train.py [--machines 6] [--days 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import uuid
from pathlib import Path

import yaml
from common import ETL, ROOT, bench_env, run_etl


def write_config(root: Path, machines: int, days: float) -> Path:
    """An embedded pipeline (files, SQLite, listing) that logs to the stack's MLflow."""
    from etl.config import load_config
    from etl.simulate import SimulationSettings, fleet_assets

    demo = load_config(ROOT / "conf" / "demo.yaml")
    assets = [
        {"uuid": u, "type": kind}
        for u, kind in fleet_assets(SimulationSettings(machines=machines, seed=1))
    ]
    counts: dict[str, int] = {}
    for asset in assets:
        counts[asset["type"]] = counts.get(asset["type"], 0) + 1
    config = {
        "pipeline": {"name": f"bench-train-{uuid.uuid4().hex[:8]}"},
        "assets": assets,
        "storage": {
            "raw_url": f"file://{root}/raw",
            "processed_url": f"file://{root}/processed",
            "labels_url": f"file://{root}/labels",
        },
        "catalog": {"kind": "listing"},
        "state": {"url": f"sqlite:///{root}/state.db"},
        "mlflow": {"tracking_uri": demo.mlflow.tracking_uri},
        # every type trains: the smallest type's machine-days, a little less for the clock
        "training": {"min_days": round(min(counts.values()) * days * 0.9, 3)},
        "simulate": {"workers": 2},
        "spark": {"master": "local[2]"},
    }
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    """Simulate, preprocess, train; print the evaluation table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=6)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--keep", help="work in this folder and keep it")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-train-"))
    root.mkdir(parents=True, exist_ok=True)
    env = bench_env()
    try:
        config = str(write_config(root, args.machines, args.days))
        base = [ETL, "--config", config]
        sim_s, simulated = run_etl(
            [*base, "simulate", "--days", str(args.days), "--seed", "3"], env
        )
        run_etl([*base, "discover"], env)
        pre_s, pre = run_etl([*base, "preprocess"], env)
        train_s, trained = run_etl([*base, "train"], env)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"fleet: {args.machines} machines x {args.days} days, {simulated['rows']:,} raw rows; "
        f"simulate {sim_s:.0f} s, preprocess {pre_s:.0f} s ({pre['vectors_written']:,} "
        f"StateVectors), train {train_s:.0f} s"
    )
    header = (
        f"{'type':<13}{'held-out s':>11}{'macro-F1':>9}{'unsmoothed':>11}"
        f"{'cycles t/p':>12}{'count err':>10}{'median dur err':>15}{'fit+eval s':>11}"
    )
    print(header)
    for kind, outcome in trained["types"].items():
        if not outcome.get("trained"):
            print(f"{kind:<13}{outcome['reason']}")
            continue
        cycles = outcome["cycles"]
        print(
            f"{kind:<13}{outcome.get('eval_seconds', 0):>11}{outcome['macro_f1']:>9.3f}"
            f"{outcome['macro_f1_unsmoothed']:>11.3f}"
            f"{cycles['true_cycles']:>6}/{cycles['pred_cycles']:<5}"
            f"{cycles['cycle_count_error']:>10.3f}{cycles['median_duration_error']:>15.3f}"
            f"{outcome['seconds']:>11.1f}"
        )
        per_class = ", ".join(f"{a} {f:.2f}" for a, f in outcome["per_class_f1"].items())
        print(f"{'':<13}per-class F1: {per_class}")


if __name__ == "__main__":
    main()
