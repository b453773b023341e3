"""End-to-end helpers: an embedded pipeline (files, SQLite, listing) in a temp dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from etl.bootstrap import Context, bootstrap
from etl.config import load_config


def embedded_config(root: Path, name: str, assets: list[dict[str, str]], **extra: Any) -> Path:
    """A config on local files, SQLite and the listing catalog (what CI can always run)."""
    data = {
        "pipeline": {"name": name},
        "assets": assets,
        "storage": {
            "raw_url": f"file://{root}/raw",
            "processed_url": f"file://{root}/processed",
            "labels_url": f"file://{root}/labels",
        },
        "catalog": {"kind": "listing"},
        "state": {"url": f"sqlite:///{root}/state.db"},
        "preprocess": {"max_gap_s": 10},
        **extra,
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def context(path: Path) -> Context:
    return bootstrap(load_config(path))
