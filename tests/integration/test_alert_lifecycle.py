"""The alert evaluator against chDB: an injected fast burn pages, re-evaluation updates the one
alert, recovery resolves it, `for` holds it pending, `minEvents` and silences behave, per-team
alerts fire only for the burning team, error-budget policies act once per threshold, and M7
counts what fired.

Decisions are inserted straight into `policy_decisions` (the materialized views fill the
rollups). The SLO is M1 at 99.9 % over 30 d with the SRE Workbook windows (page 1h/5m at 14.4,
6h/30m at 6; ticket 1d/2h at 3, 3d/6h at 1). The one scenario, `fast_burn`, at 10 decisions a
minute (one every 6 s):

    10:00 ─ 11:50   successes only                     (1,100 decisions)
    11:50 ─ 12:03   2 errors a minute (20 %)            (130 decisions, 26 errors)
    12:03 ─ 13:00   successes only                      (570 decisions)

Worked by hand (windows are [at - w, at), errors can only be > 0 where they overlap 11:50-12:03):
at 12:00 the 5m window holds 50 decisions / 10 errors (burn 200), the 1h window 600 / 20
(burn 33.3), so the page fires on its 1h/5m pair; at 12:10 the 5m window is clean but the 30m
one holds 300 / 26 (burn 86.7, 6h: 1,300 / 26, burn 20), so the page keeps firing on 6h/30m; at
12:45 the 30m window [12:15, 12:45) is clean too and the page resolves.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from metrics import jobs
from slo import silences
from slo.alerting import AlertEvaluator
from slo.notify import Dispatcher, Notification
from slo.routing import Route, Router
from slo.spec import parse
from tests.builders.slos import COLUMNS, NAME, slo_doc

pytestmark = pytest.mark.integration

UTC = timezone.utc
MINUTE = timedelta(minutes=1)
AT = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
BURN_START, BURN_END = AT - 10 * MINUTE, AT + 3 * MINUTE
RECOVERED = AT + 45 * MINUTE  # the 30m window [12:15, 12:45) holds only successes


# -- data -----------------------------------------------------------------------------------

def traffic(start: datetime, end: datetime, *, per_minute: int = 10, errors: int = 0,
            team: str = "payments") -> list[list]:
    """`per_minute` decisions in every minute of [start, end), evenly spaced; the first
    `errors` of each minute are `error`, the rest `allow`."""
    rows, t = [], start
    while t < end:
        for i in range(per_minute):
            rows.append([uuid.uuid4().hex, t + timedelta(seconds=i * 60 / per_minute), team,
                         "admission", "k8s.require-non-root", "opa", "prod", "eu-1",
                         "error" if i < errors else "allow"])
        t += MINUTE
    return rows


def insert(client, rows: list[list]) -> None:
    client.insert("policy_decisions", rows, column_names=COLUMNS)


def fast_burn(client, team: str = "payments") -> None:
    """The module docstring's scenario for one team."""
    insert(client, traffic(AT - 2 * 60 * MINUTE, BURN_START, team=team)
           + traffic(BURN_START, BURN_END, errors=2, team=team)
           + traffic(BURN_END, AT + 60 * MINUTE, team=team))


def make_slo(**kwargs):
    return parse(slo_doc(**kwargs))


# -- a recording notifier inside the real dispatcher ---------------------------------------

class Recorder:
    """A notifier that keeps what it is sent."""

    def __init__(self, name: str = "pager"):
        self.name = name
        self.sent: list[Notification] = []
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        with self._lock:
            self.sent.append(notification)


@pytest.fixture
def pager():
    recorder = Recorder()
    dispatcher = Dispatcher({recorder.name: recorder})
    dispatcher.start()
    yield recorder, dispatcher
    dispatcher.shutdown(5)


def evaluator(client, slos, dispatcher=None) -> AlertEvaluator:
    router = Router([Route(match={"severity": "page"}, notifiers=["pager"])])
    return AlertEvaluator(client, slos, dispatcher=dispatcher, router=router,
                          dashboard_url="http://dash.test:8501")


def delivered(pager) -> list[Notification]:
    recorder, dispatcher = pager
    assert dispatcher.flush(5), "the dispatcher did not drain within 5 s"
    return list(recorder.sent)


# -- reading the history back ---------------------------------------------------------------

def alerts(client, severity: str = "page") -> list[dict]:
    rows = client.query(
        "SELECT alert_id, slo, severity, dimensions, state, pending_since, fired_at, "
        "resolved_at, long_window, short_window, silenced FROM alerts FINAL "
        "WHERE severity = {s:String} ORDER BY alert_id", parameters={"s": severity})
    return [dict(zip(rows.column_names, r)) for r in rows.result_rows]


def events(client, severity: str = "page") -> list[tuple]:
    """(state, at, team) of every alert_events row of a tier, oldest first."""
    return [tuple(r) for r in client.query(
        "SELECT state, at, team FROM alert_events WHERE severity = {s:String} "
        "ORDER BY at, state", parameters={"s": severity}).result_rows]


def naive(t: datetime) -> datetime:
    """ClickHouse DateTime64 values come back naive (UTC)."""
    return t.replace(tzinfo=None)


# -- the fast burn: fire, no duplicate, resolve ----------------------------------------------

def test_an_injected_fast_burn_fires_one_page_with_its_windows_burns_and_budget(
        chdb_client, database, pager):
    fast_burn(chdb_client)
    report = evaluator(chdb_client, [make_slo()], pager[1]).run(AT)

    assert (NAME, "page", "firing") in report.transitions
    [alert] = alerts(chdb_client)
    assert (alert["slo"], alert["state"], alert["long_window"], alert["short_window"],
            alert["fired_at"], alert["silenced"]) == (NAME, "firing", "1h", "5m", naive(AT),
                                                      False)
    assert events(chdb_client) == [("firing", naive(AT), "")]

    [notification] = delivered(pager)
    assert (notification.slo, notification.severity, notification.state) == (
        NAME, "page", "firing")
    [notice] = notification.alerts
    assert notice.alert_id == alert["alert_id"]
    assert (notice.slo, notice.severity, notice.state) == (NAME, "page", "firing")
    assert (notice.long_window, notice.short_window, notice.factor) == ("1h", "5m", 14.4)
    # 1h: 20 errors in 600 decisions; 5m: 10 in 50; 30d: 20 in 1,200 (budget 1.2 errors)
    assert notice.burn_long == pytest.approx((20 / 600) / 0.001) and notice.burn_long > 14.4
    assert notice.burn_short == pytest.approx((10 / 50) / 0.001) and notice.burn_short > 14.4
    assert notice.budget_remaining == pytest.approx(1 - 20 / (0.001 * 1200))
    assert notice.time_to_exhaustion_s == 0.0  # the budget is already overspent
    assert NAME in notice.dashboard_url and notice.dashboard_url.startswith(
        "http://dash.test:8501")
    assert notice.started_at == AT and notice.resolved_at is None


def test_re_evaluating_a_minute_later_with_the_burn_still_on_updates_the_one_alert(
        chdb_client, database, pager):
    fast_burn(chdb_client)
    run = evaluator(chdb_client, [make_slo()], pager[1])
    run.run(AT)
    report = run.run(AT + MINUTE)

    assert not [t for t in report.transitions if t[1] == "page"]
    [alert] = alerts(chdb_client)  # one alert id, not two
    assert (alert["state"], alert["fired_at"]) == ("firing", naive(AT))
    assert chdb_client.command(
        "SELECT uniqExact(alert_id) FROM alerts WHERE severity = 'page'") == 1
    assert [e[0] for e in events(chdb_client)] == ["firing"]
    assert len(delivered(pager)) == 1


def test_the_page_keeps_firing_on_6h_30m_then_resolves_once_the_30m_window_is_clean(
        chdb_client, database, pager):
    fast_burn(chdb_client)
    run = evaluator(chdb_client, [make_slo()], pager[1])
    run.run(AT)

    # 12:10: the 5m window is clean, but the 30m window still holds 26 errors in 300
    run.run(AT + 10 * MINUTE)
    [alert] = alerts(chdb_client)
    assert (alert["state"], alert["long_window"], alert["short_window"]) == (
        "firing", "6h", "30m")

    report = run.run(RECOVERED)
    assert (NAME, "page", "resolved") in report.transitions
    [alert] = alerts(chdb_client)
    assert (alert["state"], alert["fired_at"], alert["resolved_at"]) == (
        "resolved", naive(AT), naive(RECOVERED))
    assert events(chdb_client) == [("firing", naive(AT), ""),
                                   ("resolved", naive(RECOVERED), "")]

    fired, resolved = delivered(pager)
    assert [fired.state, resolved.state] == ["firing", "resolved"]
    [notice] = resolved.alerts
    assert notice.alert_id == alert["alert_id"]
    assert (notice.started_at, notice.resolved_at) == (AT, RECOVERED)


def test_an_evaluation_older_than_the_alerts_last_update_neither_pages_nor_records(
        chdb_client, database, pager):
    """`policyscope alerts evaluate --at <a past time>` runs against the live history. After
    the page fired at 12:00 and resolved at 12:45, evaluating 12:01 again must not re-page
    on-call for a past minute nor add a transition that the stored state (still resolved,
    the newer row) contradicts."""
    fast_burn(chdb_client)
    run = evaluator(chdb_client, [make_slo()], pager[1])
    run.run(AT)
    run.run(RECOVERED)

    late = run.run(AT + MINUTE)

    assert [alert["state"] for alert in alerts(chdb_client)] == ["resolved"]
    assert late.transitions == []
    assert [e[0] for e in events(chdb_client)] == ["firing", "resolved"]
    assert [n.state for n in delivered(pager)] == ["firing", "resolved"]


def test_a_pending_duration_of_2m_holds_the_alert_pending_then_fires_2_minutes_later(
        chdb_client, database, pager):
    fast_burn(chdb_client)
    run = evaluator(chdb_client, [make_slo(alerting={"for": "2m"})], pager[1])

    first = run.run(AT)
    assert (NAME, "page", "pending") in first.transitions
    [alert] = alerts(chdb_client)
    assert (alert["state"], alert["pending_since"], alert["fired_at"]) == (
        "pending", naive(AT), None)

    run.run(AT + MINUTE)
    assert alerts(chdb_client)[0]["state"] == "pending"  # 1 min < 2 min
    assert delivered(pager) == []

    third = run.run(AT + 2 * MINUTE)
    assert (NAME, "page", "firing") in third.transitions
    [alert] = alerts(chdb_client)
    assert (alert["state"], alert["pending_since"], alert["fired_at"]) == (
        "firing", naive(AT), naive(AT + 2 * MINUTE))
    assert [e[:2] for e in events(chdb_client)] == [("pending", naive(AT)),
                                                    ("firing", naive(AT + 2 * MINUTE))]
    [notification] = delivered(pager)
    assert notification.state == "firing"


@pytest.mark.parametrize("min_events, page, ticket", [
    pytest.param(0, True, True, id="minEvents off: the burn fires both tiers"),
    pytest.param(301, False, True,
                 id="minEvents 301 is above the 5m (50) and 30m (300) windows' decisions: "
                    "no page, the 1d/2h ticket (1,200 each) still fires"),
    pytest.param(1201, False, False,
                 id="minEvents 1,201 is above every window's decisions: nothing fires"),
])
def test_min_events_above_the_traffic_prevents_firing(chdb_client, database, pager,
                                                      min_events, page, ticket):
    fast_burn(chdb_client)
    report = evaluator(chdb_client, [make_slo(alerting={"minEvents": min_events})],
                       pager[1]).run(AT)

    fired = {tier for _, tier, kind in report.transitions if kind == "firing"}
    assert fired == {t for t, on in (("page", page), ("ticket", ticket)) if on}
    assert [a["state"] for a in alerts(chdb_client, "page")] == (["firing"] if page else [])
    assert [a["state"] for a in alerts(chdb_client, "ticket")] == (
        ["firing"] if ticket else [])
    assert len(delivered(pager)) == (1 if page else 0)


# -- exact boundaries through the whole path ----------------------------------------------------

ONLY_FAST_PAGE = {"windows": [{"severity": "page", "long": "1h", "short": "5m", "factor": 14.4}]}


@pytest.mark.parametrize("errors, fires", [
    pytest.param(144, True, id="99.9%: 144 errors in 10,000 decisions (1.44%) in 1h and 5m "
                              "fires the fast page, exactly at the threshold"),
    pytest.param(143, False, id="99.9%: 143 errors in 10,000 decisions (1.43%) in 1h and 5m "
                               "stays quiet"),
])
def test_the_fast_page_is_decided_exactly_at_14_4_times_the_budget(
        chdb_client, database, pager, errors, fires):
    # every decision in the last 5 minutes, so the 1h and 5m windows hold the same 10,000
    insert(chdb_client, traffic(AT - 5 * MINUTE, AT, per_minute=2000)[:10_000 - errors]
           + [[uuid.uuid4().hex, AT - MINUTE, "payments", "admission", "k8s.require-non-root",
               "opa", "prod", "eu-1", "error"] for _ in range(errors)])
    report = evaluator(chdb_client, [make_slo(alerting=ONLY_FAST_PAGE)], pager[1]).run(AT)

    assert report.transitions == ([(NAME, "page", "firing")] if fires else [])
    assert len(delivered(pager)) == (1 if fires else 0)


# -- silences -----------------------------------------------------------------------------

def test_an_active_silence_records_the_alert_but_sends_no_notification(
        chdb_client, database, pager):
    fast_burn(chdb_client)
    silences.add(chdb_client, {"slo": NAME}, AT - 60 * MINUTE, AT + 60 * MINUTE,
                 "planned maintenance", "tester")
    report = evaluator(chdb_client, [make_slo()], pager[1]).run(AT)

    assert (NAME, "page", "firing") in report.transitions
    assert report.silenced >= 1 and report.notified == 0
    [alert] = alerts(chdb_client)
    assert (alert["state"], alert["silenced"]) == ("firing", True)
    assert events(chdb_client) == [("firing", naive(AT), "")]
    assert delivered(pager) == []


def test_an_expired_silence_does_not_suppress_the_page(chdb_client, database, pager):
    fast_burn(chdb_client)
    silences.add(chdb_client, {"slo": NAME}, AT - 120 * MINUTE, AT - 60 * MINUTE,
                 "last week's maintenance", "tester")
    evaluator(chdb_client, [make_slo()], pager[1]).run(AT)

    [alert] = alerts(chdb_client)
    assert (alert["state"], alert["silenced"]) == ("firing", False)
    [notification] = delivered(pager)
    assert notification.state == "firing"


def test_a_page_still_firing_when_its_silence_ends_is_notified_then(
        chdb_client, database, pager):
    """A maintenance window ends while the burn goes on: on-call must hear of it then
    (Alertmanager notifies a firing alert once its silence expires). At 12:05 the 5m window
    [12:00, 12:05) still holds 6 errors in 50 decisions (burn 120)."""
    fast_burn(chdb_client)
    silences.add(chdb_client, {"slo": NAME}, AT - 60 * MINUTE, AT + 5 * MINUTE,
                 "maintenance until 12:05", "tester")
    run = evaluator(chdb_client, [make_slo()], pager[1])
    run.run(AT)
    assert delivered(pager) == []

    run.run(AT + 5 * MINUTE)  # the silence has ended; the page still fires

    [alert] = alerts(chdb_client)
    assert (alert["state"], alert["silenced"]) == ("firing", False)
    notifications = delivered(pager)
    assert [n.state for n in notifications] == ["firing"], (
        "the page fired under a silence and still fires after it ended, but on-call was "
        f"never notified: {len(notifications)} notification(s)")


def test_a_silence_matching_another_slo_does_not_suppress_this_one(
        chdb_client, database, pager):
    fast_burn(chdb_client)
    silences.add(chdb_client, {"slo": "some-other-slo"}, AT - 60 * MINUTE, AT + 60 * MINUTE,
                 "", "tester")
    evaluator(chdb_client, [make_slo()], pager[1]).run(AT)

    assert alerts(chdb_client)[0]["silenced"] is False
    assert len(delivered(pager)) == 1


# -- per-team alerts ------------------------------------------------------------------------

def test_with_by_team_only_the_burning_team_pages(chdb_client, database, pager):
    fast_burn(chdb_client, team="payments")
    insert(chdb_client, traffic(AT - 2 * 60 * MINUTE, AT + 60 * MINUTE, team="identity"))
    report = evaluator(chdb_client, [make_slo(by=["team"])], pager[1]).run(AT)

    assert report.evaluations == 2  # one per team
    [alert] = alerts(chdb_client)
    assert (alert["dimensions"], alert["state"]) == ({"team": "payments"}, "firing")
    assert events(chdb_client) == [("firing", naive(AT), "payments")]
    [notification] = delivered(pager)
    [notice] = notification.alerts
    assert notice.dimensions == {"team": "payments"}
    assert "team=payments" in notice.dashboard_url and NAME in notice.dashboard_url


def test_with_by_team_two_burning_teams_page_as_two_alerts_in_one_notification(
        chdb_client, database, pager):
    fast_burn(chdb_client, team="payments")
    fast_burn(chdb_client, team="identity")
    evaluator(chdb_client, [make_slo(by=["team"])], pager[1]).run(AT)

    assert sorted(a["dimensions"]["team"] for a in alerts(chdb_client)) == [
        "identity", "payments"]
    [notification] = delivered(pager)  # grouped by (SLO, tier)
    assert sorted(n.dimensions["team"] for n in notification.alerts) == [
        "identity", "payments"]
    assert len({n.alert_id for n in notification.alerts}) == 2


# -- error-budget policies ------------------------------------------------------------------

POLICIES = [{"consumed": 0.25, "action": "review-ticket"},
            {"consumed": 0.5, "action": "notify-owner", "owner": "payments-oncall"},
            {"consumed": 1.0, "action": "freeze-enforce-rollouts"}]


def policy_rows(client) -> list[tuple]:
    """Every budget_policy_events row as inserted (no FINAL: duplicates would show)."""
    return [tuple(r) for r in client.query(
        "SELECT threshold, action, owner, at FROM budget_policy_events "
        "ORDER BY threshold, at").result_rows]


def test_budget_policies_act_once_per_threshold_across_repeated_runs(chdb_client, database):
    # 10,000 decisions, 100 a minute over 09:00-10:40; the budget is 10 errors
    start = AT - 3 * 60 * MINUTE
    insert(chdb_client, traffic(start, start + 100 * MINUTE, per_minute=100))
    run = AlertEvaluator(chdb_client, [make_slo(budget_policies=POLICIES)])

    def add_errors(n: int, minute: int) -> None:
        insert(chdb_client, [[uuid.uuid4().hex, start + minute * MINUTE, "payments",
                              "admission", "k8s.require-non-root", "opa", "prod", "eu-1",
                              "error"] for _ in range(n)])

    add_errors(2, 10)  # 2 of 10,002: 20 % of the budget consumed
    assert run.run(AT).budget_actions == 0
    assert policy_rows(chdb_client) == []

    add_errors(1, 20)  # 3 of 10,003: 30 % consumed, past 25 %
    assert [run.run(AT + k * MINUTE).budget_actions for k in (1, 2, 3)] == [1, 0, 0]
    assert policy_rows(chdb_client) == [(0.25, "review-ticket", "", naive(AT + MINUTE))]

    add_errors(3, 30)  # 6 of 10,006: 60 % consumed, past 50 %
    assert [run.run(AT + k * MINUTE).budget_actions for k in (4, 5)] == [1, 0]
    rows = policy_rows(chdb_client)
    assert [(t, a, o) for t, a, o, _ in rows] == [(0.25, "review-ticket", ""),
                                                  (0.5, "notify-owner", "payments-oncall")]
    consumed = chdb_client.query("SELECT threshold, budget_consumed FROM budget_policy_events "
                                 "ORDER BY threshold").result_rows
    assert [c for _, c in consumed] == pytest.approx([3 / 10.003, 6 / 10.006])


def test_the_notify_owner_action_reaches_the_owners_route_once(chdb_client, database, pager):
    start = AT - 3 * 60 * MINUTE
    insert(chdb_client, traffic(start, start + 100 * MINUTE, per_minute=100, errors=0)
           + [[uuid.uuid4().hex, start + 30 * MINUTE, "payments", "admission",
               "k8s.require-non-root", "opa", "prod", "eu-1", "error"] for _ in range(6)])
    router = Router([Route(match={"action": "notify-owner", "owner": "payments-oncall"},
                           notifiers=["pager"])])
    run = AlertEvaluator(chdb_client, [make_slo(budget_policies=POLICIES)],
                         dispatcher=pager[1], router=router)

    # 6 errors of 10,006 decisions: 60 % of the budget consumed, past 25 % and 50 %
    assert [run.run(AT + k * MINUTE).budget_actions for k in range(3)] == [2, 0, 0]

    [notification] = delivered(pager)  # review-ticket has no route; notify-owner once
    [notice] = notification.alerts
    assert (notice.slo, notice.severity, notice.state) == (NAME, "ticket", "firing")
    assert notice.budget_remaining == pytest.approx(1 - 6 / 10.006)
    assert "50%" in notice.summary and NAME in notice.dashboard_url


# -- M7 from the evaluator's own history ------------------------------------------------------

def test_m7_counts_the_pages_and_tickets_the_evaluator_fired(chdb_client, database):
    fast_burn(chdb_client, team="payments")
    insert(chdb_client, traffic(AT - 2 * 60 * MINUTE, AT + 60 * MINUTE, team="identity"))
    report = AlertEvaluator(chdb_client, [make_slo(by=["team"])]).run(AT)
    assert sorted((tier, kind) for _, tier, kind in report.transitions) == [
        ("page", "firing"), ("ticket", "firing")]  # payments only

    frame = jobs.compute(chdb_client, [AT + MINUTE], ["5m", "1h"]).filter(
        pl.col("sli") == "M7")

    def m7(window: str, dimension: str = "", value: str = "") -> tuple:
        rows = frame.filter((pl.col("window") == window) & (pl.col("dimension") == dimension)
                            & (pl.col("dimension_value") == value))
        assert rows.height == 1, f"expected one M7 row {window} {dimension}={value}"
        return rows.select("good", "total", "value").row(0)

    # 1 page of 2 alerts (page + ticket), both entered firing at 12:00, inside [11:56, 12:01)
    assert m7("5m") == (1.0, 2.0, 0.5)
    assert m7("1h", "team", "payments") == (1.0, 2.0, 0.5)
    assert m7("5m", "slo", NAME) == (1.0, 2.0, 0.5)
    assert frame.filter((pl.col("dimension") == "team")
                        & (pl.col("dimension_value") == "identity")).height == 0
    # the windows end before the alerts when evaluated at 12:00 itself: [at - w, at)
    before = jobs.compute(chdb_client, [AT], ["5m"]).filter(
        (pl.col("sli") == "M7") & (pl.col("dimension") == ""))
    assert before.select("good", "total").row(0) == (0.0, 0.0)
