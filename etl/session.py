"""The SparkSession factory: builder in, builder out.

Every job, the CLI and the tests get their session from here, so that the same
code reads and writes parquet and Delta on ``file://`` and ``s3a://``. Tuning
comes from ``spark-defaults.conf``; code adds only what correctness needs: our
pinned jars (never resolved at start-up), Delta's extensions, UTC, and the S3A
endpoint. Credentials come only from the environment (AWS_* variables, read by
the S3A default provider chain), never from the config file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from etl.config import Config, S3Config
from etl.paths import class_archive_file, jars_dir, spark_defaults_file

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
S3A_FS = "org.apache.hadoop.fs.s3a.S3AFileSystem"
CLASS_ARCHIVE_OPTIONS = "-Xshare:auto -Xlog:cds*=off -XX:SharedArchiveFile="
"""JVM options that map a class-data archive if it matches, silently (the path follows)."""


class SparkSetupError(RuntimeError):
    """The session cannot be configured (missing jars, unreadable defaults)."""


def read_spark_defaults(path: Path) -> dict[str, str]:
    """Parse a spark-defaults.conf: ``key value`` lines, ``#`` comments."""
    conf: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        conf[key] = value.strip()
    return conf


def pinned_jars(folder: Path | None = None) -> list[str]:
    """The jars Maven resolved for Spark (``make setup``), as absolute paths."""
    folder = folder or jars_dir("spark")
    jars = sorted(str(path.resolve()) for path in folder.glob("*.jar"))
    if not any("delta-spark" in jar for jar in jars):
        raise SparkSetupError(f"no Delta jar in {folder}: run `make setup`")
    return jars


def s3a_conf(s3: S3Config) -> dict[str, str]:
    """Hadoop S3A settings for an endpoint; ``s3://`` URLs go through S3A too."""
    conf = {
        "spark.hadoop.fs.s3a.impl": S3A_FS,
        "spark.hadoop.fs.s3.impl": S3A_FS,
        "spark.hadoop.fs.s3a.endpoint.region": s3.region,
        "spark.hadoop.fs.s3a.path.style.access": str(s3.path_style_access).lower(),
    }
    if s3.endpoint_url:
        conf["spark.hadoop.fs.s3a.endpoint"] = s3.endpoint_url
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            s3.endpoint_url.startswith("https")
        ).lower()
    return conf


def session_conf(
    *,
    s3: S3Config | None = None,
    defaults: Path | None = None,
    jars: list[str] | None = None,
    local: bool = False,
    archive: Path | None = None,
) -> dict[str, str]:
    """Everything the factory sets: the defaults file, then what correctness needs.

    ``local`` (a ``local[...]`` master: driver and executors share one JVM) puts
    the jars on the driver's class path instead of shipping them with
    ``spark.jars``, which copies every jar (the AWS SDK bundle alone is 686 MB)
    into the executor's work folder at start-up: about 3 s of every run and
    every test session on the 2-core machines. It also maps the JVM class-data
    archive ``archive`` (default :func:`etl.paths.class_archive_file`) when
    ``make setup`` wrote one: Spark's, Delta's and Arrow's classes then load
    already parsed and verified (a session's start and first job: ~6 s instead
    of ~11 s, measured side by side). A JVM whose class path does not match
    the archive ignores it. A local session has no web UI unless the defaults
    file asks for one.
    """
    defaults = defaults or spark_defaults_file()
    conf = read_spark_defaults(defaults) if defaults.exists() else {}
    conf.update(DELTA_CONF)
    conf["spark.sql.session.timeZone"] = "UTC"
    jars = pinned_jars() if jars is None else jars
    if jars and local:
        conf["spark.driver.extraClassPath"] = os.pathsep.join(jars)
    elif jars:
        conf["spark.jars"] = ",".join(jars)
    if local:
        # nobody watches a local run's UI (tests, demo, bench); its listener and Jetty
        # cost 4-7 s of CPU on 10 machine-days. spark-defaults.conf can turn it back on.
        conf.setdefault("spark.ui.enabled", "false")
    archive = class_archive_file() if archive is None else archive
    if local and archive.exists():
        options = f"{conf.get('spark.driver.extraJavaOptions', '')} {CLASS_ARCHIVE_OPTIONS}"
        conf["spark.driver.extraJavaOptions"] = f"{options}{archive}".strip()
    conf["spark.pyspark.python"] = os.environ.get("PYSPARK_PYTHON", sys.executable)
    conf.update(s3a_conf(s3 or S3Config()))
    return conf


JARS_ON_CLASSPATH = "ETL_JARS_ON_CLASSPATH"
"""Set (to anything) where the pinned jars are on Spark's classpath already, as in the
image (``$SPARK_HOME/jars``): the factory then adds no ``spark.jars``."""


def submitted_conf() -> dict[str, str]:
    """The settings spark-submit started this driver's JVM with; empty outside spark-submit.

    spark-submit starts the JVM first (with ``--master``, ``--jars``, ``--conf`` ...)
    and then our Python, which finds it through ``PYSPARK_GATEWAY_PORT``. A builder
    setting would override those, e.g. replace the jars the command line shipped.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return {}
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connect to that JVM: SparkConf() then reads it
    return dict(SparkConf().getAll())


def configure(
    builder: SparkSession.Builder,
    *,
    s3: S3Config | None = None,
    defaults: Path | None = None,
    jars: list[str] | None = None,
    local: bool = False,
    archive: Path | None = None,
) -> SparkSession.Builder:
    """Add our settings to a builder and return it (callers may add more after).

    Also makes Python workers use this interpreter (without it pandas UDFs fail
    with "No module named pyarrow") and keeps local Spark on loopback. Under
    spark-submit, what its command line set wins: the factory only fills in the
    rest, and does not look for ``jars/`` when ``--jars`` shipped them or when
    :data:`JARS_ON_CLASSPATH` says the image has them. ``local``: the master is
    ``local[...]`` (see :func:`session_conf`, also for ``archive``).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    submitted = submitted_conf()
    if jars is None and ("spark.jars" in submitted or os.environ.get(JARS_ON_CLASSPATH)):
        jars = []  # shipped by spark-submit, or in $SPARK_HOME/jars (the image)
    local = local and not submitted  # a running JVM's class path cannot change
    conf = session_conf(s3=s3, defaults=defaults, jars=jars, local=local, archive=archive)
    for key, value in conf.items():
        if key not in submitted:
            builder = builder.config(key, value)
    return builder


def build_session(config: Config) -> SparkSession:
    """The session for a pipeline run, as the config describes it."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(f"{config.spark.app_name}-{config.pipeline.name}")
    if config.spark.master:
        builder = builder.master(config.spark.master)
    # no master outside spark-submit: pyspark runs local[*]
    local = (config.spark.master or "local").startswith("local")
    session = configure(builder, s3=config.storage.s3, local=local).getOrCreate()
    # getOrCreate hands back a running session without applying Hadoop settings: a
    # process that built one for another config (a test session, an earlier pipeline)
    # would otherwise reach S3 through that config's endpoint, or AWS's.
    hadoop = session.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_conf(config.storage.s3).items():
        hadoop.set(key.removeprefix("spark.hadoop."), value)
    keep_stdout_ours(session)
    return session


def keep_stdout_ours(session: SparkSession) -> None:
    """Send what the driver JVM prints to stdout (``System.out``) to its stderr instead.

    The JVM shares the process's stdout (it is our child, or under spark-submit
    our parent), and a command's stdout carries only its JSON summary for the
    scheduler that reads it; Delta's ``VACUUM``, for one, prints a line there.
    """
    system = session.sparkContext._jvm.java.lang.System
    system.setOut(system.err)
