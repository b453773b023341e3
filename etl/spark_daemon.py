"""The executors' Python daemon: pyspark's own, with the workers' imports done once.

Spark starts one daemon per executor (``spark.python.daemon.module``) and forks
every Python worker from it. With pyspark's daemon, each worker then imports
``pyspark.worker``, pandas, pyarrow and our modules itself, and it imports
pyspark from ``pyspark.zip``: Spark puts that archive, py4j's and the spark-core
jar first on the workers' ``PYTHONPATH``, and Python compiles every module it
imports from an archive anew (no bytecode cache there). ``import pyspark.worker``
took 0.76 s from the archive and 0.17 s from site-packages (session 10).

This module puts archives behind the installed packages, so pyspark comes from
site-packages where it is installed (the venv and the image install it, pinned to
the same Spark; the archive still serves where it is not), imports the libraries
the workers need, and runs pyspark's daemon: forked workers inherit the modules.
Our own package is *not* kept: a job submitted with ``--py-files`` ships its
package, which each worker puts first on its path at its first task, and the
workers must import that one, not the copy installed beside the daemon.
spark-defaults.conf selects this daemon; pyspark's is the fallback when it is not set.
"""

from __future__ import annotations

import sys

ARCHIVES = (".zip", ".jar", ".egg")


def archives_last(path: list[str]) -> list[str]:
    """``path`` with its archive entries moved behind the others, each order kept."""
    archives = [entry for entry in path if entry.endswith(ARCHIVES)]
    return [entry for entry in path if not entry.endswith(ARCHIVES)] + archives


def preload() -> None:
    """Import the libraries every worker of our jobs imports, before the daemon forks them."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401
    import pyspark.sql.pandas.serializers
    import pyspark.worker  # noqa: F401


def forget_package(modules: dict[str, object], package: str = "etl") -> None:
    """Drop ``package`` and its submodules from ``modules`` (``sys.modules``).

    Running ``-m etl.spark_daemon`` imports the installed ``etl``; forgotten here,
    each worker imports the package from its own path, where a shipped one goes first.
    """
    for name in [n for n in modules if n == package or n.startswith(f"{package}.")]:
        del modules[name]


if __name__ == "__main__":
    sys.path[:] = archives_last(sys.path)
    preload()
    forget_package(sys.modules)
    from pyspark.daemon import manager

    manager()
