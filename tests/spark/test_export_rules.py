"""Quality checks: every rule both ways, on small inline frames of contract rows.

Each case starts from a row that passes every rule and changes what one rule
looks at; the row must then fail with exactly that rule's reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from etl.export import checks
from etl.export.adapt import MACHINE_ACTIVITY, MACHINE_CYCLE, ResultTable
from etl.infer.schema import PHASE_COLUMNS

MACHINE = "5f0c0000-0000-4000-8000-000000000001"
OTHER = "5f0c0000-0000-4000-8000-000000000002"
T0 = 1_767_600_000  # 2026-01-05 08:00:00 UTC
LIMITS = {"min_epoch_s": 946_684_800.0, "max_epoch_s": T0 + 10 * 86_400.0}


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def frame(spark: SparkSession, table: ResultTable, rows: list[dict[str, Any]]) -> DataFrame:
    ddl = ", ".join(f"{c.name} {c.spark_type}" for c in table.columns)
    return spark.createDataFrame([tuple(r[c] for c in table.column_names) for r in rows], ddl)


def reasons(checked: DataFrame, key: str) -> list[str | None]:
    return [r[checks.REJECT_REASON] for r in checked.orderBy(key, "machine_uuid").collect()]


# -- machine_activity ----------------------------------------------------------------------


def segment(start: int = T0, end: int = T0 + 60, **changes: Any) -> dict[str, Any]:
    row = {
        "pipeline": "p1",
        "machine_uuid": MACHINE,
        "machine_type": "dumper",
        "start_time": at(start),
        "end_time": at(end),
        "activity": "hauling",
        "confidence": 0.9,
        "model_version": "m/1",
    }
    return row | changes


def check_segments(spark: SparkSession, rows: list[dict[str, Any]]) -> list[str | None]:
    return reasons(
        checks.check_activities(frame(spark, MACHINE_ACTIVITY, rows), **LIMITS), "start_time"
    )


SEGMENT_CASES = {
    "not a uuid": ({"machine_uuid": "machine-7"}, checks.NOT_A_UUID),
    "unknown type": ({"machine_type": "bulldozer"}, checks.UNKNOWN_MACHINE_TYPE),
    "zero duration": ({"end_time": at(T0)}, checks.NON_POSITIVE_DURATION),
    "negative duration": ({"end_time": at(T0 - 5)}, checks.NON_POSITIVE_DURATION),
    "before 2000": (
        {"start_time": at(900_000_000), "end_time": at(900_000_060)},
        checks.OUT_OF_RANGE_TIME,
    ),
    "in the future": (
        {"start_time": at(T0 + 20 * 86_400), "end_time": at(T0 + 20 * 86_400 + 60)},
        checks.OUT_OF_RANGE_TIME,
    ),
    "activity of another type": ({"activity": "digging"}, checks.UNKNOWN_ACTIVITY),
    "activity of no type": ({"activity": "sleeping"}, checks.UNKNOWN_ACTIVITY),
    "confidence above 1": ({"confidence": 1.5}, checks.CONFIDENCE_OUT_OF_RANGE),
    "confidence below 0": ({"confidence": -0.1}, checks.CONFIDENCE_OUT_OF_RANGE),
    "confidence NaN": ({"confidence": float("nan")}, checks.CONFIDENCE_OUT_OF_RANGE),
}


def test_a_good_segment_passes_every_rule(spark: SparkSession) -> None:
    rows = [
        segment(),
        segment(T0 + 60, T0 + 100, activity="dumping", confidence=1.0),  # touching, not overlapping
        segment(T0 + 100, T0 + 130, activity="returning", confidence=0.0),
        segment(machine_uuid=OTHER, machine_type="excavator", activity="digging"),  # same time
        segment(T0 - 60, T0, machine_type="wheel_loader", activity="carrying", pipeline="p2"),
    ]
    assert check_segments(spark, rows) == [None] * 5


@pytest.mark.parametrize("case", SEGMENT_CASES)
def test_a_segment_breaking_one_rule_fails_with_its_reason(spark: SparkSession, case: str) -> None:
    changes, reason = SEGMENT_CASES[case]
    assert check_segments(spark, [segment(**changes)]) == [reason]


def test_overlapping_segments_fail_on_the_later_one(spark: SparkSession) -> None:
    rows = [
        segment(T0, T0 + 300, activity="idle"),  # long: overlaps both that follow
        segment(T0 + 100, T0 + 150),
        segment(T0 + 200, T0 + 250, activity="dumping"),
        segment(T0 + 300, T0 + 400, activity="returning"),  # starts where the long one ends
    ]
    overlap = checks.OVERLAPPING_SEGMENT
    assert check_segments(spark, rows) == [None, overlap, overlap, None]


def test_a_row_breaking_several_rules_gets_every_reason(spark: SparkSession) -> None:
    (reason,) = check_segments(spark, [segment(end=T0, activity="digging", confidence=2.0)])
    assert reason is not None
    assert reason.split(checks.REASON_SEPARATOR) == [
        checks.NON_POSITIVE_DURATION,
        checks.UNKNOWN_ACTIVITY,
        checks.CONFIDENCE_OUT_OF_RANGE,
    ]


# -- machine_cycle -------------------------------------------------------------------------

DUMPER_PHASES = {
    "idle_s": 10.0,
    "queuing_s": 50.0,
    "loading_s": 120.0,
    "hauling_s": 200.0,
    "dumping_s": 40.0,
    "returning_s": 170.0,
}  # 590 s of a 600 s cycle
EXCAVATOR_PHASES = {
    "idle_s": 2.0,
    "digging_s": 12.0,
    "swinging_loaded_s": 6.0,
    "dumping_s": 4.0,
    "swinging_empty_s": 5.0,
    "traveling_s": 1.0,
}  # 30 s


def cycle(
    start: int = T0,
    duration: float = 600.0,
    phases: dict[str, float] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    phases = DUMPER_PHASES if phases is None else phases
    row = {
        "pipeline": "p1",
        "machine_uuid": MACHINE,
        "machine_type": "dumper",
        "cycle_start": at(start),
        "cycle_end": at(start + duration),
        "duration_s": duration,
        **{c: phases.get(c) for c in PHASE_COLUMNS},
        "distance_loaded_m": 1500.0,
        "distance_empty_m": 1400.0,
        "avg_speed_loaded_kmh": 27.0,
        "avg_speed_empty_kmh": 29.6,
        "load_lat": -23.5,
        "load_lon": 133.25,
        "dump_lat": -23.51,
        "dump_lon": 133.26,
        "is_complete": True,
        "data_coverage": sum(v or 0.0 for v in phases.values()) / duration if duration else 0.0,
        "model_version": "m/1",
    }
    return row | changes


def check_cycles(spark: SparkSession, rows: list[dict[str, Any]]) -> list[str | None]:
    return reasons(checks.check_cycles(frame(spark, MACHINE_CYCLE, rows), **LIMITS), "cycle_start")


CYCLE_CASES = {
    "not a uuid": ({"machine_uuid": "machine-7"}, checks.NOT_A_UUID),
    "unknown type": ({"machine_type": "bulldozer"}, checks.UNKNOWN_MACHINE_TYPE),
    "zero duration": (
        {"duration": 0.0, "phases": dict.fromkeys(DUMPER_PHASES, 0.0)},
        checks.NON_POSITIVE_DURATION,
    ),
    "duration is not end - start": ({"duration_s": 601.0}, checks.DURATION_MISMATCH),
    "before 2000": ({"start": 900_000_000}, checks.OUT_OF_RANGE_TIME),
    "in the future": ({"start": T0 + 20 * 86_400}, checks.OUT_OF_RANGE_TIME),
    "negative phase": (
        {"phases": DUMPER_PHASES | {"idle_s": -10.0}, "data_coverage": 570 / 600},
        checks.NEGATIVE_PHASE,
    ),
    "phases exceed the duration": (
        {"phases": DUMPER_PHASES | {"returning_s": 180.5}, "data_coverage": 1.0},
        checks.PHASES_EXCEED_DURATION,
    ),
    "phases do not match the coverage": (
        {"data_coverage": 0.9},
        checks.PHASES_MISMATCH_COVERAGE,
    ),
    "coverage above 1": (
        {"phases": DUMPER_PHASES | {"returning_s": 180.0}, "data_coverage": 1.001},
        checks.COVERAGE_OUT_OF_RANGE,
    ),
    "phase of another type": (
        {"phases": DUMPER_PHASES | {"digging_s": 0.0}},
        checks.FOREIGN_PHASE,
    ),
}


def test_a_good_cycle_passes_every_rule(spark: SparkSession) -> None:
    rows = [
        cycle(),
        cycle(T0 + 600),  # the next cycle starts where this one ends
        cycle(T0 + 1200, phases=DUMPER_PHASES | {"idle_s": None}, data_coverage=580 / 600),
        cycle(T0 + 1800, phases=DUMPER_PHASES, data_coverage=590.9 / 600),  # within 1 s
        cycle(machine_uuid=OTHER, machine_type="excavator", duration=30.0, phases=EXCAVATOR_PHASES),
        cycle(
            T0,
            duration=40.0,
            phases=dict.fromkeys(DUMPER_PHASES, 0.0),
            data_coverage=0.0,
            pipeline="p0",
        ),
    ]
    assert check_cycles(spark, rows) == [None] * 6


@pytest.mark.parametrize("case", CYCLE_CASES)
def test_a_cycle_breaking_one_rule_fails_with_its_reason(spark: SparkSession, case: str) -> None:
    changes, reason = CYCLE_CASES[case]
    assert check_cycles(spark, [cycle(**changes)]) == [reason]


def test_a_nan_coverage_fails_on_coverage_and_phases(spark: SparkSession) -> None:
    (reason,) = check_cycles(spark, [cycle(data_coverage=float("nan"))])
    assert reason == checks.REASON_SEPARATOR.join(
        [checks.PHASES_MISMATCH_COVERAGE, checks.COVERAGE_OUT_OF_RANGE]
    )


def test_overlapping_cycles_fail_on_the_later_one(spark: SparkSession) -> None:
    rows = [cycle(), cycle(T0 + 590), cycle(T0 + 1190)]
    assert check_cycles(spark, rows) == [None, checks.OVERLAPPING_CYCLE, None]
