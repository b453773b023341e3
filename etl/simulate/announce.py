"""Turning a planned file into announced files: its faults, key, bytes and Kafka message.

A logger cuts a file, the converter writes it as parquet under a key named
after its first timestamp, and the uploader announces it on Kafka. Every
fault of the raw-data contract that concerns one file happens on this way,
and each one is recorded on the announcement it affects.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from etl.simulate.batches import PlannedBatch, parquet_bytes
from etl.simulate.faults import (
    FileFaults,
    InjectedFault,
    corrupt_payload,
    drop_column,
    duplicate_rows,
    shift_clock,
    shuffle_rows,
    truncate_payload,
)
from etl.simulate.machines import MachineProfile
from etl.simulate.settings import SimulationSettings
from etl.simulate.timeline import Timeline


@dataclass(frozen=True, eq=False)
class SimulatedBatch:
    """One announced raw file.

    Attributes:
        machine_uuid: The machine.
        machine_type: Its type.
        key: Object key ``{machine_uuid}/{first_timestamp_ms}.parquet``.
        payload: The file's bytes (parquet, or garbage for a corrupt file).
        message: The Kafka message value (a JSON-ready dict).
        upload_time: Unix seconds at which the file was uploaded and announced.
        faults: Faults injected into this file or announcement.
    """

    machine_uuid: str
    machine_type: str
    key: str
    payload: bytes
    message: dict[str, object]
    upload_time: float
    faults: tuple[InjectedFault, ...] = ()


def overlapped_starts(plan: list[PlannedBatch], decisions: list[FileFaults]) -> dict[int, int]:
    """File start seconds after ``overlap`` faults pulled some back into their predecessor."""
    starts = {item.number: item.start for item in plan}
    for previous, item in itertools.pairwise(plan):
        faults = decisions[item.number]
        if "overlap" in faults and not item.after_gap and previous.end == item.start:
            length = previous.end - previous.start
            starts[item.number] = item.start - max(
                1, min(length - 1, int(5 + 55 * faults.params[16]))
            )
    return starts


def _iso(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def announce_file(
    settings: SimulationSettings,
    profile: MachineProfile,
    table: pa.Table,
    *,
    faults: FileFaults,
    schedule: tuple[float, list[tuple[str, dict[str, object]]]],
    overlap: int,
    previous_key: str,
) -> list[SimulatedBatch]:
    """Apply the file's faults, encode it, and announce it (twice for duplicates)."""
    applied: list[tuple[str, dict[str, object]]] = []
    if overlap > 0:
        applied.append(("overlap", {"seconds": overlap, "previous_key": previous_key}))
    for kind, change in (
        ("wrong_clock", shift_clock),
        ("rows_duplicated", duplicate_rows),
        ("rows_shuffled", shuffle_rows),
    ):
        if kind in faults:
            table, detail = change(table, faults)
            applied.append((kind, detail))
    stamps = table.column("timestamp")
    first, last = pc.min(stamps).as_py(), pc.max(stamps).as_py()
    first_ms = round(first * 1000)
    key = f"{profile.uuid}/{first_ms}.parquet"
    if "missing_column" in faults:
        table, detail = drop_column(table, faults)
        applied.append(("missing_column", detail))
    payload = parquet_bytes(table)
    if "corrupt_file" in faults:
        payload, detail = corrupt_payload(payload, faults)
        applied.append(("corrupt_file", detail))
    elif "truncated_file" in faults:
        payload, detail = truncate_payload(payload, faults)
        applied.append(("truncated_file", detail))
    upload, upload_faults = schedule
    applied += upload_faults

    def announce(
        batch_key: str, at: float, records: list[tuple[str, dict[str, object]]]
    ) -> SimulatedBatch:
        message = {
            "machine_uuid": profile.uuid,
            "bucket": settings.bucket,
            "key": batch_key,
            "first_timestamp": first,
            "last_timestamp": last,
            "rows": table.num_rows,
            "created_at": _iso(at),
        }
        recorded = tuple(
            InjectedFault(kind, profile.uuid, batch_key, detail) for kind, detail in records
        )
        return SimulatedBatch(
            profile.uuid, profile.machine_type, batch_key, payload, message, at, recorded
        )

    out = [announce(key, upload, applied)]
    if "duplicate_same_key" in faults:
        again = upload + 30.0 + 3570.0 * faults.params[17]
        out.append(announce(key, again, [("duplicate_same_key", {"first_upload": upload})]))
    if "duplicate_other_key" in faults:
        other = f"{profile.uuid}/{first_ms + 1}.parquet"
        again = upload + 60.0 + 7140.0 * faults.params[18]
        out.append(announce(other, again, [("duplicate_other_key", {"original_key": key})]))
    return out


def gap_faults(
    settings: SimulationSettings,
    profile: MachineProfile,
    timeline: Timeline,
    plan: list[PlannedBatch],
    keys: list[str],
) -> list[InjectedFault]:
    """One ``gap`` record per power-off period, keyed by the file after it."""
    # keys holds one entry per planned file, in plan order (duplicates excluded).
    faults = []
    t0 = settings.start_timestamp
    for start, end in timeline.off_periods():
        after = [i for i, item in enumerate(plan) if item.start == end]
        before = [i for i, item in enumerate(plan) if item.end == start]
        chosen = after or before
        key = keys[chosen[0]] if chosen else ""
        detail = {"start": t0 + start, "end": t0 + end, "seconds": end - start}
        faults.append(InjectedFault("gap", profile.uuid, key, detail))
    return faults


def attach_gaps(
    batches: list[SimulatedBatch], gaps: list[InjectedFault]
) -> tuple[list[SimulatedBatch], list[InjectedFault]]:
    """Record each gap on the first announcement of the file it is keyed by.

    Returns:
        The files, and the gaps no file carries (a machine off to the end).
    """
    out = []
    pending = list(gaps)
    for batch in batches:
        mine = [fault for fault in pending if fault.key == batch.key]
        pending = [fault for fault in pending if all(fault is not m for m in mine)]
        out.append(dataclasses.replace(batch, faults=batch.faults + tuple(mine)) if mine else batch)
    return out, pending
