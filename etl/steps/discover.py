"""``etl discover``: register new raw files in the state store.

Offsets (Kafka) are acknowledged only after the state store committed the
files, so a crash in between re-reads them and registration, idempotent on
``(pipeline, key)``, absorbs the repeat. A malformed announcement is recorded
as a rejected batch with its reason rather than skipped.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from etl.io.catalog import Announcement
from etl.state.domain import BatchSource, NewBatch, RunStatus

if TYPE_CHECKING:
    from etl.bootstrap import Context

log = logging.getLogger(__name__)


def _announced_at(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def to_new_batch(pipeline: str, raw_url: str, announcement: Announcement) -> NewBatch:
    """The state store's record of an announced file."""
    return NewBatch(
        pipeline=pipeline,
        machine_uuid=announcement.machine_uuid,
        key=announcement.key,
        url=f"{raw_url}/{announcement.key}",
        source=BatchSource(announcement.source),
        first_timestamp=announcement.first_timestamp,
        last_timestamp=announcement.last_timestamp,
        rows=announcement.rows,
        size_bytes=announcement.size_bytes,
        kafka_partition=announcement.partition,
        kafka_offset=announcement.offset,
        announced_at=_announced_at(announcement.created_at),
    )


def _before(announcement: Announcement, start_s: float, plausible_from: float) -> bool:
    """Whether a file's data ends before the pipeline starts.

    A file whose clock is implausible (1970) is not "before the start": it is
    registered so that validation rejects it with its reason.
    """
    last = announcement.last_timestamp
    return last is not None and plausible_from <= last < start_s


def discover(ctx: Context) -> dict[str, Any]:
    """Poll the catalog, register what is new, then acknowledge; returns the counts."""
    config = ctx.config
    pipeline = config.pipeline.name
    machines = config.asset_types()
    start_s = (
        datetime.combine(config.pipeline.start_date, datetime.min.time(), UTC).timestamp()
        if config.pipeline.start_date
        else None
    )
    plausible_from = config.preprocess.min_valid_epoch_s
    announcements = ctx.catalog.poll()
    wanted: list[Announcement] = []
    malformed: list[Announcement] = []
    other_machines = before_start = 0
    for announcement in announcements:
        if announcement.error is not None:
            malformed.append(announcement)
        elif announcement.machine_uuid not in machines:
            other_machines += 1
        elif start_s is not None and _before(announcement, start_s, plausible_from):
            before_start += 1
        else:
            wanted.append(announcement)

    raw_url = config.storage.raw_url
    with ctx.uow() as uow:
        run = uow.runs.start(pipeline, "discover")
        new = uow.batches.add_discovered(
            [to_new_batch(pipeline, raw_url, a) for a in wanted], run_id=run.id
        )
        bad = uow.batches.add_discovered(
            [to_new_batch(pipeline, raw_url, a) for a in malformed], run_id=run.id
        )
        reasons = {a.key: a.error for a in malformed}
        for batch in bad:
            uow.batches.mark_rejected(batch.id, reasons[batch.key] or "malformed", run_id=run.id)
        summary = {
            "announcements": len(announcements),
            "new": len(new),
            "already_known": len(wanted) - len(new),
            "malformed": len(bad),
            "other_machines": other_machines,
            "before_start_date": before_start,
        }
        uow.runs.finish(run.id, RunStatus.SUCCEEDED, summary)
        uow.commit()
    ctx.catalog.acknowledge()
    log.info("discover: %s", summary)
    return summary
