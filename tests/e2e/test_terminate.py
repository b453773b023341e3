"""SIGTERM (Kubernetes deleting a pod) closes the step's run as failed; nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from etl.signals import EXIT_TERMINATED
from etl.state.domain import BatchStatus, RunStatus
from etl.steps.discover import discover
from etl.steps.simulate import simulate
from tests.e2e.conftest import context, embedded_config


def _gone(marker: str, within_s: float) -> bool:
    """Whether no process has ``marker`` in its command line (waiting up to ``within_s``)."""
    deadline = time.monotonic() + within_s
    while True:
        alive = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and marker in (proc / "cmdline").read_text():
                    alive.append(proc.name)
            except OSError:
                continue
        if not alive or time.monotonic() > deadline:
            return not alive
        time.sleep(0.5)


ASSET = {"uuid": "e2e00000-0000-4000-8000-0000000000c1", "type": "dumper"}


def test_a_terminated_preprocess_closes_its_run_as_failed_and_leaves_its_files_pending(
    tmp_path: Path,
) -> None:
    path = embedded_config(tmp_path, "term", [ASSET], simulate={"no_faults": True})
    ctx = context(path)
    simulate(ctx, days=1 / 24, seed=5)
    pending = discover(ctx)["new"]
    assert pending > 0
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:  # a file: a JVM left behind would hold a pipe open
        proc = subprocess.Popen(
            [sys.executable, "-m", "etl.cli", "--config", str(path), "preprocess"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 60
            runs = []
            while time.monotonic() < deadline and proc.poll() is None and not runs:
                with ctx.uow() as uow:
                    runs = uow.runs.for_pipeline("term", "preprocess")
                time.sleep(0.05)
            assert runs and runs[-1].status == RunStatus.RUNNING, "the run started"
            proc.send_signal(signal.SIGTERM)  # the JVM is starting, or a job runs
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == EXIT_TERMINATED, errors.read_text()
    assert "etl preprocess: stopped by signal SIGTERM" in errors.read_text()
    assert _gone("spark.app.name=fleet-etl-term", within_s=30), "the JVM ended with the process"
    with ctx.uow() as uow:
        run = uow.runs.for_pipeline("term", "preprocess")[-1]
        still_pending = uow.batches.by_status("term", BatchStatus.DISCOVERED, None)
    ctx.close()
    assert run.status == RunStatus.FAILED and run.finished_at is not None
    assert len(still_pending) == pending
