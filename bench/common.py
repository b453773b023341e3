"""What the benchmark scripts share: where `etl` is, and running one command of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ETL = str(ROOT / ".venv" / "bin" / "etl")


def bench_env() -> dict[str, str]:
    """The environment of the `etl` subprocesses: this interpreter for workers, loopback."""
    return dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")


def run_etl(argv: list[str], env: dict[str, str]) -> tuple[float, dict]:
    """Wall seconds and the JSON summary line of one etl command; its stderr tail on failure."""
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"{' '.join(argv[3:])} failed with exit {done.returncode}")
    return time.monotonic() - started, json.loads(done.stdout.strip().splitlines()[-1])


def embedded_pipeline(root: Path, name: str, assets: list[dict[str, str]], **sections: Any) -> dict:
    """An embedded pipeline's config under ``root``: local files, SQLite, the listing catalog.

    ``sections`` add to or replace the config's top-level sections.
    """
    return {
        "pipeline": {"name": name},
        "assets": assets,
        "storage": {
            "raw_url": f"file://{root}/raw",
            "processed_url": f"file://{root}/processed",
            "labels_url": f"file://{root}/labels",
        },
        "catalog": {"kind": "listing"},
        "state": {"url": f"sqlite:///{root}/state.db"},
        "simulate": {"workers": 2},
        "spark": {"master": "local[2]"},
        **sections,
    }
