"""The SLO page under AppTest: one M1 SLO at 99.9 % over 30 days, evaluated per team, over
decisions of known counts, so every number shown is worked out here.

- payments: 2000 decisions three days ago, 1 error: SLI 99.95 %, budget left
  1 - 1 / (0.001 x 2000) = 50 %; nothing in the alert windows shorter than 3 days.
- search: 100 decisions two minutes ago, 10 errors: SLI 90 %, budget left
  1 - 10 / (0.001 x 100) = -9900 %; burn 0.1 / 0.001 = 100 in every window that holds them,
  so both page pairs fire (100 >= 14.4 and >= 6), time to exhaustion 0.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from dashboards.auth import code_span
from tests.builders.dashboards import (
    dataframe_after,
    figures,
    metrics,
    open_page,
    rerun,
    values,
)
from tests.builders.rows import dec, insert_alerts, insert_decisions
from tests.builders.slos import NAME, slo_doc

pytestmark = pytest.mark.integration


@pytest.fixture
def seeded(chdb_client, dashboard_db, slo_dir):
    (slo_dir / f"{NAME}.yaml").write_text(yaml.safe_dump(slo_doc(by=["team"])))
    now = datetime.now(timezone.utc)
    three_days = now - timedelta(days=3)
    insert_decisions(chdb_client, [
        *[dec(three_days, "allow") for _ in range(1999)], dec(three_days, "error"),
        *[dec(now - timedelta(minutes=2), "allow", team="search") for _ in range(90)],
        *[dec(now - timedelta(minutes=2), "error", team="search") for _ in range(10)],
    ])
    insert_alerts(chdb_client, [
        {"alert_id": "a-search", "slo": NAME, "state": "firing", "team": "search",
         "dimensions": {"team": "search"}, "at": now - timedelta(minutes=1)},
        {"alert_id": "a-pay", "slo": NAME, "state": "firing", "dimensions": {"team": "payments"},
         "at": now - timedelta(days=3)},
        {"alert_id": "a-pay", "slo": NAME, "state": "resolved",
         "dimensions": {"team": "payments"}, "at": now - timedelta(days=3) + timedelta(hours=1)},
        {"alert_id": "other", "slo": "another-slo", "state": "firing", "at": now},
    ])
    return dashboard_db


def test_every_slo_and_team_is_listed_with_its_budget_and_status(seeded):
    at = open_page("slos.py")

    summary = dataframe_after(at, "Every SLO")
    assert summary.drop(columns=["exhausted in"]).to_dict("records") == [
        {"slo": NAME, "dimensions": "team=payments", "objective": "99.90%", "period": "30d",
         "current": "99.95%", "good": 1999, "total": 2000, "budget left": "50.0%",
         "status": "ok"},
        {"slo": NAME, "dimensions": "team=search", "objective": "99.90%", "period": "30d",
         "current": "90.00%", "good": 90, "total": 100, "budget left": "-9900.0%",
         "status": "page: burning fast"},
    ]
    assert summary["exhausted in"].tolist() == ["—", "0 s"]  # payments burns nothing in 1h


def test_a_link_with_the_slo_and_a_team_opens_that_teams_burn_rates(seeded):
    at = open_page("slos.py", {"slo": NAME, "team": "search"})

    assert at.selectbox(key="slo_name").value == NAME
    assert at.selectbox(key=f"slo_drill_{NAME}").value == "team=search"
    assert metrics(at) == {"Objective": "99.90%", "Period": "30d", "Current SLI": "90.00%",
                           "Budget left": "-9900.0%", "Exhausted in": "0 s",
                           "Status": "page: burning fast"}
    burns = dataframe_after(at, "Burn rate per alert window")
    assert burns.to_dict("records") == [
        {"severity": "page", "long window": "1h", "short window": "5m", "factor": 14.4,
         "burn (long)": 100.0, "burn (short)": 100.0, "firing": True},
        {"severity": "page", "long window": "6h", "short window": "30m", "factor": 6.0,
         "burn (long)": 100.0, "burn (short)": 100.0, "firing": True},
        {"severity": "ticket", "long window": "1d", "short window": "2h", "factor": 3.0,
         "burn (long)": 100.0, "burn (short)": 100.0, "firing": True},
        {"severity": "ticket", "long window": "3d", "short window": "6h", "factor": 1.0,
         "burn (long)": 100.0, "burn (short)": 100.0, "firing": True},
    ]
    history = dataframe_after(at, "Alert history")
    assert history[["severity", "state", "dimensions", "alert_id"]].to_dict("records") == [
        {"severity": "page", "state": "firing", "dimensions": "team=search",
         "alert_id": "a-search"}]


def test_the_burndown_shows_the_budget_at_each_point_of_the_period(seeded):
    at = open_page("slos.py", {"slo": NAME, "team": "payments"})

    (burndown,) = figures(at)
    left = values(burndown["data"][0]["y"])
    # 30 points over the 30 days and now: empty before the decisions of three days ago,
    # then the one error spends half of the budget
    assert len(left) == 31
    seen = [v for v in left if v is not None and v == v]
    assert seen and all(v == pytest.approx(50.0) for v in seen)
    assert len(seen) in (3, 4)  # the points after three days ago (and now)
    history = dataframe_after(at, "Alert history")
    assert history["state"].tolist() == ["resolved", "firing"]


def test_an_alert_link_to_the_root_opens_the_slo_page(seeded):
    at = open_page(None, {"slo": NAME, "team": "search"})

    assert at.title[0].value == "SLOs"
    assert metrics(at)["Budget left"] == "-9900.0%"


def test_picking_another_team_writes_no_global_filter_and_shows_its_numbers(seeded):
    at = open_page("slos.py", {"slo": NAME, "team": "search"})

    at.selectbox(key=f"slo_drill_{NAME}").select("team=payments")
    rerun(at)
    assert metrics(at)["Budget left"] == "50.0%"
    assert at.query_params["slo"] == NAME


def test_no_slo_files_says_where_to_put_them(dashboard_db, slo_dir):
    at = open_page("slos.py")

    assert [i.value for i in at.info] and "No SLOs in" in at.info[0].value
    assert code_span(slo_dir) in at.info[0].value  # the path, verbatim as code
    assert "policyscope slo validate" in at.info[0].value
    assert len(at.dataframe) == 0


def test_an_invalid_slo_file_is_reported_with_its_key_path(dashboard_db, slo_dir):
    doc = slo_doc()
    doc["spec"]["objectives"] = [{"target": 1.5}]
    (slo_dir / "bad.yaml").write_text(yaml.safe_dump(doc))

    at = open_page("slos.py")

    assert at.error[0].value.startswith("The SLO files do not validate")
    assert "bad.yaml" in at.code[0].value and "objectives" in at.code[0].value
    assert len(at.dataframe) == 0
