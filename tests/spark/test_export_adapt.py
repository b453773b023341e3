"""Adaptors: inference Delta rows -> the results contract's columns and types."""

from __future__ import annotations

from datetime import UTC, datetime

from chispa import assert_df_equality
from pyspark.sql import SparkSession

from etl.export.adapt import MACHINE_ACTIVITY, MACHINE_CYCLE, activity_rows, cycle_rows
from etl.infer.schema import PHASE_COLUMNS, cycles_schema, segments_schema

MACHINE = "5f0c0000-0000-4000-8000-000000000001"
T0 = 1_767_600_000  # 2026-01-05 08:00:00 UTC


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def contract_ddl(table: object) -> str:
    return ", ".join(f"{c.name} {c.spark_type}" for c in table.columns)  # type: ignore[attr-defined]


def test_contract_columns_are_the_results_contract() -> None:
    assert MACHINE_ACTIVITY.column_names == (
        "pipeline",
        "machine_uuid",
        "machine_type",
        "start_time",
        "end_time",
        "activity",
        "confidence",
        "model_version",
    )
    assert MACHINE_ACTIVITY.key == ("pipeline", "machine_uuid", "start_time")
    assert MACHINE_CYCLE.column_names == (
        "pipeline",
        "machine_uuid",
        "machine_type",
        "cycle_start",
        "cycle_end",
        "duration_s",
        *PHASE_COLUMNS,
        "distance_loaded_m",
        "distance_empty_m",
        "avg_speed_loaded_kmh",
        "avg_speed_empty_kmh",
        "load_lat",
        "load_lon",
        "dump_lat",
        "dump_lon",
        "is_complete",
        "data_coverage",
        "model_version",
    )
    assert MACHINE_CYCLE.key == ("pipeline", "machine_uuid", "cycle_start")
    # every dumper phase of the contract's example is there
    for phase in ("idle_s", "queuing_s", "loading_s", "hauling_s", "dumping_s", "returning_s"):
        assert phase in MACHINE_CYCLE.column_names


def test_activity_rows_convert_seconds_to_timestamps(spark: SparkSession) -> None:
    segments = spark.createDataFrame(
        [
            (MACHINE, "dumper", T0, T0 + 30, "loading", 30, 0.875, "m-dumper/3", 7, 12),
            (MACHINE, "dumper", T0 + 30, T0 + 95, "hauling", 65, 0.5, "m-dumper/3", 7, 12),
        ],
        segments_schema(),
    )
    expected = spark.createDataFrame(
        [
            ("p1", MACHINE, "dumper", at(T0), at(T0 + 30), "loading", 0.875, "m-dumper/3"),
            ("p1", MACHINE, "dumper", at(T0 + 30), at(T0 + 95), "hauling", 0.5, "m-dumper/3"),
        ],
        contract_ddl(MACHINE_ACTIVITY),
    )
    assert_df_equality(activity_rows(segments, "p1"), expected, ignore_nullable=True)


def test_cycle_rows_keep_every_phase_column_null_outside_the_taxonomy(
    spark: SparkSession,
) -> None:
    dumper_phases = {"idle_s": 5.0, "queuing_s": 20.0, "loading_s": 100.0}
    dumper_phases |= {"hauling_s": 200.0, "dumping_s": 35.0, "returning_s": 180.0}
    phases = tuple(dumper_phases.get(c) for c in PHASE_COLUMNS)
    cycles = spark.createDataFrame(
        [
            (
                MACHINE,
                "dumper",
                T0,
                T0 + 540,
                540,
                *phases,
                1200.5,
                1100.25,
                21.5,
                24.0,
                -23.5,
                133.25,
                -23.51,
                133.26,
                True,
                1.0,
                "m-dumper/3",
                7,
                12,
            )
        ],
        cycles_schema(),
    )
    expected = spark.createDataFrame(
        [
            (
                "p1",
                MACHINE,
                "dumper",
                at(T0),
                at(T0 + 540),
                540.0,
                *phases,
                1200.5,
                1100.25,
                21.5,
                24.0,
                -23.5,
                133.25,
                -23.51,
                133.26,
                True,
                1.0,
                "m-dumper/3",
            )
        ],
        contract_ddl(MACHINE_CYCLE),
    )
    adapted = cycle_rows(cycles, "p1")
    assert_df_equality(adapted, expected, ignore_nullable=True)
    assert adapted.first()["digging_s"] is None
