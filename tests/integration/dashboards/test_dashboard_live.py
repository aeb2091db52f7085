"""The live dashboard page, run with Streamlit's AppTest against a chDB database of known rows.

Rows are inserted straight into `policy_decisions` (no collector; the materialized views fill
the rollups the page reads), so every number the page renders is known in advance: 10
decisions in the last hour (7 allow, 2 deny, 1 error) over two teams and three policies,
latencies 1..10 ms, plus one deny two hours old that only the wider ranges see.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest

from schemas.events import DECISIONS
from tests.builders.dashboards import (
    dataframe_after,
    figures,
    metrics,
    open_page,
    rerun,
    traces,
)

pytestmark = pytest.mark.integration

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
HOUR = {"range": "1h"}


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
def loaded_db(chdb_client, dashboard_db):
    now = datetime.now(timezone.utc)
    chdb_client.insert_arrow(f"{dashboard_db}.{DECISIONS.name}", decision_rows(RECENT + OLD, now))
    return dashboard_db


def test_known_decisions_in_the_last_hour_give_the_headline_numbers(loaded_db):
    at = open_page("live.py", HOUR)

    assert at.title[0].value == "PolicyScope — live policy decisions"
    assert at.selectbox(key="filter_range").value == "1h"
    # p95 is the latency histogram's, as the SLI L_p95's: rank 0.95 x 10 = 9.5 falls in the
    # bucket (8 ms, 10 ms], which holds 9 and 10 ms with 8 decisions below it, so it is
    # interpolated log-linearly 1.5 of 2 into it: 8 ms x (10 / 8) ** 0.75 = 9.457 ms
    assert metrics(at) == {"Decisions": "10", "Deny rate": "20.0%", "Error rate": "10.00%",
                           "p95 latency": "9.46 ms"}
    assert len(at.info) == 0


def test_outcomes_table_counts_each_outcome_most_frequent_first(loaded_db):
    at = open_page("live.py", HOUR)

    outcomes = dataframe_after(at, "Outcomes")
    assert outcomes.to_dict("records") == [
        {"outcome": "allow", "decisions": 7},
        {"outcome": "deny", "decisions": 2},
        {"outcome": "error", "decisions": 1},
    ]


def test_other_events_table_is_empty_with_its_headers_when_only_decisions_were_stored(
        loaded_db):
    at = open_page("live.py", HOUR)

    other = dataframe_after(at, "Other events")
    assert len(other) == 0
    assert list(other.columns) == ["event_kind", "events"]


def test_latest_denies_and_errors_lists_the_three_newest_first(loaded_db):
    at = open_page("live.py", HOUR)

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


def test_charts_show_the_decisions_by_time_policy_and_team(loaded_db):
    at = open_page("live.py", HOUR)

    drawn = figures(at)
    assert len(drawn) == 3  # over time, by policy, by team
    assert traces(drawn[2]) == {"allow": {"payments": 4, "search": 3}, "deny": {"payments": 1,
                                                                      "search": 1},
                       "error": {"search": 1}}


@pytest.mark.parametrize(("range_", "expected"), [
    pytest.param("5m", {"Decisions": "10", "Deny rate": "20.0%", "Error rate": "10.00%"},
                 id="5 minutes: the two-hour-old deny is outside the range"),
    pytest.param("6h", {"Decisions": "11", "Deny rate": "27.3%", "Error rate": "9.09%"},
                 id="6 hours: the two-hour-old deny counts, 3 of 11 denied"),
])
def test_choosing_a_range_recounts_the_decisions(loaded_db, range_, expected):
    at = open_page("live.py", HOUR)

    at.selectbox(key="filter_range").select(range_)
    rerun(at)
    shown = metrics(at)
    assert {k: shown[k] for k in expected} == expected
    assert at.query_params["range"] == range_


def test_a_team_filter_from_the_url_counts_only_that_team(loaded_db):
    at = open_page("live.py", {"range": "1h", "team": "search"})

    assert at.selectbox(key="filter_team").value == "search"
    assert metrics(at)["Decisions"] == "5"
    assert dataframe_after(at, "Outcomes").to_dict("records") == [
        {"outcome": "allow", "decisions": 3}, {"outcome": "deny", "decisions": 1},
        {"outcome": "error", "decisions": 1}]


def test_an_empty_database_shows_how_to_send_data_and_no_numbers(dashboard_db):
    at = open_page("live.py")

    assert metrics(at) == {"Decisions": "0", "Deny rate": "—", "Error rate": "—",
                           "p95 latency": "—"}
    assert len(at.info) == 1
    assert at.info[0].value.startswith("No decisions in this range yet.")
    assert "policyscope demo" in at.info[0].value
    assert len(at.dataframe) == 0
    assert len(at.get("plotly_chart")) == 0


@pytest.mark.parametrize("limit,expected", [
    # the last hour holds the newest 2: found there
    (2, ["checkout-7fa", "indexer-0"]),
    # it holds only 3 denies and errors: the whole range is looked at for the 4th
    (4, ["checkout-7fa", "indexer-0", "query-3", "query-old"]),
])
def test_the_newest_denies_come_from_the_last_hour_or_else_the_whole_range(
        chdb_client, loaded_db, limit, expected):
    from dashboards.queries import live

    end = (datetime.now(timezone.utc) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    rows = live.recent_denies(chdb_client, end - timedelta(days=1), end, {}, limit=limit)
    assert rows["resource_name"].tolist() == expected
    assert rows["outcome"].tolist() == ["deny", "error", "deny", "deny"][:limit]
