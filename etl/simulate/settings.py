"""Settings of the fleet simulator.

Frozen dataclasses rather than pydantic: the simulator is a pure library that
tests, the CLI and benchmarks build directly in code, and the values are
validated once here so that no generator has to defend itself again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Literal

MACHINE_TYPES: tuple[str, ...] = ("dumper", "excavator", "wheel_loader")
"""The machine types of the raw-data contract."""


@dataclass(frozen=True)
class FaultRates:
    """How often each field fault of the raw-data contract is injected.

    Every rate is a probability in [0, 1]; 0 switches the fault off. Rates are
    per batch file unless stated otherwise, so the expected number of faults
    of a kind is ``rate * number_of_batches``.

    Attributes:
        late_upload: A file is uploaded hours after it was recorded.
        out_of_order_upload: A file is uploaded after one to three of its
            successors.
        duplicate_same_key: The same file is announced twice under its key.
        duplicate_other_key: The same content is uploaded again under a key
            whose first_timestamp_ms is one millisecond later.
        overlap: A file starts some seconds before its predecessor ended, so
            both carry the same samples.
        gap: Per ten-minute slot, the machine is switched off for minutes and
            the logger restarts its batch grid at power-on.
        rows_shuffled: Rows inside the file are out of timestamp order.
        rows_duplicated: Some rows inside the file are repeated.
        corrupt_file: The bytes are not parquet at all.
        truncated_file: A valid parquet file cut short (no footer).
        missing_column: A required column is absent.
        wrong_clock: Every timestamp of the file is in 1970 or in the future.
    """

    late_upload: float = 0.01
    out_of_order_upload: float = 0.02
    duplicate_same_key: float = 0.01
    duplicate_other_key: float = 0.005
    overlap: float = 0.01
    gap: float = 0.003
    rows_shuffled: float = 0.005
    rows_duplicated: float = 0.005
    corrupt_file: float = 0.002
    truncated_file: float = 0.002
    missing_column: float = 0.002
    wrong_clock: float = 0.002

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {item.name} must be in [0, 1], got {value}")

    @classmethod
    def none(cls) -> FaultRates:
        """Rates that inject no fault at all: a clean fleet."""
        return cls(**{item.name: 0.0 for item in fields(cls)})

    @classmethod
    def kinds(cls) -> tuple[str, ...]:
        """The names of all fault kinds, in declaration order."""
        return tuple(item.name for item in fields(cls))


@dataclass(frozen=True)
class SimulationSettings:
    """What to simulate, and how noisy the sensors and the field are.

    The defaults describe a plausible fleet; every noise level can be set to
    0 to get clean data (for example to check that a de-noiser does not bend
    a clean track).

    Attributes:
        machines: Number of machines in the fleet.
        days: Simulated duration in days; fractions are allowed (tests use a
            couple of hours).
        seed: Master seed; every machine derives its own streams from it, so
            one machine can be generated alone and in any process.
        start: Start of the simulation; must be timezone-aware.
        batch_seconds: Nominal length of one raw batch file.
        gps_hz: GPS fix rate; must divide ``imu_hz``.
        imu_hz: IMU sample rate.
        type_mix: Weights of the machine types, assigned by index with a
            smooth round robin, so a machine keeps its type when the fleet
            grows.
        machine_types: Explicit type per machine index; overrides
            ``type_mix`` when given and must have ``machines`` entries.
        machine_uuids: Explicit UUID per machine index (a pipeline config's
            assets); derived from the seed when None.
        gps_noise_m: Standard deviation of white horizontal GPS noise per
            axis, in metres (vertical noise is 1.5 times that).
        gps_bias_m: Standard deviation of slowly wandering GPS error
            (atmosphere, satellite geometry), in metres.
        speed_noise: Standard deviation of white noise on GNSS speed, m/s.
        multipath_rate: Probability per fix of a multipath jump of hundreds
            of metres that lasts one fix.
        gps_dropout_rate: Probability per fix that a dropout of several
            seconds starts; three times higher at the pit floor.
        timestamp_jitter_s: Standard deviation of logger timestamp jitter,
            clipped to 0.45 IMU periods so samples keep their order.
        imu_noise: White sensor noise on each accelerometer axis, m/s^2.
        imu_saturation_g: Accelerometer range; readings are clipped to it.
        older_logger_fraction: Share of machines whose logger has no gyro.
        hdop_missing_fraction: Share of machines whose logger omits hdop.
        extra_column_fraction: Share of machines whose logger adds CAN/OEM
            columns the pipeline must ignore.
        merging_logger_fraction: Share of machines whose logger merges a GPS
            fix into the IMU row with the same timestamp.
        merged_row_rate: On merging loggers, the share of fixes merged.
        bucket: Raw bucket name put into the Kafka message.
        pit_latitude: Latitude of the pit centre, degrees.
        pit_longitude: Longitude of the pit centre, degrees.
        shift_start_hour: UTC hour at which a shift starts.
        shift_hours: Shift length; shifts follow each other around the clock.
        faults: Field fault rates.
        site_seed: Which pit the fleet works in: 0 is the reference pit, any
            other seed another layout, grade, haul distances and pace
            (:func:`etl.simulate.site.site_layout`).
        mounting: How loggers sit: ``aligned`` with the body (x forward, z up,
            within a degree or so) or ``any`` orientation per machine (gravity
            on any axis), as real units are strapped in where there is room.
    """

    machines: int = 10
    days: float = 1.0
    seed: int = 0
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    batch_seconds: int = 600
    gps_hz: int = 1
    imu_hz: int = 10
    type_mix: tuple[tuple[str, float], ...] = (
        ("dumper", 0.6),
        ("excavator", 0.2),
        ("wheel_loader", 0.2),
    )
    machine_types: tuple[str, ...] | None = None
    machine_uuids: tuple[str, ...] | None = None
    gps_noise_m: float = 2.0
    gps_bias_m: float = 0.5
    speed_noise: float = 0.3
    multipath_rate: float = 0.0005
    gps_dropout_rate: float = 0.0005
    timestamp_jitter_s: float = 0.02
    imu_noise: float = 0.03
    imu_saturation_g: float = 4.0
    older_logger_fraction: float = 0.2
    hdop_missing_fraction: float = 0.1
    extra_column_fraction: float = 0.3
    merging_logger_fraction: float = 0.3
    merged_row_rate: float = 0.05
    bucket: str = "raw-telemetry"
    pit_latitude: float = -23.36
    pit_longitude: float = 119.73
    shift_start_hour: float = 6.0
    shift_hours: float = 12.0
    faults: FaultRates = field(default_factory=FaultRates)
    mounting: Literal["aligned", "any"] = "aligned"
    site_seed: int = 0

    def __post_init__(self) -> None:
        self._check_fleet()
        self._check_site()
        self._check_rates()
        self._check_noise()

    def _check_fleet(self) -> None:
        if self.machines < 0:
            raise ValueError(f"machines must be >= 0, got {self.machines}")
        if not self.days > 0:
            raise ValueError(f"days must be > 0, got {self.days}")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        if self.batch_seconds < 1:
            raise ValueError(f"batch_seconds must be >= 1, got {self.batch_seconds}")
        if not self.type_mix or any(
            name not in MACHINE_TYPES or weight < 0 for name, weight in self.type_mix
        ):
            raise ValueError(f"type_mix must weigh types from {MACHINE_TYPES}: {self.type_mix}")
        if sum(weight for _, weight in self.type_mix) <= 0:
            raise ValueError("type_mix needs a positive weight")
        if self.machine_types is not None:
            if len(self.machine_types) != self.machines:
                raise ValueError("machine_types must name one type per machine")
            unknown = set(self.machine_types) - set(MACHINE_TYPES)
            if unknown:
                raise ValueError(f"unknown machine types {sorted(unknown)}")
        if self.machine_uuids is not None and len(self.machine_uuids) != self.machines:
            raise ValueError("machine_uuids must name one UUID per machine")
        if not 0 < self.shift_hours <= 24:
            raise ValueError(f"shift_hours must be in (0, 24], got {self.shift_hours}")

    def _check_site(self) -> None:
        if self.site_seed < 0:
            raise ValueError(f"site_seed must be >= 0, got {self.site_seed}")
        if self.mounting not in ("aligned", "any"):
            raise ValueError(f"mounting must be 'aligned' or 'any', got {self.mounting!r}")

    def _check_rates(self) -> None:
        if self.gps_hz < 1 or self.imu_hz < 1 or self.imu_hz % self.gps_hz:
            raise ValueError(
                f"gps_hz ({self.gps_hz}) must be >= 1 and divide imu_hz ({self.imu_hz})"
            )
        shares = (
            "multipath_rate",
            "gps_dropout_rate",
            "older_logger_fraction",
            "hdop_missing_fraction",
            "extra_column_fraction",
            "merging_logger_fraction",
            "merged_row_rate",
        )
        for name in shares:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")

    def _check_noise(self) -> None:
        levels = (
            "gps_noise_m",
            "gps_bias_m",
            "speed_noise",
            "timestamp_jitter_s",
            "imu_noise",
        )
        for name in levels:
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite value >= 0, got {value}")
        # Jitter is clipped below half an IMU period so that it never reorders
        # samples: reordering is a separate, explicitly injected fault.
        if self.timestamp_jitter_s > 0.5 / self.imu_hz:
            raise ValueError("timestamp_jitter_s too large for imu_hz")
        if self.imu_saturation_g <= 0:
            raise ValueError("imu_saturation_g must be > 0")

    @property
    def start_timestamp(self) -> float:
        """Start of the simulation as unix seconds."""
        return self.start.timestamp()

    @property
    def duration_seconds(self) -> int:
        """Simulated duration in whole seconds."""
        return max(1, round(self.days * 86_400))
