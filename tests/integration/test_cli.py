"""The `policyscope` command as users run it: separate processes, real chDB paths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.builders.processes import free_port, start_collector

pytestmark = pytest.mark.integration


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("POLICYSCOPE_")}
    return subprocess.run([sys.executable, "-m", "policyscope.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**base, **(env or {})})


@pytest.mark.parametrize("verb", ["collector", "up", "demo", "migrate", "sql", "dashboard",
                                  "batch", "worker"])
def test_every_verb_explains_itself(verb):
    result = cli(verb, "--help")
    assert result.returncode == 0
    assert "Usage: " in result.stdout and "--config" in result.stdout


def test_migrate_twice_then_query_as_json(tmp_path):
    dsn = f"chdb://{tmp_path / 'ch'}"
    first = cli("migrate", "--dsn", dsn)
    assert first.returncode == 0 and "0001_policy_decisions" in first.stdout
    second = cli("migrate", "--dsn", dsn)
    assert second.returncode == 0 and "up to date" in second.stdout
    result = cli("sql", "--dsn", dsn, "--format", "json",
                 "SELECT name FROM system.tables WHERE database = 'policyscope' ORDER BY name")
    assert result.returncode == 0, result.stderr
    names = [r["name"] for r in json.loads(result.stdout)]
    assert {"policy_decisions", "policy_events", "schema_migrations"} <= set(names)
    csv = cli("sql", "--dsn", dsn, "--format", "csv", "SELECT 1 AS one, 'a,b' AS two")
    assert csv.stdout.splitlines() == ["one,two", '1,"a,b"']


@pytest.mark.parametrize("query,fragment", [
    pytest.param("DROP TABLE policy_decisions", "DROP statements are not allowed",
                 id="a DROP is refused before it reaches storage"),
    pytest.param("SELECT 1; DROP TABLE x", "one statement", id="a second statement is refused"),
    pytest.param("  ", "empty", id="an empty query is refused"),
])
def test_sql_refuses_anything_but_reads(tmp_path, query, fragment):
    result = cli("sql", "--dsn", f"chdb://{tmp_path / 'ch'}", query)
    assert result.returncode == 2 and fragment in result.stderr


@pytest.mark.parametrize("args,fragment", [
    pytest.param(["sql", "--dsn", "ftp://host/db", "SELECT 1"], "expected chdb:///path",
                 id="an unknown DSN scheme is named"),
    pytest.param(["sql", "--format", "xml", "SELECT 1"], "--format 'xml'",
                 id="an unknown output format is named"),
    pytest.param(["migrate", "--log-level", "LOUD"], "--log-level 'LOUD'",
                 id="an unknown log level is named"),
])
def test_bad_flags_get_a_clear_message(args, fragment):
    result = cli(*args)
    assert result.returncode != 0 and fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_a_config_typo_stops_start_up_naming_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("collector:\n  grpc_prot: 1\n")
    result = cli("collector", "--config", str(path))
    assert result.returncode == 2 and "collector.grpc_prot" in result.stderr


def test_sql_goes_through_the_running_collector_when_it_owns_the_store(tmp_path):
    port = free_port()
    proc = start_collector(tmp_path, port, batch_delay="100ms")
    try:
        result = cli("sql", "--dsn", f"chdb://{tmp_path / 'ch'}", "--format", "json",
                     "SELECT count() AS n FROM policy_decisions",
                     env={"POLICYSCOPE_HTTP_PORT": str(port)})
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == [{"n": 0}]
        refused = cli("sql", "--dsn", f"chdb://{tmp_path / 'ch'}",
                      "SELECT * FROM policy_decisions SETTINGS readonly = 0",
                      env={"POLICYSCOPE_HTTP_PORT": str(port)})
        assert refused.returncode != 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def test_sql_on_a_locked_store_without_a_collector_says_what_to_do(tmp_path):
    port = free_port()
    proc = start_collector(tmp_path, port, batch_delay="100ms")
    try:
        result = cli("sql", "--dsn", f"chdb://{tmp_path / 'ch'}", "--http-port",
                     str(free_port()), "SELECT 1")
        assert result.returncode == 1
        assert "in use by another process" in result.stderr and "Traceback" not in result.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def test_batch_then_sli_show_as_json(tmp_path):
    dsn = f"chdb://{tmp_path / 'ch'}"
    assert cli("migrate", "--dsn", dsn).returncode == 0
    ran = cli("batch", "--dsn", dsn, "--at", "2026-11-02T12:00:00Z")
    assert ran.returncode == 0, ran.stderr
    assert "1 evaluation points" in ran.stdout
    shown = cli("sli", "show", "--dsn", dsn, "--sli", "M1", "--window", "1d", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)
    assert row == {"sli": "M1", "window": "1d", "dimensions": {}, "good": 0.0, "total": 0.0,
                   "value": None, "at": "2026-11-02T12:00:00+00:00"}


@pytest.mark.parametrize("args,fragment", [
    pytest.param(["batch", "--backfill", "soon"], "--backfill", id="a bad backfill span"),
    pytest.param(["batch", "--at", "yesterday"], "ISO 8601", id="a bad --at time"),
    pytest.param(["sli", "show", "--window", "2w"], "window '2w'", id="an unknown window"),
    pytest.param(["sli", "show", "--by", "region"], "--by 'region'", id="an unknown dimension"),
])
def test_batch_and_sli_flags_are_checked(tmp_path, args, fragment):
    result = cli(*args, "--dsn", f"chdb://{tmp_path / 'ch'}")
    assert result.returncode == 2 and fragment in result.stderr
