"""``etl simulate``: a simulated fleet's raw batches, announcements and labels.

The simulator (:mod:`etl.simulate`) is pure; this step stores its files in the
raw location, announces them on Kafka in upload order (late and out-of-order
uploads included), writes the ground-truth labels, and records the faults it
injected next to the labels (``{labels_url}/_simulation/``) so that a test can
check each one was handled.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections import Counter
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from etl.io.announce import BatchAnnouncer, KafkaAnnouncer, NullAnnouncer
from etl.io.objectstore import open_store
from etl.simulate import (
    FaultRates,
    SimulatedBatch,
    SimulationSettings,
    fleet_assets,
    fleet_labels,
    simulate_fleet,
    write_batches,
)
from etl.stack.services import bucket_of

if TYPE_CHECKING:
    from collections.abc import Iterator

    from etl.bootstrap import Context

log = logging.getLogger(__name__)


def simulation_settings(
    ctx: Context, *, machines: int | None, days: float, seed: int, start: date | datetime | None
) -> SimulationSettings:
    """Settings for the configured assets: the first ``machines`` of them, their UUIDs and types.

    More machines than configured assets are simulated with seed-derived UUIDs
    (they are not part of the pipeline and discovery ignores them).
    """
    config = ctx.config
    count = machines or len(config.assets)
    assets = config.assets[:count]
    simulate = config.simulate
    faults = FaultRates.none() if simulate.no_faults else FaultRates(**simulate.faults)
    if start is None:
        start = config.pipeline.start_date or date(2026, 1, 5)
    if isinstance(start, date) and not isinstance(start, datetime):
        start = datetime.combine(start, datetime.min.time(), UTC)
    generated = (
        fleet_assets(SimulationSettings(machines=count, seed=seed))[len(assets) :]
        if count > len(assets)
        else []
    )
    return SimulationSettings(
        machines=count,
        days=days,
        seed=seed,
        start=start,
        machine_uuids=tuple([a.uuid for a in assets] + [uuid for uuid, _ in generated]),
        machine_types=tuple([a.type for a in assets] + [kind for _, kind in generated]),
        gps_noise_m=simulate.gps_noise_m,
        speed_noise=simulate.speed_noise,
        mounting=simulate.mounting,
        site_seed=simulate.site_seed,
        bucket=bucket_of(config.storage.raw_url) or "raw-telemetry",
        faults=faults,
    )


def _announcer(ctx: Context) -> BatchAnnouncer:
    if ctx.config.catalog.kind == "kafka":
        return KafkaAnnouncer(ctx.config.catalog.kafka)
    return NullAnnouncer()


def _write_labels(ctx: Context, settings: SimulationSettings, faults: list[dict[str, Any]]) -> int:
    """Labels per machine and run, plus the record of injected faults; label rows written."""
    url = ctx.config.storage.labels_url
    if url is None:
        log.warning("simulate: storage.labels_url is not set; labels and faults not written")
        return 0
    store = open_store(url, ctx.config.storage.s3)
    labels = fleet_labels(settings, workers=ctx.config.simulate.workers)
    start_ms = int(settings.start.timestamp() * 1000)
    for machine, frame in labels.groupby("machine_uuid", sort=True):
        sink = io.BytesIO()
        frame.reset_index(drop=True).to_parquet(sink, index=False)
        store.put(f"{machine}/{start_ms}.parquet", sink.getvalue())
    record = {
        "seed": settings.seed,
        "start": settings.start.isoformat(),
        "days": settings.days,
        "machines": list(settings.machine_uuids or ()),
        "faults": faults,
    }
    store.put(f"_simulation/{start_ms}-{settings.seed}.json", json.dumps(record).encode())
    return len(labels)


def simulate(
    ctx: Context,
    *,
    machines: int | None = None,
    days: float = 1.0,
    seed: int = 0,
    start: date | datetime | None = None,
) -> dict[str, Any]:
    """Write, announce and label a simulated fleet; returns counts and throughput."""
    settings = simulation_settings(ctx, machines=machines, days=days, seed=seed, start=start)
    started = time.monotonic()
    messages: list[tuple[float, dict[str, Any]]] = []
    faults: list[dict[str, Any]] = []

    def remember(batches: Iterator[SimulatedBatch]) -> Iterator[SimulatedBatch]:
        for batch in batches:
            messages.append((batch.upload_time, batch.message))
            faults.extend(
                {"kind": f.kind, "machine_uuid": f.machine_uuid, "key": f.key, "detail": f.detail}
                for f in batch.faults
            )
            yield batch

    workers = ctx.config.simulate.workers
    written = write_batches(
        remember(simulate_fleet(settings, workers=workers)), ctx.raw_store.put, workers=8
    )
    messages.sort(key=lambda item: item[0])
    announcer = _announcer(ctx)
    try:
        announced = announcer.announce(message for _, message in messages)
    finally:
        announcer.close()
    label_rows = _write_labels(ctx, settings, faults)
    seconds = time.monotonic() - started
    rows = sum(int(message.get("rows") or 0) for _, message in messages)
    summary = {
        "machines": settings.machines,
        "days": settings.days,
        "files": written,
        "announced": announced,
        "rows": rows,
        "label_rows": label_rows,
        "faults": dict(sorted(Counter(f["kind"] for f in faults).items())),
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds) if seconds else None,
        "files_per_s": round(written / seconds, 1) if seconds else None,
    }
    log.info("simulate: %s", summary)
    return summary
