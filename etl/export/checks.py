"""Quality checks on adapted rows, before anything reaches the external database.

Each rule is a condition that a row *fails*; :func:`check_activities` and
:func:`check_cycles` add a ``reject_reason`` column holding every failed rule's
reason joined with ``"; "`` (null for a row that passes). Rows are never
dropped here: the loader sends passing rows to the target table and failing
ones, with their reason, to the quarantine table, so nothing disappears
silently. Reasons are fixed phrases (no particulars) so that they can be
counted; the quarantined row itself shows the particulars.

A rule whose inputs are null fails (a null can prove nothing), except where
the input is legitimately optional (a phase column of another machine type).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce
from operator import add
from typing import TYPE_CHECKING

from etl.config import ACTIVITIES
from etl.infer.schema import PHASE_COLUMNS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

REJECT_REASON = "reject_reason"
REASON_SEPARATOR = "; "

NOT_A_UUID = "machine_uuid is not a UUID"
UNKNOWN_MACHINE_TYPE = "unknown machine type"
NON_POSITIVE_DURATION = "non-positive duration"
OUT_OF_RANGE_TIME = "time out of range"
UNKNOWN_ACTIVITY = "activity not in the machine type's taxonomy"
CONFIDENCE_OUT_OF_RANGE = "confidence not in [0, 1]"
OVERLAPPING_SEGMENT = "overlaps the previous segment"
DURATION_MISMATCH = "duration_s is not cycle_end - cycle_start"
NEGATIVE_PHASE = "negative phase seconds"
PHASES_EXCEED_DURATION = "phases add up to more than the duration"
PHASES_MISMATCH_COVERAGE = "phases do not add up to data_coverage x duration"
COVERAGE_OUT_OF_RANGE = "data_coverage not in [0, 1]"
FOREIGN_PHASE = "phase of another machine type is set"
OVERLAPPING_CYCLE = "overlaps the previous cycle"

PHASE_TOLERANCE_S = 1.0
"""How far the phases may be from ``data_coverage * duration_s`` (whole-second phases)."""
ROUNDING_S = 0.01
"""Slack for ``real`` (float32) rounding where the contract asks for an exact relation."""
_UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def _fails(ok: Column) -> Column:
    """True where ``ok`` is false or null."""
    from pyspark.sql import functions as F

    return ~F.coalesce(ok, F.lit(False))


def with_reject_reason(frame: DataFrame, rules: Mapping[str, Column]) -> DataFrame:
    """``frame`` plus ``reject_reason``: the reasons of every rule a row fails, or null.

    Args:
        frame: the rows to judge.
        rules: reason -> a boolean column that is true where a row fails.
    """
    from pyspark.sql import functions as F

    joined = F.concat_ws(
        REASON_SEPARATOR,
        *(
            F.when(F.coalesce(failed, F.lit(False)), F.lit(reason))
            for reason, failed in rules.items()
        ),
    )
    # through a column of its own: referenced twice inline, every rule (and the overlap
    # rule's window) would be computed twice
    return frame.withColumn(REJECT_REASON, joined).withColumn(
        REJECT_REASON, F.when(F.col(REJECT_REASON) != "", F.col(REJECT_REASON))
    )


def _known_type() -> Column:
    from pyspark.sql import functions as F

    return F.col("machine_type").isin(list(ACTIVITIES))


def _epoch(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.unix_seconds(F.col(name))


def _common_rules(
    start: str, end: str, min_epoch_s: float, max_epoch_s: float
) -> dict[str, Column]:
    """Rules of both tables: identity, positive duration, plausible clock."""
    from pyspark.sql import functions as F

    return {
        NOT_A_UUID: _fails(F.col("machine_uuid").rlike(_UUID_PATTERN)),
        UNKNOWN_MACHINE_TYPE: _fails(_known_type()),
        NON_POSITIVE_DURATION: _fails(F.col(end) > F.col(start)),
        OUT_OF_RANGE_TIME: _fails(
            (_epoch(start) >= F.lit(min_epoch_s)) & (_epoch(end) <= F.lit(max_epoch_s))
        ),
    }


def _overlaps_previous(start: str, end: str) -> Column:
    """True where a row starts before some earlier-starting row of its machine has ended.

    The running maximum of the earlier ends, not just the previous row's end:
    one long row can overlap several that follow it.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    earlier = (
        Window.partitionBy("pipeline", "machine_uuid")
        .orderBy(F.col(start), F.col(end))
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    return F.coalesce(F.max(F.col(end)).over(earlier) > F.col(start), F.lit(False))


def _taxonomy_contains(activity: Column) -> Column:
    """Whether ``activity`` belongs to the row's machine type.

    True for an unknown machine type: that row already fails on its type.
    """
    from pyspark.sql import functions as F

    ok = reduce(
        lambda a, b: a | b,
        (
            (F.col("machine_type") == machine_type) & activity.isin(list(activities))
            for machine_type, activities in ACTIVITIES.items()
        ),
    )
    return ~_known_type() | ok


def check_activities(frame: DataFrame, *, min_epoch_s: float, max_epoch_s: float) -> DataFrame:
    """Judge ``machine_activity`` rows (:func:`etl.export.adapt.activity_rows`).

    Args:
        frame: adapted segments; may include context rows (the segment before
            each machine's cut) so that an overlap across the cut is seen.
        min_epoch_s: earliest plausible time (``preprocess.min_valid_epoch_s``).
        max_epoch_s: latest plausible time (now + ``preprocess.max_future_s``).
    """
    from pyspark.sql import functions as F

    rules = _common_rules("start_time", "end_time", min_epoch_s, max_epoch_s)
    rules[UNKNOWN_ACTIVITY] = _fails(_taxonomy_contains(F.col("activity")))
    confidence = F.col("confidence")
    rules[CONFIDENCE_OUT_OF_RANGE] = _fails(
        ~F.isnan(confidence) & (confidence >= 0) & (confidence <= 1)
    )
    rules[OVERLAPPING_SEGMENT] = _overlaps_previous("start_time", "end_time")
    return with_reject_reason(frame, rules)


def _phase_columns(machine_type: str) -> list[str]:
    return [f"{activity}_s" for activity in ACTIVITIES[machine_type]]


def _by_type(values: Mapping[str, Column]) -> Column:
    """The column of the row's machine type (null for an unknown type)."""
    from pyspark.sql import functions as F

    items = iter(values.items())
    machine_type, value = next(items)
    chosen = F.when(F.col("machine_type") == machine_type, value)
    for machine_type, value in items:
        chosen = chosen.when(F.col("machine_type") == machine_type, value)
    return chosen


def check_cycles(frame: DataFrame, *, min_epoch_s: float, max_epoch_s: float) -> DataFrame:
    """Judge ``machine_cycle`` rows (:func:`etl.export.adapt.cycle_rows`).

    Phases are the ``<activity>_s`` columns of the row's machine type; a null
    one counts as zero seconds. They must not exceed the duration and must
    equal the seconds the cycle has data for (``data_coverage * duration_s``)
    within :data:`PHASE_TOLERANCE_S`; the other types' phase columns must be null.

    Args:
        frame: adapted cycles; may include context rows (see :func:`check_activities`).
        min_epoch_s: earliest plausible time (``preprocess.min_valid_epoch_s``).
        max_epoch_s: latest plausible time (now + ``preprocess.max_future_s``).
    """
    from pyspark.sql import functions as F

    duration = F.col("duration_s").cast("double")
    coverage = F.col("data_coverage").cast("double")
    phase_sum = _by_type(
        {
            machine_type: reduce(
                add,
                (
                    F.coalesce(F.col(c).cast("double"), F.lit(0.0))
                    for c in _phase_columns(machine_type)
                ),
            )
            for machine_type in ACTIVITIES
        }
    )
    negative = _by_type(
        {
            machine_type: reduce(
                lambda a, b: a | b,
                (F.coalesce(F.col(c) < 0, F.lit(False)) for c in _phase_columns(machine_type)),
            )
            for machine_type in ACTIVITIES
        }
    )
    foreign = _by_type(
        {
            machine_type: reduce(
                lambda a, b: a | b,
                (
                    F.col(c).isNotNull()
                    for c in PHASE_COLUMNS
                    if c not in _phase_columns(machine_type)
                ),
            )
            for machine_type in ACTIVITIES
        }
    )
    bounds = _epoch("cycle_end") - _epoch("cycle_start")
    rules = _common_rules("cycle_start", "cycle_end", min_epoch_s, max_epoch_s)
    rules[NON_POSITIVE_DURATION] = rules[NON_POSITIVE_DURATION] | _fails(duration > 0)
    rules[DURATION_MISMATCH] = _fails(F.abs(duration - bounds) <= ROUNDING_S)
    rules[NEGATIVE_PHASE] = F.coalesce(negative, F.lit(False))
    rules[PHASES_EXCEED_DURATION] = _fails(~_known_type() | (phase_sum <= duration + ROUNDING_S))
    rules[PHASES_MISMATCH_COVERAGE] = _fails(
        ~_known_type() | (F.abs(phase_sum - coverage * duration) <= PHASE_TOLERANCE_S)
    )
    rules[COVERAGE_OUT_OF_RANGE] = _fails(~F.isnan(coverage) & (coverage >= 0) & (coverage <= 1))
    rules[FOREIGN_PHASE] = F.coalesce(foreign, F.lit(False))
    rules[OVERLAPPING_CYCLE] = _overlaps_previous("cycle_start", "cycle_end")
    return with_reject_reason(frame, rules)


def rejection_summary(reasons: Mapping[str, int], rejected: int) -> str | None:
    """``"3 rows rejected: 2 overlaps the previous segment, 1 ..."`` (None when none were).

    Args:
        reasons: how many rejected rows failed each rule (a row may fail several).
        rejected: how many rows were rejected.
    """
    if rejected == 0:
        return None
    counted = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    detail = ", ".join(f"{count} {reason}" for reason, count in counted)
    noun = "row" if rejected == 1 else "rows"
    return f"{rejected} {noun} rejected: {detail}" if detail else f"{rejected} {noun} rejected"
