from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from etl.config import ConfigError, expand_env, load_config, parse_config

CONTRACT_EXAMPLE = """
pipeline:
  name: acceptance
assets:
  - uuid: 0b6f1c4e-0000-4000-8000-000000000001
    type: dumper
storage:
  raw_url: file:///data/raw
  processed_url: file:///data/processed
catalog:
  kind: listing
state:
  url: sqlite:////data/state.db
preprocess:
  max_gap_s: 10
"""


def minimal() -> dict:
    return yaml.safe_load(CONTRACT_EXAMPLE)


def error_of(data: dict, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ or {})
    message = str(info.value)
    assert "\n" not in message, "errors must be one line"
    return message


def test_contract_example_is_a_complete_config() -> None:
    config = parse_config(minimal(), {})
    assert config.pipeline.name == "acceptance"
    assert config.assets[0].type == "dumper"
    assert config.catalog.kind == "listing"
    assert config.preprocess.max_gap_s == 10
    assert config.output_url == "file:///data/processed/acceptance"
    # everything the contract leaves out has a default
    assert config.training.min_days == 14
    assert config.catalog.kafka.topic == "raw-batches"
    assert config.results.db_schema == "mining_insights"


def test_demo_config_loads_with_defaults_from_environment(demo_config_path: Path) -> None:
    config = load_config(demo_config_path, environ={})
    assert config.stack.postgres_port == 55432
    assert config.state.url.endswith("@127.0.0.1:55432/etl_state")
    assert config.storage.s3.endpoint_url == "http://127.0.0.1:59000"
    assert {a.type for a in config.assets} == {"dumper", "excavator", "wheel_loader"}


def test_demo_config_ports_follow_environment(demo_config_path: Path) -> None:
    config = load_config(
        demo_config_path, environ={"ETL_PG_PORT": "6543", "ETL_PG_PASSWORD": "s3cret"}
    )
    assert config.stack.postgres_port == 6543
    assert config.state.url == "postgresql+psycopg://etl:s3cret@127.0.0.1:6543/etl_state"


def test_unknown_key_is_named() -> None:
    data = minimal()
    data["storage"]["raw_ur"] = "file:///x"
    assert error_of(data) == "storage.raw_ur: unknown key"


def test_unknown_top_level_section_is_named() -> None:
    data = minimal()
    data["preprocessing"] = {"max_gap_s": 3}
    assert error_of(data) == "preprocessing: unknown key"


def test_wrong_type_is_named() -> None:
    data = minimal()
    data["preprocess"]["max_gap_s"] = "ten"
    assert error_of(data).startswith("preprocess.max_gap_s: ")


def test_machine_type_outside_taxonomy_is_named() -> None:
    data = minimal()
    data["assets"][0]["type"] = "bulldozer"
    message = error_of(data)
    assert message.startswith("assets.0.type: ")
    assert "dumper" in message


def test_missing_required_key_is_named() -> None:
    data = minimal()
    del data["state"]
    assert error_of(data) == "state: required key is missing"


def test_bad_uuid_and_case_normalisation() -> None:
    data = minimal()
    data["assets"][0]["uuid"] = "not-a-uuid"
    assert error_of(data).startswith("assets.0.uuid: ")
    data["assets"][0]["uuid"] = "0B6F1C4E-0000-4000-8000-00000000000A"
    assert parse_config(data, {}).assets[0].uuid == "0b6f1c4e-0000-4000-8000-00000000000a"


def test_duplicate_asset_is_rejected() -> None:
    data = minimal()
    data["assets"].append(dict(data["assets"][0]))
    assert "listed twice" in error_of(data)


def test_storage_scheme_is_checked() -> None:
    data = minimal()
    data["storage"]["raw_url"] = "ftp://host/raw"
    assert error_of(data).startswith("storage.raw_url: ")


def test_non_positive_gap_is_rejected() -> None:
    data = minimal()
    data["preprocess"]["max_gap_s"] = 0
    assert error_of(data).startswith("preprocess.max_gap_s: ")


def test_env_expansion() -> None:
    env = {"PGPASSWORD": "pw", "HOST": "db"}
    assert expand_env("x://u:${PGPASSWORD}@${HOST}/d", env) == "x://u:pw@db/d"
    assert expand_env("${MISSING:-fallback}", env) == "fallback"
    assert expand_env("${HOST:-fallback}", env) == "db"
    with pytest.raises(ConfigError, match="MISSING"):
        expand_env("${MISSING}", env)


def test_secret_reference_in_file_is_expanded() -> None:
    data = minimal()
    data["state"]["url"] = "postgresql+psycopg://etl:${STATE_PW}@db/state"
    assert parse_config(data, {"STATE_PW": "hunter2"}).state.url.endswith("etl:hunter2@db/state")
    assert "STATE_PW" in error_of(data, {})


def test_file_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("pipeline: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_config(scalar)


def test_kafka_sasl_settings_reach_the_client_from_the_environment() -> None:
    data = minimal() | {
        "catalog": {
            "kind": "kafka",
            "kafka": {
                "bootstrap_servers": "b-1.msk:9096,b-2.msk:9096",
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": "${KAFKA_USER}",
                "sasl_password": "${KAFKA_PASSWORD}",
            },
        }
    }
    config = parse_config(data, {"KAFKA_USER": "etl", "KAFKA_PASSWORD": "s3cret"})
    assert config.catalog.kafka.client_options() == {
        "bootstrap_servers": "b-1.msk:9096,b-2.msk:9096",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "etl",
        "sasl_plain_password": "s3cret",
    }
    # the local stack's plaintext broker gets nothing it would refuse
    assert parse_config(minimal(), {}).catalog.kafka.client_options() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_kafka_sasl_without_credentials_is_named() -> None:
    data = minimal() | {
        "catalog": {"kind": "kafka", "kafka": {"security_protocol": "SASL_SSL"}},
    }
    assert "needs sasl_mechanism, sasl_username and sasl_password" in error_of(data)
