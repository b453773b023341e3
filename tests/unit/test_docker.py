"""The image's build context and entry point, without a Docker engine.

No engine runs here (nor in CI), so the Dockerfile is checked for what breaks
builds in practice: a COPY whose source is missing or excluded by
.dockerignore, a stage used before it exists, a runtime dependency the lock
does not pin, a root user. The entry point is run for real with stand-ins for
spark-submit and java, so the command lines the pods get are the ones asserted.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    out, stage = [], -1
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword.upper(), args.strip()))
    return out


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: the last pattern matching the path or a parent decides."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip("/")
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(candidate.split("/")[-1], pattern[3:])
            ):
                verdict = not negate
                break
    return verdict


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def copies(steps: list[Instruction]) -> list[tuple[int, str | None, list[str]]]:
    """Each COPY: its stage, its --from (or None) and its sources."""
    out = []
    for step in steps:
        if step.keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(step.args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        source = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        out.append((step.stage, source, paths[:-1]))
    return out


STEPS = instructions((ROOT / "Dockerfile").read_text())


def test_every_context_copy_exists_and_is_not_ignored() -> None:
    patterns = dockerignore()
    context = [s for _, source, sources in copies(STEPS) if source is None for s in sources]
    assert context, "the Dockerfile copies nothing from the context?"
    for source in context:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
        if (ROOT / source).is_dir():
            files = [p for p in (ROOT / source).rglob("*") if p.is_file()]
            kept = [p for p in files if not ignored(str(p.relative_to(ROOT)), patterns)]
            assert kept, f"COPY {source}: every file in it is excluded"


def test_the_context_leaves_out_local_state() -> None:
    patterns = dockerignore()
    for heavy in (".venv/bin/python", ".stack/pg", "jars/spark/x.jar", ".git/HEAD", "reports/x"):
        assert ignored(heavy, patterns), f"{heavy} would be sent to the Docker daemon"
    assert not ignored("etl/cli.py", patterns)
    assert ignored("etl/__pycache__/cli.cpython-311.pyc", patterns)


def test_stages_exist_before_they_are_copied_from() -> None:
    names: dict[str, int] = {}
    for step in STEPS:
        if step.keyword == "FROM":
            match = re.search(r"\s+AS\s+(\S+)$", step.args, re.IGNORECASE)
            if match:
                names[match.group(1)] = step.stage
    for stage, source, _ in copies(STEPS):
        if source is not None:
            assert source in names, f"COPY --from={source}: no such stage"
            assert names[source] < stage


def test_the_runtime_runs_as_a_non_root_user_through_the_entrypoint() -> None:
    last = max(s.stage for s in STEPS)
    users = [s.args for s in STEPS if s.stage == last and s.keyword == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    args = {s.args.split("=")[0]: s.args for s in STEPS if s.keyword == "ARG"}
    if users[-1].startswith("${"):
        name = users[-1].strip("${}")
        assert args[name].split("=", 1)[1] != "0"
    entry = [s.args for s in STEPS if s.stage == last and s.keyword == "ENTRYPOINT"]
    assert entry and "/opt/entrypoint.sh" in entry[-1]
    assert any("docker/entrypoint.sh /opt/entrypoint.sh" in s.args for s in STEPS)


def test_every_runtime_dependency_is_pinned_by_the_lock() -> None:
    """The image installs the wheel with ``-c requirements.lock``: an unpinned one would float."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {
        re.split(r"[=<>\[ ]", line)[0].lower().replace("_", "-")
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for requirement in project["dependencies"]:
        name = re.split(r"[=<>\[ ;]", requirement)[0].lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in requirements.lock"


def _stand_in(folder: Path, name: str) -> Path:
    """An executable that prints its arguments, one per line."""
    path = folder / name
    path.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    path.chmod(0o755)
    return path


def _entrypoint(args: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), *args],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_a_driver_pod_runs_spark_submit_in_client_mode_on_its_ip(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    _stand_in(tmp_path / "bin", "spark-submit")
    out = _entrypoint(
        ["driver", "--properties-file", "/opt/spark/conf/spark.properties", "local:///j.py"],
        {"SPARK_HOME": str(tmp_path), "SPARK_DRIVER_BIND_ADDRESS": "10.0.0.7"},
    )
    assert out == [
        "--conf",
        "spark.driver.bindAddress=10.0.0.7",
        "--conf",
        "spark.executorEnv.SPARK_DRIVER_POD_IP=10.0.0.7",
        "--deploy-mode",
        "client",
        "--properties-file",
        "/opt/spark/conf/spark.properties",
        "local:///j.py",
    ]


def test_an_executor_pod_starts_the_kubernetes_backend_with_its_java_options(
    tmp_path: Path,
) -> None:
    _stand_in(tmp_path, "java")
    env = {
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "SPARK_HOME": "/spark",
        "SPARK_EXECUTOR_MEMORY": "4g",
        "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@driver-svc:7078",
        "SPARK_EXECUTOR_ID": "3",
        "SPARK_EXECUTOR_CORES": "2",
        "SPARK_APPLICATION_ID": "spark-abc",
        "SPARK_EXECUTOR_POD_IP": "10.0.0.9",
        "SPARK_EXECUTOR_POD_NAME": "etl-exec-3",
        "SPARK_JAVA_OPT_10": "-Dlast=x y",
        "SPARK_JAVA_OPT_2": "-Dsecond=2",
        "SPARK_JAVA_OPT_0": "-Duser.timezone=UTC",
    }
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), "executor"], env=env, capture_output=True, text=True, check=True
    )
    out = done.stdout.splitlines()
    # JVM options in their numeric order (10 after 2), each one argument even with a space
    assert out[:3] == ["-Duser.timezone=UTC", "-Dsecond=2", "-Dlast=x y"]
    assert out[3:6] == ["-Xms4g", "-Xmx4g", "-cp"]
    assert out[6] == "/spark/conf:/spark/jars/*"
    assert out[7] == "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"
    flags = dict(zip(out[8::2], out[9::2], strict=True))
    assert flags == {
        "--driver-url": "spark://CoarseGrainedScheduler@driver-svc:7078",
        "--executor-id": "3",
        "--cores": "2",
        "--app-id": "spark-abc",
        "--hostname": "10.0.0.9",
        "--resourceProfileId": "0",
        "--podName": "etl-exec-3",
    }


@pytest.mark.parametrize("args", [["echo", "etl", "status"]])
def test_any_other_command_runs_as_given(args: list[str]) -> None:
    assert _entrypoint(args, {}) == ["etl status"]
