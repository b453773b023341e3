"""The figures of the report, per machine and for the fleet: pure functions on frames.

Kept apart from rendering so that the numbers the terminal table and the HTML
page show are the same numbers, computed once, and testable without a plot.

Decisions:

* the median cycle time is taken over complete cycles only: a cycle that a
  data gap interrupts has a duration that says more about the gap than about
  the work (the share of incomplete cycles is reported next to it);
* "hours of data" are the hours covered by activity segments, and data
  coverage is that time over the span from the machine's first to its last
  segment, so a machine switched off overnight shows as gaps, not as noise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from etl.config import ACTIVITIES
from etl.report.data import ACCEPTED_STATUSES, ReportData, phase_columns

DAY_S = 86_400.0
EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class MachineSummary:
    """The key figures of one machine.

    Attributes:
        machine_uuid: The machine.
        machine_type: ``dumper``, ``excavator`` or ``wheel_loader`` (or what the rows say).
        first, last: Bounds of its activity segments and cycles (None without rows).
        hours: Hours covered by activity segments.
        shares: Activity -> share of ``hours``, largest first.
        cycles: Number of cycles (complete or not).
        complete_cycles: Number of complete cycles.
        median_cycle_min: Median duration of complete cycles, minutes (None without any).
        phase_means_s: Activity -> mean seconds per complete cycle, taxonomy order.
        incomplete_share: Share of cycles that data gaps interrupt (None without cycles).
        coverage: ``hours`` over the span of its segments (None without segments).
        cycle_coverage: Mean ``data_coverage`` of its cycles (None without cycles).
        batches: Status -> number of raw files in the state store.
        rejected: ``(key, reason)`` of its rejected files, by key.
        model_versions: Model versions that produced its rows.

    """

    machine_uuid: str
    machine_type: str
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    hours: float
    shares: dict[str, float]
    cycles: int
    complete_cycles: int
    median_cycle_min: float | None
    phase_means_s: dict[str, float]
    incomplete_share: float | None
    coverage: float | None
    cycle_coverage: float | None
    batches: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    model_versions: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """Files whose data made it into the StateVectors."""
        return sum(n for s, n in self.batches.items() if s in ACCEPTED_STATUSES)

    @property
    def rejected_count(self) -> int:
        """Files rejected with a reason."""
        return self.batches.get("rejected", 0)

    @property
    def pending(self) -> int:
        """Files registered but not processed yet."""
        return self.batches.get("discovered", 0)


def _optional(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _bounds(activity: pd.DataFrame, cycles: pd.DataFrame) -> tuple[Any, Any]:
    starts = pd.concat([activity["start_time"], cycles["cycle_start"]]).dropna()
    ends = pd.concat([activity["end_time"], cycles["cycle_end"]]).dropna()
    return (starts.min() if len(starts) else None, ends.max() if len(ends) else None)


def activity_seconds(activity: pd.DataFrame) -> pd.Series:
    """Seconds per activity, largest first."""
    seconds = (activity["end_time"] - activity["start_time"]).dt.total_seconds()
    return seconds.groupby(activity["activity"]).sum().sort_values(ascending=False)


def summarise_machine(data: ReportData, machine_uuid: str, machine_type: str) -> MachineSummary:
    """The key figures of one machine from the report's rows."""
    activity = data.activity[data.activity["machine_uuid"] == machine_uuid]
    cycles = data.cycles[data.cycles["machine_uuid"] == machine_uuid]
    batches = data.batches[data.batches["machine_uuid"] == machine_uuid]

    per_activity = activity_seconds(activity)
    total_s = float(per_activity.sum())
    shares = {str(a): float(s / total_s) for a, s in per_activity.items()} if total_s else {}
    coverage = None
    if not activity.empty:
        span_s = (activity["end_time"].max() - activity["start_time"].min()).total_seconds()
        coverage = total_s / span_s if span_s > 0 else None

    complete = cycles[cycles["is_complete"]]
    phases = [c for c in phase_columns(machine_type) if c in complete.columns]
    phase_means = {c.removesuffix("_s"): float(complete[c].fillna(0.0).mean()) for c in phases}
    first, last = _bounds(activity, cycles)
    rejected = batches[batches["status"] == "rejected"]
    versions = pd.concat([activity["model_version"], cycles["model_version"]]).dropna()
    return MachineSummary(
        machine_uuid=machine_uuid,
        machine_type=machine_type,
        first=first,
        last=last,
        hours=total_s / 3600.0,
        shares=shares,
        cycles=len(cycles),
        complete_cycles=len(complete),
        median_cycle_min=(
            _optional(complete["duration_s"].median() / 60.0) if len(complete) else None
        ),
        phase_means_s=phase_means if len(complete) else {},
        incomplete_share=float(1.0 - len(complete) / len(cycles)) if len(cycles) else None,
        coverage=coverage,
        cycle_coverage=_optional(cycles["data_coverage"].mean()) if len(cycles) else None,
        batches={str(k): int(v) for k, v in batches["status"].value_counts().sort_index().items()},
        rejected=[
            (str(k), str(r) if pd.notna(r) else "no reason recorded")
            for k, r in rejected[["key", "reason"]].itertuples(index=False, name=None)
        ],
        model_versions=sorted({str(v) for v in versions}),
    )


def fleet_summaries(data: ReportData) -> list[MachineSummary]:
    """One summary per machine, in report order."""
    return [summarise_machine(data, uuid, machine_type) for uuid, machine_type in data.machines]


def time_range(data: ReportData) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First and last instant of any results row."""
    return _bounds(data.activity, data.cycles)


def unassigned_batches(data: ReportData) -> pd.DataFrame:
    """Batches of no reported machine (e.g. malformed announcements without a valid UUID)."""
    known = {uuid for uuid, _ in data.machines}
    return data.batches[~data.batches["machine_uuid"].isin(known)]


_KEY_LIKE = re.compile(r"\S+\.parquet|\b[0-9a-f]{8}-[0-9a-f-]{27}\b|\d{4}-\d\d-\d\d\S*|\d+(\.\d+)?")


def reason_kind(reason: str) -> str:
    """A reason with keys, UUIDs, dates and numbers blanked, to count reasons by kind.

    ``duplicate of 5f0c.../1767225600000.parquet`` and every other duplicate then
    count as one kind, ``duplicate of …``.
    """
    return _KEY_LIKE.sub("…", reason).strip()


def reasons_by_kind(rejected: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """``(kind, files)`` of rejected files, most frequent first."""
    counts = pd.Series([reason_kind(r) for _, r in rejected], dtype=object).value_counts()
    return [(str(k), int(n)) for k, n in counts.items()]


def _trailing_number(text: str) -> str | None:
    found = re.search(r"(\d+)\s*$", text)
    return found.group(1) if found else None


def match_model(
    model_version: str, machine_type: str, models: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The state's model row behind a results ``model_version`` string, if any.

    The results contract only says "registered model that produced it", so the
    common spellings are accepted: ``{registry_name}/{version}``, ``v3``, ``3``,
    the model's URL or MLflow run id; otherwise its trailing number is taken as
    the version of that machine type's model, unless the string names another type.
    """
    candidates = [m for m in models if m.get("machine_type") in (machine_type, None)]
    for model in candidates:
        version = model.get("version")
        spellings = {
            f"{model.get('registry_name')}/{model.get('registry_version')}",
            f"{model.get('registry_name')}/{version}",
            f"{model.get('registry_name')}:{version}",
            f"{model.get('machine_type')}/v{version}",
            f"v{version}",
            str(version),
            str(model.get("url")),
            str(model.get("mlflow_run_id")),
        }
        if model_version in spellings:
            return model
    names_other_type = any(t in model_version for t in ACTIVITIES if t != machine_type)
    if names_other_type and machine_type not in model_version:
        return None
    number = _trailing_number(model_version)
    for model in candidates:
        if number is not None and number in (
            str(model.get("version")),
            str(model.get("registry_version")),
        ):
            return model
    return None


@dataclass(frozen=True)
class ModelUse:
    """One model version that produced results rows, with what the state knows of it."""

    machine_type: str
    model_version: str
    segments: int
    macro_f1: float | None
    status: str | None


def models_used(data: ReportData) -> list[ModelUse]:
    """Model versions in the results, per machine type, with their macro-F1 if registered."""
    used = pd.concat(
        [
            data.activity[["machine_type", "model_version"]].assign(segment=1),
            data.cycles[["machine_type", "model_version"]].assign(segment=0),
        ]
    ).dropna(subset=["model_version"])
    uses = []
    for (machine_type, version), rows in used.groupby(["machine_type", "model_version"]):
        model = match_model(str(version), str(machine_type), data.models)
        metrics = (model or {}).get("metrics") or {}
        f1 = metrics.get("macro_f1")
        uses.append(
            ModelUse(
                machine_type=str(machine_type),
                model_version=str(version),
                segments=int(rows["segment"].sum()),
                macro_f1=float(f1) if isinstance(f1, int | float) else None,
                status=(model or {}).get("status"),
            )
        )
    return uses


def top_activities(shares: dict[str, float], count: int = 3) -> str:
    """``hauling 33%, returning 29%, ...`` for the largest shares."""
    return ", ".join(f"{a} {s:.0%}" for a, s in list(shares.items())[:count])


def short_ids(uuids: list[str]) -> dict[str, str]:
    """The shortest common-length suffix (at least 8 characters) that tells machines apart."""
    for length in range(8, 37):
        suffixes = {u: u[-length:] for u in uuids}
        if len(set(suffixes.values())) == len(uuids):
            return {u: (s if s == u else f"…{s}") for u, s in suffixes.items()}
    return {u: u for u in uuids}


def taxonomy_order(machine_type: str, present: list[str]) -> list[str]:
    """The machine type's activities in taxonomy order, then any others the rows carry."""
    known = list(ACTIVITIES.get(machine_type, ()))
    return known + sorted(a for a in set(present) if a not in known)


def unix_seconds(times: pd.Series) -> list[float]:
    """UTC timestamps as unix seconds, whatever the frame's time resolution."""
    return list((times - EPOCH).dt.total_seconds()) if len(times) else []


def split_by_day(activity: pd.DataFrame) -> pd.DataFrame:
    """Activity segments cut at UTC midnights: ``day``, ``start_h``, ``hours``, ``activity``.

    The timeline draws one row per day, so a segment over midnight becomes two bars.
    """
    rows: list[tuple[pd.Timestamp, float, float, str]] = []
    starts = unix_seconds(activity["start_time"])
    ends = unix_seconds(activity["end_time"])
    for first, end, name in zip(starts, ends, activity["activity"], strict=True):
        start = first
        while start < end:
            day = math.floor(start / DAY_S) * DAY_S
            stop = min(end, day + DAY_S)
            rows.append(
                (
                    pd.Timestamp(day, unit="s", tz="UTC"),
                    (start - day) / 3600.0,
                    (stop - start) / 3600.0,
                    str(name),
                )
            )
            start = stop
    return pd.DataFrame(rows, columns=["day", "start_h", "hours", "activity"])
