"""The session factory's settings, checked without starting a JVM."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.config import S3Config
from etl.session import (
    CLASS_ARCHIVE_OPTIONS,
    SparkSetupError,
    configure,
    pinned_jars,
    read_spark_defaults,
    session_conf,
)


def test_correctness_settings_win_over_defaults_file(tmp_path: Path) -> None:
    defaults = tmp_path / "spark-defaults.conf"
    defaults.write_text(
        "# comment\n\nspark.sql.shuffle.partitions   7\nspark.sql.session.timeZone Europe/Paris\n"
    )
    conf = session_conf(defaults=defaults, jars=["/j/a.jar", "/j/b.jar"])
    assert conf["spark.sql.shuffle.partitions"] == "7"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.jars"] == "/j/a.jar,/j/b.jar"
    assert "spark.jars.packages" not in conf


def test_local_master_puts_jars_on_the_class_path() -> None:
    conf = session_conf(defaults=Path("/nonexistent"), jars=["/j/a.jar", "/j/b.jar"], local=True)
    assert conf["spark.driver.extraClassPath"] == "/j/a.jar:/j/b.jar"
    assert "spark.jars" not in conf


def test_local_sessions_map_the_class_archive_when_setup_wrote_one(tmp_path: Path) -> None:
    defaults = tmp_path / "spark-defaults.conf"
    defaults.write_text("spark.driver.extraJavaOptions -Duser.timezone=UTC\n")
    archive = tmp_path / "classes.jsa"
    missing = session_conf(defaults=defaults, jars=[], local=True, archive=archive)
    assert missing["spark.driver.extraJavaOptions"] == "-Duser.timezone=UTC"
    archive.write_bytes(b"")
    local = session_conf(defaults=defaults, jars=[], local=True, archive=archive)
    assert local["spark.driver.extraJavaOptions"] == (
        f"-Duser.timezone=UTC {CLASS_ARCHIVE_OPTIONS}{archive}"
    )
    # a cluster's JVMs have other class paths: no archive
    cluster = session_conf(defaults=defaults, jars=[], local=False, archive=archive)
    assert cluster["spark.driver.extraJavaOptions"] == "-Duser.timezone=UTC"


def test_local_sessions_have_no_ui_unless_the_defaults_file_asks(tmp_path: Path) -> None:
    defaults = tmp_path / "spark-defaults.conf"
    defaults.write_text("spark.sql.shuffle.partitions 4\n")
    assert session_conf(defaults=defaults, jars=[], local=True)["spark.ui.enabled"] == "false"
    assert "spark.ui.enabled" not in session_conf(defaults=defaults, jars=[], local=False)
    defaults.write_text("spark.ui.enabled true\n")
    assert session_conf(defaults=defaults, jars=[], local=True)["spark.ui.enabled"] == "true"


def test_s3a_endpoint_settings() -> None:
    conf = session_conf(
        s3=S3Config(endpoint_url="http://127.0.0.1:9000", region="eu-west-1"),
        defaults=Path("/nonexistent"),
        jars=[],
    )
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert not any("secret" in key or "access.key" in key for key in conf)


def test_aws_itself_has_no_endpoint_override() -> None:
    conf = session_conf(s3=S3Config(), defaults=Path("/nonexistent"), jars=[])
    assert "spark.hadoop.fs.s3a.endpoint" not in conf


def test_repository_defaults_file_parses() -> None:
    from etl.paths import spark_defaults_file

    conf = read_spark_defaults(spark_defaults_file())
    assert conf["spark.driver.extraJavaOptions"].startswith("-Duser.timezone=UTC -XX:Tier4")
    assert conf["spark.executor.extraJavaOptions"] == "-Duser.timezone=UTC"


def test_pinned_jars_come_from_maven_folder(tmp_path: Path) -> None:
    with pytest.raises(SparkSetupError, match="make setup"):
        pinned_jars(tmp_path)
    (tmp_path / "delta-spark_4.2_2.13-4.4.0.jar").write_bytes(b"")
    (tmp_path / "hadoop-aws-3.5.0.jar").write_bytes(b"")
    assert [Path(j).name for j in pinned_jars(tmp_path)] == [
        "delta-spark_4.2_2.13-4.4.0.jar",
        "hadoop-aws-3.5.0.jar",
    ]


def test_repository_jars_are_resolved() -> None:
    names = {Path(jar).name for jar in pinned_jars()}
    assert "delta-spark_4.2_2.13-4.4.0.jar" in names
    assert "hadoop-aws-3.5.0.jar" in names
    assert any(name.startswith("postgresql-42.") for name in names)
    assert any(name.startswith("bundle-2.") for name in names)


class _Builder:
    """Records what the factory sets (a SparkSession.Builder stand-in)."""

    def __init__(self) -> None:
        self.conf: dict[str, str] = {}

    def config(self, key: str, value: str) -> _Builder:
        self.conf[key] = value
        return self


def test_the_image_keeps_its_jars_on_the_classpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setenv("ETL_JARS_DIR", str(tmp_path / "nowhere"))  # no jars/ in the image
    monkeypatch.setenv("ETL_JARS_ON_CLASSPATH", "1")
    built = configure(_Builder()).conf  # type: ignore[arg-type]
    assert "spark.jars" not in built
    assert built["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    monkeypatch.delenv("ETL_JARS_ON_CLASSPATH")
    with pytest.raises(SparkSetupError):
        configure(_Builder())  # type: ignore[arg-type]
