"""Configuration: defaults validate, precedence flags > env > file > defaults, typos named."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.units import parse_duration, parse_size
from policyscope.config import ConfigError, load_config, redacted

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policyscope.yaml"


def test_the_default_config_validates():
    config = load_config(env={})
    assert config.storage.dsn == "chdb:///./data/clickhouse"
    assert config.collector.grpc_port == 4317 and config.collector.http_port == 4318
    assert config.collector.max_request_size == 20 * 1024**2  # as the OTel Collector's confighttp


def test_the_example_config_file_validates():
    config = load_config(EXAMPLE, env={})
    assert config.collector.batch_max_delay == 1.0


@pytest.mark.parametrize("text,fragment", [
    pytest.param("collector:\n  http_prot: 4318\n", "unknown key 'collector.http_prot'",
                 id="a typo in a key is rejected naming the key path"),
    pytest.param("colector:\n  http_port: 4318\n", "unknown key 'colector'",
                 id="a typo in a section is rejected naming it"),
    pytest.param("collector:\n  http_port: 70000\n", "'collector.http_port'",
                 id="a port out of range is rejected naming the key"),
    pytest.param("collector:\n  batch_max_delay: soon\n", "not like 500ms",
                 id="a bad duration says what a duration looks like"),
    pytest.param("- a\n- b\n", "must be a mapping", id="a file that is a list is rejected"),
    pytest.param("collector: [\n", "not valid YAML", id="invalid YAML is rejected"),
])
def test_bad_config_files_are_rejected_with_the_key(tmp_path, text, fragment):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as err:
        load_config(path, env={})
    assert fragment in str(err.value)


def test_precedence_is_flags_then_environment_then_file_then_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("collector:\n  http_port: 1111\n  grpc_port: 2222\n"
                    "storage:\n  retention_days: 30\n")
    config = load_config(path, env={"POLICYSCOPE_HTTP_PORT": "3333",
                                    "POLICYSCOPE_GRPC_PORT": "4444"},
                         overrides={"grpc_port": 5555, "http_host": None})
    assert (config.collector.http_port, config.collector.grpc_port) == (3333, 5555)
    assert config.storage.retention_days == 30
    assert config.collector.http_host == "127.0.0.1"  # None flag = not given


def test_the_config_file_can_come_from_the_environment(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("storage:\n  database: other\n")
    assert load_config(env={"POLICYSCOPE_CONFIG": str(path)}).storage.database == "other"


def test_an_unknown_environment_variable_is_rejected_naming_it():
    with pytest.raises(ConfigError, match="POLICYSCOPE_HTTP_PROT"):
        load_config(env={"POLICYSCOPE_HTTP_PROT": "1"})


def test_a_bad_environment_value_is_rejected_naming_the_variable():
    with pytest.raises(ConfigError, match="POLICYSCOPE_SPOOL_MAX_SIZE"):
        load_config(env={"POLICYSCOPE_SPOOL_MAX_SIZE": "lots"})


def test_a_bad_redaction_regex_is_rejected():
    with pytest.raises(ConfigError, match="not a regex"):
        load_config(env={"POLICYSCOPE_REDACT_ATTRIBUTES": "(unclosed"})


@pytest.mark.parametrize("text,seconds", [("500ms", 0.5), ("5s", 5), ("5m", 300), ("1h", 3600),
                                          ("30d", 2592000), (2, 2.0)])
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text,size", [("64MiB", 64 * 1024**2), ("1GiB", 1024**3),
                                       ("512KB", 512000), (100, 100)])
def test_sizes_parse_to_bytes(text, size):
    assert parse_size(text) == size


def test_the_dsn_password_is_redacted_in_logs():
    config = load_config(env={"POLICYSCOPE_DSN": "http://u:s3cret@ch:8123/db"})
    assert "s3cret" not in str(redacted(config))


# -- every section is validated at start-up, notifiers and routes included -------------------

@pytest.mark.parametrize("alerting,fragment", [
    pytest.param({"notifiers": [{"name": "pd", "tpye": "pagerduty"}]},
                 "unknown key 'alerting.notifiers.0.tpye'",
                 id="a typo in a notifier's key fails naming its path, with no SLO directory"),
    pytest.param({"notifiers": [{"name": "pd", "type": "pagerdutty",
                                 "routing_key": "env:PD_KEY"}]},
                 "'alerting.notifiers.0.type'", id="an unknown notifier type fails"),
    pytest.param({"routes": [{"match": {"severity": "page"}, "notifer": ["pd"]}]},
                 "unknown key 'alerting.routes.0.notifer'", id="a typo in a route fails"),
    pytest.param({"notifiers": [{"name": "pd", "type": "pagerduty",
                                 "routing_key": "env:PD_KEY"}],
                  "routes": [{"match": {"severity": "page"}, "notifiers": ["pager"]}]},
                 "routes name unknown notifiers: pager",
                 id="a route to a notifier that is not configured fails"),
])
def test_bad_alerting_config_fails_at_load_naming_the_key(tmp_path, alerting, fragment):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"alerting": {"slo_dir": str(tmp_path / "none"),
                                                 **alerting}}))
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert fragment in str(err.value)


def test_a_secret_pasted_in_clear_is_refused_without_echoing_it(tmp_path):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"alerting": {"notifiers": [
        {"name": "pd", "type": "pagerduty", "routing_key": "R0UT1NG-K3Y-IN-CLEAR"}]}}))
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert "routing_key" in str(err.value)
    assert "R0UT1NG-K3Y-IN-CLEAR" not in str(err.value)


def test_notifiers_and_routes_load_as_typed_models(tmp_path):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"alerting": {
        "notifiers": [{"name": "pd", "type": "pagerduty", "routing_key": "env:PD_KEY",
                       "timeout": "2s"}],
        "routes": [{"match": {"severity": "page"}, "notifiers": ["pd"]}]}}))
    alerting = load_config(path, env={}).alerting
    assert (alerting.notifiers[0].type, alerting.notifiers[0].timeout) == ("pagerduty", 2.0)
    assert alerting.routes[0].notifiers == ["pd"]


def test_a_list_setting_from_the_environment_may_be_a_yaml_list_for_items_with_commas():
    config = load_config(env={"POLICYSCOPE_REDACT_VALUES": '["(?P<secret>x{20,})", "y+"]',
                              "POLICYSCOPE_AUTH_TOKENS": "one,two"})
    assert config.collector.redact_values == ["(?P<secret>x{20,})", "y+"]
    assert [t.get_secret_value() for t in config.collector.auth_tokens] == ["one", "two"]
    assert load_config(env={"POLICYSCOPE_REDACT_VALUES": ""}).collector.redact_values == []
    with pytest.raises(ConfigError, match="POLICYSCOPE_REDACT_VALUES|redact_values"):
        load_config(env={"POLICYSCOPE_REDACT_VALUES": '["unclosed'})
