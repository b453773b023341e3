"""The same settings give the same bytes; machines are independent of each other."""

from __future__ import annotations

import dataclasses
import hashlib

import pandas as pd

from etl.simulate import (
    FaultRates,
    SimulatedBatch,
    SimulationSettings,
    simulate_fleet,
    simulate_machine,
)

BASE = SimulationSettings(
    machines=2,
    days=1 / 24,
    seed=17,
    machine_types=("dumper", "wheel_loader"),
    faults=dataclasses.replace(FaultRates(), corrupt_file=0.2, rows_shuffled=0.2, overlap=0.2),
)


def _fingerprint(batches: list[SimulatedBatch]) -> list[tuple[str, str, float, str]]:
    return [
        (
            b.key,
            hashlib.sha256(b.payload).hexdigest(),
            b.upload_time,
            repr(sorted(b.message.items())),
        )
        for b in batches
    ]


def test_same_seed_same_files_messages_labels_and_faults() -> None:
    first, again = simulate_machine(BASE, 0), simulate_machine(BASE, 0)
    assert _fingerprint(first.batches) == _fingerprint(again.batches)
    pd.testing.assert_frame_equal(first.labels, again.labels)
    assert [(f.kind, f.key) for f in first.faults] == [(f.kind, f.key) for f in again.faults]
    assert first.faults, "the rates above inject something in an hour"


def test_another_seed_gives_another_fleet() -> None:
    other = dataclasses.replace(BASE, seed=18)
    one, two = simulate_machine(BASE, 0), simulate_machine(other, 0)
    assert one.profile.uuid != two.profile.uuid
    assert not {hashlib.sha256(b.payload).digest() for b in one.batches} & {
        hashlib.sha256(b.payload).digest() for b in two.batches
    }
    assert not one.labels[["start", "end"]].equals(two.labels[["start", "end"]])


def test_a_machine_does_not_depend_on_the_fleet_size() -> None:
    larger = dataclasses.replace(BASE, machines=4, machine_types=("dumper", "wheel_loader") * 2)
    assert _fingerprint(simulate_machine(BASE, 1).batches) == _fingerprint(
        simulate_machine(larger, 1).batches
    )


def test_file_faults_do_not_change_the_other_files() -> None:
    clean = dataclasses.replace(BASE, faults=FaultRates.none())
    faulty = dataclasses.replace(
        BASE, faults=dataclasses.replace(FaultRates.none(), corrupt_file=0.5, late_upload=0.5)
    )
    by_key = {b.key: b for b in simulate_machine(clean, 0).batches}
    untouched = [b for b in simulate_machine(faulty, 0).batches if not b.faults]
    assert untouched
    for batch in untouched:
        assert batch.payload == by_key[batch.key].payload
        assert batch.message == by_key[batch.key].message


def test_worker_processes_give_the_same_stream() -> None:
    small = dataclasses.replace(BASE, days=20 / 1440)
    serial = _fingerprint(list(simulate_fleet(small, workers=1)))
    parallel = _fingerprint(list(simulate_fleet(small, workers=2)))
    assert serial == parallel
    assert len({key.split("/")[0] for key, *_ in serial}) == 2
