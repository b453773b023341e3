"""The jobs under spark-submit on a standalone cluster do what the CLI does, with shipped code.

A master and two workers (1 core, 1 GB each) run on loopback from the pip pyspark.
One simulated fleet is preprocessed twice: by ``etl discover`` and ``etl preprocess``
in local mode, and by ``spark-submit jobs/discover.py`` and ``jobs/preprocess.py``
against the cluster, with our jars (``--jars``) and our package (built as a wheel,
shipped as a zip with ``--py-files``) sent to the executors. The two runs must leave
the same batches and the same StateVectors, the cluster's two executors must have
run the preprocessing, and a probe job shows that the driver and the executors
imported ``etl`` from the shipped zip, not from the venv. The submitted preprocess
logs as the CLI does: JSON lines (``--log-json``) on stderr, its metrics record among
them, and only its JSON summary on stdout.

Training and inference are left out: on 2 cores they would take many minutes and
ship nothing that preprocessing does not (same jars, same package, pandas UDFs).

spark-submit also puts ``--py-files`` first on the *driver's* path, so the driver
runs from the zip too (``etl.state.migrate`` copies the migrations out of it for
Alembic). The wheel ships renamed to ``.zip``: a ``.whl`` in ``--py-files`` would be
shipped but never imported, PySpark only adds ``.zip``, ``.egg`` and ``.jar`` files
to the Python path.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from etl.session import pinned_jars
from tests.e2e.conftest import embedded_config
from tests.e2e.standalone import LOOPBACK, StandaloneCluster, spark_home, standalone_cluster

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)
ETL = PYTHON.parent / "etl"
PROBE = Path(__file__).with_name("probe_job.py")
ASSETS = [
    {"uuid": "e2e00000-0000-4000-8000-0000000000e1", "type": "dumper"},
    {"uuid": "e2e00000-0000-4000-8000-0000000000e2", "type": "excavator"},
]
DAYS = 0.05  # 16 files: two duplicates among them (seed 7), one rejected
STEP_TIMEOUT_S = 300
BATCH_FIELDS = [
    "machine_uuid",
    "key",
    "status",
    "reason",
    "warnings",
    "rows",
    "content_hash",
    "duplicate_of",
    "quality",
]


def run(argv: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path) -> str:
    """Run a command in its own process group, stderr to ``log``; its stdout if it exits 0.

    Both streams are pipes, as under a container runtime or a log collector. The
    group is killed on timeout or interruption, so that a hung spark-submit does not
    leave a driver JVM or its Python behind.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    err = b""
    try:
        out, err = proc.communicate(timeout=STEP_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
        log.write_bytes(err)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        pytest.fail(f"{' '.join(argv[:4])} ... exited {proc.returncode}:\n" + "\n".join(tail))
    return out.decode()


def build_package(workdir: Path) -> Path:
    """Our package as the zip that ships: the wheel pip builds (a wheel is a zip).

    Built from a copy of the sources so that the tree gets no ``build/`` folder.
    """
    source = workdir / "source"
    source.mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    shutil.copytree(ROOT / "etl", source / "etl", ignore=shutil.ignore_patterns("__pycache__"))
    dist = workdir / "dist"
    pip = [str(PYTHON), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*pip, "-w", str(dist), str(source)], check=True, capture_output=True)
    (wheel,) = dist.glob("fleet_etl-*.whl")
    package = dist / "fleet_etl.zip"
    shutil.copy(wheel, package)
    return package


def spark_submit_argv(cluster: StandaloneCluster, package: Path) -> list[str]:
    """spark-submit as an operator would call it for this cluster, up to the job file."""
    return [
        str(spark_home() / "bin" / "spark-submit"),
        "--master",
        cluster.url,
        "--deploy-mode",
        "client",
        # tuning as the image ships it; small driver and executors on this machine
        "--properties-file",
        str(ROOT / "spark-defaults.conf"),
        "--driver-memory",
        "1g",
        "--executor-memory",
        "1g",
        "--executor-cores",
        "1",
        "--total-executor-cores",
        "2",
        # start the tasks once both executors are there, so both get some
        "--conf",
        "spark.scheduler.minRegisteredResourcesRatio=1.0",
        "--conf",
        "spark.scheduler.maxRegisteredResourcesWaitingTime=120s",
        "--conf",
        f"spark.driver.host={LOOPBACK}",
        "--conf",
        f"spark.driver.bindAddress={LOOPBACK}",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        f"spark.pyspark.python={PYTHON}",
        "--jars",
        ",".join(pinned_jars()),
        "--py-files",
        str(package),
    ]


def app_ids(cluster: StandaloneCluster) -> set[str]:
    """Every application the master knows, running or completed."""
    state = cluster.state()
    return {app["id"] for app in state["activeapps"] + state["completedapps"]}


def finished_apps(cluster: StandaloneCluster, ids: set[str]) -> list[dict[str, Any]]:
    """The master's record of these applications, once it marked them all finished."""
    deadline = time.monotonic() + 30
    while True:
        done = [app for app in cluster.state()["completedapps"] if app["id"] in ids]
        if len(done) == len(ids) or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


def statevectors(processed: Path, pipeline: str) -> pd.DataFrame:
    """A pipeline's StateVectors table, read by delta-rs and sorted."""
    from deltalake import DeltaTable

    frame = DeltaTable(str(processed / pipeline / "statevectors")).to_pandas()
    return frame.sort_values(["machine_uuid", "ts"], ignore_index=True)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The lines of a log that are JSON objects (log4j's lines around them are not)."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def batches(status: str) -> pd.DataFrame:
    """What ``etl status --json`` says happened to each file, sorted by key."""
    rows = json.loads(status)["batches"]
    frame = pd.DataFrame(
        [{field: json.dumps(row[field]) for field in BATCH_FIELDS} for row in rows]
    )
    return frame.sort_values("key", ignore_index=True)


@dataclass
class Runs:
    """Both runs over the same fleet, and what the cluster recorded."""

    root: Path
    cluster: StandaloneCluster
    package: Path
    cli_status: str
    submit_status: str
    preprocess_apps: list[dict[str, Any]]
    preprocess_out: str
    preprocess_err: str
    discover_err: str
    probe: dict[str, Any]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    """A master and two 1-core, 1 GB workers on loopback, for this module."""
    root = tmp_path_factory.mktemp("standalone")
    with standalone_cluster(root, workers=2, cores=1, memory="1g") as started:
        yield started
    # each application copied every jar (the AWS SDK bundle alone is ~700 MB) per executor
    for jar in root.glob("worker-*/work/*/*/*.jar"):
        jar.unlink()


@pytest.fixture(scope="module")
def runs(cluster: StandaloneCluster, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("submit")
    package = build_package(root / "package")
    raw = f"file://{root}/raw"
    cli = embedded_config(root / "cli", "cli", ASSETS, spark={"master": "local[2]"})
    submit = embedded_config(root / "submit", "submit", ASSETS)  # spark-submit picks the master
    for path in (cli, submit):  # one fleet, read by both
        config = yaml.safe_load(path.read_text())
        config["storage"]["raw_url"] = raw
        path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYSPARK_PYTHON=str(PYTHON), PYSPARK_DRIVER_PYTHON=str(PYTHON))
    env.pop("PYTHONPATH", None)
    logs = root / "logs"
    logs.mkdir()

    def etl(config: Path, *args: str) -> str:
        log = logs / f"etl-{config.stem}-{args[0]}.log"
        return run([str(ETL), "--config", str(config), *args], env=env, cwd=root, log=log)

    etl(cli, "simulate", "--days", str(DAYS), "--seed", "7")
    etl(cli, "discover")
    etl(cli, "preprocess")

    submit_env = dict(cluster.env, PYSPARK_PYTHON=str(PYTHON), PYSPARK_DRIVER_PYTHON=str(PYTHON))
    argv = spark_submit_argv(cluster, package)

    def spark_submit(job: Path, *args: str) -> tuple[set[str], str, str]:
        """The job's new applications, its stdout and its stderr."""
        before = app_ids(cluster)
        log = logs / f"submit-{job.stem}.log"
        out = run([*argv, str(job), *args], env=submit_env, cwd=root, log=log)
        return app_ids(cluster) - before, out, log.read_text(errors="replace")

    _, _, discover_err = spark_submit(ROOT / "jobs" / "discover.py", "--config", str(submit))
    preprocess_apps, preprocess_out, preprocess_err = spark_submit(
        ROOT / "jobs" / "preprocess.py", "--config", str(submit), "--log-json"
    )
    probe_out = root / "probe.json"
    spark_submit(PROBE, "--config", str(submit), "--out", str(probe_out))
    return Runs(
        root=root,
        cluster=cluster,
        package=package,
        cli_status=etl(cli, "status", "--json"),
        submit_status=etl(submit, "status", "--json"),
        preprocess_apps=finished_apps(cluster, preprocess_apps),
        preprocess_out=preprocess_out,
        preprocess_err=preprocess_err,
        discover_err=discover_err,
        probe=json.loads(probe_out.read_text()),
    )


def test_every_batch_ends_as_under_the_cli(runs: Runs) -> None:
    cli, submitted = batches(runs.cli_status), batches(runs.submit_status)
    statuses = {json.loads(status) for status in submitted["status"]}
    assert "preprocessed" in statuses and statuses <= {"preprocessed", "rejected"}, statuses
    pd.testing.assert_frame_equal(submitted, cli)


def test_statevectors_are_those_of_the_cli(runs: Runs) -> None:
    cli = statevectors(runs.root / "cli" / "processed", "cli")
    submitted = statevectors(runs.root / "submit" / "processed", "submit")
    assert set(submitted["machine_uuid"]) == {asset["uuid"] for asset in ASSETS}
    # floats to 1e-9: Spark may sum a second's partial statistics in another order
    pd.testing.assert_frame_equal(submitted, cli, check_exact=False, rtol=0, atol=1e-9)


def test_preprocessing_ran_on_both_executors_with_our_jars(runs: Runs) -> None:
    assert len(runs.preprocess_apps) == 1, runs.preprocess_apps
    app = runs.preprocess_apps[0]
    assert app["state"] == "FINISHED" and app["name"] == "fleet-etl-submit", app
    executors = sorted(runs.cluster.root.glob(f"worker-*/work/{app['id']}/*"))
    assert len(executors) == 2, executors  # one executor per worker
    jars = [Path(jar).name for jar in pinned_jars()]
    for folder in executors:
        log = (folder / "stderr").read_text(errors="replace")
        assert "Finished task" in log, folder
        for name in [*jars, runs.package.name]:
            assert (folder / name).is_file(), (folder, name)
        for name in jars:
            assert f"/{name} to class loader" in log, (folder, name)


def test_executors_import_the_shipped_package(runs: Runs) -> None:
    probe = runs.probe
    assert probe["master"] == runs.cluster.url
    # the driver runs the shipped zip too (first on its path), and kept the jars
    # spark-submit gave it
    assert Path(probe["driver_etl_file"]).is_relative_to(runs.package), probe
    submitted = probe["jars"].split(",")
    assert all(jar.startswith("file:") for jar in submitted), submitted  # not our plain paths
    assert {jar.rsplit("/", 1)[1] for jar in submitted} == {Path(j).name for j in pinned_jars()}
    cwds = {task["cwd"] for task in probe["executors"]}
    assert len(cwds) == 2, cwds  # both executors ran tasks
    for task in probe["executors"]:
        shipped = Path(task["cwd"]) / runs.package.name
        assert Path(task["etl_file"]).resolve().is_relative_to(shipped), task


def test_the_submitted_jobs_log_to_stderr_as_under_the_cli(runs: Runs) -> None:
    # stdout holds the job's JSON summary and nothing else, as under the CLI
    summary = json.loads(runs.preprocess_out)
    records = json_lines(runs.preprocess_err)
    assert records, runs.preprocess_err[-2000:]
    (metrics,) = [r for r in records if r.get("event") == "metrics"]
    assert (metrics["pipeline"], metrics["command"]) == ("submit", "preprocess"), metrics
    values = metrics["metrics"]
    vectors = len(statevectors(runs.root / "submit" / "processed", "submit"))
    assert values["etl_job_success|preprocess"] == 1
    assert values["etl_rows_written|preprocess|statevectors"] == vectors > 0
    assert summary["vectors_written"] == vectors
    # without --log-json, the text lines of etl.observe.TEXT_FORMAT
    assert " INFO etl.steps.discover: discover: {" in runs.discover_err
    assert " INFO etl.metrics: metrics discover: " in runs.discover_err
