"""The On-call page's pure parts (dashboards/queries/oncall.py): an agent's health by the rule of
M8, and active alerts joined with their SLO standing and the silences that match them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dashboards.queries.oncall import active_alerts, agent_state, burn_text
from metrics.sli.agents import DEFAULT_INTERVAL_S
from slo.silences import Silence

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
PAGE = {"severity": "page", "long_window": "1h", "short_window": "5m", "factor": 14.4,
        "burn_long": 20.0, "burn_short": 30.0, "firing": True}
TICKET = {"severity": "ticket", "long_window": "1d", "short_window": "2h", "factor": 3.0,
          "burn_long": 4.0, "burn_short": None, "firing": True}


@pytest.mark.parametrize("status, interval, age, state", [
    ("healthy", 30.0, 60.0, "healthy"),       # exactly twice the interval: still fresh
    ("healthy", 30.0, 60.001, "stale"),
    ("", None, 2 * DEFAULT_INTERVAL_S, "healthy"),  # no status, no interval: the defaults
    ("", None, 2 * DEFAULT_INTERVAL_S + 1, "stale"),
    ("degraded", 30.0, 10.0, "degraded"),
    ("unhealthy", 30.0, 10.0, "degraded"),
    ("unhealthy", 10.0, 30.0, "stale"),       # stale wins over what an old report said
    ("healthy", float("nan"), 100.0, "healthy"),  # a null interval read as NaN
])
def test_agent_state_follows_m8(status, interval, age, state):
    assert agent_state(status, interval, age) == state


def alert(severity: str, state: str, since: datetime, **dims) -> dict:
    return {"alert_id": f"{severity}-{state}-{dims}", "slo": "s", "severity": severity,
            "dimensions": dims, "state": state,
            "pending_since": since, "fired_at": since if state == "firing" else None,
            "resolved_at": None, "long_window": "1h", "short_window": "5m", "factor": 14.4,
            "burn_long": 1.5, "burn_short": 2.5, "budget_remaining": 0.25,
            "time_to_exhaustion_s": 600.0, "silenced": False, "updated_at": since}


def test_alerts_take_the_slo_standing_and_are_ordered_page_first_firing_first_newest_first():
    states = [alert("ticket", "firing", AT - timedelta(hours=2), team="a"),
              alert("page", "pending", AT - timedelta(minutes=1), team="a"),
              alert("page", "firing", AT - timedelta(hours=1), team="a"),
              alert("page", "firing", AT - timedelta(minutes=5), team="b")]
    standing = [{"slo": "s", "dimensions": {"team": "a"}, "pairs": [PAGE, TICKET],
                 "budget_remaining": -0.5, "time_to_exhaustion_s": 0.0}]
    rows = active_alerts(states, standing, [], AT)

    assert [(r["severity"], r["state"], r["dimensions"]["team"]) for r in rows] == [
        ("page", "firing", "b"), ("page", "firing", "a"), ("page", "pending", "a"),
        ("ticket", "firing", "a")]
    b, a = rows[0], rows[1]
    assert (a["budget_remaining"], a["time_to_exhaustion_s"], a["standing_found"]) == (
        -0.5, 0.0, True)
    assert a["pairs"] == [PAGE]  # its own tier's windows
    assert rows[3]["pairs"] == [TICKET]
    # team b has no standing (its SLO was removed, say): the stored values
    assert (b["budget_remaining"], b["standing_found"]) == (0.25, False)
    assert burn_text(b["pairs"]) == "1h 1.5× · 5m 2.5× (≥ 14.4)"
    assert burn_text([TICKET]) == "1d 4.0× · 2h — (≥ 3)"
    assert rows[2]["since"] == AT - timedelta(minutes=1)  # pending: since it went pending


def test_alerts_keep_the_filtered_dimension_values_and_name_the_silences_in_force():
    states = [alert("page", "firing", AT, team="a"), alert("page", "firing", AT, team="b"),
              alert("page", "firing", AT)]  # an overall SLO's alert: no team
    silences = [
        Silence("now", {"team": "a", "severity": "page"}, AT - timedelta(minutes=1),
                AT + timedelta(hours=1)),
        Silence("later", {"team": "a"}, AT + timedelta(minutes=1), AT + timedelta(hours=1)),
        Silence("other", {"team": "a", "severity": "ticket"}, AT, AT + timedelta(hours=1))]
    rows = active_alerts(states, [], silences, AT, {"team": "a"})

    assert [(r["dimensions"], r["silenced_by"]) for r in rows] == [
        ({"team": "a"}, ["now"]), ({}, [])]
    assert rows[0]["labels"] == {"slo": "s", "severity": "page", "team": "a"}
