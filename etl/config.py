"""Typed pipeline configuration, validated once at load.

The YAML file is the one thing an operator edits, so every mistake in it must
surface at load time as one line that names the offending key, never as a
stack trace halfway through a Spark job. Keys fixed by
``shared/contracts/cli.md`` are here verbatim; everything else has a default so
that the contract's minimal file is a complete configuration.

Secrets never live in the file: ``${VAR}`` and ``${VAR:-default}`` references
are expanded from the environment before validation.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

MachineType = Literal["dumper", "excavator", "wheel_loader"]

ACTIVITIES: dict[str, tuple[str, ...]] = {
    "dumper": ("idle", "queuing", "loading", "hauling", "dumping", "returning"),
    "excavator": ("idle", "digging", "swinging_loaded", "dumping", "swinging_empty", "traveling"),
    "wheel_loader": ("idle", "loading", "carrying", "dumping", "returning"),
}
"""The activity taxonomy per machine type (shared/contracts/raw-data.md)."""

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_URL_SCHEMES = ("file", "s3a", "s3")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message is one line naming the key."""


class _Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineConfig(_Section):
    """Identity of the pipeline; every output lives under ``name``."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    start_date: date | None = None
    """Raw batches before this date are ignored (None: take everything)."""


class Asset(_Section):
    """One machine the pipeline analyses."""

    uuid: str
    type: MachineType

    @field_validator("uuid")
    @classmethod
    def _canonical_uuid(cls, value: str) -> str:
        """Raw keys use lowercase canonical UUIDs; accept any case, store lowercase."""
        lowered = value.strip().lower()
        if not _UUID_RE.match(lowered):
            raise ValueError(f"not a canonical UUID: {value!r}")
        return lowered


def _check_url(value: str) -> str:
    scheme = urlparse(value).scheme
    if scheme not in _URL_SCHEMES:
        raise ValueError(f"URL scheme must be one of {', '.join(_URL_SCHEMES)}: {value!r}")
    return value.rstrip("/")


class S3Config(_Section):
    """How to reach an S3-compatible server; credentials come from AWS_* variables."""

    endpoint_url: str | None = None
    """None for AWS itself; ``http://127.0.0.1:9000`` for a local server."""
    region: str = "us-east-1"
    path_style_access: bool = True


class StorageConfig(_Section):
    """Where raw batches are read and outputs are written."""

    raw_url: str
    processed_url: str
    labels_url: str | None = None
    """Ground-truth activity labels (parquet); None when there are none."""
    s3: S3Config = S3Config()

    @field_validator("raw_url", "processed_url", "labels_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


class KafkaConfig(_Section):
    """The Kafka topic that announces raw batches."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "raw-batches"
    group_id: str | None = None
    """Consumer group; defaults to ``etl-{pipeline.name}``."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """Amazon MSK: ``SASL_SSL`` with SCRAM, or ``SSL`` (TLS, mutual with a client cert)."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    """Write ``${VAR}``: the loader takes it from the environment (a Kubernetes secret)."""
    ssl_cafile: str | None = None
    """CA bundle for TLS; None trusts the system's CAs (enough for MSK)."""

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> KafkaConfig:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            raise ValueError(
                f"{self.security_protocol} needs sasl_mechanism, sasl_username and sasl_password"
            )
        return self

    def client_options(self) -> dict[str, Any]:
        """Connection settings for kafka-python's consumers, producers and admin clients."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL"):
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        if self.ssl_cafile:
            options["ssl_cafile"] = self.ssl_cafile
        return options


class CatalogConfig(_Section):
    """How new raw batches are discovered."""

    kind: Literal["listing", "kafka"] = "listing"
    kafka: KafkaConfig = KafkaConfig()


class StateConfig(_Section):
    """The state store: any SQLAlchemy URL (PostgreSQL in production, SQLite embedded)."""

    url: str


class ResultsConfig(_Section):
    """The external results database that the postprocessor loads."""

    url: str | None = None
    """SQLAlchemy URL of the external PostgreSQL; None disables the export."""
    db_schema: str = Field("mining_insights", alias="schema")


class MlflowConfig(_Section):
    """MLflow tracking; None keeps runs in a local store under processed_url."""

    tracking_uri: str | None = None
    experiment: str | None = None


class PreprocessConfig(_Section):
    """Validation and resampling parameters and thresholds."""

    max_gap_s: Annotated[float, Field(gt=0)] = 10
    min_valid_epoch_s: float = 946_684_800.0
    """Timestamps before this (2000-01-01) are an implausible clock."""
    max_future_s: Annotated[float, Field(ge=0)] = 86_400.0
    """Timestamps more than this ahead of now are an implausible clock."""
    max_speed_mps: Annotated[float, Field(gt=0)] = 30.0
    max_jump_m: Annotated[float, Field(gt=0)] = 50.0
    """A GPS fix this far from where its neighbours put it is a multipath jump."""


class ModelParams(_Section):
    """Hyper-parameters of the activity classifier."""

    kind: Literal["random_forest", "gbt"] = "random_forest"
    num_trees: Annotated[int, Field(ge=1)] = 60
    max_depth: Annotated[int, Field(ge=1, le=30)] = 12
    min_segment_s: Annotated[int, Field(ge=1)] = 5
    seed: int = 42


class SampleParams(_Section):
    """How large a machine type's training set is, whatever the size of the fleet.

    Training rows are every labelled second of an activity up to
    ``max_rows_per_class``; beyond it, stretches of at most ``max_segment_s``
    seconds of its labelled segments, taken in turn from every machine, until the
    cap. Held-out evaluation takes blocks of ``eval_block_s`` seconds from the
    held-out machines, in turn, up to ``eval_seconds``. ``null`` means no limit
    (every labelled second: today's cost grows with the fleet).
    """

    max_rows_per_class: Annotated[int, Field(ge=1)] | None = 20_000
    max_segment_s: Annotated[int, Field(ge=1)] = 120
    eval_seconds: Annotated[int, Field(ge=1)] | None = 172_800
    eval_block_s: Annotated[int, Field(ge=60)] = 21_600


class AugmentParams(_Section):
    """Noise augmentation: the training seconds again, as noisier GNSS receivers give them.

    Each of ``copies`` noisy copies of the training side draws, per stretch of
    StateVectors, a level between the ranges' ends (position noise per axis in
    metres, speed noise in m/s, the same share of each range) and runs the
    preprocessing's de-noising on it (:mod:`etl.train.augment`). Held-out and
    forward seconds are never augmented. 0 copies: off.
    """

    copies: Annotated[int, Field(ge=0, le=4)] = 1
    gps_noise_m: tuple[float, float] = (2.0, 6.0)
    speed_noise_mps: tuple[float, float] = (0.3, 0.9)

    @model_validator(mode="after")
    def _ranges(self) -> AugmentParams:
        for name in ("gps_noise_m", "speed_noise_mps"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high")
        return self


class TrainingConfig(_Section):
    """When and how models are trained."""

    min_days: Annotated[float, Field(gt=0)] = 14
    data_rule: Literal["pooled", "every_asset"] = "pooled"
    """How ``min_days`` is judged: the type's machine-days added up (``pooled``), or
    every configured asset of the type on its own (``every_asset``)."""
    holdout_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    forward_fraction: Annotated[float, Field(ge=0, lt=0.5)] = 0.0
    """Keep every machine's latest share of the time out of training and judge the model
    on it too (``forward_*`` metrics): is it right on days it did not learn from? 0: off."""
    retrain_every_h: Annotated[float, Field(gt=0)] = 168
    """``etl run`` retrains a type whose champion is older than this (a week)."""
    recheck_every_h: Annotated[float, Field(gt=0)] = 6
    """``etl run`` re-judges a type without a champion at most this often (it reads the history)."""
    sample: SampleParams = SampleParams()
    augment: AugmentParams = AugmentParams()
    model: ModelParams = ModelParams()


class SimulateConfig(_Section):
    """The fleet simulator (``etl simulate``): field-fault rates and sensor noise.

    Fault rates are probabilities per batch file (0 switches a fault off); keys
    not given keep the simulator's defaults (etl.simulate.FaultRates).
    """

    faults: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}
    no_faults: bool = False
    """Switch every fault off (a clean fleet)."""
    gps_noise_m: Annotated[float, Field(ge=0)] = 2.0
    speed_noise: Annotated[float, Field(ge=0)] = 0.3
    mounting: Literal["aligned", "any"] = "aligned"
    """Loggers aligned with the body, or in any orientation per machine."""
    site_seed: Annotated[int, Field(ge=0)] = 0
    """The pit: 0 the reference one, any other seed another layout and pace."""
    workers: Annotated[int, Field(ge=1, le=16)] = 2

    @field_validator("faults")
    @classmethod
    def _known_faults(cls, faults: dict[str, float]) -> dict[str, float]:
        from etl.simulate.settings import FaultRates

        unknown = sorted(set(faults) - set(FaultRates.kinds()))
        if unknown:
            raise ValueError(
                f"unknown fault {unknown[0]!r}; known: {', '.join(FaultRates.kinds())}"
            )
        return faults


class SparkConfig(_Section):
    """What the code must set; cluster tuning lives in spark-defaults.conf."""

    master: str | None = None
    """None lets spark-submit decide; ``local[2]`` for the local runs."""
    app_name: str = "fleet-etl"


class MaintenanceConfig(_Section):
    """Compaction and vacuum of the Delta tables (``etl compact``, run by the tick when due)."""

    compact_every_h: Annotated[float, Field(gt=0)] = 24
    compact_days: Annotated[int, Field(ge=1)] = 3
    """How many recent days of partitions each compaction rewrites."""
    vacuum_retention_h: Annotated[float, Field(ge=168)] = 720
    """Files unused this long are deleted; time travel (to the Delta versions recorded for
    models and batches) works this far back. Delta refuses less than a week."""


class ObservabilityConfig(_Section):
    """Structured logs and the metrics an operator alerts on (etl.observe)."""

    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per log line (``--log-json`` sets it too)."""
    pushgateway_url: str | None = None
    """A Prometheus Pushgateway; every job pushes its metrics there when set."""
    rejected_window_h: Annotated[float, Field(gt=0)] = 24
    """The window of the rejected-batch rate."""


class StackConfig(_Section):
    """The local stack (``etl stack up``): loopback ports and where its data lives."""

    data_dir: str = ".stack"
    postgres_port: Annotated[int, Field(gt=0, lt=65536)] = 55432
    kafka_port: Annotated[int, Field(gt=0, lt=65536)] = 59092
    kafka_controller_port: Annotated[int, Field(gt=0, lt=65536)] = 59093
    s3_port: Annotated[int, Field(gt=0, lt=65536)] = 59000
    mlflow_port: Annotated[int, Field(gt=0, lt=65536)] = 55000
    postgres_user: str = "etl"
    postgres_password: str = "etl"
    databases: tuple[str, ...] = ("etl_state", "mining_results", "mlflow")
    buckets: tuple[str, ...] = ()
    """Buckets to create besides those of the storage URLs."""
    mlflow_artifacts_url: str = "s3://etl-mlflow/artifacts"


_K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A Kubernetes DNS label: namespaces, service accounts, and the prefix of our names."""
_SPARK_MEMORY = r"^[1-9][0-9]*[kmgt]$"
"""Spark's memory notation (``512m``, ``4g``), which the Spark operator passes on as is."""
IRSA_CREDENTIALS_PROVIDER = (
    "software.amazon.awssdk.auth.credentials.WebIdentityTokenFileCredentialsProvider"
)
"""S3A's provider for EKS IAM roles for service accounts (the token file the webhook mounts)."""


class KubernetesPod(_Section):
    """The size of one Spark pod (driver or executor)."""

    cores: Annotated[int, Field(ge=1)] = 1
    memory: Annotated[str, Field(pattern=_SPARK_MEMORY)] = "2g"


class KubernetesJob(_Section):
    """The pods of one job; a step's block in the file replaces its default block whole."""

    driver: KubernetesPod = KubernetesPod()
    executor: KubernetesPod = KubernetesPod()
    executor_instances: Annotated[int, Field(ge=1)] = 1


class KubernetesResources(_Section):
    """Pod sizes per job: preprocess and train carry the load, ``run`` does all of it."""

    discover: KubernetesJob = KubernetesJob()
    preprocess: KubernetesJob = KubernetesJob(
        driver=KubernetesPod(cores=1, memory="4g"),
        executor=KubernetesPod(cores=2, memory="4g"),
        executor_instances=2,
    )
    train: KubernetesJob = KubernetesJob(
        driver=KubernetesPod(cores=2, memory="8g"),
        executor=KubernetesPod(cores=2, memory="8g"),
        executor_instances=3,
    )
    infer: KubernetesJob = KubernetesJob(
        driver=KubernetesPod(cores=1, memory="4g"),
        executor=KubernetesPod(cores=2, memory="4g"),
        executor_instances=2,
    )
    export: KubernetesJob = KubernetesJob()
    run: KubernetesJob = KubernetesJob(
        driver=KubernetesPod(cores=2, memory="8g"),
        executor=KubernetesPod(cores=2, memory="8g"),
        executor_instances=3,
    )


class KubernetesConfig(_Section):
    """How the jobs run on Kubernetes (Spark operator, Kubeflow Pipelines); etl.deploy.

    Only ``python -m etl.deploy`` reads this section: it generates the manifests and the
    pipeline from it, so that nothing is copied by hand. Secrets stay in Kubernetes
    Secrets, named here and handed to the driver as environment variables, where the
    ``${VAR}`` references of this file find them.
    """

    namespace: Annotated[str, Field(pattern=_K8S_NAME)] = "fleet-etl"
    image: str
    """The job image: Spark in /opt/spark, our jobs in /opt/fleet-etl/jobs, this wheel."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    service_account: Annotated[str, Field(pattern=_K8S_NAME)] = "fleet-etl-spark"
    """The drivers' and executors' account; it reaches S3 through its IAM role (IRSA)."""
    iam_role_arn: str | None = None
    """Annotated on the generated service account (``eks.amazonaws.com/role-arn``)."""
    spark_version: str = "4.2.0"
    config_map: Annotated[str, Field(pattern=_K8S_NAME)] | None = None
    """The ConfigMap that carries this file; default ``fleet-etl-config-{pipeline.name}``."""
    secrets: tuple[Annotated[str, Field(pattern=_K8S_NAME)], ...] = ()
    """Secrets whose keys become the driver's environment (database and Kafka credentials)."""
    schedule: str = "*/10 * * * *"
    """Cron of the recurring tick (ScheduledSparkApplication and the Kubeflow recurring run)."""
    scheduler: Literal["spark-operator", "kubeflow"] = "spark-operator"
    """Which one ticks: the other's schedule is generated suspended (never both at once)."""
    ttl_seconds: Annotated[int, Field(ge=0)] = 86_400
    """How long a finished SparkApplication (and its driver's log) stays."""
    spark_conf: dict[str, str] = {
        "spark.hadoop.fs.s3a.aws.credentials.provider": IRSA_CREDENTIALS_PROVIDER
    }
    """Spark settings of the cluster runs, next to the image's spark-defaults.conf."""
    resources: KubernetesResources = KubernetesResources()
    pipeline_namespace: Annotated[str, Field(pattern=_K8S_NAME)] = "kubeflow"
    pipeline_service_account: Annotated[str, Field(pattern=_K8S_NAME)] = "pipeline-runner"
    """The Kubeflow Pipelines account whose steps create our SparkApplications."""
    launcher_image: str = "python:3.11-slim"
    """The image of the pipeline's steps (they only call the Kubernetes API)."""


class Config(_Section):
    """The whole pipeline configuration."""

    pipeline: PipelineConfig
    assets: Annotated[list[Asset], Field(min_length=1)]
    storage: StorageConfig
    catalog: CatalogConfig = CatalogConfig()
    state: StateConfig
    results: ResultsConfig = ResultsConfig()
    mlflow: MlflowConfig = MlflowConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    training: TrainingConfig = TrainingConfig()
    simulate: SimulateConfig = SimulateConfig()
    spark: SparkConfig = SparkConfig()
    stack: StackConfig = StackConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    kubernetes: KubernetesConfig | None = None
    """Kubernetes deployment (etl.deploy); None where the jobs do not run there."""

    @field_validator("assets")
    @classmethod
    def _unique_assets(cls, assets: list[Asset]) -> list[Asset]:
        seen: set[str] = set()
        for asset in assets:
            if asset.uuid in seen:
                raise ValueError(f"asset {asset.uuid} is listed twice")
            seen.add(asset.uuid)
        return assets

    @property
    def output_url(self) -> str:
        """``{processed_url}/{pipeline.name}``: the prefix of everything we write."""
        return f"{self.storage.processed_url}/{self.pipeline.name}"

    def asset_types(self) -> dict[str, MachineType]:
        """Machine type per asset UUID."""
        return {asset.uuid: asset.type for asset in self.assets}


def expand_env(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` with values from the environment.

    Raises:
        ConfigError: a referenced variable is unset and has no default.

    """
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set (referenced as ${{{name}}})")

    return _ENV_REF.sub(substitute, text)


def _expand_tree(node: Any, environ: dict[str, str] | None) -> Any:
    """Expand references in every string of the parsed YAML (not in comments)."""
    if isinstance(node, str):
        return expand_env(node, environ)
    if isinstance(node, dict):
        return {key: _expand_tree(value, environ) for key, value in node.items()}
    if isinstance(node, list):
        return [_expand_tree(value, environ) for value in node]
    return node


def _one_line(error: ValidationError) -> str:
    """The first validation error as ``key.path: message`` (plus a count of the others)."""
    errors = error.errors()
    first = errors[0]
    key = ".".join(str(part) for part in first["loc"]) or "<root>"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{key}: {message}{more}"


def parse_config(data: Any, environ: dict[str, str] | None = None) -> Config:
    """Validate an already-parsed YAML document.

    Raises:
        ConfigError: with one line naming the key at fault.

    """
    if not isinstance(data, dict):
        raise ConfigError("<root>: the configuration must be a YAML mapping")
    try:
        return Config.model_validate(_expand_tree(data, environ))
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def read_yaml(path: str | Path) -> tuple[str, Any]:
    """A config file's text and its parsed YAML (the deploy tooling needs the text too).

    Raises:
        ConfigError: the file is missing or not YAML; one line.

    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
    try:
        return text, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file} is not valid YAML{where}") from None


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a YAML configuration file.

    Raises:
        ConfigError: the file is missing, not YAML, or invalid; one line.

    """
    _, data = read_yaml(path)
    return parse_config(data, environ)
