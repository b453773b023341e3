from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from etl.cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    PIPELINE_STEPS,
    main,
    render_preprocess_summary,
)
from etl.stack.process import port_is_free


def write_config(tmp_path: Path, state_url: str | None = None, **overrides: object) -> Path:
    data = {
        "pipeline": {"name": "clitest"},
        "assets": [{"uuid": "0b6f1c4e-0000-4000-8000-000000000001", "type": "dumper"}],
        "storage": {
            "raw_url": f"file://{tmp_path}/raw",
            "processed_url": f"file://{tmp_path}/processed",
        },
        "catalog": {"kind": "listing"},
        "state": {"url": state_url or f"sqlite:///{tmp_path}/state.db"},
        "preprocess": {"max_gap_s": 10},
        **overrides,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_status_json_on_a_fresh_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["--config", str(config), "status", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {
        "batches": [],
        "models": [],
        "inference_runs": [],
        "exports": [],
    }


def test_status_json_reports_batch_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE batches (id INTEGER PRIMARY KEY, machine_uuid TEXT, key TEXT,"
            " status TEXT, reason TEXT)"
        )
        conn.execute(
            "INSERT INTO batches VALUES"
            " (1, 'm1', 'm1/1.parquet', 'rejected', 'missing column acc_x')"
        )
    config = write_config(tmp_path, state_url=f"sqlite:///{db}")
    assert main(["--config", str(config), "status", "--json"]) == EXIT_OK
    status = json.loads(capsys.readouterr().out)
    assert status["batches"] == [
        {
            "id": 1,
            "machine_uuid": "m1",
            "key": "m1/1.parquet",
            "status": "rejected",
            "reason": "missing column acc_x",
        }
    ]
    assert status["models"] == []


def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, preprocess={"max_gap_s": 10, "max_gap": 3})
    assert main(["--config", str(config), "status", "--json"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err == "etl: config error: preprocess.max_gap: unknown key"


def test_export_without_results_database_skips_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["--config", str(config), "export"]) == EXIT_OK
    assert "skipped" in json.loads(capsys.readouterr().out)


def test_infer_with_nothing_preprocessed_scores_nothing_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["--config", str(config), "infer"]) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["types"] == {} and summary["interrupted_closed"] == 0


def test_train_without_data_says_how_much_is_missing_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["--config", str(config), "train"]) == EXIT_OK
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    reasons = {kind: outcome["reason"] for kind, outcome in summary["types"].items()}
    assert reasons and all(
        r.startswith("insufficient data: 0.0 of 14 days") for r in reasons.values()
    )
    assert "train dumper: insufficient data" in captured.err or "dumper" not in reasons


def test_unreachable_state_store_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = next(p for p in range(47001, 47100) if port_is_free(p))
    url = f"postgresql+psycopg://etl:etl@127.0.0.1:{port}/none?connect_timeout=2"
    config = write_config(tmp_path, state_url=url)
    assert main(["--config", str(config), "status", "--json"]) == EXIT_FAILED
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("etl status: OperationalError: ")
    assert str(port) in err


def test_every_contract_command_is_parsed() -> None:
    from etl.cli import build_parser

    parser = build_parser()
    for command in (*PIPELINE_STEPS, "status", "reprocess", "simulate"):
        args = parser.parse_args(["--config", "x.yaml", command])
        assert args.command == command


def test_sqlite_state_in_a_new_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from etl.bootstrap import bootstrap
    from etl.config import load_config

    config = write_config(tmp_path, state_url=f"sqlite:///{tmp_path}/new/deeper/state.db")
    ctx = bootstrap(load_config(config))
    with ctx.uow() as uow:
        assert uow.batches.for_pipeline("clitest") == []
    ctx.close()
    assert (tmp_path / "new" / "deeper" / "state.db").is_file()


def test_the_preprocess_summary_names_replanned_chunks_only_when_there_were_some() -> None:
    summary = {
        "files": 10,
        "accepted": 8,
        "rejected": 1,
        "duplicates": 1,
        "rows": 1000,
        "vectors_written": 100,
        "reasons": {"not a parquet file": 1},
        "replanned_chunks": 0,
        "seconds": 2.0,
    }
    assert "replanned" not in render_preprocess_summary(summary)
    lines = render_preprocess_summary(summary | {"replanned_chunks": 1}).splitlines()
    assert [line.split()[:2] for line in lines if "replanned" in line] == [["replanned", "1"]]
