"""Every field fault is injected at about its rate, does what it says, and is recorded."""

from __future__ import annotations

import dataclasses
import io
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from etl.simulate import (
    FaultRates,
    InjectedFault,
    SimulatedBatch,
    SimulationSettings,
    collect_faults,
    fleet_labels,
    simulate_machine,
)

RATE = 0.1
Y2000 = 946_684_800.0


@pytest.fixture(scope="module")
def settings() -> SimulationSettings:
    rates = {kind: RATE for kind in FaultRates.kinds()}
    rates["gap"] = 0.03
    return SimulationSettings(
        machines=4,
        days=6 / 24,
        seed=99,
        machine_types=("dumper", "excavator", "wheel_loader", "dumper"),
        faults=FaultRates(**rates),
        multipath_rate=0.0,
    )


@pytest.fixture(scope="module")
def batches(settings: SimulationSettings) -> list[SimulatedBatch]:
    return [b for i in range(settings.machines) for b in simulate_machine(settings, i).batches]


@pytest.fixture(scope="module")
def faults(batches: list[SimulatedBatch]) -> list[InjectedFault]:
    return collect_faults(batches)


@pytest.fixture(scope="module")
def tables(batches: list[SimulatedBatch]) -> dict[int, pd.DataFrame | None]:
    """Decoded files by id of the announcement; None where the bytes are not readable."""
    out: dict[int, pd.DataFrame | None] = {}
    for batch in batches:
        try:
            out[id(batch)] = pq.read_table(io.BytesIO(batch.payload)).to_pandas()
        except Exception:  # unreadable is exactly what we look for
            out[id(batch)] = None
    return out


def _files(batches: list[SimulatedBatch]) -> list[SimulatedBatch]:
    """First announcements only (duplicates excluded)."""
    return [b for b in batches if not any(f.kind.startswith("duplicate_") for f in b.faults)]


def _with(batches: list[SimulatedBatch], kind: str) -> list[tuple[SimulatedBatch, InjectedFault]]:
    return [(b, f) for b in batches for f in b.faults if f.kind == kind]


def test_every_kind_is_injected_at_about_its_rate(
    settings: SimulationSettings, batches: list[SimulatedBatch], faults: list[InjectedFault]
) -> None:
    files = len(_files(batches))
    counts = Counter(f.kind for f in faults)
    assert set(counts) == set(FaultRates.kinds())
    for kind in FaultRates.kinds():
        rate = getattr(settings.faults, kind)
        slots = settings.duration_seconds / settings.batch_seconds * settings.machines
        expected = rate * (slots if kind == "gap" else files)
        spread = 4 * np.sqrt(expected) + 1
        assert abs(counts[kind] - expected) <= spread, (kind, counts[kind], expected)


def test_each_fault_names_its_machine_and_file(
    batches: list[SimulatedBatch], faults: list[InjectedFault]
) -> None:
    keys = {b.key for b in batches}
    for fault in faults:
        assert fault.key in keys
        assert fault.key.startswith(fault.machine_uuid + "/")


def test_corrupt_files_are_not_parquet(
    batches: list[SimulatedBatch], tables: dict[int, pd.DataFrame | None]
) -> None:
    hits = _with(batches, "corrupt_file")
    assert hits
    for batch, fault in hits:
        assert tables[id(batch)] is None
        assert not batch.payload.startswith(b"PAR1")
        assert len(batch.payload) == fault.detail["bytes"]


def test_truncated_files_are_parquet_cut_short(
    batches: list[SimulatedBatch], tables: dict[int, pd.DataFrame | None]
) -> None:
    hits = _with(batches, "truncated_file")
    assert hits
    for batch, fault in hits:
        assert tables[id(batch)] is None
        assert batch.payload.startswith(b"PAR1")
        assert not batch.payload.endswith(b"PAR1")
        assert len(batch.payload) == fault.detail["kept_bytes"] < fault.detail["full_bytes"]


def test_unreadable_files_are_exactly_the_corrupt_and_truncated_ones(
    batches: list[SimulatedBatch], tables: dict[int, pd.DataFrame | None]
) -> None:
    unreadable = {id(b) for b in batches if tables[id(b)] is None}
    broken = {
        id(b)
        for b in batches
        if {f.kind for f in b.faults} & {"corrupt_file", "truncated_file"}
        or any(
            f.kind.startswith("duplicate_")
            and any(
                g.kind in {"corrupt_file", "truncated_file"}
                for o in batches
                if o.payload == b.payload and o is not b
                for g in o.faults
            )
            for f in b.faults
        )
    }
    assert unreadable == broken


def test_missing_column_is_absent(
    batches: list[SimulatedBatch], tables: dict[int, pd.DataFrame | None]
) -> None:
    hits = [(b, f) for b, f in _with(batches, "missing_column") if tables[id(b)] is not None]
    assert hits
    for batch, fault in hits:
        frame = tables[id(batch)]
        assert frame is not None
        assert fault.detail["column"] not in frame.columns
        assert len(frame.columns) >= 8


def test_wrong_clock_is_in_1970_or_the_future(
    batches: list[SimulatedBatch], tables: dict[int, pd.DataFrame | None]
) -> None:
    hits = _with(batches, "wrong_clock")
    assert {f.detail["mode"] for _, f in hits} == {"1970", "future"}
    for batch, fault in hits:
        first = batch.message["first_timestamp"]
        assert batch.key.endswith(f"/{round(first * 1000)}.parquet")
        if fault.detail["mode"] == "1970":
            assert first < Y2000
        else:
            assert first > batch.upload_time + 300 * 86_400
        frame = tables[id(batch)]
        if frame is not None and "timestamp" in frame:
            assert frame["timestamp"].min() == first


def test_shuffled_rows_are_out_of_order(
    batches: list[SimulatedBatch], tables: dict[int, pd.DataFrame | None]
) -> None:
    checked = 0
    for batch, _ in _with(batches, "rows_shuffled"):
        frame = tables[id(batch)]
        if frame is None or "timestamp" not in frame:
            continue
        assert (np.diff(frame["timestamp"].to_numpy()) < 0).any()
        assert batch.key.endswith(f"/{round(frame['timestamp'].min() * 1000)}.parquet")
        checked += 1
    assert checked


def test_duplicated_rows_repeat_whole_rows(
    batches: list[SimulatedBatch], tables: dict[int, pd.DataFrame | None]
) -> None:
    checked = 0
    for batch, fault in _with(batches, "rows_duplicated"):
        frame = tables[id(batch)]
        if frame is None:
            continue
        assert int(frame.duplicated().sum()) == fault.detail["rows"] > 0
        assert batch.message["rows"] == len(frame)
        checked += 1
    assert checked


def test_clean_files_are_sorted_without_repeats(
    batches: list[SimulatedBatch], tables: dict[int, pd.DataFrame | None]
) -> None:
    clean = [b for b in batches if not b.faults]
    assert len(clean) > 20
    for batch in clean:
        frame = tables[id(batch)]
        assert frame is not None
        stamps = frame["timestamp"].to_numpy()
        assert np.all(np.diff(stamps) >= 0)
        assert not frame.duplicated().any()
        assert Y2000 < stamps[0] < batch.upload_time


def test_duplicate_same_key_is_the_same_file_announced_again(batches: list[SimulatedBatch]) -> None:
    hits = _with(batches, "duplicate_same_key")
    assert hits
    for batch, _ in hits:
        same = [b for b in batches if b.key == batch.key]
        assert len(same) == 2
        first, again = sorted(same, key=lambda b: b.upload_time)
        assert again is batch
        assert first.payload == again.payload
        assert {k: v for k, v in first.message.items() if k != "created_at"} == {
            k: v for k, v in again.message.items() if k != "created_at"
        }


def test_duplicate_other_key_is_the_same_content_one_ms_later(
    batches: list[SimulatedBatch],
) -> None:
    hits = _with(batches, "duplicate_other_key")
    assert hits
    for batch, fault in hits:
        original = next(b for b in batches if b.key == fault.detail["original_key"])
        assert original.payload == batch.payload
        ms = int(batch.key.split("/")[1].split(".")[0])
        assert original.key.endswith(f"/{ms - 1}.parquet")
        assert batch.upload_time > original.upload_time
        assert batch.message["key"] == batch.key


def test_overlapping_files_share_identical_samples(
    batches: list[SimulatedBatch], tables: dict[int, pd.DataFrame | None]
) -> None:
    checked = 0
    for batch, fault in _with(batches, "overlap"):
        previous = next(b for b in batches if b.key == fault.detail["previous_key"])
        mine, theirs = tables[id(batch)], tables[id(previous)]
        if (
            mine is None
            or theirs is None
            or {f.kind for f in batch.faults + previous.faults}
            & {
                "wrong_clock",
                "missing_column",
                "rows_duplicated",
            }
        ):
            continue
        columns = ["timestamp", "acc_x", "acc_y", "acc_z"]
        shared = mine[columns].merge(theirs[columns], on="timestamp", suffixes=("", "_prev"))
        shared = shared.dropna()
        assert len(shared) >= 10 * fault.detail["seconds"] - 2
        for axis in "xyz":
            assert (shared[f"acc_{axis}"] == shared[f"acc_{axis}_prev"]).all()
        checked += 1
    assert checked


def test_power_off_gaps_leave_no_data_and_no_labels(
    settings: SimulationSettings,
    batches: list[SimulatedBatch],
    tables: dict[int, pd.DataFrame | None],
) -> None:
    labels = fleet_labels(settings)
    gaps = _with(batches, "gap")
    assert gaps
    for batch, fault in gaps:
        start, end = fault.detail["start"], fault.detail["end"]
        assert 120 <= fault.detail["seconds"] == end - start
        for other in batches:
            frame = tables[id(other)]
            if other.machine_uuid != batch.machine_uuid or frame is None:
                continue
            if "timestamp" not in frame or other.message["first_timestamp"] < Y2000:
                continue
            stamps = frame["timestamp"].to_numpy()
            assert not ((stamps > start + 0.05) & (stamps < end - 0.05)).any()
        mine = labels[labels["machine_uuid"] == batch.machine_uuid]
        assert not ((mine["start"] < end) & (mine["end"] > start)).any()
        if batch.message["first_timestamp"] >= start:
            assert batch.message["first_timestamp"] == pytest.approx(end, abs=0.05)


def test_late_uploads_come_hours_later(batches: list[SimulatedBatch]) -> None:
    hits = _with(batches, "late_upload")
    assert hits
    for batch, fault in hits:
        recorded_end = batch.upload_time - fault.detail["delay_s"]
        assert fault.detail["delay_s"] >= 3600
        assert batch.upload_time - recorded_end >= 3600


def test_out_of_order_uploads_overtake_their_successors() -> None:
    settings = SimulationSettings(
        machines=2,
        days=6 / 24,
        seed=5,
        faults=dataclasses.replace(FaultRates.none(), out_of_order_upload=0.2, late_upload=0.1),
    )
    for index in range(settings.machines):
        run = simulate_machine(settings, index)
        files = sorted(run.batches, key=lambda b: b.message["first_timestamp"])
        hits = [b for b in files if any(f.kind == "out_of_order_upload" for f in b.faults)]
        assert hits
        for batch in hits:
            fault = next(f for f in batch.faults if f.kind == "out_of_order_upload")
            position = files.index(batch)
            successors = files[position + 1 : position + 1 + fault.detail["overtaken_by"]]
            assert successors[-1].upload_time < batch.upload_time
        on_time = [b for b in files if not b.faults]
        assert [b.upload_time for b in on_time] == sorted(b.upload_time for b in on_time)


def test_the_same_seed_injects_the_same_faults(settings: SimulationSettings) -> None:
    first = simulate_machine(settings, 1).faults
    again = simulate_machine(settings, 1).faults
    assert [(f.kind, f.key, f.detail) for f in first] == [(f.kind, f.key, f.detail) for f in again]
