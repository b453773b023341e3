"""Structured logs and the metrics an operator alerts on.

Logs: ``--log-json`` (or ``observability.log_format: json``) writes one JSON
object per line on stderr, with the pipeline and the job in every line, so
that a log stack (CloudWatch, Loki, Elasticsearch) can filter and alert
without parsing prose. Spark's own JVM log stays log4j's. Under spark-submit
the lines go to spark-submit's stderr too (see :func:`reclaim_stderr`).

Metrics: every job (discover, preprocess, train, infer, export, run) ends by
emitting one set of gauges, computed from its summary and from aggregates of
the state store (never by reading every batch):

* the backlog: batches per status, batches behind (not yet exported nor
  rejected) and the age of the oldest of them;
* the rejected rate over ``observability.rejected_window_h``;
* the processing lag per machine: now minus the last exported data second;
* rows written per table, the job's duration and success, the time of its
  last success;
* per machine type, the mean confidence of the seconds just scored: a fall
  against the model's usual level is the cheapest sign of drift.

They go to the log as one ``metrics`` record, and to a Prometheus Pushgateway
when ``observability.pushgateway_url`` is set (the usual way for batch jobs
that are gone before a scrape). A metrics failure is logged, never raised:
the job's outcome is already in the state store.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from etl.state.domain import PENDING_STATUSES, BatchHealth, BatchStatus

if TYPE_CHECKING:
    from etl.bootstrap import Context

log = logging.getLogger("etl.metrics")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHATTY_LOGGERS = ("kafka", "botocore", "urllib3", "py4j", "alembic")
PUSH_JOB = "fleet-etl"
PUSH_TIMEOUT_S = 5.0

# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, context and extras."""

    def __init__(self, context: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.context = dict(context or {})

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (extras keep their names; values via ``str``)."""
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self.context,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def reclaim_stderr() -> None:
    """Give a driver that spark-submit started its stderr back: spark-submit's stderr.

    spark-submit runs the driver's Python with its stderr merged into its stdout,
    both copied to the JVM's stdout (``PythonRunner``: ``redirectErrorStream``), so
    the logs, the operator's lines and tracebacks would end up on spark-submit's
    stdout, amid the job's JSON summary. That JVM is our parent and its stderr is
    spark-submit's: reopened through ``/proc``, it becomes our fd 2 when that is
    safe: a pipe or a terminal, or a file opened for appending (a file opened
    otherwise would get its own offset, and the JVM would write over our lines).
    Anywhere else nothing changes; once done, stderr is no longer merged, so
    calling this again changes nothing either.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # set only for the Python spark-submit starts
        return
    parent = f"/proc/{os.getppid()}"
    try:
        ours, out, theirs = os.fstat(2), os.fstat(1), os.stat(f"{parent}/fd/2")
        with open(f"{parent}/fdinfo/2") as info:
            flags = int(dict(line.split(":", 1) for line in info)["flags"], 8)
    except (OSError, KeyError, ValueError):
        return
    merged = (ours.st_dev, ours.st_ino) == (out.st_dev, out.st_ino)
    elsewhere = (ours.st_dev, ours.st_ino) != (theirs.st_dev, theirs.st_ino)
    mode = theirs.st_mode
    appending = stat.S_ISREG(mode) and bool(flags & os.O_APPEND)
    safe = stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or appending
    if not (merged and elsewhere and safe):
        return
    sys.stderr.flush()
    try:
        fd = os.open(f"{parent}/fd/2", os.O_WRONLY | os.O_APPEND)
    except OSError:
        return
    os.dup2(fd, 2)
    os.close(fd)


def configure_logging(
    level: str, *, json_lines: bool, context: Mapping[str, str] | None = None
) -> None:
    """The root logger's one stderr handler, text or JSON lines; chatty libraries quieter.

    Under spark-submit, stderr is first made spark-submit's again (:func:`reclaim_stderr`).
    """
    reclaim_stderr()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(context) if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


@dataclass(frozen=True)
class Metric:
    """One gauge sample, in Prometheus terms."""

    name: str
    value: float
    help: str
    labels: tuple[tuple[str, str], ...] = ()


def rows_written(step: str, summary: Mapping[str, Any]) -> dict[str, int]:
    """Rows a job wrote, per table, from its summary (a tick adds up its steps)."""
    if step == "run":
        total: dict[str, int] = {}
        for name, outcome in (summary.get("steps") or {}).items():
            for table, n in rows_written(name, (outcome or {}).get("summary") or {}).items():
                total[table] = total.get(table, 0) + n
        return total
    picks = {
        "discover": {"batches": "new"},
        "preprocess": {"statevectors": "vectors_written"},
        "infer": {"seconds": "seconds", "segments": "segments", "cycles": "cycles"},
        "export": {"results": "rows_loaded", "quarantine": "rows_rejected"},
    }.get(step, {})
    out = {table: int(summary.get(key) or 0) for table, key in picks.items()}
    if step == "train":
        out["models"] = sum(1 for t in (summary.get("types") or {}).values() if t.get("trained"))
    return out


def mean_confidence(step: str, summary: Mapping[str, Any]) -> dict[str, float]:
    """Per machine type, the mean confidence of the seconds an infer (or a tick) scored."""
    if step == "run":
        summary = ((summary.get("steps") or {}).get("infer") or {}).get("summary") or {}
    elif step != "infer":
        return {}
    return {
        machine_type: float(outcome["mean_confidence"])
        for machine_type, outcome in (summary.get("types") or {}).items()
        if outcome.get("mean_confidence") is not None
    }


def job_metrics(
    step: str,
    summary: Mapping[str, Any],
    *,
    ok: bool,
    seconds: float,
    health: BatchHealth,
    now: datetime,
    machines: Iterable[str],
) -> list[Metric]:
    """The gauges of one finished job (pure: the caller brings the state store's aggregates)."""
    job = (("step", step),)
    epoch = now.timestamp()
    out = [
        Metric("etl_job_success", float(ok), "1 if the job did its work, 0 if it failed", job),
        Metric("etl_job_duration_seconds", seconds, "wall time of the job", job),
        Metric("etl_job_last_run_timestamp_seconds", epoch, "when the job last ended", job),
    ]
    if ok:
        out.append(
            Metric(
                "etl_job_last_success_timestamp_seconds",
                epoch,
                "when the job last did its work (alert when too old)",
                job,
            )
        )
    for table, n in sorted(rows_written(step, summary).items()):
        out.append(Metric("etl_rows_written", n, "rows the job wrote", (*job, ("table", table))))
    for status in BatchStatus:
        out.append(
            Metric(
                "etl_batches",
                health.by_status.get(status, 0),
                "raw batches per status",
                (("status", status.value),),
            )
        )
    behind = sum(health.by_status.get(s, 0) for s in PENDING_STATUSES)
    oldest = (now - health.oldest_pending_at).total_seconds() if health.oldest_pending_at else 0.0
    rate = health.rejected_since / health.discovered_since if health.discovered_since else 0.0
    out += [
        Metric("etl_batches_behind", behind, "batches discovered but not yet exported"),
        Metric("etl_oldest_pending_age_seconds", oldest, "age of the oldest batch behind"),
        Metric("etl_batches_discovered_window", health.discovered_since, "batches discovered"),
        Metric("etl_batches_rejected_window", health.rejected_since, "of those, rejected"),
        Metric("etl_rejected_ratio", rate, "rejected / discovered in the window"),
    ]
    lags = {m: epoch - health.newest_exported[m] for m in machines if m in health.newest_exported}
    missing = [m for m in machines if m not in health.newest_exported]
    for machine, lag in sorted(lags.items()):
        out.append(
            Metric(
                "etl_processing_lag_seconds",
                lag,
                "now minus the machine's last exported data second",
                (("machine_uuid", machine),),
            )
        )
    out += [
        Metric(
            "etl_processing_lag_max_seconds", max(lags.values(), default=0.0), "stalest machine"
        ),
        Metric("etl_machines_without_results", len(missing), "machines with nothing exported yet"),
    ]
    for machine_type, value in sorted(mean_confidence(step, summary).items()):
        out.append(
            Metric(
                "etl_inference_mean_confidence",
                value,
                "mean confidence of the seconds just scored (drift)",
                (("machine_type", machine_type),),
            )
        )
    return out


def _escape(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    pairs = [f'{key}="{_escape(value)}"' for key, value in labels]
    return "{" + ",".join(pairs) + "}" if pairs else ""


def render_prometheus(metrics: Iterable[Metric]) -> str:
    """The Prometheus text exposition format (0.0.4), one HELP/TYPE per metric name."""
    lines: list[str] = []
    seen: set[str] = set()
    for metric in metrics:
        if metric.name not in seen:
            seen.add(metric.name)
            lines += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} gauge"]
        lines.append(f"{metric.name}{_labels(metric.labels)} {float(metric.value)!r}")
    return "\n".join(lines) + "\n"


def push(url: str, pipeline: str, step: str, metrics: list[Metric], *, replace: bool) -> None:
    """Send one job's metrics to a Pushgateway, grouped by pipeline and step.

    ``replace`` (PUT) drops the group's older samples; a failed job POSTs, so the
    group keeps its last success time, which is what the staleness alert reads.
    """
    group = "/".join(
        urllib.parse.quote(part, safe="")
        for part in ("job", PUSH_JOB, "pipeline", pipeline, "step", step)
    )
    request = urllib.request.Request(
        f"{url.rstrip('/')}/metrics/{group}",
        data=render_prometheus(metrics).encode(),
        method="PUT" if replace else "POST",
        headers={"Content-Type": "text/plain; version=0.0.4"},
    )
    with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_S) as response:
        response.read()


def emit_job_metrics(
    ctx: Context, step: str, summary: Mapping[str, Any], *, ok: bool, seconds: float
) -> list[Metric]:
    """Compute one job's metrics, log them as one record and push them when configured."""
    config = ctx.config
    settings = config.observability
    try:
        now = datetime.now(UTC)
        with ctx.uow() as uow:
            health = uow.batches.health(
                config.pipeline.name, now - timedelta(hours=settings.rejected_window_h)
            )
        metrics = job_metrics(
            step,
            summary,
            ok=ok,
            seconds=seconds,
            health=health,
            now=now,
            machines=[a.uuid for a in config.assets],
        )
        values = {
            m.name + "".join(f"|{v}" for _, v in m.labels): round(float(m.value), 3)
            for m in metrics
        }
        log.info(
            "metrics %s: %s behind, lag max %.0f s, rows %s",
            step,
            values["etl_batches_behind"],
            values["etl_processing_lag_max_seconds"],
            rows_written(step, summary),
            extra={"event": "metrics", "step": step, "metrics": values},
        )
        if settings.pushgateway_url:
            push(settings.pushgateway_url, config.pipeline.name, step, metrics, replace=ok)
        return metrics
    except Exception as exc:  # metrics must never fail a job
        log.warning("metrics of %s not emitted: %s: %s", step, type(exc).__name__, exc)
        return []
