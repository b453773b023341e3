"""Commands run as production runs them: each its own fresh process (and process group).

spark-submit, the Spark operator and Kubeflow start every step in a new process, with
no SparkSession, engine or client left over from an earlier step. Tests that check a
step works alone run it the same way, through :func:`run`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ETL = Path(sys.executable).parent / "etl"
"""The console script of the venv the tests run in."""
TIMEOUT_S = 300


@dataclass(frozen=True)
class Finished:
    """A command that ran to its end: exit status, stdout, and stderr (also in its log)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    check: bool = True,
    timeout_s: float = TIMEOUT_S,
) -> Finished:
    """Run a command in its own process group, stderr kept in ``log``.

    Both streams are pipes, as under a container runtime or a log collector. The
    group is killed on timeout or interruption, so that a hung command does not
    leave a driver JVM or its Python behind. With ``check`` a non-zero exit fails
    the test with the log's tail.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    out, err = b"", b""
    try:
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        log.write_bytes(err)
    finished = Finished(
        tuple(argv), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )
    if check and proc.returncode != 0:
        tail = finished.stderr.strip().splitlines()[-15:]
        shown = " ".join(str(a) for a in argv[:5])
        pytest.fail(f"{shown} ... exited {proc.returncode}:\n" + "\n".join(tail))
    return finished
