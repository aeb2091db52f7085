"""The live dashboard page, run with Streamlit's AppTest against a chDB database of known rows.

Rows are inserted straight into `policy_decisions` (no collector), so every number the page
renders is known in advance: 10 decisions in the last hour (7 allow, 2 deny, 1 error) over two
teams and three policies, latencies 1..10 ms, plus one deny two hours old that only the wider
windows see.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

from policyscope.config import CONFIG_ENV, ENV_PREFIX
from schemas.events import DECISIONS

pytestmark = pytest.mark.integration

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
TIMEOUT = 60  # seconds per script run; the first chDB query of a process is slow

# (seconds before now, team, service, policy_id, outcome, resource_name, reason)
RECENT = [
    (1, "payments", "checkout", "k8s.require-non-root", "allow", "checkout-7f9", ""),
    (2, "payments", "checkout", "k8s.require-non-root", "deny", "checkout-7fa",
     "container runs as root"),
    (3, "payments", "ledger", "k8s.require-limits", "allow", "ledger-1", ""),
    (4, "payments", "ledger", "k8s.require-limits", "allow", "ledger-2", ""),
    (5, "search", "indexer", "k8s.require-limits", "error", "indexer-0",
     "rego evaluation error: timeout"),
    (6, "search", "indexer", "k8s.allowed-registries", "allow", "indexer-1", ""),
    (7, "search", "query", "k8s.allowed-registries", "deny", "query-3",
     "image registry evil.example is not allowed"),
    (8, "search", "query", "k8s.allowed-registries", "allow", "query-4", ""),
    (9, "search", "query", "k8s.require-non-root", "allow", "query-5", ""),
    (10, "payments", "checkout", "k8s.allowed-registries", "allow", "checkout-80", ""),
]
OLD = [(2 * 3600, "search", "query", "k8s.require-non-root", "deny", "query-old",
        "container runs as root")]


def decision_rows(specs, now: datetime) -> pa.Table:
    """Arrow rows for `policy_decisions`; latency of the i-th spec is i ms (1-based)."""
    rows = []
    for i, (ago, team, service, policy, outcome, resource, reason) in enumerate(specs, 1):
        at = now - timedelta(seconds=ago)
        row = {name: "" for name in DECISIONS.column_names}
        row.update(event_id=f"evt-{policy}-{resource}", event_time=at, observed_time=at,
                   engine="opa", policy_id=policy, enforcement="enforce", team=team,
                   service=service, environment="prod", cluster="eu-1", namespace=team,
                   resource_kind="Deployment", resource_name=resource, reason=reason,
                   attributes=[], outcome=outcome, latency_seconds=i / 1000)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=DECISIONS.arrow_schema())


@pytest.fixture
def dashboard_db(chdb_path, database, tmp_path, monkeypatch):
    """Point the dashboard at this test's database through a POLICYSCOPE_CONFIG file."""
    config_file = tmp_path / "policyscope.yaml"
    config_file.write_text(yaml.safe_dump(
        {"storage": {"dsn": f"chdb://{chdb_path}", "database": database}}))
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    monkeypatch.setenv(CONFIG_ENV, str(config_file))
    st.cache_resource.clear()  # the page caches its client, which points at one database
    yield database
    st.cache_resource.clear()


@pytest.fixture
def loaded_db(chdb_client, dashboard_db):
    now = datetime.now(timezone.utc)
    chdb_client.insert_arrow(f"{dashboard_db}.{DECISIONS.name}", decision_rows(RECENT + OLD, now))
    return dashboard_db


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def dataframe_after(at: AppTest, subheader: str) -> pd.DataFrame:
    """The st.dataframe rendered right after the subheader with this text."""
    headings = [h.value for h in at.subheader]
    assert subheader in headings, headings
    return at.dataframe[headings.index(subheader)].value


def test_known_decisions_in_the_last_hour_give_the_headline_numbers(loaded_db):
    at = run_app()

    assert at.title[0].value == "PolicyScope — live policy decisions"
    assert at.selectbox(key="window").value == "1 hour"
    # p95 is the latency histogram's, as the SLI L_p95's: rank 0.95 x 10 = 9.5 falls in the
    # bucket (8 ms, 10 ms], which holds 9 and 10 ms with 8 decisions below it, so it is
    # interpolated log-linearly 1.5 of 2 into it: 8 ms x (10 / 8) ** 0.75 = 9.457 ms
    assert metrics(at) == {"Decisions": "10", "Deny rate": "20.0%", "Error rate": "10.00%",
                           "p95 latency": "9.46 ms"}
    assert len(at.info) == 0


def test_outcomes_table_counts_each_outcome_most_frequent_first(loaded_db):
    at = run_app()

    outcomes = dataframe_after(at, "Outcomes")
    assert outcomes.to_dict("records") == [
        {"outcome": "allow", "decisions": 7},
        {"outcome": "deny", "decisions": 2},
        {"outcome": "error", "decisions": 1},
    ]


def test_other_events_table_is_empty_when_only_decisions_were_stored(loaded_db):
    at = run_app()

    other = dataframe_after(at, "Other events")
    assert len(other) == 0


def test_an_empty_table_keeps_its_column_headers(loaded_db):
    at = run_app()

    other = dataframe_after(at, "Other events")
    assert list(other.columns) == ["event_kind", "events"]


def test_latest_denies_and_errors_lists_the_three_newest_first(loaded_db):
    at = run_app()

    latest = dataframe_after(at, "Latest denies and errors")
    assert list(latest.columns) == ["event_time", "team", "service", "policy_id", "outcome",
                                    "resource_kind", "resource_name", "reason"]
    assert latest.drop(columns="event_time").to_dict("records") == [
        {"team": "payments", "service": "checkout", "policy_id": "k8s.require-non-root",
         "outcome": "deny", "resource_kind": "Deployment", "resource_name": "checkout-7fa",
         "reason": "container runs as root"},
        {"team": "search", "service": "indexer", "policy_id": "k8s.require-limits",
         "outcome": "error", "resource_kind": "Deployment", "resource_name": "indexer-0",
         "reason": "rego evaluation error: timeout"},
        {"team": "search", "service": "query", "policy_id": "k8s.allowed-registries",
         "outcome": "deny", "resource_kind": "Deployment", "resource_name": "query-3",
         "reason": "image registry evil.example is not allowed"},
    ]
    times = pd.to_datetime(latest["event_time"])
    assert times.is_monotonic_decreasing


def test_charts_are_drawn_when_there_are_decisions(loaded_db):
    at = run_app()

    charts = at.get("plotly_chart")
    assert len(charts) == 3  # per minute, by policy, by team


@pytest.mark.parametrize(("window", "expected"), [
    pytest.param("15 minutes", {"Decisions": "10", "Deny rate": "20.0%", "Error rate": "10.00%"},
                 id="15 minutes: the two-hour-old deny is outside the window"),
    pytest.param("6 hours", {"Decisions": "11", "Deny rate": "27.3%", "Error rate": "9.09%"},
                 id="6 hours: the two-hour-old deny counts, 3 of 11 denied"),
])
def test_choosing_a_window_recounts_the_decisions(loaded_db, window, expected):
    at = run_app()

    at.selectbox(key="window").select(window).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = metrics(at)
    assert {k: shown[k] for k in expected} == expected


def test_an_empty_database_shows_how_to_send_data_and_no_numbers(dashboard_db):
    at = run_app()

    assert metrics(at) == {"Decisions": "0", "Deny rate": "—", "Error rate": "—",
                           "p95 latency": "—"}
    assert len(at.info) == 1
    assert at.info[0].value.startswith("No decisions in this window yet.")
    assert "policyscope demo" in at.info[0].value
    assert len(at.dataframe) == 0
    assert len(at.get("plotly_chart")) == 0
