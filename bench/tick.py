"""make bench-tick: the latency of one `etl run` tick for one 10-minute wave of a fleet.

Simulates ``--machines`` assets (the simulator's mix of types) for ``--hours``
of history, runs a first tick (it trains every type on that history, scores
and exports it), then simulates the next 10 minutes (one batch per machine,
the wave the loggers upload) and times the tick that processes it, step by
step, then an idle tick with nothing new.

Storage is local files with the listing catalog; the state store, the results
database and MLflow are the local stack's (PostgreSQL, MLflow server), so
start it first (`make stack-up`).

Usage: python bench/tick.py [--machines 50] [--hours 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from common import ETL, ROOT, bench_env, embedded_pipeline, run_etl

START = datetime(2026, 1, 5, 6, tzinfo=UTC)
WAVE_S = 600


def write_config(root: Path, machines: int, hours: float) -> Path:
    """Files and the listing catalog for the data, the stack for state, results and MLflow."""
    from etl.config import load_config
    from etl.simulate import SimulationSettings, fleet_assets

    demo = load_config(ROOT / "conf" / "demo.yaml")
    name = f"bench-tick-{uuid.uuid4().hex[:8]}"
    assets = [
        {"uuid": u, "type": kind}
        for u, kind in fleet_assets(SimulationSettings(machines=machines, seed=1))
    ]
    # files and the listing catalog, but the stack's state store, results and MLflow
    config = embedded_pipeline(
        root,
        name,
        assets,
        pipeline={"name": name, "start_date": START.date().isoformat()},
        state={"url": demo.state.url},
        results={"url": demo.results.url, "schema": "bench_tick"},
        mlflow={"tracking_uri": demo.mlflow.tracking_uri},
        # every type trains on the history the first tick sees
        training={
            "min_days": round(hours / 24 * 0.5, 4),
            "model": {"num_trees": 30, "max_depth": 10},
        },
    )
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _steps(summary: dict) -> str:
    return ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in summary["steps"].items())


def main() -> None:
    """History, first tick, one wave, its tick, an idle tick; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=50)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--keep", help="work in this folder and keep it")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-tick-"))
    root.mkdir(parents=True, exist_ok=True)
    env = bench_env()
    try:
        base = [ETL, "--config", str(write_config(root, args.machines, args.hours))]
        days = str(args.hours / 24)
        _, history = run_etl([*base, "simulate", "--days", days, "--seed", "3"], env)
        first_s, first = run_etl([*base, "run"], env)
        wave_start = (START + timedelta(hours=args.hours)).isoformat()
        wave_days = str(WAVE_S / 86400)
        _, wave = run_etl(
            [*base, "simulate", "--days", wave_days, "--seed", "4", "--start", wave_start], env
        )
        tick_s, tick = run_etl([*base, "run"], env)
        idle_s, idle = run_etl([*base, "run"], env)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    exported = tick["steps"]["export"]["summary"] or {}
    inferred = tick["steps"]["infer"]["summary"] or {}
    print(
        f"fleet: {args.machines} machines; history {args.hours} h "
        f"({history['files']} files, {history['rows']:,} raw rows)"
    )
    print(f"first tick (train + score the history): {first_s:.0f} s: {_steps(first)}")
    print(
        f"wave: {wave['files']} files, {wave['rows']:,} raw rows (10 minutes of "
        f"{args.machines} machines)"
    )
    print(f"tick for the wave: {tick_s:.1f} s wall (process), {tick['seconds']:.1f} s in steps")
    print(f"  {_steps(tick)}")
    print(f"  infer timings: {inferred.get('timings')}")
    print(f"  export: {exported.get('rows_loaded', exported)} rows loaded")
    print(f"idle tick (nothing new): {idle_s:.1f} s: {_steps(idle)}")


if __name__ == "__main__":
    main()
