"""`slo status` and `alerts replay` against chDB, with every expected number worked out by hand.

Status scenario (M1, 99.9 % over 30 d, SRE Workbook windows), evaluated at Monday
2026-11-02 12:00 UTC; windows are [at - w, at):

    team payments                         team identity
    10-23 12:00   6,000 decisions, 0 errors    11-02 10:30   500 decisions, 0 errors
    10-31 12:00   2,000 decisions, 1 error
    11-02 09:00   1,000 decisions, 0 errors
    11-02 11:20     900 decisions, 1 error
    11-02 11:57     100 decisions, 2 errors

    payments window   5m     30m    1h     2h     6h     1d     3d     30d
    decisions         100    100    1000   1000   2000   2000   4000   10000
    errors            2      2      3      3      3      3      4      4
    burn (/0.001)     20     20     3      3      1.5    1.5    1      -

Budget remaining = 1 - 4 / (0.001 x 10,000) = 0.6; time to exhaustion at the 1h burn (3x) =
0.6 x 30 d / 3 = 518,400 s. Pairs: page 1h/5m at 14.4 (3 < 14.4: no), page 6h/30m at 6 (1.5:
no), ticket 1d/2h at 3 (1.5: no), ticket 3d/6h at 1 (1 and 1.5: fires, exactly at the
boundary; in floats 4/4000/(1 - 0.999) is 0.99999..., below 1).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from slo.report import replay, status
from slo.spec import parse
from tests.builders.slos import COLUMNS, slo_doc

pytestmark = pytest.mark.integration

UTC = timezone.utc
AT = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def batch(when: datetime, count: int, errors: int, team: str = "payments") -> list[list]:
    return [[uuid.uuid4().hex, when, team, "admission", "k8s.require-non-root", "opa", "prod",
             "eu-1", "error" if i < errors else "allow"] for i in range(count)]


def insert(client, *batches: list[list]) -> None:
    client.insert("policy_decisions", [r for b in batches for r in b], column_names=COLUMNS)


def slo(name: str, *, where: dict | None = None, by: list[str] | None = None):
    document = slo_doc(name, by=by)
    if where:
        ratio = document["spec"]["indicator"]["spec"]["ratioMetric"]
        ratio["good"]["metricSource"]["spec"]["where"] = where
        ratio["total"]["metricSource"]["spec"]["where"] = where
    return parse(document)


def pairs(long_burns, short_burns, firing) -> list[dict]:
    """The four default pairs, in order, with the given burns and firing flags."""
    windows = [("page", "1h", "5m", 14.4), ("page", "6h", "30m", 6.0),
               ("ticket", "1d", "2h", 3.0), ("ticket", "3d", "6h", 1.0)]
    return [{"severity": s, "long_window": lw, "short_window": sw, "factor": f,
             "burn_long": bl, "burn_short": bs, "firing": fire}
            for (s, lw, sw, f), bl, bs, fire in zip(windows, long_burns, short_burns, firing)]


PAYMENTS = {"objective": 0.999, "period": "30d", "good": 9_996, "total": 10_000,
            "budget_remaining": 0.6, "time_to_exhaustion_s": 518_400.0,
            "pairs": pairs([3.0, 1.5, 1.5, 1.0], [20.0, 20.0, 3.0, 1.5],
                           [False, False, False, True]),
            "budget_policy_actions": []}
IDENTITY = {"objective": 0.999, "period": "30d", "good": 500, "total": 500,
            "budget_remaining": 1.0, "time_to_exhaustion_s": None,
            # 1h and 5m and 30m hold nothing: no burn; 2h, 6h, 1d and 3d hold the 500
            "pairs": pairs([None, 0.0, 0.0, 0.0], [None, None, 0.0, 0.0], [False] * 4),
            "budget_policy_actions": []}


def test_status_gives_each_slo_and_team_its_counts_budget_and_pair_burns(
        chdb_client, database):
    insert(chdb_client,
           batch(AT - timedelta(days=10), 6000, 0), batch(AT - timedelta(days=2), 2000, 1),
           batch(AT - 180 * MINUTE, 1000, 0), batch(AT - 40 * MINUTE, 900, 1),
           batch(AT - 3 * MINUTE, 100, 2),
           batch(AT - 90 * MINUTE, 500, 0, team="identity"))
    slos = [slo("payments-eval", where={"team": "payments"}), slo("eval-by-team", by=["team"])]

    rows = status(chdb_client, slos, AT + timedelta(seconds=59))  # floored to the minute

    assert rows == [
        {"slo": "payments-eval", "dimensions": {}, **PAYMENTS},
        {"slo": "eval-by-team", "dimensions": {"team": "identity"}, **IDENTITY},
        {"slo": "eval-by-team", "dimensions": {"team": "payments"}, **PAYMENTS},
    ]
    assert json.loads(json.dumps(rows)) == rows  # the JSON form of `slo status`


def test_status_of_an_slo_without_events_has_no_budget_and_no_firing_pair(
        chdb_client, database):
    rows = status(chdb_client, [slo("quiet", by=["team"])], AT)

    assert rows == [{"slo": "quiet", "dimensions": {}, "objective": 0.999, "period": "30d",
                     "good": 0, "total": 0, "budget_remaining": None,
                     "time_to_exhaustion_s": None,
                     "pairs": pairs([None] * 4, [None] * 4, [False] * 4),
                     "budget_policy_actions": []}]


# -- replay -----------------------------------------------------------------------------------

REPLAY_START = AT - timedelta(days=4)  # 3 days of history before the replayed day
BURN = datetime(2026, 11, 2, 6, 37, tzinfo=UTC)


def steady_traffic_with_a_burn(client) -> None:
    """100 decisions a minute (one every 600 ms) over [AT - 4 d, AT); in the 10 minutes from
    06:37 the first 20 of each minute are errors (200 errors in all)."""
    minutes = int((AT - REPLAY_START) / MINUTE)
    burn_minute = int((BURN - REPLAY_START) / MINUTE)
    client.command(
        "INSERT INTO policy_decisions (event_id, event_time, team, service, policy_id, engine, "
        "environment, cluster, outcome) "
        "SELECT toString(number), addMilliseconds({start:DateTime64(3, 'UTC')}, number * 600), "
        "'payments', 'admission', 'k8s.require-non-root', 'opa', 'prod', 'eu-1', "
        "if(intDiv(number, 100) BETWEEN {b0:UInt64} AND {b1:UInt64} AND number % 100 < 20, "
        "'error', 'allow') FROM numbers({n:UInt64})",
        parameters={"start": REPLAY_START, "b0": burn_minute, "b1": burn_minute + 9,
                    "n": minutes * 100})


def test_replay_of_a_day_reports_the_one_page_with_its_fire_and_resolve_minutes(
        chdb_client, database):
    """At t = 06:37 + d: the 1h window holds 6,000 decisions and 20 x min(d, 10) errors, which
    burns >= 14.4 (>= 86.4 errors) from d = 5; the 5m window holds 500 decisions and errors
    while it overlaps the burn (d <= 14), >= 7.2 needed. So the page fires at 06:42 and
    resolves at 06:52. 200 errors can never reach the 6h/30m page (216 needed in 6 h) or
    either ticket (432 in 1 d; 432 in 3 d)."""
    steady_traffic_with_a_burn(chdb_client)
    assert chdb_client.command("SELECT countIf(outcome = 'error') FROM policy_decisions") == 200

    replayed = replay(chdb_client, [slo("replayed")], timedelta(days=1), AT)

    assert [(a.slo, a.severity, a.dimensions, a.fired_at, a.resolved_at) for a in replayed] == [
        ("replayed", "page", {}, BURN + 5 * MINUTE, BURN + 15 * MINUTE)]
    # the highest 1h burn while firing: 200 errors in 6,000 decisions
    assert replayed[0].peak_burn == pytest.approx((200 / 6000) / 0.001)


def test_replay_reports_a_page_still_open_at_the_end_without_a_resolve_time(
        chdb_client, database):
    steady_traffic_with_a_burn(chdb_client)

    replayed = replay(chdb_client, [slo("replayed")], timedelta(hours=6),
                      BURN + 10 * MINUTE)

    assert [(a.severity, a.fired_at, a.resolved_at) for a in replayed] == [
        ("page", BURN + 5 * MINUTE, None)]


# -- budgeting methods --------------------------------------------------------------------------

def test_a_timeslices_slo_counts_minutes_not_decisions(chdb_client, database):
    """Timeslices, 1m slices, a slice is good at >= 90 % successes; target 99 % of slices.
    Ten minutes of 100 decisions each; the minute at 11:35 has 50 errors (50 %), the others
    none. So exactly one slice of the 43,200 minutes in 30 d is bad (a slice without events
    is good: nothing failed in it), not 50 bad events of 1,000. Budget: 1 % of 43,200 slices
    = 432, so 1 - 1/432 remains. The 5m/30m windows count 5 and 30 slices: 11:35 is in the
    30m window [11:30, 12:00) but not the 5m one."""
    start = AT - 30 * MINUTE
    insert(chdb_client, *[batch(start + k * MINUTE, 100, 50 if k == 5 else 0)
                          for k in range(10)])
    document = slo_doc("sliced")
    document["spec"]["budgetingMethod"] = "Timeslices"
    document["spec"]["objectives"] = [{"target": 0.99, "timeSliceTarget": 0.9,
                                       "timeSliceWindow": "1m"}]

    [row] = status(chdb_client, [parse(document)], AT)

    assert (row["total"] - row["good"], row["total"]) == (1, 43_200), (
        f"expected 1 bad slice of 43,200, got {row['total'] - row['good']} bad "
        f"of {row['total']}")
    assert row["budget_remaining"] == pytest.approx(1 - 1 / 432)
    fast = row["pairs"][0]  # page 1h/5m: burn = (bad slices / slices) / 1 %
    assert (fast["burn_long"], fast["burn_short"]) == (pytest.approx(100 / 60), 0.0)
    slow_page = row["pairs"][1]  # page 6h/30m
    assert slow_page["burn_short"] == pytest.approx(100 / 30)
