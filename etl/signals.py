"""SIGTERM as an exception, so that a killed command closes its run as failed.

Kubernetes stops a pod with SIGTERM, then SIGKILL after a grace period (30 s by
default). Python's default for SIGTERM ends the process without unwinding: a step's
run would stay ``running`` in the state store. :func:`terminate_on_sigterm` turns
the signal into :class:`TerminatedError` where the command is.

Not while a SparkSession starts (:func:`shielded`): PySpark launches the JVM and
then waits for the file in which it writes its port; interrupted there, the Python
side removes the folder, the JVM fails to write the file and, its gateway thread
already started, never exits (an orphan holding 3 GB). The signal is then raised
once the session is up, and the JVM ends with the process as usual.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_TERMINATED = 128 + signal.SIGTERM
"""The exit status of a command stopped by SIGTERM (the shell's convention)."""


class TerminatedError(BaseException):
    """SIGTERM arrived.

    A ``BaseException``, like ``KeyboardInterrupt``: handlers that let one step of a
    tick fail and go on to the next (``except Exception``) do not swallow it.
    """


_shield = {"depth": 0, "pending": 0}
"""How many :func:`shielded` blocks the main thread is in, and a signal held back."""


def _terminated(signum: int) -> TerminatedError:
    return TerminatedError(f"stopped by signal {signal.Signals(signum).name}")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _shield["depth"]:
        _shield["pending"] = signum
        return
    raise _terminated(signum)


@contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`TerminatedError` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def shielded() -> Iterator[None]:
    """A SIGTERM within the block is raised when the block ends, not inside it."""
    _shield["depth"] += 1
    try:
        yield
    finally:
        _shield["depth"] -= 1
        signum = _shield["pending"]
        if not _shield["depth"] and signum:
            _shield["pending"] = 0
            raise _terminated(signum)
