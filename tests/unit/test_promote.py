"""etl promote on the embedded store: rolling back moves the champion and keeps the history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etl.bootstrap import bootstrap
from etl.cli import EXIT_FAILED, EXIT_OK, main
from etl.config import load_config
from etl.state.domain import ModelStatus, NewModel
from tests.unit.test_cli import write_config


def _register(config_path: Path, versions: int) -> None:
    ctx = bootstrap(load_config(config_path))
    with ctx.uow() as uow:
        for _ in range(versions):
            uow.models.add(NewModel(pipeline="clitest", machine_type="dumper"))
        uow.models.set_champion(uow.models.for_pipeline("clitest", "dumper")[-1].id, "trained")
        uow.commit()
    ctx.close()


def _statuses(config_path: Path) -> dict[int, tuple[ModelStatus, str | None]]:
    ctx = bootstrap(load_config(config_path))
    with ctx.uow() as uow:
        models = uow.models.for_pipeline("clitest", "dumper")
    ctx.close()
    return {m.version: (m.status, m.reason) for m in models}


def test_promote_rolls_back_to_an_older_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    _register(config, versions=3)  # v3 is the champion
    argv = ["--config", str(config), "promote", "--type", "dumper", "--version", "2"]
    assert main([*argv, "--reason", "v3 misreads hauling"]) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert (summary["champion"], summary["previous"], summary["changed"]) == (2, 3, True)
    statuses = _statuses(config)
    assert statuses[2] == (ModelStatus.CHAMPION, "v3 misreads hauling")
    assert statuses[3] == (ModelStatus.CHALLENGER, "replaced by version 2")
    assert statuses[1][0] == ModelStatus.CHALLENGER

    # again: nothing changes
    assert main(argv) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["changed"] is False
    assert _statuses(config)[2] == (ModelStatus.CHAMPION, "v3 misreads hauling")


def test_promote_of_an_unknown_version_fails_with_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    _register(config, versions=2)
    argv = ["--config", str(config), "promote", "--type", "dumper", "--version", "7"]
    assert main(argv) == EXIT_FAILED
    assert "no dumper model v7 in clitest (known: v1, v2)" in capsys.readouterr().err
    assert _statuses(config)[2][0] == ModelStatus.CHAMPION
