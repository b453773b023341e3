"""The local stack's services: PostgreSQL, Kafka (KRaft), an S3 server, MLflow.

Each service knows its ports, how to start itself detached, how to tell that it
is ready (a real request, not an open port), how to stop, and what it must hold
once ready (databases, the topic, buckets). Everything binds to loopback only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

from etl.paths import jars_dir
from etl.stack.process import (
    LOOPBACK,
    StackError,
    log_tail,
    read_pid,
    run_checked,
    start_detached,
    stop_pid,
    wait_until,
)

LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "etl-local",
    "AWS_SECRET_ACCESS_KEY": "etl-local-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""Credentials the local S3 server accepts, used only where the environment has none."""


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a service: ours, local AWS defaults where unset, then ``extra``."""
    env = dict(os.environ)
    for key, value in LOCAL_AWS_ENV.items():
        env.setdefault(key, value)
    env.update(extra or {})
    return env


@dataclass
class Service(ABC):
    """One process of the stack."""

    name: str
    port: int
    data_dir: Path
    extra_ports: tuple[int, ...] = ()

    @property
    def log_file(self) -> Path:
        """Where the process's output goes."""
        return self.data_dir / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        """Where its pid is recorded."""
        return self.data_dir / "run" / f"{self.name}.pid"

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port it binds."""
        return (self.port, *self.extra_ports)

    def pid(self) -> int | None:
        """The pid of our running process, if any."""
        return read_pid(self.pid_file)

    @abstractmethod
    def start(self) -> None:
        """Start the process detached (it is known not to run)."""

    @abstractmethod
    def ready(self) -> bool:
        """Answer a real request; False (or an exception) when not ready."""

    def provision(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Create what must exist once ready (databases, topics, buckets); idempotent."""

    def stop(self) -> None:
        """Stop our process if it runs."""
        pid = self.pid()
        if pid is not None:
            stop_pid(pid)
        self.pid_file.unlink(missing_ok=True)

    def died(self) -> str | None:
        """Why waiting is pointless: the process has exited (with its log's last line)."""
        if self.pid() is None:
            return f"process exited: {log_tail(self.log_file)} (log: {self.log_file})"
        return None


# --------------------------------------------------------------------------- PostgreSQL


def _postgres_bin() -> Path:
    """The newest Debian PostgreSQL server binaries (/usr/lib/postgresql/N/bin)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise StackError("PostgreSQL server not installed (run `make setup`: apt-get postgresql)")
    return candidates[-1].parent


def _runuser() -> str:
    """The path of ``runuser``: /usr/sbin, which a minimal PATH (cron, CI) may lack."""
    return shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.path.exists(p)), "runuser"
    )


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run as the ``postgres`` user when we are root."""
    if os.geteuid() == 0:
        return [_runuser(), "-u", "postgres", "--", *argv]
    return argv


def _postgres_can_use(path: Path) -> bool:
    """Whether the postgres user can write below ``path`` (a repo under /root it cannot)."""
    if os.geteuid() != 0:
        return True
    probe = subprocess.run(
        [_runuser(), "-u", "postgres", "--", "test", "-w", str(path)], check=False
    )
    return probe.returncode == 0


@dataclass
class Postgres(Service):
    """A PostgreSQL cluster owned by the ``postgres`` user, with our role and databases."""

    user: str = "etl"
    password: str = "etl"
    databases: tuple[str, ...] = ()

    @cached_property
    def cluster_dir(self) -> Path:
        """The cluster's data directory: ours if postgres may write there, else its home."""
        mine = self.data_dir / "postgres"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chmod(self.data_dir, 0o777)
        if _postgres_can_use(self.data_dir):
            return mine
        digest = hashlib.sha1(str(mine).encode()).hexdigest()[:10]
        return Path("/var/lib/postgresql") / f"etl-stack-{digest}"

    def pid(self) -> int | None:
        """The postmaster's pid, from its own postmaster.pid."""
        return read_pid(self.cluster_dir / "postmaster.pid")

    def start(self) -> None:
        """Initdb once, then pg_ctl start on loopback with our port."""
        bin_dir = _postgres_bin()
        cluster = self.cluster_dir
        if not (cluster / "PG_VERSION").exists():
            cluster.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(cluster, "postgres", "postgres")
            pwfile = cluster.with_name(cluster.name + ".pw")
            pwfile.write_text(self.password + "\n")
            if os.geteuid() == 0:
                shutil.chown(pwfile, "postgres", "postgres")
            run_checked(
                _as_postgres(
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(cluster),
                        "-U",
                        self.user,
                        f"--pwfile={pwfile}",
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "--encoding=UTF8",
                        "--no-instructions",
                    ]
                ),
                what="initdb",
            )
            pwfile.unlink()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.log_file.parent, 0o777)
        log = self.log_file if _postgres_can_use(self.log_file.parent) else cluster / "server.log"
        options = (
            f"-c listen_addresses={LOOPBACK} -c port={self.port} "
            f"-c unix_socket_directories={cluster} -c max_connections=200 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        run_checked(
            _as_postgres(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(cluster),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "start",
                ]
            ),
            what="pg_ctl start",
        )

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        """A SQLAlchemy URL for one of our databases."""
        return f"{driver}://{self.user}:{self.password}@{LOOPBACK}:{self.port}/{database}"

    def _connect(self, database: str = "postgres"):
        import psycopg

        return psycopg.connect(
            host=LOOPBACK,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            connect_timeout=3,
            autocommit=True,
        )

    def ready(self) -> bool:
        """A real login and ``SELECT 1``."""
        with self._connect() as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    def provision(self) -> None:
        """Create the databases that are missing."""
        with self._connect() as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for database in self.databases:
                if database not in existing:
                    conn.execute(f'CREATE DATABASE "{database}"')

    def stop(self) -> None:
        """pg_ctl stop, fast mode (rolls back open transactions, no recovery needed)."""
        if self.pid() is None:
            return
        run_checked(
            _as_postgres(
                [str(_postgres_bin() / "pg_ctl"), "-D", str(self.cluster_dir), "-m", "fast", "stop"]
            ),
            what="pg_ctl stop",
        )


# --------------------------------------------------------------------------- Kafka


def _kafka_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class Kafka(Service):
    """A single-node Kafka broker and controller in KRaft mode."""

    topics: tuple[str, ...] = ("raw-batches",)
    partitions: int = 4

    @property
    def controller_port(self) -> int:
        """The KRaft controller listener."""
        return self.extra_ports[0]

    @property
    def bootstrap(self) -> str:
        """The client bootstrap address."""
        return f"{LOOPBACK}:{self.port}"

    def _write_config(self, home: Path) -> Path:
        logs = home / "data"
        props = home / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{LOOPBACK}:{self.controller_port}",
                    f"listeners=PLAINTEXT://{LOOPBACK}:{self.port},"
                    f"CONTROLLER://{LOOPBACK}:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://{LOOPBACK}:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={logs}",
                    "num.partitions=1",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "",
                ]
            )
        )
        (home / "log4j2.properties").write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.console.type = Console",
                    "appender.console.name = STDOUT",
                    "appender.console.layout.type = PatternLayout",
                    "appender.console.layout.pattern = [%d] %p %m (%c)%n",
                    "rootLogger.level = WARN",
                    "rootLogger.appenderRef.stdout.ref = STDOUT",
                    "logger.kafka.name = kafka.server.KafkaRaftServer",
                    "logger.kafka.level = INFO",
                    "",
                ]
            )
        )
        return props

    def _java(self, home: Path) -> list[str]:
        classpath = jars_dir("kafka")
        if not any(classpath.glob("kafka_2.13-*.jar")):
            raise StackError(f"Kafka jars missing in {classpath} (run `make setup`)")
        return [
            shutil.which("java") or "java",
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            "-cp",
            f"{classpath}/*",
        ]

    def start(self) -> None:
        """Format the storage once (KRaft), then start the server."""
        home = self.data_dir / "kafka"
        home.mkdir(parents=True, exist_ok=True)
        props = self._write_config(home)
        java = self._java(home)
        if not (home / "data" / "meta.properties").exists():
            run_checked(
                [
                    *java,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    _kafka_cluster_id(),
                    "-c",
                    str(props),
                ],
                what="kafka storage format",
            )
        start_detached(
            [*java, "kafka.Kafka", str(props)], log_file=self.log_file, pid_file=self.pid_file
        )

    def ready(self) -> bool:
        """The broker answers a metadata request (probed only once its port accepts)."""
        from kafka import KafkaAdminClient

        # kafka-python logs every refused bootstrap loudly; a plain connect is quiet.
        socket.create_connection((LOOPBACK, self.port), timeout=2).close()

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        try:
            admin.list_topics()
        finally:
            admin.close()
        return True

    def provision(self) -> None:
        """Create the announcement topics with infinite retention (they are the history)."""
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        try:
            existing = set(admin.list_topics())
            missing = [
                NewTopic(
                    topic,
                    num_partitions=self.partitions,
                    replication_factor=1,
                    topic_configs={"retention.ms": "-1", "retention.bytes": "-1"},
                )
                for topic in self.topics
                if topic not in existing
            ]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(missing)
        finally:
            admin.close()


# --------------------------------------------------------------------------- S3


@dataclass
class S3Server(Service):
    """moto in server mode: an S3-compatible endpoint (data lives in its memory)."""

    buckets: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        """The endpoint URL clients override."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        """Run moto's server on loopback."""
        start_detached(
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)],
            log_file=self.log_file,
            pid_file=self.pid_file,
            env=child_env(),
        )

    def client(self):
        """A boto3 S3 client for this server."""
        import boto3

        env = child_env()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )

    def ready(self) -> bool:
        """ListBuckets answers."""
        self.client().list_buckets()
        return True

    def provision(self) -> None:
        """Create the buckets that are missing."""
        client = self.client()
        existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
        for bucket in self.buckets:
            if bucket not in existing:
                client.create_bucket(Bucket=bucket)


# --------------------------------------------------------------------------- MLflow


@dataclass
class Mlflow(Service):
    """MLflow tracking server: runs in PostgreSQL, artifacts proxied to the S3 server."""

    backend_uri: str = ""
    artifacts_destination: str = ""
    s3_endpoint: str = ""
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """The tracking URI clients use."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        """Run ``mlflow server`` (it migrates its schema in PostgreSQL on first start)."""
        start_detached(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                self.backend_uri,
                "--artifacts-destination",
                self.artifacts_destination,
                "--serve-artifacts",
                "--host",
                LOOPBACK,
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            log_file=self.log_file,
            pid_file=self.pid_file,
            env=child_env({"MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint, **self.env}),
        )

    def ready(self) -> bool:
        """GET /health answers OK."""
        with urllib.request.urlopen(f"{self.uri}/health", timeout=3) as response:
            return response.status == 200


def bucket_of(url: str) -> str | None:
    """The bucket of an ``s3://`` or ``s3a://`` URL, None for other schemes."""
    parsed = urlparse(url)
    return parsed.netloc if parsed.scheme in ("s3", "s3a") else None


__all__ = [
    "LOCAL_AWS_ENV",
    "Kafka",
    "Mlflow",
    "Postgres",
    "S3Server",
    "Service",
    "StackError",
    "bucket_of",
    "child_env",
    "wait_until",
]
