"""The Kubeflow Pipelines v2 tick: discover, preprocess, train, infer, export as SparkApplications.

KFP v2 has no ResourceOp, so each step is a lightweight Python component that
creates the job's SparkApplication through the Kubernetes API, polls its
``status.applicationState.state`` until the Spark operator reports COMPLETED or
FAILED, fails the step on failure, and deletes the object after success when
asked. The manifests are the ones ``etl.deploy.manifests`` generates, passed in
as JSON at compile time: the pipeline never holds a hand-written manifest.

The step's logic (``create_and_wait``) is a plain function of a Kubernetes
client, unit-tested with a fake; the component ships its source together with
the step function (kfp's ``additional_funcs``). Both must stay self-contained:
kfp copies their source, not this module, into the step's container.

``dsl`` and the compiler are imported inside the functions: nothing is built at
import time, and the ETL jobs never import kfp.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.deploy.manifests import DeploySource, kube, spark_application

if TYPE_CHECKING:
    from collections.abc import Callable

    from etl.config import Config

PIPELINE_STEPS = ("discover", "preprocess", "train", "infer", "export")
"""The tick's jobs, in order; ``run`` is the same tick as one job (ScheduledSparkApplication)."""
KUBERNETES_PIN = "kubernetes==30.1.0"
"""The client the steps install: the version of requirements.lock."""
DEFAULT_POLL_SECONDS = 15
DEFAULT_TIMEOUT_SECONDS = 3 * 3600


def create_and_wait(
    api: Any,
    manifest: dict,
    *,
    poll_seconds: float,
    timeout_seconds: float,
    delete_on_success: bool,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> str:
    """Create a SparkApplication once and wait until the operator finishes it.

    A retried step finds the application of its first attempt (409 Conflict) and
    waits for that one instead of submitting the job twice. A timed-out
    application is deleted, which stops its driver: the next tick must not run
    alongside it. A failed one is kept for its status and driver log (its
    ``timeToLiveSeconds`` removes it later).

    Args:
        api: a ``kubernetes.client.CustomObjectsApi`` (or a fake with its methods).
        manifest: the SparkApplication, with its final name and namespace.
        poll_seconds: pause between two reads of the status.
        timeout_seconds: longest wait, from creation.
        delete_on_success: delete the object once COMPLETED.
        sleep: ``time.sleep`` unless a test passes its own.
        clock: ``time.monotonic`` unless a test passes its own.

    Returns:
        The final state, ``COMPLETED``.

    Raises:
        RuntimeError: the application FAILED (or its submission did).
        TimeoutError: it did not finish within ``timeout_seconds``.

    """
    import time

    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    group, version = manifest["apiVersion"].split("/")
    namespace = manifest["metadata"]["namespace"]
    name = manifest["metadata"]["name"]
    where = {
        "group": group,
        "version": version,
        "namespace": namespace,
        "plural": "sparkapplications",
    }
    try:
        api.create_namespaced_custom_object(body=manifest, **where)
        print(f"created SparkApplication {namespace}/{name}")
    except Exception as exc:
        if getattr(exc, "status", None) != 409:
            raise
        print(f"SparkApplication {namespace}/{name} exists (a retried step): waiting for it")
    deadline = clock() + timeout_seconds
    state = ""
    while True:
        current = api.get_namespaced_custom_object(name=name, **where)
        status = current.get("status") or {}
        application = status.get("applicationState") or {}
        new_state = application.get("state") or ""
        if new_state != state:
            print(f"{name}: {new_state or 'waiting for the operator'}")
            state = new_state
        if state == "COMPLETED":
            if delete_on_success:
                api.delete_namespaced_custom_object(name=name, **where)
            return state
        if state in ("FAILED", "SUBMISSION_FAILED"):
            reason = application.get("errorMessage") or "see the driver's log"
            raise RuntimeError(f"SparkApplication {namespace}/{name} {state}: {reason}")
        if clock() >= deadline:
            api.delete_namespaced_custom_object(name=name, **where)
            raise TimeoutError(
                f"SparkApplication {namespace}/{name} still {state or 'not started'} "
                f"after {timeout_seconds} s: deleted"
            )
        sleep(poll_seconds)


def run_spark_application(
    *,
    manifest_json: str,
    run_id: str,
    skip: bool,
    poll_seconds: int,
    timeout_seconds: int,
    delete_on_success: bool,
) -> str:
    """The pipeline step: submit one job's SparkApplication and wait for it (in the cluster).

    The name gets the run's first 8 id characters, so that every run (and the
    ScheduledSparkApplication's runs) has its own object. Returns the final state.
    """
    import json

    if skip:
        print("skipped by the run's parameters")
        return "SKIPPED"
    from kubernetes import client, config

    manifest = json.loads(manifest_json)
    suffix = "".join(char for char in run_id.lower() if char.isalnum())[:8]
    manifest["metadata"]["name"] = f"{manifest['metadata']['name']}-{suffix}"
    config.load_incluster_config()
    return create_and_wait(
        client.CustomObjectsApi(),
        manifest,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        delete_on_success=delete_on_success,
    )


def _with_type_annotations(func: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of ``func`` whose annotations are types, for kfp.

    kfp reads a component's and a pipeline's annotations as types, and this module's
    are strings (``from __future__ import annotations``). The source stays the same.
    """
    clone = types.FunctionType(
        func.__code__, func.__globals__, func.__name__, func.__defaults__, func.__closure__
    )
    clone.__kwdefaults__ = func.__kwdefaults__
    clone.__doc__ = func.__doc__
    clone.__module__ = func.__module__
    clone.__qualname__ = func.__qualname__
    hints = typing.get_type_hints(func)
    if hints.get("return") is type(None):
        del hints["return"]  # kfp takes a None return for an output type
    clone.__annotations__ = hints
    return clone


def pipeline_name(config: Config) -> str:
    """The pipeline's name in Kubeflow: one pipeline per config."""
    return f"fleet-etl-{config.pipeline.name.replace('_', '-')}-tick"


def build_pipeline(config: Config) -> Any:
    """The pipeline function for ``config``; kfp compiles it (``compile_pipeline``).

    Parameters of a run: ``skip_train`` (the train step runs ``etl train --if-due``,
    which trains only the types whose retraining is due, so ticks keep it on),
    ``delete_on_success``, ``poll_seconds``, ``timeout_seconds`` (per step).
    Caching is off: every run must do its work.
    """
    from kfp import dsl

    k8s = kube(config)
    step = dsl.component(
        _with_type_annotations(run_spark_application),
        base_image=k8s.launcher_image,
        packages_to_install=[KUBERNETES_PIN],
        additional_funcs=[create_and_wait],
    )
    manifests = {
        job: json.dumps(spark_application(config, job), sort_keys=True) for job in PIPELINE_STEPS
    }

    def tick(
        skip_train: bool = False,
        delete_on_success: bool = True,
        poll_seconds: int = DEFAULT_POLL_SECONDS,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        previous = None
        for job in PIPELINE_STEPS:
            task = step(
                manifest_json=manifests[job],
                run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                skip=skip_train if job == "train" else False,
                poll_seconds=poll_seconds,
                timeout_seconds=timeout_seconds,
                delete_on_success=delete_on_success,
            )
            task.set_display_name(job)
            task.set_caching_options(False)
            if previous is not None:
                task.after(previous)
            previous = task

    return dsl.pipeline(
        name=pipeline_name(config),
        description=(
            f"fleet-etl {config.pipeline.name}: one tick (discover, preprocess, train, infer, "
            "export), each step a SparkApplication of the Spark operator"
        ),
    )(_with_type_annotations(tick))


def compile_pipeline(source: DeploySource, package_path: Path) -> Path:
    """Compile the pipeline of a config to YAML (checked in as deploy/pipeline.yaml)."""
    from kfp import compiler

    package_path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(source.config), str(package_path))
    return package_path


def kfp_cron(cron: str) -> str:
    """A five-field cron as Kubeflow's six-field one (seconds first).

    Raises:
        ValueError: not a five-field expression.

    """
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"kubernetes.schedule: expected 5 cron fields, got {cron!r}")
    return " ".join(["0", *fields])


def recurring_run_arguments(
    config: Config, experiment_id: str, package_path: str, skip_train: bool = False
) -> dict[str, Any]:
    """Arguments of ``kfp.Client.create_recurring_run`` for the tick of ``config``.

    One run at a time and no catch-up (a tick after downtime catches up by itself);
    disabled unless ``kubernetes.scheduler`` is ``kubeflow``, so that it never runs
    next to the ScheduledSparkApplication.
    """
    k8s = kube(config)
    return {
        "experiment_id": experiment_id,
        "job_name": pipeline_name(config),
        "description": f"every tick of {config.pipeline.name} ({k8s.schedule})",
        "cron_expression": kfp_cron(k8s.schedule),
        "max_concurrency": 1,
        "no_catchup": True,
        "enabled": k8s.scheduler == "kubeflow",
        "enable_caching": False,
        "pipeline_package_path": package_path,
        "params": {"skip_train": skip_train},
    }


def create_recurring_run(
    config: Config, host: str, experiment: str, package_path: str, skip_train: bool = False
) -> Any:
    """Register the recurring tick in Kubeflow Pipelines (needs a reachable KFP API)."""
    from kfp import Client

    client = Client(host=host)
    experiment_id = client.create_experiment(name=experiment, namespace=None).experiment_id
    return client.create_recurring_run(
        **recurring_run_arguments(config, experiment_id, package_path, skip_train)
    )
