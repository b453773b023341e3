"""Job metrics pushed to a real Prometheus Pushgateway (Debian's, installed by make setup)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl.cli import EXIT_FAILED, EXIT_OK, main
from etl.stack.process import wait_until
from tests.unit.test_cli import write_config

GATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
M1 = "0b6f1c4e-0000-4000-8000-000000000001"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def _ready(url: str) -> bool:
    try:
        _get(f"{url}/-/ready")
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Pushgateway on a free loopback port, without persistence, stopped after the module."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("pushgateway") / "gateway.log").open("wb")
    process = subprocess.Popen(
        [GATEWAY, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), timeout_s=30, what="pushgateway")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _samples(text: str, pipeline: str) -> dict[str, float]:
    """``name|label values`` -> value for one pipeline's samples (the grouping labels left out)."""
    out = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
        if not match or f'pipeline="{pipeline}"' not in match.group(2):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        extra = [
            v for k, v in sorted(labels.items()) if k not in ("job", "pipeline", "instance", "step")
        ]
        out["|".join([match.group(1), *extra])] = float(match.group(3))
    return out


def test_each_job_pushes_its_group_and_a_failure_keeps_the_last_success(
    gateway: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "raw" / M1
    folder.mkdir(parents=True)
    (folder / "1772366400000.parquet").write_bytes(b"discover does not read it")
    pipeline = f"push{tmp_path.name[-6:].replace('_', '')}"
    config = write_config(
        tmp_path, pipeline={"name": pipeline}, observability={"pushgateway_url": gateway}
    )
    assert main(["--config", str(config), "discover"]) == EXIT_OK
    first = _samples(_get(f"{gateway}/metrics"), pipeline)
    assert first["etl_job_success"] == 1.0
    assert first["etl_batches_behind"] == 1.0
    assert first["etl_batches|discovered"] == 1.0
    assert first["etl_rows_written|batches"] == 1.0
    succeeded_at = first["etl_job_last_success_timestamp_seconds"]

    import etl.steps.discover

    def broken(ctx: object) -> dict:
        raise ConnectionError("catalog unreachable")

    monkeypatch.setattr(etl.steps.discover, "discover", broken)
    assert main(["--config", str(config), "discover"]) == EXIT_FAILED
    second = _samples(_get(f"{gateway}/metrics"), pipeline)
    assert second["etl_job_success"] == 0.0
    # POST on failure: the group keeps the time of the last success for the staleness alert
    assert second["etl_job_last_success_timestamp_seconds"] == succeeded_at
