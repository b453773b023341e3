"""``etl stack up|down|status``: the local stack every test and the demo talk to.

Up is idempotent: a service of ours that already answers is left alone; a port
held by anything else is a clear error before anything starts. Services come up
in dependency order (MLflow needs PostgreSQL and S3) and each is
readiness-checked with a real request, then provisioned (databases, topic,
buckets).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from etl.config import Config
from etl.paths import resolve
from etl.stack.process import StackError, port_is_free, wait_until
from etl.stack.services import Kafka, Mlflow, Postgres, S3Server, Service, bucket_of

log = logging.getLogger(__name__)

START_TIMEOUT_S = {"postgres": 60.0, "s3": 60.0, "kafka": 90.0, "mlflow": 180.0}


@dataclass(frozen=True)
class Stack:
    """The four services of the local stack, built from the config's ``stack`` section."""

    postgres: Postgres
    s3: S3Server
    kafka: Kafka
    mlflow: Mlflow

    @property
    def services(self) -> tuple[Service, ...]:
        """All services, in start order."""
        return (self.postgres, self.s3, self.kafka, self.mlflow)


def build_stack(config: Config) -> Stack:
    """Describe the stack for ``config`` (nothing is started)."""
    settings = config.stack
    data_dir = resolve(settings.data_dir).resolve()
    postgres = Postgres(
        name="postgres",
        port=settings.postgres_port,
        data_dir=data_dir,
        user=settings.postgres_user,
        password=settings.postgres_password,
        databases=settings.databases,
    )
    wanted_buckets = [
        bucket_of(url)
        for url in (
            config.storage.raw_url,
            config.storage.processed_url,
            config.storage.labels_url or "",
            settings.mlflow_artifacts_url,
        )
    ]
    buckets = tuple(dict.fromkeys([*(b for b in wanted_buckets if b), *settings.buckets]))
    s3 = S3Server(name="s3", port=settings.s3_port, data_dir=data_dir, buckets=buckets)
    kafka = Kafka(
        name="kafka",
        port=settings.kafka_port,
        data_dir=data_dir,
        extra_ports=(settings.kafka_controller_port,),
        topics=(config.catalog.kafka.topic,),
    )
    mlflow = Mlflow(
        name="mlflow",
        port=settings.mlflow_port,
        data_dir=data_dir,
        backend_uri=postgres.url("mlflow"),
        artifacts_destination=settings.mlflow_artifacts_url,
        s3_endpoint=s3.endpoint,
    )
    return Stack(postgres=postgres, s3=s3, kafka=kafka, mlflow=mlflow)


def _is_ready(service: Service) -> bool:
    try:
        return service.ready()
    except Exception:
        return False


def _check_ports(service: Service) -> None:
    """Refuse to start over a port that something else holds."""
    for port in service.ports:
        if not port_is_free(port):
            raise StackError(
                f"port {port} for {service.name} is already in use by another process; "
                f"choose another in the config's stack section or stop that process"
            )


def _bring_up(service: Service) -> str:
    """Start one service unless ours already runs; wait until ready; provision it."""
    started = time.monotonic()
    running = service.pid() is not None
    if not running:
        _check_ports(service)
        service.start()
    wait_until(
        service.ready,
        timeout_s=START_TIMEOUT_S[service.name],
        what=service.name,
        abort=service.died,
    )
    service.provision()
    where = f"127.0.0.1:{service.port}"
    if running:
        return f"{service.name}: already running on {where}"
    return f"{service.name}: started on {where} in {time.monotonic() - started:.1f} s"


def up(stack: Stack) -> list[str]:
    """Start what is not running, in dependency order; one line per service."""
    for service in stack.services:
        if service.pid() is None:
            _check_ports(service)
    first = (stack.postgres, stack.s3, stack.kafka)
    with ThreadPoolExecutor(max_workers=len(first)) as pool:
        lines = list(pool.map(_bring_up, first))
    lines.append(_bring_up(stack.mlflow))
    return lines


def down(stack: Stack) -> list[str]:
    """Stop our services, dependants first; one line per service."""
    lines = []
    for service in reversed(stack.services):
        running = service.pid() is not None
        service.stop()
        lines.append(f"{service.name}: {'stopped' if running else 'not running'}")
    return lines


def status(stack: Stack) -> list[dict[str, object]]:
    """Per service: port, pid and whether it answers a real request."""
    rows = []
    for service in stack.services:
        pid = service.pid()
        ready = pid is not None and _is_ready(service)
        state = "ready" if ready else ("unhealthy" if pid is not None else "down")
        rows.append({"service": service.name, "port": service.port, "pid": pid, "state": state})
    return rows


__all__ = ["Stack", "StackError", "build_stack", "down", "status", "up"]
