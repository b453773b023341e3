"""The batch lifecycle written once, on two primitives each adapter provides.

The SQLAlchemy and in-memory batch repositories differ in how they load a batch
and how they store a status change (``get`` and ``_move``); what each
transition means (which status, which fields, the one-line reason) is the same
and lives here, so the fake cannot drift from production.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from etl.state.domain import Batch, BatchStatus, json_document, one_line


@dataclass(frozen=True)
class FileFacts:
    """What reading a raw file told about it, stored with its verdict."""

    content_hash: str
    size_bytes: int | None = None
    rows: int | None = None
    first_timestamp: float | None = None
    last_timestamp: float | None = None

    def changes(self) -> dict[str, Any]:
        """The batch fields to set: the hash, and each other fact that is known."""
        known = {
            "size_bytes": self.size_bytes,
            "rows": self.rows,
            "first_timestamp": self.first_timestamp,
            "last_timestamp": self.last_timestamp,
        }
        return {"content_hash": self.content_hash} | {
            name: value for name, value in known.items() if value is not None
        }


@dataclass(frozen=True)
class Move:
    """One status change: the batch, its new status, the event's note, the fields it sets.

    Built by :func:`rejected`, :func:`duplicate` and :func:`preprocessed`; a
    repository applies many in one statement batch (:meth:`BatchTransitions.move_many`).
    """

    batch_id: int
    target: BatchStatus
    note: str | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)


def _with_facts(changes: dict[str, Any], facts: FileFacts | None) -> dict[str, Any]:
    return changes if facts is None else facts.changes() | changes


def rejected(
    batch_id: int,
    reason: str,
    *,
    warnings: Sequence[str] = (),
    quality: dict[str, Any] | None = None,
    facts: FileFacts | None = None,
) -> Move:
    """Discovered -> rejected, with a one-line reason for ``etl status``."""
    line = one_line(reason)
    changes = {
        "reason": line,
        "warnings": json_document(list(warnings)),
        "quality": json_document(quality),
    }
    return Move(batch_id, BatchStatus.REJECTED, line, _with_facts(changes, facts))


def duplicate(batch: Batch, original: Batch, *, facts: FileFacts | None = None) -> Move:
    """Discovered -> rejected as ``duplicate of {key}`` of ``original``."""
    if original.id == batch.id:
        raise ValueError(f"batch {batch.id} cannot be a duplicate of itself")
    if original.pipeline != batch.pipeline:
        raise ValueError(f"batch {original.id} belongs to another pipeline than batch {batch.id}")
    line = f"duplicate of {original.key}"
    changes = {"reason": line, "duplicate_of": original.id}
    return Move(batch.id, BatchStatus.REJECTED, line, _with_facts(changes, facts))


def preprocessed(
    batch_id: int,
    *,
    delta_version: int,
    warnings: Sequence[str] = (),
    quality: dict[str, Any] | None = None,
    facts: FileFacts | None = None,
) -> Move:
    """Discovered -> preprocessed, with the StateVectors Delta version it wrote."""
    changes = {
        "delta_version": delta_version,
        "warnings": json_document(list(warnings)),
        "quality": json_document(quality),
    }
    return Move(batch_id, BatchStatus.PREPROCESSED, None, _with_facts(changes, facts))


class BatchTransitions(ABC):
    """``mark_*`` methods of :class:`etl.state.repository.BatchRepository`."""

    @abstractmethod
    def get(self, batch_id: int) -> Batch:
        """The batch, or NotFoundError."""

    @abstractmethod
    def _move_all(self, moves: Sequence[Move], run_id: int | None) -> list[Batch]:
        """Check each transition, apply its changes, record its event; the moved batches.

        One pass for the lot (the SQL adapter locks and flushes once): recording a
        chunk of 2,000 verdicts one by one cost two selects and a flush each.
        """

    def _move(
        self,
        batch_id: int,
        target: BatchStatus,
        run_id: int | None,
        note: str | None = None,
        **changes: Any,
    ) -> Batch:
        return self._move_all([Move(batch_id, target, note, changes)], run_id)[0]

    def move_many(self, moves: Sequence[Move], *, run_id: int | None = None) -> list[Batch]:
        """Apply changes built by :func:`rejected`, :func:`duplicate` or :func:`preprocessed`."""
        return self._move_all(moves, run_id) if moves else []

    def mark_rejected(
        self,
        batch_id: int,
        reason: str,
        *,
        run_id: int | None = None,
        warnings: Sequence[str] = (),
        quality: dict[str, Any] | None = None,
    ) -> Batch:
        """Discovered -> rejected, with a one-line reason for ``etl status``."""
        move = rejected(batch_id, reason, warnings=warnings, quality=quality)
        return self._move_all([move], run_id)[0]

    def mark_duplicate(self, batch_id: int, of_id: int, *, run_id: int | None = None) -> Batch:
        """Discovered -> rejected as ``duplicate of {key}`` of batch ``of_id``."""
        return self._move_all([duplicate(self.get(batch_id), self.get(of_id))], run_id)[0]

    def mark_preprocessed(
        self,
        batch_id: int,
        *,
        delta_version: int,
        warnings: Sequence[str] = (),
        quality: dict[str, Any] | None = None,
        run_id: int | None = None,
    ) -> Batch:
        """Discovered -> preprocessed, with the StateVectors Delta version it wrote."""
        move = preprocessed(
            batch_id, delta_version=delta_version, warnings=warnings, quality=quality
        )
        return self._move_all([move], run_id)[0]

    def mark_status(
        self, batch_id: int, status: BatchStatus, *, run_id: int | None = None
    ) -> Batch:
        """Move to ``inferred`` or ``exported`` (the other statuses have their own method)."""
        if status not in (BatchStatus.INFERRED, BatchStatus.EXPORTED):
            raise ValueError(f"mark_status moves to inferred or exported, not {status}")
        return self._move(batch_id, status, run_id)
