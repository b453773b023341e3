"""Structured logs and job metrics: the pure parts, and the CLI's JSON lines (SQLite store)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from etl.cli import EXIT_FAILED, EXIT_OK, main
from etl.observe import (
    JsonFormatter,
    Metric,
    job_metrics,
    render_prometheus,
    rows_written,
)
from etl.state.domain import BatchHealth, BatchStatus
from tests.unit.test_cli import write_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
M1 = "0b6f1c4e-0000-4000-8000-000000000001"
M2 = "0b6f1c4e-0000-4000-8000-000000000002"


def test_json_formatter_keeps_context_extras_and_the_traceback() -> None:
    formatter = JsonFormatter({"pipeline": "p1", "command": "infer"})
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("etl.x").makeRecord(
            "etl.x",
            logging.WARNING,
            __file__,
            1,
            "scored %d",
            (7,),
            sys.exc_info(),
            extra={"rows": 7},
        )
    doc = json.loads(formatter.format(record))
    assert doc["message"] == "scored 7"
    assert (doc["level"], doc["logger"], doc["pipeline"], doc["command"]) == (
        "WARNING",
        "etl.x",
        "p1",
        "infer",
    )
    assert doc["rows"] == 7
    assert "ValueError: boom" in doc["exc"]
    assert datetime.fromisoformat(doc["ts"]).tzinfo is not None


def test_rows_written_per_step_and_added_up_for_a_tick() -> None:
    infer = {"seconds": 600, "segments": 12, "cycles": 3, "types": {}}
    export = {"rows_loaded": 15, "rows_rejected": 2}
    train = {"types": {"dumper": {"trained": True}, "excavator": {"trained": False}}}
    assert rows_written("infer", infer) == {"seconds": 600, "segments": 12, "cycles": 3}
    assert rows_written("export", export) == {"results": 15, "quarantine": 2}
    assert rows_written("train", train) == {"models": 1}
    assert rows_written("discover", {"new": 4}) == {"batches": 4}
    tick = {
        "steps": {
            "discover": {"summary": {"new": 4}},
            "preprocess": {"summary": {"vectors_written": 2400}},
            "train": {"summary": None},  # a failed step has no summary
            "infer": {"summary": infer},
            "export": {"summary": export},
        }
    }
    assert rows_written("run", tick) == {
        "batches": 4,
        "statevectors": 2400,
        "seconds": 600,
        "segments": 12,
        "cycles": 3,
        "results": 15,
        "quarantine": 2,
        "models": 0,
    }


def _values(metrics: list[Metric]) -> dict[str, float]:
    return {m.name + "".join(f"|{v}" for _, v in m.labels): m.value for m in metrics}


def test_job_metrics_from_the_health_of_the_store() -> None:
    health = BatchHealth(
        by_status={BatchStatus.DISCOVERED: 3, BatchStatus.INFERRED: 1, BatchStatus.REJECTED: 2},
        oldest_pending_at=NOW - timedelta(minutes=25),
        discovered_since=8,
        rejected_since=2,
        newest_exported={M1: NOW.timestamp() - 900, "not-configured": NOW.timestamp()},
    )
    summary = {"types": {"dumper": {"mean_confidence": 0.91}, "excavator": {"scored": False}}}
    ok = _values(
        job_metrics(
            "infer", summary, ok=True, seconds=4.2, health=health, now=NOW, machines=[M1, M2]
        )
    )
    assert ok["etl_job_success|infer"] == 1.0
    assert ok["etl_job_last_success_timestamp_seconds|infer"] == NOW.timestamp()
    assert ok["etl_batches_behind"] == 4  # discovered + inferred; rejected are not behind
    assert ok["etl_batches|rejected"] == 2 and ok["etl_batches|exported"] == 0
    assert ok["etl_oldest_pending_age_seconds"] == 1500.0
    assert ok["etl_rejected_ratio"] == 0.25
    # lag only for configured machines; M2 has nothing exported yet
    assert ok[f"etl_processing_lag_seconds|{M1}"] == 900.0
    assert not any(k.endswith("not-configured") for k in ok)
    assert ok["etl_processing_lag_max_seconds"] == 900.0
    assert ok["etl_machines_without_results"] == 1
    assert ok["etl_inference_mean_confidence|dumper"] == 0.91
    assert "etl_inference_mean_confidence|excavator" not in ok

    failed = _values(
        job_metrics("infer", {}, ok=False, seconds=1.0, health=health, now=NOW, machines=[M1])
    )
    assert failed["etl_job_success|infer"] == 0.0
    # a failure must not refresh the time of the last success (the staleness alert reads it)
    assert "etl_job_last_success_timestamp_seconds|infer" not in failed


def test_prometheus_text_has_one_header_per_name_and_escaped_labels() -> None:
    text = render_prometheus(
        [
            Metric("etl_batches", 3, "raw batches per status", (("status", "discovered"),)),
            Metric("etl_batches", 1, "raw batches per status", (("status", 'we"ird\\'),)),
            Metric("etl_batches_behind", 4, "behind"),
        ]
    )
    assert text.splitlines() == [
        "# HELP etl_batches raw batches per status",
        "# TYPE etl_batches gauge",
        'etl_batches{status="discovered"} 3.0',
        'etl_batches{status="we\\"ird\\\\"} 1.0',
        "# HELP etl_batches_behind behind",
        "# TYPE etl_batches_behind gauge",
        "etl_batches_behind 4.0",
    ]


def _raw_file(tmp_path: Path, machine: str, first_ms: int) -> None:
    folder = tmp_path / "raw" / machine
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{first_ms}.parquet").write_bytes(b"not checked by discover")


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_log_json_makes_every_line_json_and_ends_with_the_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _raw_file(tmp_path, M1, 1_772_366_400_000)
    config = write_config(tmp_path)
    assert main(["--config", str(config), "--log-json", "discover"]) == EXIT_OK
    captured = capsys.readouterr()
    lines = _json_lines(captured.err)  # raises if any stderr line is not JSON
    assert lines and all(doc["pipeline"] == "clitest" for doc in lines)
    (metrics,) = [doc for doc in lines if doc.get("event") == "metrics"]
    assert metrics["step"] == "discover"
    assert metrics["metrics"]["etl_batches|discovered"] == 1
    assert metrics["metrics"]["etl_batches_behind"] == 1
    assert metrics["metrics"]["etl_rows_written|discover|batches"] == 1
    assert metrics["metrics"]["etl_job_success|discover"] == 1
    assert json.loads(captured.out)["new"] == 1  # the summary stays on stdout


def test_a_failed_job_still_reports_its_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import etl.steps.discover

    def broken(ctx: object) -> dict:
        raise ConnectionError("catalog unreachable")

    monkeypatch.setattr(etl.steps.discover, "discover", broken)
    config = write_config(tmp_path, observability={"log_format": "json"})
    assert main(["--config", str(config), "discover"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "etl discover: ConnectionError: catalog unreachable" in err
    docs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    (metrics,) = [doc for doc in docs if doc.get("event") == "metrics"]
    assert metrics["metrics"]["etl_job_success|discover"] == 0
