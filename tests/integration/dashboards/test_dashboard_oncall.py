"""The On-call page under AppTest, over a store seeded with known counts, so every number shown
is worked out here:

- alerts: the M1 SLO of tests/builders/slos.py at 99.9 % per team; search has 100 decisions two
  minutes ago, 10 errors, and 6 denies ten minutes ago: burn (10 / 106) / 0.001 = 94.3 in
  every window but the 5 minutes (10 / 100: 100), so the page and ticket tiers fire; budget
  left 1 - 10 / (0.001 x 106) = -9334 %, exhausted in 0 s. Payments' 2000 decisions of three
  days ago with 1 error keep it ok. The alert evaluator (`slo.alerting.AlertEvaluator`) runs
  over it, as the worker would;
- deploy gates in the day: supply.signed-images 3 blocked, 1 overridden, 4 passed;
  k8s.disallow-latest-tag 1 blocked; a block two days ago is outside the range;
- heartbeats: a-stale (10 min old, interval 30 s) and a-unhealthy (3 min old, interval 10 s)
  are stale, a-degraded (reporting degraded) is degraded, a-ok and a-recovered (degraded
  before, healthy at its latest) are healthy;
- ingestion: decisions are stored 2 s after their event time, other events 30 s after; in the
  last 5 whole minutes 100 decisions and 5 heartbeats: 105 / 300 = 0.35 events/s; the
  collector's counters of two instances (`collector_metrics`);
- the last hour's denies: 6 of k8s.disallow-latest-tag on Deployment/web (search), 2 denies and
  a warn of k8s.require-non-root on Pod/api (payments).

The page runs as the local admin (no login on loopback) unless a test logs in a user.
"""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from collector.self_metrics_read import STORED
from dashboards import auth, roles
from dashboards.auth import User
from dashboards.queries import oncall
from slo import silences, spec
from slo.alerting import AlertEvaluator
from slo.lifecycle import AlertStore, alert_id
from tests.builders import rows
from tests.builders.dashboards import (
    dataframe_after,
    metrics,
    open_page,
    rerun,
    texts,
    users_file_login,
)
from tests.builders.slos import NAME, slo_doc

pytestmark = pytest.mark.integration

M = timedelta(minutes=1)
PAGE_FILE = str(Path(__file__).resolve().parents[3] / "dashboards" / "pages" / "oncall.py")
SEARCH = {"team": "search"}
PAGE_ALERT = alert_id(NAME, "page", SEARCH)
TICKET_ALERT = alert_id(NAME, "ticket", SEARCH)
DECISION_LAG = timedelta(seconds=2)
EVENT_LAG = timedelta(seconds=30)
REASON = "rollback of the admission webhook in progress"


def page_module():
    return importlib.import_module("dashboards.pages.oncall")


# -- seeding ----------------------------------------------------------------------------------

def _insert(client, table: str, template: dict, records: list[dict], lag: timedelta) -> None:
    """Rows stored `lag` after their event time (`ingested_at` set, not the insert's)."""
    full = {**template, "ingested_at": None}
    values = rows._rows(full, [{**r, "ingested_at": r["event_time"] + lag} for r in records])
    client.insert(table, values, column_names=list(full))


def decisions(client, records: list[dict]) -> None:
    _insert(client, "policy_decisions", rows.DECISION, records, DECISION_LAG)


def events(client, records: list[dict]) -> None:
    _insert(client, "policy_events", rows.EVENT, records, EVENT_LAG)


def gate(when, deploy: str, outcome: str, policy: str = "supply.signed-images", **more) -> dict:
    return rows.ev("deploy.gate", when, deploy_id=deploy, gate_outcome=outcome,
                   policy_id=policy, reason=f"{outcome} by {policy}", **more)


def beat(when, agent: str, status: str, interval: float | None, **more) -> dict:
    return rows.ev("agent.heartbeat", when, agent_id=agent, agent_status=status,
                   heartbeat_interval_seconds=interval, engine="kyverno", **more)


def snapshot(instance: str, started_at, at, seq: int, counters: dict, gauges: dict) -> list:
    """One stored snapshot of a collector run: (metric, source, label) -> value."""
    out = [[at, instance, "host", started_at, seq, "uptime_seconds", "gauge", "", "",
            (at - started_at).total_seconds()]]
    for kind, series in (("counter", counters), ("gauge", gauges)):
        out += [[at, instance, "host", started_at, seq, metric, kind, source, label,
                 float(value)] for (metric, source, label), value in series.items()]
    return out


def collector_counters(client, now) -> None:
    run = now - 30 * M
    series = [  # c1's three snapshots: counters since its start
        {("records_accepted", "logs", ""): v, ("records_ignored", "logs", ""): i,
         ("records_rejected", "logs", "missing_policy_id"): r,
         ("requests_refused", "", "memory"): m, ("requests_refused", "", "requests"): 0,
         ("writer_dead_letter_rows", "", ""): d, ("insert_seconds_count", "", ""): n,
         ("insert_seconds_sum", "", ""): s}
        for v, i, r, m, d, n, s in ((1000, 0, 5, 0, 0, 10, 0.5), (1500, 0, 7, 0, 1, 20, 1.0),
                                    (1800, 4, 9, 3, 1, 30, 1.5))]
    series[2][("records_rejected", "logs", "invalid_outcome")] = 2  # a reason first seen
    gauges = [{("spool_backlog_rows", "", ""): r, ("spool_backlog_bytes", "", ""): b,
               ("insert_seconds_max", "", ""): x}
              for r, b, x in ((0, 0, 0.1), (50, 5000, 0.3), (12, 1200, 0.2))]
    stored = []
    for seq, (at, counters, g) in enumerate(zip((now - 20 * M, now - 10 * M, now - 2 * M),
                                                series, gauges), start=1):
        stored += snapshot("c1", run, at, seq, counters, g)
    stored += snapshot("c2", now - 5 * M, now - M, 1, {
        ("records_accepted", "logs", ""): 200,
        ("records_rejected", "logs", "missing_policy_id"): 1},
        {("spool_backlog_rows", "", ""): 3, ("spool_backlog_bytes", "", ""): 300})
    client.insert("collector_metrics", stored, column_names=list(STORED))


def evaluate(client, slo_dir: Path, at: datetime | None = None) -> dict:
    """Run the alert evaluator once, as the worker does; the alerts' stored states by id."""
    AlertEvaluator(client, spec.load_dir(slo_dir), silence_dir=slo_dir / "silences").run(
        at or datetime.now(timezone.utc))
    return AlertStore(client).load()


@pytest.fixture
def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def seeded(chdb_client, dashboard_db, slo_dir, now):
    (slo_dir / f"{NAME}.yaml").write_text(yaml.safe_dump(slo_doc(by=["team"])))
    three_days = now - timedelta(days=3)
    web = {"resource_kind": "Deployment", "resource_name": "web", "namespace": "shop"}
    api = {"resource_kind": "Pod", "resource_name": "api", "namespace": "pay"}
    decisions(chdb_client, [
        *[rows.dec(three_days, "allow") for _ in range(1999)], rows.dec(three_days, "error"),
        *[rows.dec(now - 2 * M, "allow", team="search") for _ in range(90)],
        *[rows.dec(now - 2 * M, "error", team="search") for _ in range(10)],
        *[rows.dec(now - 10 * M, "deny", team="search", policy_id="k8s.disallow-latest-tag",
                   **web) for _ in range(6)],
        rows.dec(now - 20 * M, "deny", **api), rows.dec(now - 20 * M, "deny", **api),
        rows.dec(now - 20 * M, "warn", **api),
    ])
    events(chdb_client, [
        *[gate(now - 2 * 60 * M - i * M, f"d{i + 1}", "blocked") for i in range(3)],
        gate(now - 3 * 60 * M, "d4", "overridden"),
        *[gate(now - 4 * 60 * M, f"p{i}", "passed") for i in range(4)],
        gate(now - 30 * M, "d9", "blocked", "k8s.disallow-latest-tag", team="search"),
        gate(now - timedelta(days=2), "d0", "blocked"),  # outside the day
        beat(now - 10 * M, "a-stale", "healthy", 30),
        beat(now - 3 * M, "a-unhealthy", "unhealthy", 10, team="search"),
        beat(now - M, "a-degraded", "degraded", 600),
        beat(now - 10 * M, "a-ok", "healthy", 600),
        beat(now - M, "a-ok", "healthy", 600),
        beat(now - 3 * M, "a-recovered", "degraded", 600),
        beat(now - 90 * timedelta(seconds=1), "a-recovered", "healthy", None),
    ])
    collector_counters(chdb_client, now)
    evaluate(chdb_client, slo_dir, now)
    return chdb_client


def choose_alert(at: AppTest, alert: str) -> AppTest:
    """Pick `alert` in the silence editor (its form then shows that alert's labels)."""
    at.selectbox(key="oncall_silence_alert").set_value(alert)
    return rerun(at)


def silence_form(at: AppTest, alert: str, reason: str, expiry: str | None) -> AppTest:
    at = choose_alert(at, alert)
    key = f"oncall_silence_{alert}"
    at.text_area(key=f"{key}_reason").input(reason)
    if expiry is not None:
        at.selectbox(key=f"{key}_expiry").select(expiry)
    at.button(key=f"{key}_submit").click()
    return rerun(at)


# -- what the page shows ----------------------------------------------------------------------

def test_active_alerts_show_their_tier_burn_per_window_budget_and_a_link_to_the_slo(seeded):
    at = open_page("oncall.py")

    alerts = dataframe_after(at, "Active alerts")
    assert alerts[["slo", "tier", "state", "dimensions", "burn per window", "budget left",
                   "exhausted in", "silenced", "open"]].to_dict("records") == [
        {"slo": NAME, "tier": "page", "state": "firing", "dimensions": "team=search",
         "burn per window": "1h 94.3× · 5m 100.0× (≥ 14.4); 6h 94.3× · 30m 94.3× (≥ 6)",
         "budget left": "-9334.0%", "exhausted in": "0 s", "silenced": "no",
         "open": f"/slos?slo={NAME}&team=search"},
        {"slo": NAME, "tier": "ticket", "state": "firing", "dimensions": "team=search",
         "burn per window": "1d 94.3× · 2h 94.3× (≥ 3); 3d 94.3× · 6h 94.3× (≥ 1)",
         "budget left": "-9334.0%", "exhausted in": "0 s", "silenced": "no",
         "open": f"/slos?slo={NAME}&team=search"},
    ]
    assert alerts["since"].notna().all()
    # one silence editor: each alert picked prefills the matchers with its own labels
    picker = at.selectbox(key="oncall_silence_alert")
    assert picker.options == [f"{NAME} page team=search", f"{NAME} ticket team=search"]
    assert len(at.get("form")) == 1
    for alert, tier in ((PAGE_ALERT, "page"), (TICKET_ALERT, "ticket")):
        at = choose_alert(at, alert)
        assert at.multiselect(key=f"oncall_silence_{alert}_matchers").value == [
            f"slo={NAME}", f"severity={tier}", "team=search"]


def test_a_team_filter_keeps_the_alerts_of_that_team(seeded):
    at = open_page("oncall.py", {"team": "payments"})

    assert any(t.startswith("No alert is firing or pending for these filters")
               for t in texts(at))


def test_blocked_deploys_in_the_range_by_policy_and_the_latest(seeded):
    at = open_page("oncall.py")

    shown = metrics(at)
    assert (shown["Deploy gates"], shown["Blocked"], shown["Overridden"],
            shown["Block rate"]) == ("9", "4", "1", "44.4%")
    by_policy = dataframe_after(at, "Deploys blocked by policy")
    assert by_policy.to_dict("records") == [
        {"policy": "supply.signed-images", "gated": 8, "blocked": 3, "overridden": 1,
         "block rate": "37.5%"},
        {"policy": "k8s.disallow-latest-tag", "gated": 1, "blocked": 1, "overridden": 0,
         "block rate": "100.0%"}]
    latest = dataframe_after(at, "Latest blocked deploys")
    assert latest["deploy_id"].tolist() == ["d9", "d1", "d2", "d3"]
    assert latest["reason"].tolist()[0] == "blocked by k8s.disallow-latest-tag"


def test_agent_health_by_the_rule_of_m8(seeded):
    at = open_page("oncall.py")

    shown = metrics(at)
    assert (shown["Healthy"], shown["Stale"], shown["Degraded"]) == ("2", "2", "1")
    assert shown["Last heartbeat"].endswith(" ago")
    agents = dataframe_after(at, "Agent health")
    assert agents[["agent", "state", "status", "team", "interval"]].to_dict("records") == [
        {"agent": "a-stale", "state": "stale", "status": "healthy", "team": "payments",
         "interval": "30.00 s"},
        {"agent": "a-unhealthy", "state": "stale", "status": "unhealthy", "team": "search",
         "interval": "10.00 s"},
        {"agent": "a-degraded", "state": "degraded", "status": "degraded",
         "team": "payments", "interval": "10 m"},
        {"agent": "a-recovered", "state": "healthy", "status": "healthy",
         "team": "payments", "interval": "—"},
        {"agent": "a-ok", "state": "healthy", "status": "healthy", "team": "payments",
         "interval": "10 m"},
    ]


def test_ingestion_figures_and_the_collectors_own_counters(seeded):
    at = open_page("oncall.py")

    shown = metrics(at)
    assert shown["Events/s"] == "0.35"  # (100 decisions + 5 heartbeats) / 300 s
    assert shown["Ingest lag p50"] == "2.00 s"  # most rows are decisions
    assert shown["Ingest lag p95"] == "30.00 s"
    lag = dataframe_after(at, "Ingest lag, last hour")
    assert lag.to_dict("records") == [
        # 100 + 6 + 3 decisions; 8 events stored in the hour (the gates of 2-4 h ago not)
        {"source": "all", "events": 117, "p50": "2.00 s", "p95": "30.00 s",
         "max": "30.00 s"},
        {"source": "decisions", "events": 109, "p50": "2.00 s", "p95": "2.00 s",
         "max": "2.00 s"},
        {"source": "events", "events": 8, "p50": "30.00 s", "p95": "30.00 s",
         "max": "30.00 s"},
    ]
    assert (shown["Accepted, last hour"], shown["Rejected, last hour"],
            shown["Dropped, last hour"]) == ("2,000", "12", "4")
    assert shown["Spool backlog"] == "15"  # c1's latest 12 + c2's 3
    assert shown["Insert latency"] == "0.05 s"  # 1.5 s over 30 inserts
    not_stored = dataframe_after(at, "Not stored by the collector, last hour")
    assert not_stored.to_dict("records") == [
        {"what": "rejected", "source": "logs", "reason": "missing_policy_id", "records": 10},
        {"what": "refused requests", "source": "", "reason": "memory", "records": 3},
        {"what": "rejected", "source": "logs", "reason": "invalid_outcome", "records": 2},
        {"what": "dead-lettered", "source": "", "reason": "", "records": 1},
    ]


def test_top_offenders_of_the_last_hour(seeded, chdb_client):
    from catalog.load import load_text

    load_text(chdb_client, "policies:\n  - {id: k8s.require-non-root, title: Non-root, "
                           "owner: platform, category: hardening, severity: high, "
                           "controls: [], runbook: 'https://runbooks.example/non-root'}\n")
    at = open_page("oncall.py")

    policies = dataframe_after(at, "Top offending policies, last hour")
    assert policies.to_dict("records") == [
        {"policy": "k8s.disallow-latest-tag", "denies": 6, "warns": 0, "errors": 0,
         "decisions": 6, "deny rate": "100.0%", "owner": "", "runbook": "",
         "catalog": "not in catalog"},
        # search's 100 decisions and payments' 3 in the hour
        {"policy": "k8s.require-non-root", "denies": 2, "warns": 1, "errors": 10,
         "decisions": 103, "deny rate": "1.9%", "owner": "platform",
         "runbook": "https://runbooks.example/non-root", "catalog": "yes"}]
    resources = dataframe_after(at, "Top offending resources, last hour")
    assert resources.to_dict("records") == [
        {"kind": "Deployment", "name": "web", "namespace": "shop",
         "denies": 6, "warns": 0, "policies": "k8s.disallow-latest-tag", "teams": "search"},
        {"kind": "Pod", "name": "api", "namespace": "pay", "denies": 2,
         "warns": 1, "policies": "k8s.require-non-root", "teams": "payments"}]
    teams = dataframe_after(at, "Top offending teams, last hour")
    assert teams[["team", "denies", "warns", "decisions"]].to_dict("records") == [
        {"team": "search", "denies": 6, "warns": 0, "decisions": 106},
        {"team": "payments", "denies": 2, "warns": 1, "decisions": 3}]


def test_a_team_filter_narrows_the_top_offenders_to_its_decisions(seeded):
    """Policies and teams come from one read of the rollups for both: with a team in the
    URL, both lists hold only that team's decisions."""
    at = open_page("oncall.py", {"team": "payments"})

    policies = dataframe_after(at, "Top offending policies, last hour")
    assert policies[["policy", "denies", "warns", "errors", "decisions"]].to_dict(
        "records") == [{"policy": "k8s.require-non-root", "denies": 2, "warns": 1,
                        "errors": 0, "decisions": 3}]
    teams = dataframe_after(at, "Top offending teams, last hour")
    assert teams[["team", "denies", "warns", "decisions"]].to_dict("records") == [
        {"team": "payments", "denies": 2, "warns": 1, "decisions": 3}]


def test_an_empty_store_says_what_to_send_or_run_in_every_section(dashboard_db, slo_dir):
    at = open_page("oncall.py")

    shown = texts(at)
    for expected in ("No SLOs in", "No silence is in force",
                     "No deploy gate in this range: send `deploy.gate` events",
                     "No agent heartbeat in this range: send `agent.heartbeat` events",
                     "Nothing was stored in the last hour",
                     "No event was stored in the last hour",
                     "The collector recorded no counters in the last hour",
                     "No deny or warn in the last hour"):
        assert any(t.startswith(expected) for t in shown), (expected, shown)
    assert any("policyscope demo" in t for t in shown)
    assert any(auth.safe_text(slo_dir) in t for t in shown)  # where to put SLOs, escaped
    assert len(at.dataframe) == 0 and not at.get("form") and not at.button


def test_slos_without_an_alert_say_when_the_evaluator_runs(dashboard_db, slo_dir):
    (slo_dir / f"{NAME}.yaml").write_text(yaml.safe_dump(slo_doc(by=["team"])))
    at = open_page("oncall.py")

    assert any(t.startswith("No alert is firing or pending. The alert evaluator runs every "
                            "minute") for t in texts(at))


# -- silencing --------------------------------------------------------------------------------

@pytest.fixture
def log_in(dashboard_db, tmp_path, monkeypatch):
    """Run the page as a logged-in user of a users file with this role."""
    return users_file_login(PAGE_FILE, tmp_path, monkeypatch)


def stored_silences(client) -> list[silences.Silence]:
    return silences.load_table(client, datetime.now(timezone.utc))


def test_silencing_an_alert_from_the_page_stores_it_with_the_users_name_and_mutes_it(
        seeded, log_in, slo_dir):
    at = log_in("otto", "oncall")
    at = silence_form(at, PAGE_ALERT, REASON, "2 hours")

    assert not at.error
    matched = auth.safe_text(f"severity=page, slo={NAME}, team=search")  # Markdown-escaped
    assert at.success[0].value.startswith(f"Silenced {matched} until")
    (made,) = stored_silences(seeded)
    assert (made.matchers, made.comment, made.created_by) == (
        {"slo": NAME, "severity": "page", "team": "search"}, REASON, "otto")
    assert timedelta(hours=2) - 2 * M < made.ends_at - made.starts_at <= timedelta(hours=2) + M
    # the evaluator's next run treats the page alert as silenced, the ticket one not
    states = evaluate(seeded, slo_dir)
    assert (states[PAGE_ALERT].silenced, states[TICKET_ALERT].silenced) == (True, False)
    # and the page shows it: in the silences and on the alert
    listed = dataframe_after(at, "Silences")
    assert listed[["silence", "source", "matchers", "in force", "reason", "by"]].to_dict(
        "records") == [{"silence": made.silence_id, "source": "table",
                        "matchers": f"severity=page, slo={NAME}, team=search",
                        "in force": True, "reason": REASON, "by": "otto"}]
    alerts = dataframe_after(at, "Active alerts")
    assert alerts["silenced"].tolist() == [made.silence_id, "no"]

    at.button(key=f"oncall_expire_{made.silence_id}").click()
    at = rerun(at)
    assert at.success[0].value == (f"Silence {made.silence_id} expired; matching alerts "
                                   "notify again.")
    assert stored_silences(seeded) == []
    assert evaluate(seeded, slo_dir)[PAGE_ALERT].silenced is False
    assert any(t.startswith("No silence is in force") for t in texts(at))


@pytest.mark.parametrize("reason, expiry, refusal", [
    ("  ", "1 hour", "a silence needs a reason"),
    (REASON, None, "a silence needs an expiry"),
])
def test_a_silence_needs_a_reason_and_an_expiry(seeded, reason, expiry, refusal):
    at = open_page("oncall.py")
    at = silence_form(at, PAGE_ALERT, reason, expiry)

    assert len(at.error) == 1 and at.error[0].value.startswith(refusal)
    assert not at.success
    assert stored_silences(seeded) == []


def test_a_silence_kept_as_code_is_listed_with_its_file_and_no_expire_button(seeded, slo_dir):
    directory = slo_dir / "silences"
    directory.mkdir()
    now = datetime.now(timezone.utc)
    (directory / "maintenance.yaml").write_text(yaml.safe_dump({
        "apiVersion": "policyscope/v1", "kind": "MaintenanceWindow",
        "metadata": {"name": "search-upgrade"},
        "spec": {"matchers": {"team": "search"}, "startsAt": (now - M).isoformat(),
                 "endsAt": (now + 60 * M).isoformat(), "comment": "cluster upgrade",
                 "createdBy": "ops"}}))
    at = open_page("oncall.py")

    listed = dataframe_after(at, "Silences")
    assert listed[["source", "matchers", "in force", "reason", "by", "end it"]].to_dict(
        "records") == [{"source": "file", "matchers": "team=search", "in force": True,
                        "reason": "cluster upgrade", "by": "ops",
                        "end it": f"as code: edit {directory / 'maintenance.yaml'}"}]
    assert not [b for b in at.button if b.key and b.key.startswith("oncall_expire_")]
    (file_silence,) = oncall.file_silences(str(slo_dir), now)
    assert dataframe_after(at, "Active alerts")["silenced"].tolist() == [
        file_silence[0].silence_id] * 2


# -- roles ------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_a_role_that_may_not_silence_gets_no_form_and_the_write_is_refused(seeded, log_in,
                                                                           role):
    at = log_in("vera", role)
    assert [e.value for e in at.error] == [f"Your role ({role}) does not see this page."]
    assert not at.get("form") and not at.dataframe

    page = page_module()
    with pytest.raises(PermissionError, match=f"role {role}"):
        page.add_silence(User("vera", role), {"slo": NAME}, REASON, timedelta(hours=1))
    silences.add(seeded, {"slo": NAME}, datetime.now(timezone.utc) - M,
                 datetime.now(timezone.utc) + 60 * M, "made by the CLI", "cli")
    (made,) = stored_silences(seeded)
    with pytest.raises(PermissionError, match=f"role {role}"):
        page.expire_silence(User("vera", role), made.silence_id)
    assert stored_silences(seeded) == [made]  # nothing added, nothing expired


def test_a_role_shown_the_page_without_the_right_to_silence_reads_it_without_forms(
        seeded, log_in, monkeypatch):
    monkeypatch.setitem(roles.PAGES, "oncall", roles.PAGES["oncall"] | {"viewer"})
    silences.add(seeded, {"team": "search"}, datetime.now(timezone.utc) - M,
                 datetime.now(timezone.utc) + 60 * M, "made by the CLI", "cli")
    at = log_in("vera", "viewer")

    assert len(dataframe_after(at, "Active alerts")) == 2
    assert len(dataframe_after(at, "Silences")) == 1
    assert any("may read alerts but not silence them" in t for t in texts(at))
    assert not at.get("form") and not at.multiselect and not at.text_area
    assert [b.key for b in at.button] == []  # no silence, no expire


def test_an_sre_may_silence(seeded, log_in):
    at = log_in("sam", "sre")
    at = silence_form(at, TICKET_ALERT, REASON, "1 hour")

    assert at.success and not at.error
    assert [s.created_by for s in stored_silences(seeded)] == ["sam"]
