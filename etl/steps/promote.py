"""``etl promote``: make one registered version a machine type's champion (rolling back included).

Training promotes a new version only when it beats the champion on the same
held-out data; an operator overrides that here, typically to roll back to the
previous version after a bad model reached production. The state store's
champion is what inference loads, so it is changed first, in one transaction
with the old champion's demotion; the MLflow alias ``champion`` follows, so
that both registries name the same version. Results already written keep the
model version they were scored with; ``etl reprocess`` rescores a range.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from etl.state.domain import ModelStatus

if TYPE_CHECKING:
    from etl.bootstrap import Context

log = logging.getLogger(__name__)


def promote(
    ctx: Context, machine_type: str, version: int, reason: str | None = None
) -> dict[str, Any]:
    """Make ``version`` of ``machine_type``'s model the champion; a no-op if it already is.

    Raises:
        ValueError: If the pipeline has no such model version.
    """
    pipeline = ctx.config.pipeline.name
    with ctx.uow() as uow:
        models = {m.version: m for m in uow.models.for_pipeline(pipeline, machine_type)}
        if version not in models:
            known = ", ".join(f"v{v}" for v in sorted(models)) or "none"
            raise ValueError(f"no {machine_type} model v{version} in {pipeline} (known: {known})")
        before = uow.models.champion(pipeline, machine_type)
        target = models[version]
        if before is not None and before.id == target.id:
            return {"machine_type": machine_type, "champion": version, "changed": False}
        why = reason or (
            f"promoted by an operator, replacing v{before.version}"
            if before is not None
            else "promoted by an operator"
        )
        uow.models.set_champion(target.id, reason=why)
        uow.commit()
    if target.registry_name and target.registry_version:
        from etl.steps.train import open_mlflow

        client = open_mlflow(ctx).MlflowClient()
        client.set_registered_model_alias(target.registry_name, "champion", target.registry_version)
    log.info("promote %s: v%d is the champion (%s)", machine_type, version, why)
    return {
        "machine_type": machine_type,
        "champion": version,
        "previous": None if before is None else before.version,
        "registry": f"{target.registry_name}/{target.registry_version}",
        "changed": True,
        "was": ModelStatus(target.status).value,
    }
