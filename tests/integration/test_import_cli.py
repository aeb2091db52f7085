"""`policyscope import` as users run it (separate processes): malformed input refused with the
file and position and nothing stored, re-import idempotent, --dsn and --endpoint (a running
collector, bearer token), settings from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from tests.builders.otlp import wait_rows
from tests.builders.reports import pod_report, report_list, result

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def cli(*args: str, env: dict | None = None, stdin: str | None = None):
    base = {k: v for k, v in os.environ.items() if not k.startswith("POLICYSCOPE_")}
    return subprocess.run([sys.executable, "-m", "policyscope.cli", *args], capture_output=True,
                          text=True, timeout=180, input=stdin, env={**base, **(env or {})})


def counts(dsn: str) -> tuple[int, int, int]:
    """Decisions, events and snapshot rows stored (a refused import may not even have
    created the schema: migrate first)."""
    assert cli("migrate", "--dsn", dsn).returncode == 0
    out = cli("sql", "--dsn", dsn, "--format", "json",
              "SELECT (SELECT count() FROM policy_decisions) AS d, (SELECT count() FROM "
              "policy_events) AS e, (SELECT count() FROM import_snapshots) AS s")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)[0]
    return int(row["d"]), int(row["e"]), int(row["s"])


def reports() -> dict:
    when = NOW - timedelta(hours=2)
    return report_list([
        pod_report("shop", "web-1", [result("require-labels", "fail", when),
                                     result("disallow-latest-tag", "pass", when)]),
        pod_report("shop", "web-2", [result("disallow-privileged-containers", "fail", when)])])


def test_a_malformed_report_names_file_and_position_and_stores_nothing(tmp_path):
    bad = reports()
    bad["items"][1]["results"][0]["result"] = "failed"  # the last object: the rest was fine
    path = tmp_path / "reports.json"
    path.write_text(json.dumps(bad))
    dsn = f"chdb://{tmp_path / 'ch'}"
    out = cli("import", "policyreport", str(path), "--dsn", dsn)
    assert out.returncode == 2
    assert f"{path}: at $.items[1].results[0].result: expected one of pass, fail, warn, " \
           "error, skip, got 'failed'" in out.stderr
    assert counts(dsn) == (0, 0, 0)


@pytest.mark.parametrize("kind,text,fragment", [
    pytest.param("policyreport", '{"apiVersion": "v1", "kind": "List", "items": [\n{]}',
                 "<stdin>: at line 2 column 2: expected valid JSON", id="broken JSON: its line"),
    pytest.param("heartbeat", '{"agent_id": "a1"}\n{"agent_id": "a2", "dropped_events": -3}\n',
                 "<stdin>: at line 2: $.dropped_events: expected a count >= 0, got -3",
                 id="a JSON line: its line number and field"),
    pytest.param("inventory", "workload_id,team,enforced\nw1,shop,true\nw2,shop,maybe\n",
                 "<stdin>: at line 3: enforced: expected true or false, got 'maybe'",
                 id="a CSV row: its line"),
    pytest.param("gatekeeper", '{"kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod"}]}',
                 "<stdin>: at $.items[0].apiVersion: expected a constraint",
                 id="not a constraint"),
])
def test_every_kind_refuses_malformed_input_with_its_position(tmp_path, kind, text, fragment):
    dsn = f"chdb://{tmp_path / 'ch'}"
    out = cli("import", kind, "-", "--dsn", dsn, stdin=text)
    assert out.returncode == 2 and fragment in out.stderr, out.stderr
    assert counts(dsn) == (0, 0, 0)


def test_importing_the_same_file_twice_stores_it_once(tmp_path):
    path = tmp_path / "reports.json"
    path.write_text(json.dumps(reports()))
    dsn = f"chdb://{tmp_path / 'ch'}"
    first = cli("import", "policyreport", str(path), "--dsn", dsn, "--cluster", "prod",
                "--format", "json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["opened"] == 2
    stored = counts(dsn)
    again = cli("import", "policyreport", str(path), "--dsn", dsn, "--cluster", "prod",
                "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout)["opened"] == 0
    assert counts(dsn)[:2] == stored[:2] == (3, 2)


def test_settings_come_from_the_environment_too(tmp_path):
    dsn = f"chdb://{tmp_path / 'ch'}"
    out = cli("import", "inventory", "-", env={"POLICYSCOPE_DSN": dsn,
                                               "POLICYSCOPE_IMPORT_TEAM": "platform",
                                               "GITHUB_ACTIONS": "true", "GITHUB_SHA": "abc123",
                                               "GITHUB_RUN_ID": "77"},
              stdin="workload_id,enforced\nprod/shop/Deployment/web,true\n")
    assert out.returncode == 0, out.stderr
    rows = cli("sql", "--dsn", dsn, "--format", "json",
               "SELECT team, workload_id, workload_enforced, attributes['vcs.ref.head.revision'] "
               "AS sha FROM policy_events")
    assert json.loads(rows.stdout) == [{"team": "platform", "workload_id":
                                        "prod/shop/Deployment/web", "workload_enforced": True,
                                        "sha": "abc123"}]


def test_endpoint_sends_to_a_running_collector_with_its_token(collectors, tmp_path):
    service = collectors(auth_tokens=["imp0rt-t0ken"])
    url = f"http://127.0.0.1:{service.http_port}"
    beats = "\n".join(json.dumps({"agent_id": f"opa-{i}", "status": "healthy", "interval": 30,
                                  "time": (NOW - timedelta(seconds=i)).isoformat()})
                      for i in range(3)) + "\n"
    refused = cli("import", "heartbeat", "-", "--endpoint", url, "--token", "wrong",
                  stdin=beats)
    assert refused.returncode == 1 and "401" in refused.stderr
    assert "imp0rt-t0ken" not in refused.stderr
    sent = cli("import", "heartbeat", "-", "--endpoint", url, stdin=beats,
               env={"POLICYSCOPE_IMPORT_TOKEN": "imp0rt-t0ken"})
    assert sent.returncode == 0, sent.stderr
    again = cli("import", "heartbeat", "-", "--endpoint", url, stdin=beats,
                env={"POLICYSCOPE_IMPORT_TOKEN": "imp0rt-t0ken"})
    assert again.returncode == 0
    sql = "SELECT count() FROM policy_events WHERE event_kind = 'agent.heartbeat'"
    assert wait_rows(service, sql, 3) == 3  # sent twice, stored once


def test_endpoint_with_a_state_only_kind_and_no_diff_needs_no_storage(collector, tmp_path):
    path = tmp_path / "reports.json"
    path.write_text(json.dumps(reports()))
    out = cli("import", "policyreport", str(path), "--no-diff", "--endpoint",
              f"http://127.0.0.1:{collector.http_port}", "--dsn", "chdb:///nonexistent/x")
    assert out.returncode == 0, out.stderr
    assert "not diffed" in out.stdout
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 3) == 3
