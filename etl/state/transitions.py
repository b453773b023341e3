"""The batch lifecycle written once, on two primitives each adapter provides.

The SQLAlchemy and in-memory batch repositories differ in how they load a batch
and how they store a status change (``get`` and ``_move``); what each
transition means (which status, which fields, the one-line reason) is the same
and lives here, so the fake cannot drift from production.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from etl.state.domain import Batch, BatchStatus, json_document, one_line


class BatchTransitions(ABC):
    """``mark_*`` methods of :class:`etl.state.repository.BatchRepository`."""

    @abstractmethod
    def get(self, batch_id: int) -> Batch:
        """The batch, or NotFoundError."""

    @abstractmethod
    def _move(
        self,
        batch_id: int,
        target: BatchStatus,
        run_id: int | None,
        note: str | None = None,
        **changes: Any,
    ) -> Batch:
        """Check the transition, apply ``changes``, record the event; the moved batch."""

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
        line = one_line(reason)
        return self._move(
            batch_id,
            BatchStatus.REJECTED,
            run_id,
            line,
            reason=line,
            warnings=json_document(list(warnings)),
            quality=json_document(quality),
        )

    def mark_duplicate(self, batch_id: int, of_id: int, *, run_id: int | None = None) -> Batch:
        """Discovered -> rejected as ``duplicate of {key}`` of batch ``of_id``."""
        if of_id == batch_id:
            raise ValueError(f"batch {batch_id} cannot be a duplicate of itself")
        original = self.get(of_id)
        if original.pipeline != self.get(batch_id).pipeline:
            raise ValueError(f"batch {of_id} belongs to another pipeline than batch {batch_id}")
        line = f"duplicate of {original.key}"
        return self._move(
            batch_id, BatchStatus.REJECTED, run_id, line, reason=line, duplicate_of=original.id
        )

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
        return self._move(
            batch_id,
            BatchStatus.PREPROCESSED,
            run_id,
            delta_version=delta_version,
            warnings=json_document(list(warnings)),
            quality=json_document(quality),
        )

    def mark_status(
        self, batch_id: int, status: BatchStatus, *, run_id: int | None = None
    ) -> Batch:
        """Move to ``inferred`` or ``exported`` (the other statuses have their own method)."""
        if status not in (BatchStatus.INFERRED, BatchStatus.EXPORTED):
            raise ValueError(f"mark_status moves to inferred or exported, not {status}")
        return self._move(batch_id, status, run_id)
