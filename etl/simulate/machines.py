"""Who is in the fleet: identities, per-machine character, loggers and shift plans.

Every property of machine ``i`` is derived from ``(seed, i)`` alone, never
from the fleet size or from other machines, so a machine can be simulated
in any process and keeps its identity when the fleet grows.
"""

from __future__ import annotations

import functools
import math
import uuid
from dataclasses import dataclass, replace

import numpy as np

from etl.simulate.noise import derive_rng
from etl.simulate.settings import SimulationSettings
from etl.simulate.site import site_layout
from etl.simulate.timeline import OFF, Interruption

ACTIVITIES: dict[str, tuple[str, ...]] = {
    "dumper": ("idle", "queuing", "loading", "hauling", "dumping", "returning"),
    "excavator": ("idle", "digging", "swinging_loaded", "dumping", "swinging_empty", "traveling"),
    "wheel_loader": ("idle", "loading", "carrying", "dumping", "returning"),
}
"""Activity taxonomy per machine type, from the raw-data contract."""

GPS_COLUMNS: tuple[str, ...] = ("latitude", "longitude", "altitude", "speed", "heading")
ACC_COLUMNS: tuple[str, ...] = ("acc_x", "acc_y", "acc_z")
GYRO_COLUMNS: tuple[str, ...] = ("gyro_x", "gyro_y", "gyro_z")
EXTRA_COLUMNS: tuple[str, ...] = ("can_engine_rpm", "j1939_fuel_rate", "oem_state")
"""Columns some loggers add; the pipeline must ignore them."""

# Stream ids: each purpose draws from its own generator, so switching a fault
# off does not change the trajectory, and the labels need no sensor draws.
STREAM_UUID, STREAM_PROFILE, STREAM_TIMELINE, STREAM_GAPS = 0, 1, 2, 3
STREAM_FAULTS, STREAM_SENSORS, STREAM_UPLOAD = 4, 5, 6
STREAM_MOUNTING = 7


@dataclass(frozen=True)
class LoggerProfile:
    """The on-board unit of one machine: what it records and how it writes it.

    Attributes:
        has_gyro: Older loggers have no gyroscope.
        has_hdop: Some loggers omit hdop.
        extras: Extra CAN/OEM columns written on GPS rows.
        merge_rate: Share of fixes merged into the IMU row with the same timestamp.
        column_order: Order of the columns in the file.
        acc_bias: Accelerometer bias per axis, m/s^2.
        gyro_bias: Gyroscope bias per axis, deg/s.
        misalignment: Mounting (roll, pitch, yaw), radians: a small error of an
            aligned unit, or any orientation (``SimulationSettings.mounting``).
    """

    has_gyro: bool
    has_hdop: bool
    extras: tuple[str, ...]
    merge_rate: float
    column_order: tuple[str, ...]
    acc_bias: tuple[float, float, float]
    gyro_bias: tuple[float, float, float]
    misalignment: tuple[float, float, float]


@dataclass(frozen=True)
class MachineProfile:
    """Identity and character of one machine.

    Attributes:
        index: Position in the fleet.
        uuid: Lowercase canonical UUID.
        machine_type: One of :data:`MACHINE_TYPES`.
        speed_factor: How fast this machine and its operators drive.
        timing_factor: How long its operators take for a work step.
        vibration_factor: How rough the machine rides.
        antenna: GPS antenna offset (forward, right, height) from the
            reference point, metres.
        home: Face class (dumper), face slot (excavator) or pad slot
            (wheel loader).
        logger: The on-board unit.
    """

    index: int
    uuid: str
    machine_type: str
    speed_factor: float
    timing_factor: float
    vibration_factor: float
    antenna: tuple[float, float, float]
    home: int
    logger: LoggerProfile

    @property
    def activities(self) -> tuple[str, ...]:
        """The taxonomy of this machine's type."""
        return ACTIVITIES[self.machine_type]


def machine_uuid(seed: int, index: int) -> str:
    """The deterministic, lowercase canonical UUID of machine ``index``."""
    raw = derive_rng(seed, index, STREAM_UUID).bytes(16)
    return str(uuid.UUID(bytes=raw, version=4))


def uuid_of(settings: SimulationSettings, index: int) -> str:
    """The machine's UUID: the configured one, else derived from the seed."""
    if settings.machine_uuids is not None:
        return settings.machine_uuids[index]
    return machine_uuid(settings.seed, index)


def machine_type(settings: SimulationSettings, index: int) -> str:
    """The type of machine ``index``: explicit, or a smooth weighted round robin over ``type_mix``.

    The round robin only looks at indices below ``index``, so a machine keeps
    its type when machines are added to the fleet.
    """
    if settings.machine_types is not None:
        return settings.machine_types[index]
    names = [name for name, _ in settings.type_mix]
    weights = np.array([weight for _, weight in settings.type_mix], dtype=np.float64)
    weights = weights / weights.sum()
    counts = np.zeros(len(names))
    chosen = 0
    for step in range(index + 1):
        chosen = int(np.argmax(weights * (step + 1) - counts))
        counts[chosen] += 1
    return names[chosen]


def _logger(settings: SimulationSettings, rng: np.random.Generator) -> LoggerProfile:
    has_gyro = bool(rng.random() >= settings.older_logger_fraction)
    has_hdop = bool(rng.random() >= settings.hdop_missing_fraction)
    extras: tuple[str, ...] = ()
    if rng.random() < settings.extra_column_fraction:
        count = int(rng.integers(1, len(EXTRA_COLUMNS) + 1))
        extras = tuple(sorted(rng.choice(EXTRA_COLUMNS, size=count, replace=False).tolist()))
    merge_rate = (
        settings.merged_row_rate if rng.random() < settings.merging_logger_fraction else 0.0
    )
    columns = ["timestamp", *GPS_COLUMNS, *(["hdop"] if has_hdop else []), *ACC_COLUMNS]
    columns += [*(GYRO_COLUMNS if has_gyro else ()), *extras]
    if rng.random() < 0.3:
        columns = [str(name) for name in rng.permutation(columns)]
    return LoggerProfile(
        has_gyro=has_gyro,
        has_hdop=has_hdop,
        extras=extras,
        merge_rate=merge_rate,
        column_order=tuple(columns),
        acc_bias=tuple(float(v) for v in rng.normal(0.0, 0.05, 3)),
        gyro_bias=tuple(float(v) for v in rng.normal(0.0, 0.3, 3)),
        misalignment=tuple(float(v) for v in np.radians(rng.normal(0.0, 1.0, 3))),
    )


def machine_profile(settings: SimulationSettings, index: int) -> MachineProfile:
    """Everything that makes machine ``index`` itself, derived from the seed."""
    rng = derive_rng(settings.seed, index, STREAM_PROFILE)
    kind = machine_type(settings, index)
    site = site_layout(settings.site_seed)  # the site's operators drive and work at its pace
    antenna = {
        "dumper": (3.0, 0.0, 6.5),
        "excavator": (-2.5, 0.8, 4.0),
        "wheel_loader": (-1.5, 0.0, 3.8),
    }[kind]
    home = int(rng.integers(0, 1 << 16))
    profile = MachineProfile(
        index=index,
        uuid=uuid_of(settings, index),
        machine_type=kind,
        speed_factor=float(np.clip(rng.normal(1.0, 0.06), 0.85, 1.15)) * site.speed_scale,
        timing_factor=float(np.clip(rng.normal(1.0, 0.1), 0.75, 1.3)) * site.timing_scale,
        vibration_factor=float(np.clip(rng.normal(1.0, 0.15), 0.6, 1.5)),
        antenna=antenna,
        home=home,
        logger=_logger(settings, rng),
    )
    if settings.mounting == "aligned":
        return profile
    # any orientation: gravity may land on any axis; a stream of its own, so that an
    # aligned fleet stays the same draw for draw
    turn = derive_rng(settings.seed, index, STREAM_MOUNTING)
    angles = (
        turn.uniform(-np.pi, np.pi),
        turn.uniform(-np.pi / 2, np.pi / 2),
        turn.uniform(-np.pi, np.pi),
    )
    logger = replace(profile.logger, misalignment=tuple(float(a) for a in angles))
    return replace(profile, logger=logger)


def shift_breaks(
    settings: SimulationSettings, rng: np.random.Generator, idle: int
) -> list[Interruption]:
    """Idle pauses of a round-the-clock shift system, staggered per machine.

    Each shift opens with a handover, has a crib break at a quarter and three
    quarters and a meal break at half time, and now and then a long standby
    (refuelling, a breakdown, nothing to load).
    """
    t0, duration = settings.start_timestamp, settings.duration_seconds
    shift = settings.shift_hours * 3600.0
    first = math.floor(t0 / 86_400.0) * 86_400.0 + settings.shift_start_hour * 3600.0
    first -= math.ceil((first - t0) / shift + 1) * shift
    pauses: list[Interruption] = []
    begin = first
    while begin < t0 + duration:
        plan = [
            (0.0, 300.0, 1200.0, 2400.0),
            (0.25, 1200.0, 600.0, 900.0),
            (0.5, 1800.0, 1800.0, 2700.0),
            (0.75, 1200.0, 600.0, 900.0),
        ]
        if rng.random() < 0.15:
            plan.append((rng.uniform(0.1, 0.9), 0.0, 1800.0, 7200.0))
        for share, spread, shortest, longest in plan:
            at = begin + share * shift + rng.uniform(-spread, spread) - t0
            length = rng.uniform(shortest, longest) * min(1.0, shift / 43_200.0)
            if 0 <= at < duration:
                pauses.append(Interruption(int(at), max(1, int(length)), idle))
        begin += shift
    return pauses


def power_off_gaps(settings: SimulationSettings, index: int) -> list[Interruption]:
    """Power-off periods, at ``faults.gap`` per batch-length slot, lasting 2 to 40 minutes."""
    rate = settings.faults.gap
    slots = math.ceil(settings.duration_seconds / settings.batch_seconds)
    rng = derive_rng(settings.seed, index, STREAM_GAPS)
    draws = rng.random((slots, 3))
    gaps = []
    for slot, (hit, where, length) in enumerate(draws):
        if hit < rate:
            start = int((slot + where) * settings.batch_seconds)
            gaps.append(Interruption(start, int(120 + length * 2280), OFF))
    return gaps


def operator_factor(settings: SimulationSettings, profile: MachineProfile, second: int) -> float:
    """Timing factor of the operator on shift at ``second`` (each shift has its own)."""
    shift = settings.shift_hours * 3600.0
    offset = settings.start_timestamp + second - settings.shift_start_hour * 3600.0
    return _operator_factor(
        settings.seed, profile.index, int(offset // shift), profile.timing_factor
    )


@functools.lru_cache(maxsize=4096)
def _operator_factor(seed: int, index: int, shift_index: int, timing_factor: float) -> float:
    rng = derive_rng(seed, index, STREAM_PROFILE, shift_index + (1 << 32))
    return timing_factor * float(np.clip(rng.normal(1.0, 0.08), 0.8, 1.25))
