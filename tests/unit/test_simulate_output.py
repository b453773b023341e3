"""Writing simulated files through a caller's function, and the day plot."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from etl.simulate import (
    FaultRates,
    SimulatedBatch,
    SimulationSettings,
    plot_machine_day,
    simulate_fleet,
    write_batches,
)

SMALL = SimulationSettings(
    machines=2,
    days=30 / 1440,
    seed=3,
    faults=FaultRates(duplicate_same_key=0.5, duplicate_other_key=0.5),
)


def test_write_batches_stores_every_announced_file() -> None:
    batches = list(simulate_fleet(SMALL))
    store: dict[str, bytes] = {}
    calls: list[str] = []
    lock = threading.Lock()

    def write(key: str, payload: bytes) -> None:
        with lock:
            store[key] = payload
            calls.append(key)

    written = write_batches(iter(batches), write, workers=3)
    assert written == len(batches) == len(calls)
    assert sorted(calls) == sorted(b.key for b in batches)
    assert store == {b.key: b.payload for b in batches}
    assert len(store) < len(batches), "same-key duplicates overwrite themselves"


def test_write_batches_raises_the_writers_error() -> None:
    def fail(key: str, payload: bytes) -> None:
        raise OSError(f"disk full writing {key} ({len(payload)} bytes)")

    batches: list[SimulatedBatch] = list(simulate_fleet(SMALL))[:3]
    with pytest.raises(OSError, match="disk full"):
        write_batches(batches, fail, workers=2)


def test_plot_machine_day_draws_a_png(tmp_path: Path) -> None:
    settings = SimulationSettings(machines=1, days=1 / 24, seed=3, machine_types=("dumper",))
    path = plot_machine_day(settings, tmp_path / "day.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000
