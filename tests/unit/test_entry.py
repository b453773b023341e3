"""The spark-submit entry points: global options before the step, the step's own after it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etl.cli import EXIT_OK
from etl.entry import run_step, split_arguments
from tests.unit.test_cli import write_config


def test_global_options_go_before_the_step_and_the_rest_after() -> None:
    argv = [
        "--config",
        "/etc/c.yaml",
        "--log-json",
        "--if-due",
        "--log-level=DEBUG",
        "--limit",
        "5",
    ]
    assert split_arguments(argv) == (
        ["--config", "/etc/c.yaml", "--log-json", "--log-level=DEBUG"],
        ["--if-due", "--limit", "5"],
    )
    assert split_arguments(["--config=/c.yaml"]) == (["--config=/c.yaml"], [])


def test_a_train_job_with_if_due_trains_nothing_that_is_not_due(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the scheduled train step runs: no type was judged within recheck_every_h..."""
    config = write_config(tmp_path)
    # ...so the one dumper type is due, but with no data it is judged insufficient
    assert run_step("train", ["--config", str(config), "--if-due"]) == EXIT_OK
    first = json.loads(capsys.readouterr().out)
    assert first["types"]["dumper"]["trained"] is False
    # judged a moment ago: not due again within training.recheck_every_h
    assert run_step("train", ["--config", str(config), "--if-due"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"types": {}, "skipped": "no machine type due"}
