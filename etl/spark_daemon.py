"""The executors' Python daemon: pyspark's own, with the workers' imports done once.

Spark starts one daemon per executor (``spark.python.daemon.module``) and forks
every Python worker from it. With pyspark's daemon, each worker then imports
``pyspark.worker``, pandas, pyarrow and our modules itself, and it imports
pyspark from ``pyspark.zip``: Spark puts that archive, py4j's and the spark-core
jar first on the workers' ``PYTHONPATH``, and Python compiles every module it
imports from an archive anew (no bytecode cache there). ``import pyspark.worker``
took 0.76 s from the archive and 0.17 s from site-packages (session 10).

This module puts archives behind the installed packages, so pyspark comes from
site-packages where it is installed (the venv and the image install it; the
archive still serves where it is not), imports what the workers need, and runs
pyspark's daemon: forked workers inherit the modules. spark-defaults.conf
selects it; pyspark's daemon is the fallback when it is not set.
"""

from __future__ import annotations

import sys

ARCHIVES = (".zip", ".jar", ".egg")


def archives_last(path: list[str]) -> list[str]:
    """``path`` with its archive entries moved behind the others, each order kept."""
    archives = [entry for entry in path if entry.endswith(ARCHIVES)]
    return [entry for entry in path if not entry.endswith(ARCHIVES)] + archives


def preload() -> None:
    """Import what every worker of our jobs imports, before the daemon forks them."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401
    import pyspark.sql.pandas.serializers
    import pyspark.worker  # noqa: F401

    import etl.preprocess.files
    import etl.preprocess.spark  # noqa: F401


if __name__ == "__main__":
    sys.path[:] = archives_last(sys.path)
    preload()
    from pyspark.daemon import manager

    manager()
