"""Write the JVM class-data archive that local Spark sessions map (``make setup``).

A local session's JVM spends about 5 of its ~12 s of start-up and first job
parsing and verifying the classes of Spark, Delta, Arrow and Hadoop. Java's
dynamic class-data sharing archives them once: this runs the kinds of work our
jobs do (a Delta write and read, grouped and mapped pandas UDFs) in a local
session with the pinned jars on its class path, and the JVM writes every class
it loaded at exit. Sessions then map the archive (:func:`etl.session.session_conf`);
a JVM whose class path differs ignores it.

Usage: python scripts/class_archive.py [PATH]   (default: etl.paths.class_archive_file())
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import pandas as pd
from py4j.protocol import Py4JError
from pyspark import SparkContext
from pyspark.sql import SparkSession

from etl.paths import class_archive_file
from etl.session import configure, session_conf


def exercise(spark: SparkSession, folder: Path) -> None:
    """The operations whose classes our jobs load: Delta, Arrow, pandas UDFs, a shuffle."""
    frame = spark.createDataFrame(pd.DataFrame({"m": ["a", "b"] * 50, "x": range(100)}))
    grouped = frame.groupBy("m").applyInPandas(lambda g: g.assign(x=g["x"] * 2), frame.schema)
    mapped = grouped.mapInPandas(lambda frames: (f for f in frames), frame.schema)
    url = f"file://{folder}/table"
    mapped.write.format("delta").partitionBy("m").save(url)
    only_a = frame.where("m = 'a'")
    only_a.write.format("delta").mode("overwrite").option("replaceWhere", "m = 'a'").save(url)
    spark.read.format("delta").load(url).groupBy("m").count().collect()


def main(path: Path) -> None:
    """Run :func:`exercise` in a JVM that archives its classes to ``path`` at exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    none = Path("/nonexistent")  # the session every local run gets, without an archive
    builder = configure(SparkSession.builder.master("local[2]"), local=True, archive=none)
    options = session_conf(local=True, archive=none).get("spark.driver.extraJavaOptions", "")
    spark = builder.config(
        "spark.driver.extraJavaOptions",
        f"{options} -Xlog:cds*=off -XX:ArchiveClassesAtExit={path}",
    ).getOrCreate()
    with tempfile.TemporaryDirectory() as folder:
        exercise(spark, Path(folder))
    jvm, process = spark.sparkContext._jvm, SparkContext._gateway.proc
    spark.stop()
    # the JVM writes the archive as it exits (the connection ends with it): wait for that
    # here, or the next step could start while it is still writing
    with contextlib.suppress(Py4JError, OSError):
        jvm.java.lang.System.exit(0)
    process.wait(timeout=600)
    if not path.exists():
        raise SystemExit(f"the JVM exited without writing {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else class_archive_file())
