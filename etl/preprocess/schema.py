"""Column names and types of the preprocessing frames, declared once.

Readers, writers, the pandas step and the tests all take their columns from
here. The Spark ``StructType`` builders import pyspark inside the function so
that the pure pandas logic never needs a JVM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

IMU_AXES = ("acc_x", "acc_y", "acc_z")
IMU_MEAN_COLUMNS = tuple(f"{axis}_mean" for axis in IMU_AXES)
IMU_STD_COLUMNS = tuple(f"{axis}_std" for axis in IMU_AXES)
IMU_SECOND_VALUE_COLUMNS = (*IMU_MEAN_COLUMNS, *IMU_STD_COLUMNS)

GPS_COLUMNS = ("latitude", "longitude", "altitude", "speed", "heading")
"""GPS channels of a raw fix and of a StateVector."""
GPS_INPUT_COLUMNS = ("timestamp", *GPS_COLUMNS)
"""What :func:`etl.preprocess.resample_machine` reads from the GPS frame."""

IMU_SECONDS_DTYPES: dict[str, str] = {
    "ts": "int64",
    "n": "int64",
    **dict.fromkeys(IMU_SECOND_VALUE_COLUMNS, "float64"),
    "t_first": "float64",
    "t_last": "float64",
}
"""Per-second IMU statistics: window ``ts - 0.5 <= timestamp < ts + 0.5``.

``n`` counts the samples, the means and population standard deviations are
over them, ``t_first`` and ``t_last`` are their earliest and latest
timestamps (needed for the exact coverage rule).
"""
IMU_SECONDS_COLUMNS = tuple(IMU_SECONDS_DTYPES)

STATEVECTOR_DTYPES: dict[str, str] = {
    "machine_uuid": "object",
    "ts": "int64",
    **dict.fromkeys(GPS_COLUMNS, "float64"),
    **dict.fromkeys(IMU_SECOND_VALUE_COLUMNS, "float64"),
    "gps_filled": "bool",
    "imu_filled": "bool",
    "imu_samples": "int32",
    "gps_outliers": "int32",
}
"""StateVector columns in order, with their pandas dtypes.

The contract's columns, then two extras for data-quality reporting:
``imu_samples`` (IMU samples in the second's window) and ``gps_outliers``
(raw fixes of that second rejected as multipath jumps).
"""
STATEVECTOR_COLUMNS = tuple(STATEVECTOR_DTYPES)

_NOT_NULL = frozenset(
    {"machine_uuid", "ts", "gps_filled", "imu_filled", "imu_samples", "gps_outliers"}
)
_SPARK_TYPES = {
    "object": "StringType",
    "int64": "LongType",
    "Int64": "LongType",
    "int32": "IntegerType",
    "float64": "DoubleType",
    "bool": "BooleanType",
}


def _struct(dtypes: dict[str, str], not_null: frozenset[str]) -> StructType:
    """A Spark schema from pandas dtypes; pyspark is imported only here."""
    from pyspark.sql import types

    return types.StructType(
        [
            types.StructField(name, getattr(types, _SPARK_TYPES[dtype])(), name not in not_null)
            for name, dtype in dtypes.items()
        ]
    )


def statevector_struct() -> StructType:
    """The StateVectors table schema, also the ``applyInPandas`` result schema."""
    return _struct(STATEVECTOR_DTYPES, _NOT_NULL)


PARTITION_DAY = "day"
"""The StateVectors table's partition column besides the machine: the UTC date of
``ts`` (ISO, ``YYYY-MM-DD``), as :func:`etl.io.delta.utc_day` gives it."""


def statevector_table_struct() -> StructType:
    """The StateVectors table's schema: the StateVector columns, then ``day``."""
    from pyspark.sql import types

    return statevector_struct().add(PARTITION_DAY, types.StringType(), False)
