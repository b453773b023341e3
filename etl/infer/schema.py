"""The inference outputs: three Delta tables under ``{processed_url}/{pipeline}/inference/``.

They are the raw, reproducible record of what a model said (the dump that
``etl export`` converts and loads into the external database), so every row
carries the registered model version, the StateVectors Delta version it was
computed from and the inference run that wrote it.

Times are integer unix seconds, like the StateVectors' ``ts``; ``end`` and
``cycle_end`` are exclusive. A cycles row has one ``<activity>_s`` column for
every activity of every machine type (:data:`PHASE_COLUMNS`); the columns of
activities outside the row's machine type are null.

Which rows an inference run rewrote: an :class:`etl.state.domain.InferenceRun`
carries ``input_versions = {"statevectors_version": int, "model": "name/version",
"cuts": {machine_uuid: cut}}``. For every machine in ``cuts`` the run replaced
all its segments with ``start >= cut`` and all its cycles with
``cycle_start >= cut`` (and nothing before ``cut``). The export replaces the
same ranges in the external database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.config import ACTIVITIES

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

SECONDS = "seconds"
SEGMENTS = "segments"
CYCLES = "cycles"
TABLES = (SECONDS, SEGMENTS, CYCLES)

ALL_ACTIVITIES: tuple[str, ...] = tuple(
    dict.fromkeys(a for activities in ACTIVITIES.values() for a in activities)
)
"""Every activity of every machine type, in taxonomy order of first appearance."""

PHASE_COLUMNS: tuple[str, ...] = tuple(f"{a}_s" for a in ALL_ACTIVITIES)
"""Seconds per activity within a cycle (the results contract's ``<activity>_s``)."""

LOADED_ACTIVITIES: dict[str, tuple[str, ...]] = {
    "dumper": ("hauling",),
    "excavator": (),
    "wheel_loader": ("carrying",),
}
"""Activities during which a machine travels loaded (for ``distance_loaded_m``)."""

EMPTY_ACTIVITIES: dict[str, tuple[str, ...]] = {
    "dumper": ("returning",),
    "excavator": (),
    "wheel_loader": ("returning",),
}
"""Activities during which a machine travels empty (for ``distance_empty_m``)."""

LOAD_ACTIVITY: dict[str, str] = {
    "dumper": "loading",
    "excavator": "digging",
    "wheel_loader": "loading",
}
"""Where ``load_lat``/``load_lon`` are taken: the mean position over this activity."""

DUMP_ACTIVITY: dict[str, str] = {
    "dumper": "dumping",
    "excavator": "dumping",
    "wheel_loader": "dumping",
}
"""Where ``dump_lat``/``dump_lon`` are taken: the mean position over this activity."""

PROVENANCE = ("model_version", "statevectors_version", "inference_run_id")


def table_url(output_url: str, table: str) -> str:
    """``{output_url}/inference/{table}`` for one of :data:`TABLES`."""
    if table not in TABLES:
        raise ValueError(f"unknown inference table {table!r}")
    return f"{output_url}/inference/{table}"


def _provenance() -> list[tuple[str, str, bool]]:
    return [
        ("model_version", "string", False),
        ("statevectors_version", "long", False),
        ("inference_run_id", "long", False),
    ]


def _struct(fields: list[tuple[str, str, bool]]) -> StructType:
    from pyspark.sql.types import (
        ArrayType,
        BooleanType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    types = {
        "string": StringType(),
        "long": LongType(),
        "double": DoubleType(),
        "boolean": BooleanType(),
        "array<double>": ArrayType(DoubleType(), containsNull=False),
    }
    return StructType([StructField(n, types[t], nullable) for n, t, nullable in fields])


def seconds_schema() -> StructType:
    """Per machine and second: the smoothed activity, its confidence and all class scores.

    Partitioned by ``machine_uuid`` and ``day`` (UTC date of ``ts``) like the StateVectors.
    """
    return _struct(
        [
            ("machine_uuid", "string", False),
            ("machine_type", "string", False),
            ("ts", "long", False),
            ("activity", "string", False),
            ("confidence", "double", False),
            ("raw_activity", "string", False),
            ("probabilities", "array<double>", False),
            *_provenance(),
            ("day", "string", False),
        ]
    )


def segments_schema() -> StructType:
    """Runs of one activity: ``[start, end)`` seconds and the mean confidence."""
    return _struct(
        [
            ("machine_uuid", "string", False),
            ("machine_type", "string", False),
            ("start", "long", False),
            ("end", "long", False),
            ("activity", "string", False),
            ("duration_s", "long", False),
            ("confidence", "double", False),
            *_provenance(),
        ]
    )


def cycles_schema() -> StructType:
    """Work cycles: phase seconds, distances and speeds loaded/empty, where it loaded and dumped."""
    return _struct(
        [
            ("machine_uuid", "string", False),
            ("machine_type", "string", False),
            ("cycle_start", "long", False),
            ("cycle_end", "long", False),
            ("duration_s", "long", False),
            *((c, "double", True) for c in PHASE_COLUMNS),
            ("distance_loaded_m", "double", True),
            ("distance_empty_m", "double", True),
            ("avg_speed_loaded_kmh", "double", True),
            ("avg_speed_empty_kmh", "double", True),
            ("load_lat", "double", True),
            ("load_lon", "double", True),
            ("dump_lat", "double", True),
            ("dump_lon", "double", True),
            ("is_complete", "boolean", False),
            ("data_coverage", "double", False),
            *_provenance(),
        ]
    )
