"""SIGTERM becomes an exception where the command is, held back while a JVM starts."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from etl.signals import TerminatedError, shielded, terminate_on_sigterm
from etl.state.domain import RunStatus
from etl.steps.tick import run_tick
from tests.e2e.conftest import context, embedded_config

ASSET = {"uuid": "e2e00000-0000-4000-8000-0000000000c2", "type": "dumper"}


def test_sigterm_raises_where_the_command_is_and_the_old_handler_returns() -> None:
    before = signal.getsignal(signal.SIGTERM)
    reached = []
    with pytest.raises(TerminatedError, match="SIGTERM"), terminate_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("after the signal")
    assert reached == []
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_shielded_block_finishes_and_the_signal_is_raised_after_it() -> None:
    reached = []
    with pytest.raises(TerminatedError), terminate_on_sigterm():
        with shielded():
            with shielded():
                os.kill(os.getpid(), signal.SIGTERM)
                reached.append("inner")
            reached.append("outer")
        reached.append("after the shield")
    assert reached == ["inner", "outer"]
    with terminate_on_sigterm(), shielded():  # nothing pending is left behind
        reached.append("clean")
    assert reached[-1] == "clean"


def test_a_terminated_tick_closes_its_run_as_failed_and_runs_no_further_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reached = []

    def killed(ctx: object) -> None:
        raise TerminatedError("stopped by signal SIGTERM")

    monkeypatch.setattr("etl.steps.discover.discover", killed)
    monkeypatch.setattr("etl.steps.preprocess.preprocess", lambda ctx: reached.append("next"))
    ctx = context(embedded_config(tmp_path, "tick", [ASSET]))
    with pytest.raises(TerminatedError):  # not a failed step the tick goes on from
        run_tick(ctx)
    with ctx.uow() as uow:
        runs = uow.runs.for_pipeline("tick", "run")
    ctx.close()
    assert reached == []
    assert [r.status for r in runs] == [RunStatus.FAILED]
