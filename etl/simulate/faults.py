"""Field faults of the raw-data contract, injected into batch files and recorded.

Each file draws its fault decisions and their parameters from its own
generator, always the same number of draws, so the faults of one file do
not depend on the rates of another kind or on the other files. Every fault
that changes something is recorded as an :class:`InjectedFault`, so tests
can check that the pipeline handled each one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.simulate.machines import ACC_COLUMNS, GPS_COLUMNS, STREAM_FAULTS
from etl.simulate.noise import derive_rng
from etl.simulate.settings import FaultRates

_YEAR_S = 365.25 * 86_400.0
REQUIRED_COLUMNS: tuple[str, ...] = ("timestamp", *GPS_COLUMNS, *ACC_COLUMNS)
"""Columns a file must carry; ``missing_column`` drops one of them."""


@dataclass(frozen=True)
class InjectedFault:
    """One fault put into the simulated field data.

    Attributes:
        kind: A :class:`~etl.simulate.settings.FaultRates` field name.
        machine_uuid: The machine.
        key: Object key of the affected file (for ``gap``: the first file
            after the power-off, or the last before it if none follows).
        detail: Parameters of the fault (column dropped, delay, ...).
    """

    kind: str
    machine_uuid: str
    key: str
    detail: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # Plain Python values, so a record serialises to JSON as it is.
        plain = {
            name: value.item() if isinstance(value, np.generic) else value
            for name, value in self.detail.items()
        }
        object.__setattr__(self, "detail", plain)


@dataclass(frozen=True)
class FileFaults:
    """The decisions for one file, and the generator for their parameters."""

    hits: frozenset[str]
    params: np.ndarray
    rng: np.random.Generator

    def __contains__(self, kind: str) -> bool:
        return kind in self.hits


def draw_file_faults(rates: FaultRates, seed: int, machine_index: int, number: int) -> FileFaults:
    """Decide which faults hit file ``number`` of a machine.

    ``gap`` is decided per time slot when the timeline is built, so it is
    never part of ``hits``.
    """
    rng = derive_rng(seed, machine_index, STREAM_FAULTS, number)
    kinds = FaultRates.kinds()
    draws = rng.random(len(kinds))
    params = rng.random(20)
    hits = frozenset(
        kind
        for kind, u in zip(kinds, draws, strict=True)
        if kind != "gap" and u < getattr(rates, kind)
    )
    return FileFaults(hits, params, rng)


def shuffle_rows(table: pa.Table, faults: FileFaults) -> tuple[pa.Table, dict[str, object]]:
    """Put rows out of timestamp order: the whole file, or one block of it."""
    n = table.num_rows
    if faults.params[0] < 0.5 or n < 20:
        order = faults.rng.permutation(n)
        return table.take(pa.array(order)), {"mode": "full"}
    size = max(2, int(n * (0.05 + 0.15 * faults.params[1])))
    first = int(faults.params[2] * (n - size))
    order = np.arange(n)
    order[first : first + size] = first + faults.rng.permutation(size)
    return table.take(pa.array(order)), {"mode": "block", "rows": size}


def duplicate_rows(table: pa.Table, faults: FileFaults) -> tuple[pa.Table, dict[str, object]]:
    """Repeat rows: scattered doubles, or a re-sent block appended at the end."""
    n = table.num_rows
    if faults.params[3] < 0.6 or n < 50:
        count = max(1, int(n * (0.01 + 0.04 * faults.params[4])))
        extra = np.sort(faults.rng.choice(n, size=min(count, n), replace=False))
        order = np.sort(np.concatenate([np.arange(n), extra]), kind="stable")
        return table.take(pa.array(order)), {"mode": "scattered", "rows": len(extra)}
    size = int(50 + 250 * faults.params[5])
    first = int(faults.params[6] * (n - min(size, n)))
    order = np.concatenate([np.arange(n), np.arange(first, min(first + size, n))])
    return table.take(pa.array(order)), {"mode": "resent_block", "rows": len(order) - n}


def shift_clock(table: pa.Table, faults: FileFaults) -> tuple[pa.Table, dict[str, object]]:
    """Move every timestamp to 1970 (RTC lost, uptime clock) or years into the future."""
    ts = table.column("timestamp")
    first = pc.min(ts).as_py()
    if faults.params[7] < 0.5:
        offset = -first + 60.0 + faults.params[8] * 30 * 86_400.0
        mode = "1970"
    else:
        offset = (1.0 + 19.0 * faults.params[8]) * _YEAR_S
        mode = "future"
    offset = round(offset, 3)
    shifted = pc.add(ts, pa.scalar(offset, pa.float64()))
    shifted = pc.divide(pc.round(pc.multiply(shifted, 1000.0)), 1000.0)
    index = table.schema.get_field_index("timestamp")
    return table.set_column(index, "timestamp", shifted), {"mode": mode, "offset_s": offset}


def drop_column(table: pa.Table, faults: FileFaults) -> tuple[pa.Table, dict[str, object]]:
    """Remove one required column."""
    present = [name for name in REQUIRED_COLUMNS if name in table.column_names]
    column = present[int(faults.params[9] * len(present))]
    return table.drop_columns([column]), {"column": column}


def corrupt_payload(payload: bytes, faults: FileFaults) -> tuple[bytes, dict[str, object]]:
    """Bytes that are not parquet: noise, zeros, or an error page from a proxy."""
    mode = ("random", "zeros", "html")[int(faults.params[10] * 3)]
    if mode == "random":
        size = int(100 + faults.params[11] * 5000)
        data = b"\x00" + faults.rng.bytes(size) + b"\x00"
    elif mode == "zeros":
        data = bytes(min(len(payload), 4096))
    else:
        data = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
    return data, {"mode": mode, "bytes": len(data)}


def truncate_payload(payload: bytes, faults: FileFaults) -> tuple[bytes, dict[str, object]]:
    """A parquet file cut short: the header is there, the footer is not."""
    keep = int(len(payload) * (0.1 + 0.8 * faults.params[12]))
    keep = max(4, min(keep, len(payload) - 9))
    return payload[:keep], {"kept_bytes": keep, "full_bytes": len(payload)}


def upload_schedule(
    ends: list[float], decisions: list[FileFaults]
) -> tuple[list[float], list[list[tuple[str, dict[str, object]]]]]:
    """Upload time of every file of a machine, and the upload faults applied to each.

    A file normally goes up 5 to 90 s after its recording ends; a late one
    hours later; an out-of-order one right after the one to three files that
    follow it have been uploaded (worked from the last file backwards, so
    it overtakes them even when they are delayed themselves). The last file
    has no successor to be overtaken by, so it is never out of order.

    Args:
        ends: Unix seconds at which each file's recording ends, in order.
        decisions: The fault decisions of each file.

    Returns:
        Upload times, and per file the ``(kind, detail)`` of its upload faults.
    """
    count = len(ends)
    final = []
    for end, faults in zip(ends, decisions, strict=True):
        upload = end + 5.0 + 85.0 * faults.params[13]
        if "late_upload" in faults:
            upload += 3600.0 * (1.0 + 23.0 * faults.params[15])
        final.append(upload)
    overtaken: dict[int, int] = {}
    for i in reversed(range(count - 1)):
        if "out_of_order_upload" in decisions[i]:
            successor = min(count - 1, i + 1 + int(decisions[i].params[14] * 3))
            final[i] = max(final[i], final[successor] + 1.0 + 59.0 * decisions[i].params[19])
            overtaken[i] = successor - i
    applied: list[list[tuple[str, dict[str, object]]]] = [[] for _ in range(count)]
    for i in range(count):
        delay = round(final[i] - ends[i], 3)
        if "late_upload" in decisions[i]:
            applied[i].append(("late_upload", {"delay_s": delay}))
        if i in overtaken:
            applied[i].append(
                ("out_of_order_upload", {"delay_s": delay, "overtaken_by": overtaken[i]})
            )
    return final, applied
