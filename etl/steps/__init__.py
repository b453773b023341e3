"""Pipeline steps: each wires ports (catalog, stores, state) to pure logic.

A step receives the :class:`etl.bootstrap.Context` and returns a summary dict
that the CLI prints and the state store keeps with the step's run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from etl.state.domain import Run, RunStatus

if TYPE_CHECKING:
    from etl.bootstrap import Context


@contextmanager
def recorded_run(
    ctx: Context, step: str, summary: dict[str, Any] | None = None
) -> Iterator[tuple[Run, dict[str, Any]]]:
    """A run row for ``step``, committed before the work, closed with the summary after it.

    The body fills ``summary``; an exception (a kill included) closes the run as
    failed with what the summary held by then and is raised again, so the state
    store always says how far a step got.
    """
    with ctx.uow() as uow:
        run = uow.runs.start(ctx.config.pipeline.name, step)
        uow.commit()
    summary = {} if summary is None else summary
    try:
        yield run, summary
    except BaseException:
        with ctx.uow() as uow:
            uow.runs.finish(run.id, RunStatus.FAILED, summary)
            uow.commit()
        raise
    with ctx.uow() as uow:
        uow.runs.finish(run.id, RunStatus.SUCCEEDED, summary)
        uow.commit()
