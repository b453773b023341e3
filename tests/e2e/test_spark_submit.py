"""The jobs under spark-submit on a standalone cluster do what the CLI does, with shipped code.

A master and two workers (1 core, 1 GB each) run on loopback from the pip pyspark.
One simulated fleet goes through the whole pipeline twice: by the ``etl`` commands in
local mode, and by ``spark-submit jobs/{step}.py`` against the cluster, every job in
the order the Kubeflow pipeline runs them (discover, preprocess, train, infer,
export) with the options of the generated manifests, each a fresh process, then
``jobs/run.py`` (a tick with nothing new). Our jars (``--jars``) and our package (built
as a wheel, shipped as a zip with ``--py-files``) go to the executors; both runs export
into the local stack's PostgreSQL. The two runs must leave the same batches, the same
StateVectors and the same results rows, the cluster's two executors must have run
the preprocessing, and a probe job shows that the driver and the executors imported
``etl`` from the shipped zip, not from the venv. The submitted jobs log as the CLI
does: JSON lines (``--log-json``) on stderr, their metrics records among them, and
only their JSON summary on stdout.

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
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from etl.config import Config
from etl.deploy.manifests import JOB_EXTRA_ARGS, JOB_OPTIONS
from etl.deploy.pipeline import PIPELINE_STEPS
from etl.session import pinned_jars
from etl.stack import Stack
from tests.e2e.conftest import embedded_config
from tests.e2e.standalone import LOOPBACK, StandaloneCluster, spark_home, standalone_cluster
from tests.processes import run
from tests.results_db import pipeline_results

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)
ETL = PYTHON.parent / "etl"
PROBE = Path(__file__).with_name("probe_job.py")
ASSETS = [
    {"uuid": "e2e00000-0000-4000-8000-0000000000e1", "type": "dumper"},
    {"uuid": "e2e00000-0000-4000-8000-0000000000e2", "type": "excavator"},
]
DAYS = 0.05  # 16 files: two duplicates among them (seed 7), one rejected
TRAINING = {"min_days": 0.04, "model": {"num_trees": 5, "max_depth": 5}}
"""Enough to train both types on 1.2 hours each (a lone machine: its last stretch held out)."""
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


@dataclass(frozen=True)
class Submitted:
    """One spark-submit of a job: the applications it started, its stdout and stderr."""

    apps: set[str]
    out: str
    err: str


@dataclass
class Runs:
    """Both runs over the same fleet, and what the cluster recorded."""

    root: Path
    cluster: StandaloneCluster
    package: Path
    cli_status: str
    submit_status: str
    names: dict[str, str]
    jobs: dict[str, Submitted]
    preprocess_apps: list[dict[str, Any]]
    cli_results: dict[str, pd.DataFrame]
    submit_results: dict[str, pd.DataFrame]
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
def runs(
    cluster: StandaloneCluster,
    stack: Stack,
    demo_config: Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Runs:
    root = tmp_path_factory.mktemp("submit")
    package = build_package(root / "package")
    raw = f"file://{root}/raw"
    # unique pipeline names: both export into the stack's results database
    suffix = root.name.replace("_", "-").lower()
    names = {"cli": f"cli-{suffix}", "submit": f"submit-{suffix}"}
    results = {"url": demo_config.results.url, "schema": demo_config.results.db_schema}
    cli = embedded_config(
        root / "cli",
        names["cli"],
        ASSETS,
        spark={"master": "local[2]"},
        training=TRAINING,
        results=results,
    )
    # spark-submit picks the master
    submit = embedded_config(
        root / "submit", names["submit"], ASSETS, training=TRAINING, results=results
    )
    for path in (cli, submit):  # one fleet and its labels, read by both
        config = yaml.safe_load(path.read_text())
        config["storage"]["raw_url"] = raw
        config["storage"]["labels_url"] = f"file://{root}/labels"
        path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYSPARK_PYTHON=str(PYTHON), PYSPARK_DRIVER_PYTHON=str(PYTHON))
    env.pop("PYTHONPATH", None)
    logs = root / "logs"
    logs.mkdir()

    def etl(config: Path, *args: str) -> str:
        log = logs / f"etl-{len(list(logs.iterdir())):02d}-{config.stem}.log"
        return run([str(ETL), "--config", str(config), *args], env=env, cwd=root, log=log).stdout

    etl(cli, "simulate", "--days", str(DAYS), "--seed", "7")
    for step in PIPELINE_STEPS:
        etl(cli, *JOB_EXTRA_ARGS, step, *JOB_OPTIONS.get(step, ()))

    submit_env = dict(cluster.env, PYSPARK_PYTHON=str(PYTHON), PYSPARK_DRIVER_PYTHON=str(PYTHON))
    argv = spark_submit_argv(cluster, package)

    def spark_submit(job: Path, *args: str) -> Submitted:
        before = app_ids(cluster)
        log = logs / f"submit-{job.stem}.log"
        done = run([*argv, str(job), *args], env=submit_env, cwd=root, log=log)
        return Submitted(app_ids(cluster) - before, done.stdout, done.stderr)

    jobs = {}
    for step in PIPELINE_STEPS:  # as the Kubeflow pipeline runs them, with its options
        jobs[step] = spark_submit(
            ROOT / "jobs" / f"{step}.py",
            "--config",
            str(submit),
            *JOB_EXTRA_ARGS,
            *JOB_OPTIONS.get(step, ()),
        )
    jobs["run"] = spark_submit(ROOT / "jobs" / "run.py", "--config", str(submit))  # text logs
    probe_out = root / "probe.json"
    spark_submit(PROBE, "--config", str(submit), "--out", str(probe_out))
    return Runs(
        root=root,
        cluster=cluster,
        package=package,
        cli_status=etl(cli, "status", "--json"),
        submit_status=etl(submit, "status", "--json"),
        names=names,
        jobs=jobs,
        preprocess_apps=finished_apps(cluster, jobs["preprocess"].apps),
        cli_results=pipeline_results(results["url"], results["schema"], names["cli"]),
        submit_results=pipeline_results(results["url"], results["schema"], names["submit"]),
        probe=json.loads(probe_out.read_text()),
    )


def test_every_batch_ends_as_under_the_cli(runs: Runs) -> None:
    cli, submitted = batches(runs.cli_status), batches(runs.submit_status)
    statuses = {json.loads(status) for status in submitted["status"]}
    assert "exported" in statuses and statuses <= {"exported", "rejected"}, statuses
    pd.testing.assert_frame_equal(submitted, cli)


def test_every_job_trains_scores_and_exports_as_under_the_cli(runs: Runs) -> None:
    summaries = {step: json.loads(job.out) for step, job in runs.jobs.items()}
    trained = summaries["train"]["types"]
    assert {t: trained[t]["trained"] for t in trained} == {"dumper": True, "excavator": True}
    scored = summaries["infer"]["types"]
    assert all(scored[t]["scored"] and scored[t]["seconds"] > 0 for t in trained), scored
    assert summaries["export"]["rows_loaded"] > 0
    # the tick after them finds nothing new, and runs every step all the same
    tick = summaries["run"]
    assert tick["failed"] == {} and tick["steps"]["preprocess"]["summary"]["files"] == 0, tick
    assert set(tick["steps"]) >= set(PIPELINE_STEPS), tick
    for table, rows in runs.cli_results.items():
        assert len(rows) > 0, table
        pd.testing.assert_frame_equal(runs.submit_results[table], rows, obj=table)


def test_statevectors_are_those_of_the_cli(runs: Runs) -> None:
    cli = statevectors(runs.root / "cli" / "processed", runs.names["cli"])
    submitted = statevectors(runs.root / "submit" / "processed", runs.names["submit"])
    assert set(submitted["machine_uuid"]) == {asset["uuid"] for asset in ASSETS}
    # floats to 1e-9: Spark may sum a second's partial statistics in another order
    pd.testing.assert_frame_equal(submitted, cli, check_exact=False, rtol=0, atol=1e-9)


def test_preprocessing_ran_on_both_executors_with_our_jars(runs: Runs) -> None:
    assert len(runs.preprocess_apps) == 1, runs.preprocess_apps
    app = runs.preprocess_apps[0]
    assert app["state"] == "FINISHED" and app["name"] == f"fleet-etl-{runs.names['submit']}", app
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
    # stdout holds each job's JSON summary and nothing else, as under the CLI
    summaries = {step: json.loads(job.out) for step, job in runs.jobs.items()}
    pipeline = runs.names["submit"]
    for step in PIPELINE_STEPS:  # --log-json, as the manifests run them
        records = json_lines(runs.jobs[step].err)
        assert records, runs.jobs[step].err[-2000:]
        (metrics,) = [r for r in records if r.get("event") == "metrics"]
        assert (metrics["pipeline"], metrics["command"]) == (pipeline, step), metrics
        assert metrics["metrics"][f"etl_job_success|{step}"] == 1
    (metrics,) = [r for r in json_lines(runs.jobs["preprocess"].err) if r.get("event") == "metrics"]
    vectors = len(statevectors(runs.root / "submit" / "processed", pipeline))
    assert metrics["metrics"]["etl_rows_written|preprocess|statevectors"] == vectors > 0
    assert summaries["preprocess"]["vectors_written"] == vectors
    # without --log-json, the text lines of etl.observe.TEXT_FORMAT
    assert " INFO etl.steps.discover: discover: {" in runs.jobs["run"].err
    assert " INFO etl.metrics: metrics run: " in runs.jobs["run"].err
