"""Kubernetes manifests from the config: valid for the Spark operator's API, current, pure.

The custom resources are validated against our schema of the operator's v1beta2 API
(deploy/crds/), or against the operator's own CRD files when ETL_SPARK_OPERATOR_CRDS
names a folder of them; the checks specific to our schema then skip.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from etl.config import ConfigError, parse_config
from etl.deploy.__main__ import main as deploy_main
from etl.deploy.crd import (
    CRDS_ENV,
    SCHEMA_PATH,
    KindSchema,
    load_schema,
    manifest_errors,
    spark_operator_schemas,
    strict_schema,
)
from etl.deploy.manifests import (
    CONFIG_PATH,
    GENERATED_MARK,
    JOB_STEPS,
    DeploySource,
    all_manifests,
    kept_references,
    load_source,
    scheduled_tick,
    spark_application,
    write_manifests,
)

ROOT = Path(__file__).resolve().parents[2]
PROD = "conf/prod.example.yaml"
ours_only = pytest.mark.skipif(
    bool(os.environ.get(CRDS_ENV)), reason=f"{CRDS_ENV} set: validating against the real CRDs"
)


@pytest.fixture(scope="module")
def source() -> DeploySource:
    return load_source(ROOT / PROD)


@pytest.fixture(scope="module")
def crds() -> dict[str, KindSchema]:
    return spark_operator_schemas()


def _bodies(source: DeploySource) -> dict[str, dict[str, Any]]:
    return {manifest.path: manifest.body for manifest in all_manifests(source)}


def test_the_schemas_are_the_spark_operators(crds: dict[str, KindSchema]) -> None:
    assert {"SparkApplication", "ScheduledSparkApplication"} <= set(crds)  # newer: SparkConnect
    for schema in crds.values():
        assert schema.group == "sparkoperator.k8s.io"
        assert "v1beta2" in schema.versions
        jsonschema.Draft7Validator.check_schema(schema.versions["v1beta2"])
    assert crds["SparkApplication"].name == "sparkapplications.sparkoperator.k8s.io"


def test_our_schema_file_is_json_schema_and_in_the_repository() -> None:
    assert SCHEMA_PATH == ROOT / "deploy" / "crds" / "sparkoperator-v1beta2.schema.yaml"
    document = yaml.safe_load(SCHEMA_PATH.read_text())
    jsonschema.Draft7Validator.check_schema(document)
    driver = document["definitions"]["DriverSpec"]["properties"]
    executor = document["definitions"]["ExecutorSpec"]["properties"]
    assert {"cores", "memory", "envFrom", "volumeMounts"} <= set(driver) & set(executor)
    assert "instances" in executor and "instances" not in driver


def test_every_generated_custom_resource_validates(
    source: DeploySource, crds: dict[str, KindSchema]
) -> None:
    validated = []
    for path, body in _bodies(source).items():
        if body.get("kind") in crds:
            assert manifest_errors(crds[body["kind"]], body) == [], path
            validated.append(body["kind"])
    assert sorted(validated) == ["ScheduledSparkApplication"] + ["SparkApplication"] * len(
        JOB_STEPS
    )


def _broken(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    node = broken
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[leaf] = value
    return broken


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.driver.cores", "2", "spec.driver.cores: '2' is not of type 'integer'"),
        ("spec.driver.cores", 0, "spec.driver.cores: 0 is less than the minimum of 1"),
        ("spec.executor.instances", 0, "spec.executor.instances: 0 is less than the minimum"),
        ("spec.mode", "local", "spec.mode: 'local' is not one of ['cluster', 'client']"),
        ("spec.type", "Go", "spec.type: 'Go' is not one of"),
        ("spec.pythonVersion", 3, "spec.pythonVersion: 3 is not one of"),
        ("spec.restartPolicy.type", "Sometimes", "spec.restartPolicy.type: 'Sometimes'"),
        ("spec.arguments", "--config x", "spec.arguments: '--config x' is not of type 'array'"),
        ("spec.driver.memorry", "2g", "spec.driver: Additional properties are not allowed"),
        ("spec.executor.instancess", 2, "spec.executor: Additional properties are not allowed"),
        ("spec.mainAplicationFile", "x.py", "spec: Additional properties are not allowed"),
        ("spec.driver.volumeMounts.0.readonly", True, "('readonly' was unexpected)"),
        ("spec.restartPolicy.onFailureRetryInterval", 0, "is less than the minimum of 1"),
        ("spec.sparkConf.spark.executor.cores", 2, "is not of type 'string'"),
        ("spec.driver.coreLimit", 2, "spec.driver.coreLimit: 2 is not of type 'string'"),
    ],
)
def test_a_broken_spark_application_is_rejected(
    source: DeploySource,
    crds: dict[str, KindSchema],
    path: str,
    value: Any,
    expected: str,
) -> None:
    body = spark_application(source.config, "train")
    if path.startswith("spec.sparkConf."):
        broken = copy.deepcopy(body)
        broken["spec"]["sparkConf"][path.removeprefix("spec.sparkConf.")] = value
    else:
        broken = _broken(body, path, value)
    errors = manifest_errors(crds["SparkApplication"], broken)
    assert any(expected in error for error in errors), errors


def test_a_missing_required_field_and_a_foreign_kind_are_rejected(
    source: DeploySource, crds: dict[str, KindSchema]
) -> None:
    body = spark_application(source.config, "discover")
    del body["spec"]["sparkVersion"]
    assert manifest_errors(crds["SparkApplication"], body) == [
        "spec: 'sparkVersion' is a required property"
    ]
    tick = scheduled_tick(source.config)
    assert manifest_errors(crds["SparkApplication"], tick) == [
        "not a SparkApplication of sparkoperator.k8s.io"
    ]
    wrong_version = {
        **spark_application(source.config, "discover"),
        "apiVersion": "sparkoperator.k8s.io/v1",
    }
    assert manifest_errors(crds["SparkApplication"], wrong_version) == [
        "sparkapplications.sparkoperator.k8s.io has no version v1"
    ]


def test_a_broken_scheduled_tick_is_rejected(
    source: DeploySource, crds: dict[str, KindSchema]
) -> None:
    tick = scheduled_tick(source.config)
    errors = manifest_errors(
        crds["ScheduledSparkApplication"], _broken(tick, "spec.concurrencyPolicy", "Never")
    )
    assert errors == [
        "spec.concurrencyPolicy: 'Never' is not one of ['Allow', 'Forbid', 'Replace']"
    ]
    errors = manifest_errors(
        crds["ScheduledSparkApplication"], _broken(tick, "spec.template.driver.cores", 1.5)
    )
    assert errors == ["spec.template.driver.cores: 1.5 is not of type 'integer'"]
    errors = manifest_errors(
        crds["ScheduledSparkApplication"], _broken(tick, "spec.template.sparkConff", {})
    )
    assert errors == [
        "spec.template: Additional properties are not allowed ('sparkConff' was unexpected)"
    ]
    del tick["spec"]["schedule"]
    assert manifest_errors(crds["ScheduledSparkApplication"], tick) == [
        "spec: 'schedule' is a required property"
    ]


@ours_only
def test_our_schema_follows_the_v1beta2_api_reference(source: DeploySource) -> None:
    schemas = load_schema()
    app, scheduled = schemas["SparkApplication"], schemas["ScheduledSparkApplication"]
    body = spark_application(source.config, "train")
    spec = body["spec"]
    del spec["mainApplicationFile"]
    assert manifest_errors(app, body) == ["spec: 'mainApplicationFile' is a required property"]
    spec["mainApplicationFile"] = "local:///opt/fleet-etl/jobs/train.py"
    spec["imagePullPolicy"] = "IfNotPresnt"  # any string to the operator; Kubernetes refuses it
    assert manifest_errors(app, body) == [
        "spec.imagePullPolicy: 'IfNotPresnt' is not one of ['Always', 'IfNotPresent', 'Never']"
    ]
    spec["imagePullPolicy"] = "Always"
    spec["driver"].update(coreLimit="1200m", javaOptions="-XX:+UseG1GC", tolerations=[])
    spec["executor"].update(deleteOnTermination=False, nodeSelector={"pool": "spark"})
    spec.update(
        restartPolicy={"type": "OnFailure", "onFailureRetries": 2, "onFailureRetryInterval": 30},
        dynamicAllocation={"enabled": True, "minExecutors": 1, "maxExecutors": 8},
        batchSchedulerOptions={"resources": {"cpu": 4, "memory": "16Gi"}},
        volumes=[*spec["volumes"], {"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}}],
    )
    assert manifest_errors(app, body) == []
    tick = scheduled_tick(source.config)
    tick["spec"]["timeZone"] = "Europe/Berlin"
    assert manifest_errors(scheduled, tick) == []
    tick["spec"]["template"]["driver"]["instances"] = 2  # the executors' field
    assert manifest_errors(scheduled, tick) == [
        "spec.template.driver: Additional properties are not allowed ('instances' was unexpected)"
    ]


def test_the_real_crds_replace_our_schema_when_named(
    source: DeploySource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "sparkapplications.sparkoperator.k8s.io"},
        "spec": {
            "group": "sparkoperator.k8s.io",
            "names": {"kind": "SparkApplication", "plural": "sparkapplications"},
            "versions": [
                {
                    "name": "v1beta2",
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                    "properties": {"type": {"type": "string", "enum": ["Scala"]}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    (tmp_path / "sparkapplications.yaml").write_text(yaml.safe_dump(crd))
    monkeypatch.setenv(CRDS_ENV, str(tmp_path))
    schemas = spark_operator_schemas()
    assert set(schemas) == {"SparkApplication"}
    assert schemas["SparkApplication"].source == str(tmp_path / "sparkapplications.yaml")
    body = spark_application(source.config, "run")
    assert manifest_errors(schemas["SparkApplication"], body) == [
        "<root>: Additional properties are not allowed ('apiVersion', 'kind', 'metadata' were "
        "unexpected)",
        "spec.type: 'Python' is not one of ['Scala']",
    ]
    assert manifest_errors(crd, body) == manifest_errors(schemas["SparkApplication"], body)
    monkeypatch.setenv(CRDS_ENV, "")
    assert set(spark_operator_schemas()) == {"SparkApplication", "ScheduledSparkApplication"}


def test_int_or_string_and_nullable_follow_kubernetes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "quantity": {"x-kubernetes-int-or-string": True},
            "when": {"type": "string", "nullable": True},
            "free": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"a": {"type": "string"}},
            },
        },
    }
    validator = jsonschema.Draft7Validator(strict_schema(schema))
    assert validator.is_valid({"quantity": 2, "when": None, "free": {"b": 1}})
    assert validator.is_valid({"quantity": "500m"})
    assert not validator.is_valid({"quantity": 1.5})
    assert not validator.is_valid({"quantity": "1", "extra": True})


def test_checked_in_manifests_are_the_generated_ones(source: DeploySource, tmp_path: Path) -> None:
    written = write_manifests(source, tmp_path)
    checked_in = ROOT / "deploy" / "k8s"
    generated = {path.relative_to(tmp_path): path.read_text() for path in written}
    on_disk = {
        path.relative_to(checked_in): path.read_text() for path in checked_in.rglob("*.yaml")
    }
    assert generated == on_disk, "deploy/k8s is stale: run `make pipeline`"


def test_the_jobs_run_our_entry_points_with_the_mounted_config(source: DeploySource) -> None:
    from etl.cli import PIPELINE_STEPS

    assert JOB_STEPS == PIPELINE_STEPS
    bodies = _bodies(source)
    config_map = bodies["configmap-fleet-etl-config-prod.yaml"]
    for job in JOB_STEPS:
        spec = bodies[f"jobs/sparkapplication-etl-prod-{job}.yaml"]["spec"]
        assert (ROOT / "jobs" / f"{job}.py").exists()
        assert spec["mainApplicationFile"] == f"local:///opt/fleet-etl/jobs/{job}.py"
        # a scheduled train step trains only the types that are due (etl train --if-due)
        options = ["--if-due"] if job == "train" else []
        assert spec["arguments"] == ["--config", CONFIG_PATH, "--log-json", *options]
        assert (spec["type"], spec["mode"], spec["pythonVersion"]) == ("Python", "cluster", "3")
        assert spec["volumes"] == [
            {"name": "config", "configMap": {"name": config_map["metadata"]["name"]}}
        ]
        assert spec["driver"]["volumeMounts"][0]["mountPath"] + "/config.yaml" == CONFIG_PATH
        assert spec["driver"]["envFrom"] == [
            {"secretRef": {"name": name}}
            for name in ("fleet-etl-state-db", "fleet-etl-results-db", "fleet-etl-kafka")
        ]
        assert spec["driver"]["serviceAccount"] == spec["executor"]["serviceAccount"]
        assert "envFrom" not in spec["executor"]
        assert spec["sparkConf"]["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith(
            "WebIdentityTokenFileCredentialsProvider"
        )
        assert "deps" not in spec
    train = bodies["jobs/sparkapplication-etl-prod-train.yaml"]["spec"]
    discover = bodies["jobs/sparkapplication-etl-prod-discover.yaml"]["spec"]
    assert train["executor"]["instances"] == 4  # the example's override
    assert train["driver"]["memory"] == "8g" and discover["driver"]["memory"] == "2g"


def test_the_tick_is_scheduled_without_overlap(source: DeploySource) -> None:
    tick = scheduled_tick(source.config)
    assert tick["spec"]["schedule"] == "*/10 * * * *"
    assert tick["spec"]["concurrencyPolicy"] == "Forbid"
    assert tick["spec"]["suspend"] is False
    assert tick["spec"]["template"]["mainApplicationFile"].endswith("/jobs/run.py")
    assert tick["spec"]["template"] == spark_application(source.config, "run")["spec"]


def test_when_kubeflow_ticks_the_operators_schedule_is_suspended(source: DeploySource) -> None:
    data = yaml.safe_load(source.text)
    data["kubernetes"]["scheduler"] = "kubeflow"
    config = parse_config(data, kept_references(source.text))
    assert scheduled_tick(config)["spec"]["suspend"] is True


def test_the_config_map_carries_the_file_unexpanded(
    source: DeploySource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_STATE_DB_PASSWORD", "hunter2")
    fresh = load_source(ROOT / PROD)
    text = yaml.safe_dump([manifest.body for manifest in all_manifests(fresh)])
    assert "hunter2" not in text
    config_map = _bodies(fresh)["configmap-fleet-etl-config-prod.yaml"]
    assert config_map["data"]["config.yaml"] == (ROOT / PROD).read_text()
    assert "${ETL_STATE_DB_PASSWORD}" in fresh.config.state.url


def test_the_irsa_role_is_on_the_service_account(source: DeploySource) -> None:
    account = _bodies(source)["serviceaccount-fleet-etl-spark.yaml"]
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/fleet-etl-s3"
    }
    kustomization = _bodies(source)["kustomization.yaml"]
    assert not any(path.startswith("jobs/") for path in kustomization["resources"])


def test_a_config_without_kubernetes_cannot_be_deployed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kubernetes: required key is missing"):
        load_source(ROOT / "conf" / "demo.yaml")
    assert deploy_main(["manifests", "--config", "conf/demo.yaml", "--out", str(tmp_path)]) == 2


def test_a_pipeline_name_too_long_for_kubernetes_fails_at_generation(source: DeploySource) -> None:
    data = yaml.safe_load(source.text)
    data["pipeline"]["name"] = "a_very_long_pipeline_name_for_kubernetes"
    config = parse_config(data, kept_references(source.text))
    with pytest.raises(ConfigError, match=r"pipeline\.name: too long"):
        scheduled_tick(config)


def test_regeneration_removes_stale_generated_files_only(
    source: DeploySource, tmp_path: Path
) -> None:
    (tmp_path / "jobs").mkdir()
    stale = tmp_path / "jobs" / "sparkapplication-etl-prod-gone.yaml"
    stale.write_text(f"{GENERATED_MARK} manifests ...`\nkind: SparkApplication\n")
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("kind: Secret\n")
    write_manifests(source, tmp_path)
    assert not stale.exists()
    assert overlay.exists()


def test_generated_files_are_yaml_with_a_header(tmp_path: Path) -> None:
    assert deploy_main(["manifests", "--config", str(ROOT / PROD), "--out", str(tmp_path)]) == 0
    for path in tmp_path.rglob("*.yaml"):
        text = path.read_text()
        assert text.startswith(GENERATED_MARK) and "do not edit" in text.splitlines()[0]
        assert isinstance(yaml.safe_load(text), dict)
