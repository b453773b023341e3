"""A spark-submit probe: which ``etl`` the driver and the executors import, and what they got.

Submitted like the jobs (``spark-submit ... tests/e2e/probe_job.py --config X --out Y``),
it builds its session through ``etl.bootstrap`` as the jobs do, runs one task per
executor slot on the executors and writes what each task saw as JSON: the file ``etl``
was imported from (made absolute where the task runs: the test does not share its
working directory), the task's working directory (the executor's folder in the
worker's work dir, where spark-submit's ``--py-files`` and ``--jars`` land) and
what is in it. The function below is pickled by value (it lives in ``__main__``),
so the executors import ``etl`` only from what was shipped or installed there.
The driver's ``etl`` is reported too: ``--py-files`` puts the zip first on the
driver's path as well.

The tasks form a barrier stage: Spark launches all of them at once or not at all
(retrying while slots are missing), so with one-core executors every executor runs
exactly one. A plain stage may put every task on whichever executor is first free.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def executor_view(_: Iterator[int]) -> Iterator[dict[str, Any]]:
    """What one task on an executor sees."""
    import os

    import etl

    yield {
        "etl_file": os.path.abspath(etl.__file__),
        "cwd": os.getcwd(),
        "files": sorted(os.listdir(".")),
        "pid": os.getpid(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probe and write its findings to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--tasks", type=int, default=2, help="the cluster's task slots")
    args = parser.parse_args(argv)

    import etl
    from etl.bootstrap import bootstrap
    from etl.config import load_config

    spark = bootstrap(load_config(args.config)).spark
    context = spark.sparkContext
    slots = context.parallelize(range(args.tasks), args.tasks)
    tasks = slots.barrier().mapPartitions(executor_view)
    findings = {
        "driver_etl_file": etl.__file__,
        "master": context.master,
        "app_id": context.applicationId,
        "jars": context.getConf().get("spark.jars", ""),
        "executors": tasks.collect(),
    }
    args.out.write_text(json.dumps(findings, indent=1))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
