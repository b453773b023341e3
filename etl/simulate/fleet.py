"""The simulator's public face: batch files, Kafka messages, labels, assets, truth.

Nothing here touches storage or Kafka: files come out as bytes with their
key and message, and the caller decides where they go (see
:func:`write_batches`). Machines are independent, so a fleet is generated
machine by machine, optionally in worker processes.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from etl.simulate.announce import (
    SimulatedBatch,
    announce_file,
    attach_gaps,
    gap_faults,
    overlapped_starts,
)
from etl.simulate.batches import batch_table, plan_batches, windows
from etl.simulate.cycles import machine_timeline
from etl.simulate.faults import InjectedFault, draw_file_faults, upload_schedule
from etl.simulate.machines import MachineProfile, machine_profile, machine_type, uuid_of
from etl.simulate.sensors import SensorModel
from etl.simulate.settings import SimulationSettings
from etl.simulate.site import Site, build_site, site_layout
from etl.simulate.timeline import Timeline, empty_labels, labels_frame

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class MachineRun:
    """Everything simulated for one machine.

    Attributes:
        profile: The machine and its logger.
        batches: Its announced files, in upload order.
        labels: Ground-truth activity intervals (labels contract).
        faults: Every fault injected for this machine.
    """

    profile: MachineProfile
    batches: list[SimulatedBatch]
    labels: pd.DataFrame
    faults: list[InjectedFault]


@functools.lru_cache(maxsize=4)
def _site(seed: int) -> Site:
    return build_site(site_layout(seed))


def _timeline(settings: SimulationSettings, index: int) -> tuple[MachineProfile, Timeline]:
    profile = machine_profile(settings, index)
    return profile, machine_timeline(settings, profile, _site(settings.site_seed))


def fleet_assets(settings: SimulationSettings) -> list[tuple[str, str]]:
    """``(machine_uuid, machine_type)`` of every machine, without simulating anything."""
    return [(uuid_of(settings, i), machine_type(settings, i)) for i in range(settings.machines)]


def machine_labels(settings: SimulationSettings, index: int) -> pd.DataFrame:
    """Ground-truth labels of one machine (cheap: no sensors are rendered)."""
    profile, timeline = _timeline(settings, index)
    return labels_frame(timeline, profile.activities, profile.uuid, settings.start_timestamp)


def fleet_labels(settings: SimulationSettings, workers: int = 1) -> pd.DataFrame:
    """Ground-truth labels of the whole fleet, per the labels contract.

    Args:
        settings: The simulation.
        workers: Processes to use (1 runs in this process).

    Returns:
        Columns ``machine_uuid``, ``start``, ``end`` (exclusive), ``activity``.
    """
    frames = list(
        _map_machines(functools.partial(machine_labels, settings), settings.machines, workers)
    )
    return pd.concat(frames, ignore_index=True) if frames else empty_labels()


def simulate_machine(settings: SimulationSettings, index: int) -> MachineRun:
    """Simulate one machine: its files with their faults, its labels.

    Args:
        settings: The simulation.
        index: Machine index in ``[0, settings.machines)``.

    Returns:
        The machine's run; identical for identical settings.
    """
    profile, timeline = _timeline(settings, index)
    plan = plan_batches(timeline, settings.batch_seconds)
    decisions = [
        draw_file_faults(settings.faults, settings.seed, index, item.number) for item in plan
    ]
    starts = overlapped_starts(plan, decisions)
    ends = [settings.start_timestamp + item.end for item in plan]
    uploads, upload_faults = upload_schedule(ends, decisions)
    model = SensorModel(settings, profile, timeline)
    batches: list[SimulatedBatch] = []
    keys: list[str] = []
    for group in windows(plan):
        first = min(starts[item.number] for item in group)
        window = model.window(first * settings.imu_hz, group[-1].end * settings.imu_hz)
        for item in group:
            table = batch_table(
                window,
                starts[item.number],
                item.end,
                imu_hz=settings.imu_hz,
                gps_hz=settings.gps_hz,
                logger=profile.logger,
            )
            overlap = item.start - starts[item.number]
            previous = keys[-1] if keys else ""
            emitted = announce_file(
                settings,
                profile,
                table,
                faults=decisions[item.number],
                schedule=(uploads[item.number], upload_faults[item.number]),
                overlap=overlap,
                previous_key=previous,
            )
            keys.append(emitted[0].key)
            batches.extend(emitted)
    gaps = gap_faults(settings, profile, timeline, plan, keys)
    batches, unattached = attach_gaps(batches, gaps)
    batches.sort(key=lambda batch: (batch.upload_time, batch.key))
    labels = labels_frame(timeline, profile.activities, profile.uuid, settings.start_timestamp)
    return MachineRun(profile, batches, labels, collect_faults(batches) + unattached)


def simulate_fleet(settings: SimulationSettings, workers: int = 1) -> Iterator[SimulatedBatch]:
    """Every announced file of the fleet, machine after machine, each machine in upload order.

    Args:
        settings: The simulation.
        workers: Processes generating machines in parallel (1 runs here).

    Yields:
        Files with their key, bytes, Kafka message and injected faults.
    """
    for run in _map_machines(
        functools.partial(simulate_machine, settings), settings.machines, workers
    ):
        yield from run.batches


def collect_faults(batches: Iterable[SimulatedBatch]) -> list[InjectedFault]:
    """All faults recorded on the given files (each fault is recorded on exactly one)."""
    return [fault for batch in batches for fault in batch.faults]


def write_batches(
    batches: Iterable[SimulatedBatch], write: Callable[[str, bytes], None], workers: int = 8
) -> int:
    """Write each file through ``write(key, payload)`` from a pool of threads.

    At most ``2 * workers`` writes are in flight, so a lazy stream of
    batches is never held in memory at once. The first failing write
    raises here after the in-flight writes finish.

    Args:
        batches: The files, e.g. from :func:`simulate_fleet`.
        write: Stores one object (object store client, local file writer...).
        workers: Threads.

    Returns:
        Number of writes done (a file announced twice is written twice).
    """
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque[Future[None]] = deque()
        for batch in batches:
            pending.append(pool.submit(write, batch.key, batch.payload))
            while len(pending) >= 2 * max(1, workers):
                pending.popleft().result()
                done += 1
        while pending:
            pending.popleft().result()
            done += 1
    return done


def machine_truth(settings: SimulationSettings, index: int) -> pd.DataFrame:
    """Noise-free GPS of one machine at every nominal fix time, with its activity.

    This is what the sensors would report without noise, dropouts or
    jitter; use it to measure how close a de-noiser gets to the truth.

    Returns:
        Columns ``timestamp``, ``latitude``, ``longitude``, ``altitude``,
        ``speed``, ``heading``, ``activity`` (None while switched off).
    """
    profile, timeline = _timeline(settings, index)
    model = SensorModel(settings, profile, timeline)
    total = int(timeline.duration * settings.gps_hz)
    step = 6 * 3600 * settings.gps_hz
    frames = [model.true_fixes(j, min(j + step, total)) for j in range(0, total, step)]
    frame = pd.concat([pd.DataFrame(f) for f in frames], ignore_index=True)
    names = np.array([*profile.activities, None], dtype=object)
    frame["activity"] = names[frame.pop("code").to_numpy()]
    return frame


def machine_frames(
    settings: SimulationSettings, index: int, seconds: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sensor samples of one machine as two frames, without any file fault.

    For plots and exploration: the same samples the files carry, before
    batching.

    Args:
        settings: The simulation.
        index: Machine index.
        seconds: How much to render from the start (default: everything).

    Returns:
        GPS frame (``timestamp``, GPS columns, ``hdop``) and IMU frame
        (``timestamp``, ``acc_*`` and, when the logger has them, ``gyro_*``).
    """
    profile, timeline = _timeline(settings, index)
    model = SensorModel(settings, profile, timeline)
    end = timeline.duration if seconds is None else min(seconds, timeline.duration)
    step = 6 * 3600
    gps_parts, imu_parts = [], []
    for first in range(0, end, step):
        window = model.window(first * settings.imu_hz, min(first + step, end) * settings.imu_hz)
        gps_parts.append(pd.DataFrame({"timestamp": window.gps_ts, **window.gps}))
        imu = {"timestamp": window.imu_ts}
        imu.update({f"acc_{axis}": window.acc[:, i] for i, axis in enumerate("xyz")})
        if window.gyro is not None:
            imu.update({f"gyro_{axis}": window.gyro[:, i] for i, axis in enumerate("xyz")})
        imu_parts.append(pd.DataFrame(imu))
    return pd.concat(gps_parts, ignore_index=True), pd.concat(imu_parts, ignore_index=True)


def _map_machines(task: Callable[[int], T], count: int, workers: int) -> Iterator[T]:
    """Run ``task`` for machines ``0 .. count - 1``, in order, in up to ``workers`` processes.

    Processes are spawned, not forked: forking a parent that runs threads
    (a JVM gateway, a Kafka client) is unsafe. Callers running this from a
    script need the usual ``if __name__ == "__main__":`` guard.
    """
    if workers <= 1 or count <= 1:
        for index in range(count):
            yield task(index)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        yield from _bounded_map(pool, task, count, workers + 1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _bounded_map(pool: Executor, task: Callable[[int], T], count: int, ahead: int) -> Iterator[T]:
    """Submit tasks in order with at most ``ahead`` results waiting, so memory stays bounded."""
    pending: deque[Future[T]] = deque()
    for index in range(count):
        pending.append(pool.submit(task, index))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
