"""The Kubeflow pipeline: compiles to the checked-in YAML; its step creates once and waits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from etl.deploy.manifests import DeploySource, load_source, spark_application
from etl.deploy.pipeline import (
    KUBERNETES_PIN,
    PIPELINE_STEPS,
    compile_pipeline,
    create_and_wait,
    kfp_cron,
    recurring_run_arguments,
    run_spark_application,
)

ROOT = Path(__file__).resolve().parents[2]


class ApiError(Exception):
    """What kubernetes.client.ApiException looks like to the step: a status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"({status})")
        self.status = status


class FakeCustomObjects:
    """A CustomObjectsApi whose object goes through the given states, one per read."""

    def __init__(self, states: list[str | None], create_error: Exception | None = None) -> None:
        self.states = list(states)
        self.create_error = create_error
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.reads = 0

    def create_namespaced_custom_object(self, **kwargs: Any) -> dict[str, Any]:
        assert (kwargs["group"], kwargs["version"], kwargs["plural"]) == (
            "sparkoperator.k8s.io",
            "v1beta2",
            "sparkapplications",
        )
        if self.create_error is not None:
            raise self.create_error
        self.created.append(kwargs["body"])
        return kwargs["body"]

    def get_namespaced_custom_object(self, **kwargs: Any) -> dict[str, Any]:
        state = self.states[min(self.reads, len(self.states) - 1)]
        self.reads += 1
        body: dict[str, Any] = {"metadata": {"name": kwargs["name"]}}
        if state is not None:
            body["status"] = {"applicationState": {"state": state, "errorMessage": "boom"}}
        return body

    def delete_namespaced_custom_object(self, **kwargs: Any) -> None:
        self.deleted.append(f"{kwargs['namespace']}/{kwargs['name']}")


class Clock:
    """Monotonic time that only moves when the step sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def source() -> DeploySource:
    return load_source(ROOT / "conf" / "prod.example.yaml")


@pytest.fixture
def manifest(source: DeploySource) -> dict[str, Any]:
    return spark_application(source.config, "preprocess")


def _wait(api: FakeCustomObjects, manifest: dict[str, Any], clock: Clock, **kwargs: Any) -> str:
    options = {"poll_seconds": 15, "timeout_seconds": 600, "delete_on_success": True, **kwargs}
    return create_and_wait(api, manifest, sleep=clock.sleep, clock=clock, **options)


def test_creates_once_and_polls_until_completed(manifest: dict[str, Any]) -> None:
    api, clock = FakeCustomObjects([None, "SUBMITTED", "RUNNING", "RUNNING", "COMPLETED"]), Clock()
    assert _wait(api, manifest, clock) == "COMPLETED"
    assert api.created == [manifest]
    assert api.reads == 5
    assert clock.sleeps == [15, 15, 15, 15]
    assert api.deleted == ["fleet-etl/etl-prod-preprocess"]


def test_keeps_the_completed_application_when_asked(manifest: dict[str, Any]) -> None:
    api = FakeCustomObjects(["COMPLETED"])
    assert _wait(api, manifest, Clock(), delete_on_success=False) == "COMPLETED"
    assert api.deleted == []


@pytest.mark.parametrize("state", ["FAILED", "SUBMISSION_FAILED"])
def test_a_failed_application_fails_the_step_and_is_kept(
    manifest: dict[str, Any], state: str
) -> None:
    api = FakeCustomObjects(["RUNNING", state])
    with pytest.raises(RuntimeError, match=f"fleet-etl/etl-prod-preprocess {state}: boom"):
        _wait(api, manifest, Clock())
    assert len(api.created) == 1
    assert api.deleted == []


def test_times_out_and_deletes_the_application(manifest: dict[str, Any]) -> None:
    api, clock = FakeCustomObjects(["RUNNING"]), Clock()
    with pytest.raises(TimeoutError, match="still RUNNING after 60 s"):
        _wait(api, manifest, clock, poll_seconds=20, timeout_seconds=60)
    assert clock.sleeps == [20, 20, 20]
    assert api.deleted == ["fleet-etl/etl-prod-preprocess"]


def test_a_retried_step_waits_for_the_application_it_created(manifest: dict[str, Any]) -> None:
    api = FakeCustomObjects(["RUNNING", "COMPLETED"], create_error=ApiError(409))
    assert _wait(api, manifest, Clock()) == "COMPLETED"
    assert api.created == []


def test_other_api_errors_fail_the_step(manifest: dict[str, Any]) -> None:
    api = FakeCustomObjects(["COMPLETED"], create_error=ApiError(403))
    with pytest.raises(ApiError):
        _wait(api, manifest, Clock())
    assert api.reads == 0


def test_a_skipped_step_touches_nothing() -> None:
    result = run_spark_application(
        manifest_json="{}",
        run_id="x",
        skip=True,
        poll_seconds=1,
        timeout_seconds=1,
        delete_on_success=True,
    )
    assert result == "SKIPPED"


def test_the_pipeline_compiles_to_the_checked_in_yaml(source: DeploySource, tmp_path: Path) -> None:
    compiled = compile_pipeline(source, tmp_path / "pipeline.yaml").read_text()
    checked_in = (ROOT / "deploy" / "pipeline.yaml").read_text()
    assert compiled == checked_in, "deploy/pipeline.yaml is stale: run `make pipeline`"


def _tasks(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The root DAG's tasks as a chain: each depends on exactly the one before."""
    tasks = document["root"]["dag"]["tasks"]
    ordered: list[str] = []
    while len(ordered) < len(tasks):
        ready = [
            key
            for key, task in tasks.items()
            if key not in ordered and task.get("dependentTasks", []) == ordered[-1:]
        ]
        assert len(ready) == 1, f"not a chain after {ordered}: {ready}"
        ordered.append(ready[0])
    return [tasks[key] for key in ordered]


def test_the_compiled_pipeline_submits_the_generated_manifests_in_order(
    source: DeploySource,
) -> None:
    document = yaml.safe_load((ROOT / "deploy" / "pipeline.yaml").read_text())
    ordered = _tasks(document)
    assert [task["taskInfo"]["name"] for task in ordered] == list(PIPELINE_STEPS)
    assert PIPELINE_STEPS == ("discover", "preprocess", "train", "infer", "export")
    for job, task in zip(PIPELINE_STEPS, ordered, strict=True):
        parameters = task["inputs"]["parameters"]
        submitted = json.loads(parameters["manifest_json"]["runtimeValue"]["constant"])
        assert submitted == spark_application(source.config, job)
        assert parameters["run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
        assert task["cachingOptions"] == {}  # caching off: every tick does its work
        if job == "train":
            assert parameters["skip"] == {"componentInputParameter": "skip_train"}
        else:
            assert parameters["skip"]["runtimeValue"]["constant"] is False
    executors = document["deploymentSpec"]["executors"].values()
    for executor in executors:
        container = executor["container"]
        assert container["image"] == "python:3.11-slim"
        assert KUBERNETES_PIN in " ".join(container["command"])
        assert "def create_and_wait(" in container["command"][-1]


def test_cron_is_given_to_kubeflow_with_seconds() -> None:
    assert kfp_cron("*/10 * * * *") == "0 */10 * * * *"
    with pytest.raises(ValueError, match="5 cron fields"):
        kfp_cron("0 */10 * * * *")


def test_the_recurring_run_never_overlaps_nor_catches_up(source: DeploySource) -> None:
    arguments = recurring_run_arguments(source.config, "exp-1", "deploy/pipeline.yaml")
    assert arguments == {
        "experiment_id": "exp-1",
        "job_name": "fleet-etl-prod-tick",
        "description": "every tick of prod (*/10 * * * *)",
        "cron_expression": "0 */10 * * * *",
        "max_concurrency": 1,
        "no_catchup": True,
        "enabled": False,  # the example's scheduler is the Spark operator's
        "enable_caching": False,
        "pipeline_package_path": "deploy/pipeline.yaml",
        "params": {"skip_train": False},
    }
    import inspect

    from kfp import Client

    assert set(arguments) <= set(inspect.signature(Client.create_recurring_run).parameters)
