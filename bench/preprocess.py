"""make bench-preprocess: raw rows/s of `etl preprocess` against a plain pandas baseline.

Both run side by side in one invocation on the same simulated machine-days
(local files, SQLite state, listing catalog), each as its own process whose
peak resident memory (with all its children: the JVM, Python workers) is
sampled from /proc. The baseline implements the same contract in one process
with pandas: read and validate every file, per machine the IMU statistics per
second and the same resampler. Prints the figures and the ratio.

Usage: python bench/preprocess.py [--machines 10] [--days 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from common import embedded_pipeline

ROOT = Path(__file__).resolve().parents[1]
ETL = str(ROOT / ".venv" / "bin" / "etl")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _tree_rss(pid: int) -> int:
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += _rss_bytes(current)
        todo.extend(_children(current))
    return total


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS of the process tree, and stdout of one command."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed with exit {proc.returncode}")
    return time.monotonic() - started, peak, out


def compare_outputs(root: Path) -> tuple[int, float]:
    """Rows of the Delta table (read by delta-rs) and its largest difference to the baseline."""
    import numpy as np
    import pandas as pd
    from deltalake import DeltaTable

    table = DeltaTable(str(root / "processed" / "bench" / "statevectors")).to_pandas()
    files = sorted((root / "processed" / "bench" / "baseline").glob("*.parquet"))
    base = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    keys = ["machine_uuid", "ts"]
    merged = table.merge(base, on=keys, how="outer", suffixes=("", "_base"), indicator=True)
    if (merged["_merge"] != "both").any():
        raise SystemExit(
            f"the two outputs cover different seconds: {merged['_merge'].value_counts()}"
        )
    diffs = [
        np.nanmax(np.abs(merged[c].to_numpy(float) - merged[f"{c}_base"].to_numpy(float)))
        for c in base.columns
        if c not in keys and base[c].dtype.kind == "f"
    ]
    return len(table), float(max(diffs))


def write_config(root: Path, machines: int) -> Path:
    """An embedded pipeline (files, SQLite, listing) over ``machines`` simulated assets."""
    from etl.simulate import SimulationSettings, fleet_assets

    assets = [
        {"uuid": uuid, "type": kind}
        for uuid, kind in fleet_assets(SimulationSettings(machines=machines, seed=1))
    ]
    config = embedded_pipeline(root, "bench", assets, preprocess={"max_gap_s": 10})
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    """Simulate, then time both implementations on the same files and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--keep", help="work in this folder and keep it")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-preprocess-"))
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    try:
        config = write_config(root, args.machines)
        print(f"simulating {args.machines} machines x {args.days} days into {root} ...", flush=True)
        _, _, out = run_measured(
            [ETL, "--config", str(config), "simulate", "--days", str(args.days), "--seed", "1"], env
        )
        simulated = json.loads(out.strip().splitlines()[-1])
        run_measured([ETL, "--config", str(config), "discover"], env)

        spark_s, spark_peak, out = run_measured([ETL, "--config", str(config), "preprocess"], env)
        summary = json.loads(out.strip().splitlines()[-1])
        base_s, base_peak, out = run_measured(
            [sys.executable, str(ROOT / "bench" / "pandas_baseline.py"), str(config)], env
        )
        baseline = json.loads(out.strip().splitlines()[-1])
        table_rows, max_diff = compare_outputs(root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    rows = summary["rows"]
    gib = 1024**3
    print()
    print(
        f"input: {simulated['files']} files, {simulated['rows']:,} raw rows "
        f"({args.machines} machines x {args.days} days)"
    )
    print(f"{'':<22}{'seconds':>9}{'raw rows/s':>14}{'peak RSS':>11}{'vectors':>10}")
    print(
        f"{'etl preprocess (Spark)':<22}{spark_s:>9.1f}{rows / spark_s:>14,.0f}"
        f"{spark_peak / gib:>9.2f} G{table_rows:>10,}"
    )
    print(
        f"{'pandas baseline':<22}{base_s:>9.1f}{baseline['rows'] / base_s:>14,.0f}"
        f"{base_peak / gib:>9.2f} G{baseline['vectors']:>10,}"
    )
    print(f"ratio Spark / pandas (rows/s): {(rows / spark_s) / (baseline['rows'] / base_s):.2f}")
    print(f"Spark step timings: {summary.get('timings', {})}")
    print(f"StateVectors equal to the baseline's: largest difference {max_diff:.2e}")


if __name__ == "__main__":
    main()
