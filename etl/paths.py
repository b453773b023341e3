"""Where the repository's own files are: jars, spark-defaults.conf, the stack's data.

The package is installed editable from the repository (``make setup``), so the
repository root is two levels above this file. A container image (or any other
layout) overrides each location with an environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def jars_dir(kind: str) -> Path:
    """The folder Maven filled for ``kind`` (``spark`` or ``kafka``); ETL_JARS_DIR overrides."""
    base = os.environ.get("ETL_JARS_DIR")
    return (Path(base) if base else REPO_ROOT / "jars") / kind


def class_archive_file() -> Path:
    """The JVM class-data archive local sessions map; ETL_CLASS_ARCHIVE overrides.

    ``make setup`` writes it (``scripts/class_archive.py``).
    """
    override = os.environ.get("ETL_CLASS_ARCHIVE")
    return Path(override) if override else REPO_ROOT / "jars" / "spark-classes.jsa"


def spark_defaults_file() -> Path:
    """The spark-defaults.conf the session factory reads; ETL_SPARK_DEFAULTS overrides."""
    override = os.environ.get("ETL_SPARK_DEFAULTS")
    return Path(override) if override else REPO_ROOT / "spark-defaults.conf"


def resolve(path: str | Path) -> Path:
    """A relative path is taken from the repository root, not the working directory."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else REPO_ROOT / candidate
