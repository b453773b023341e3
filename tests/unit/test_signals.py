"""SIGTERM becomes an exception where the command is, held back while a JVM starts."""

from __future__ import annotations

import os
import signal

import pytest

from etl.signals import TerminatedError, shielded, terminate_on_sigterm


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
