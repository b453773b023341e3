"""A Spark standalone cluster on loopback, started from the pip pyspark: master and workers.

The end-to-end test of ``spark-submit`` needs a real cluster manager, so that the
driver, the executors and their Python workers are separate processes that only
get our code and jars by what spark-submit ships. Each daemon runs in its own
process group (the worker's executors and their Python workers inherit the
worker's), so stopping the cluster kills everything it started and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"


class ClusterError(RuntimeError):
    """The cluster did not come up; the message names the daemon and its log's tail."""


def spark_home() -> Path:
    """The Spark distribution that pip installed with pyspark (``bin/spark-class`` is in it)."""
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nothing listens on now (another process could take them).

    All sockets stay bound until every port is picked: one at a time, the kernel may
    hand out the port it just released again (the master's RPC port and its web UI's
    once came out equal, and the UI moved to another port unseen).
    """
    with contextlib.ExitStack() as held:
        probes = [held.enter_context(socket.socket(socket.AF_INET)) for _ in range(count)]
        for probe in probes:
            probe.bind((LOOPBACK, 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def spark_env(conf_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the daemons and of spark-submit: loopback, and no stray config.

    ``SPARK_CONF_DIR`` points at an empty folder so that a ``spark-defaults.conf`` or
    ``spark-env.sh`` of the machine cannot change the run; scratch space (shuffle
    files, the executors' fetch cache) stays next to it; the daemons need little heap.
    """
    env = dict(os.environ if base is None else base)
    conf_dir.mkdir(parents=True, exist_ok=True)
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_CONF_DIR=str(conf_dir),
        SPARK_LOCAL_IP=LOOPBACK,
        SPARK_LOCAL_DIRS=str(conf_dir.parent / "local"),
        SPARK_DAEMON_MEMORY="256m",
        SPARK_DAEMON_JAVA_OPTS="-Duser.timezone=UTC",
        SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",  # else it takes port 6066
    )
    env.pop("PYTHONPATH", None)
    return env


def tail(path: Path, lines: int = 5) -> str:
    """The end of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return "\n".join(text[-lines:]) or "empty log"


def stop_group(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """Stop a process and its group: SIGTERM, then SIGKILL if it is still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; its children (executors, Python workers) may linger
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return


@dataclass
class Daemon:
    """One started JVM: what it is, its process and its log."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def died(self) -> str | None:
        """Why the daemon is gone (exit status and log tail), or None while it runs."""
        code = self.proc.poll()
        return None if code is None else f"{self.name} exited {code}:\n{tail(self.log)}"


@dataclass
class StandaloneCluster:
    """A running master and its workers, all on loopback."""

    root: Path
    port: int
    webui_port: int
    env: dict[str, str]
    daemons: list[Daemon] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The master URL spark-submit takes (``--master``)."""
        return f"spark://{LOOPBACK}:{self.port}"

    @property
    def work_dirs(self) -> list[Path]:
        """The workers' work dirs: one folder per application, executor logs inside."""
        return sorted(self.root.glob("worker-*/work"))

    def state(self) -> dict[str, Any]:
        """The master's JSON status page: workers, running and completed applications."""
        url = f"http://{LOOPBACK}:{self.webui_port}/json/"
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.load(response))

    def alive_workers(self) -> int:
        """How many workers the master counts as ALIVE."""
        return sum(w.get("state") == "ALIVE" for w in self.state().get("workers", []))

    def start(self, *, workers: int, cores: int, memory: str, timeout_s: float) -> None:
        """Start the master, then the workers, and wait until all workers registered."""
        ports = ["--port", str(self.port), "--webui-port", str(self.webui_port)]
        self._launch("master", [MASTER, "--host", LOOPBACK, *ports])
        for index in range(workers):
            work_dir = self.root / f"worker-{index}" / "work"
            work_dir.mkdir(parents=True)
            offer = ["--cores", str(cores), "--memory", memory, "--work-dir", str(work_dir)]
            ui = ["--webui-port", "0"]  # any free port: nobody reads the workers' pages
            self._launch(f"worker-{index}", [WORKER, self.url, "--host", LOOPBACK, *offer, *ui])
        self._wait(workers, timeout_s)

    def stop(self) -> None:
        """Stop the workers (and their executors), then the master."""
        for daemon in reversed(self.daemons):
            stop_group(daemon.proc)
        self.daemons.clear()

    def _launch(self, name: str, args: list[str]) -> None:
        log = self.root / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.root,
                start_new_session=True,
            )
        self.daemons.append(Daemon(name, proc, log))

    def _wait(self, workers: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            for daemon in self.daemons:
                if (reason := daemon.died()) is not None:
                    raise ClusterError(reason)
            with contextlib.suppress(OSError, ValueError):
                if self.alive_workers() >= workers:
                    return
            if time.monotonic() > deadline:
                logs = "\n".join(f"{d.name}: {tail(d.log, 2)}" for d in self.daemons)
                raise ClusterError(f"{workers} workers not ALIVE after {timeout_s:.0f} s\n{logs}")
            time.sleep(0.5)


@contextlib.contextmanager
def standalone_cluster(
    root: Path,
    *,
    workers: int = 2,
    cores: int = 1,
    memory: str = "1g",
    timeout_s: float = 120.0,
) -> Iterator[StandaloneCluster]:
    """A master with ``workers`` workers under ``root``, stopped on exit, even on failure.

    Args:
        root: folder for the daemons' logs, the workers' work dirs and an empty conf dir.
        workers: how many workers (each one executor of ``cores`` cores per application).
        cores: cores each worker offers.
        memory: memory each worker offers (an executor's default is 1g).
        timeout_s: how long the workers may take to register with the master.

    """
    root.mkdir(parents=True, exist_ok=True)
    port, webui_port = free_ports(2)
    cluster = StandaloneCluster(
        root=root,
        port=port,
        webui_port=webui_port,
        env=spark_env(root / "conf"),
    )
    try:
        cluster.start(workers=workers, cores=cores, memory=memory, timeout_s=timeout_s)
        yield cluster
    finally:
        cluster.stop()
