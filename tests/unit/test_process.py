from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl.stack.process import (
    StackError,
    pid_alive,
    port_is_free,
    read_pid,
    start_detached,
    stop_pid,
    wait_until,
)


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


def test_detached_process_is_tracked_and_stopped(tmp_path: Path) -> None:
    pid = start_detached(
        [sys.executable, "-c", "import time; print('hello', flush=True); time.sleep(60)"],
        log_file=tmp_path / "logs" / "p.log",
        pid_file=tmp_path / "run" / "p.pid",
    )
    assert read_pid(tmp_path / "run" / "p.pid") == pid
    wait_until(lambda: "hello" in (tmp_path / "logs" / "p.log").read_text(), timeout_s=10, what="p")
    stop_pid(pid, timeout_s=5)
    assert not pid_alive(pid)
    assert read_pid(tmp_path / "run" / "p.pid") is None


def test_wait_until_gives_up_with_reason() -> None:
    with pytest.raises(StackError, match="thing did not start: it died"):
        wait_until(lambda: False, timeout_s=5, what="thing", abort=lambda: "it died")
    started = time.monotonic()
    with pytest.raises(StackError, match="not ready after"):
        wait_until(lambda: 1 / 0 == 0, timeout_s=0.3, what="thing", interval_s=0.05)
    assert time.monotonic() - started < 3


def test_read_pid_of_a_dead_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (tmp_path / "dead.pid").write_text(proc.stdout)
    assert read_pid(tmp_path / "dead.pid") is None
    assert read_pid(tmp_path / "absent.pid") is None
