"""The Executive page under AppTest, over events of known times around the current minute N
and the SLI batch run at N - 7 days and at N (so every headline has a week-earlier value):

- inventory, 1-day window: at N payments w1 enforced, w2 not, search w3 enforced (2 of 3,
  66.7 %; payments 50 %); at N - 7 d only w1 of the three enforced (33.3 %): +33.3 pp;
- violations: v1 high (payments) open since N - 10 d; v2 critical open N - 20 d .. N - 5 d;
  v3 medium N - 2 d .. N - 1 h (47 h); v4 low N - 9 d .. N - 7 d - 2 h (46 h). Open high and
  critical: 1 now, 2 a week ago (-1); M3_mean over a day: 47 h now, 46 h then (+1 h);
- drift: 3 events in the last day (21 per week), 1 in the day a week earlier (7): +14.0;
- deploy gates: 1 of 4 blocked in the last day (25 %), 0 of 2 a week earlier: +25.0 pp;
- SLOs: M2 at 90 % over 30 days (2 of 3 workloads: not met, budget 1 - 1 / 0.3 = -233.3 %)
  and M1 at 99.9 % (10 good decisions: met): 1 of 2 meet their objective; a week earlier
  only the M2 one had data, not met (0 of 1): +1 -- compared with the standing the alert
  evaluator stored then (5 minutes before N - 7 d: up to a day older counts); the page
  evaluates no past point, so without a stored one the SLO headline has no change.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from metrics import jobs
from metrics.windows import floor_minute
from tests.builders.dashboards import (
    dataframe_after,
    deltas,
    figures,
    metrics,
    open_page,
    texts,
    traces,
    values,
)
from tests.builders.rows import dec, ev, insert_decisions, insert_events
from tests.builders.slos import slo_doc

pytestmark = pytest.mark.integration

D, H = timedelta(days=1), timedelta(hours=1)


def coverage_slo() -> dict:
    doc = slo_doc("workloads-enforced")
    metric = doc["spec"]["indicator"]["spec"]["ratioMetric"]
    metric["good"]["metricSource"]["spec"]["sli"] = "M2"
    metric["total"]["metricSource"]["spec"]["sli"] = "M2"
    doc["spec"]["objectives"] = [{"target": 0.9}]
    return doc


def violation(vid, status, when, severity="", team="payments", kind=""):
    return ev("policy.violation", when, violation_id=vid, violation_status=status,
              severity=severity, team=team, remediation_kind=kind, policy_id="k8s.p")


@pytest.fixture(scope="module")
def now() -> datetime:
    return floor_minute(datetime.now(timezone.utc))


@pytest.fixture
def seeded(chdb_client, dashboard_db, slo_dir, now):
    (slo_dir / "coverage.yaml").write_text(yaml.safe_dump(coverage_slo()))
    (slo_dir / "eval.yaml").write_text(yaml.safe_dump(slo_doc()))
    week = now - 7 * D
    inv = "workload.inventory"
    insert_events(chdb_client, [
        ev(inv, now - 2 * H, workload_id="w1", workload_enforced=True),
        ev(inv, now - 2 * H, workload_id="w2", workload_enforced=False),
        ev(inv, now - 2 * H, workload_id="w3", workload_enforced=True, team="search"),
        ev(inv, week - 2 * H, workload_id="w1", workload_enforced=True),
        ev(inv, week - 2 * H, workload_id="w2", workload_enforced=False),
        ev(inv, week - 2 * H, workload_id="w3", workload_enforced=False, team="search"),
        violation("v1", "opened", now - 10 * D, "high"),
        violation("v2", "opened", now - 20 * D, "critical", team="search"),
        violation("v2", "remediated", now - 5 * D, "critical", team="search", kind="manual"),
        violation("v3", "opened", now - 2 * D, "medium"),
        violation("v3", "remediated", now - H, "medium", kind="auto"),
        violation("v4", "opened", now - 9 * D, "low"),
        violation("v4", "remediated", week - 2 * H, "low", kind="auto"),
        *[ev("drift.detected", now - k * H) for k in (1, 2, 3)],
        ev("drift.detected", week - 3 * H),
        *[ev("deploy.gate", now - 3 * H, deploy_id=f"g{k}", gate_outcome=o)
          for k, o in enumerate(["passed", "passed", "blocked", "overridden"])],
        *[ev("deploy.gate", week - 3 * H, deploy_id=f"w{k}", gate_outcome="passed")
          for k in range(2)],
    ])
    insert_decisions(chdb_client, [dec(now - H) for _ in range(10)])
    jobs.run_incremental(chdb_client, week)
    jobs.run_incremental(chdb_client, now)
    return dashboard_db


def store_standing(client, slo_dir, at: datetime) -> None:
    """What the alert evaluator stores at each run: every SLO's standing at `at`."""
    from dashboards.queries.slos import load_slos, settings
    from slo.evaluate import evaluate
    from slo.report import record_standings

    slos = load_slos(str(slo_dir))
    threshold = settings().latency_threshold
    record_standings(client, slos, evaluate(client, slos, [at], latency_threshold=threshold),
                     latency_threshold=threshold, computed_at=at)


def test_headline_numbers_and_their_change_over_a_week(seeded, chdb_client, slo_dir, now):
    store_standing(chdb_client, slo_dir, now - 7 * D - 5 * timedelta(minutes=1))
    at = open_page("executive.py")

    assert metrics(at) == {
        "Enforcement coverage": "66.7%", "Open high/critical violations": "1",
        "Mean time to remediate": "1 d 23 h", "Drift events per week": "21.0",
        "Deploy block rate": "25.0%", "SLOs meeting objective": "1 of 2"}
    assert deltas(at) == {
        "Enforcement coverage": "+33.3 pp", "Open high/critical violations": "-1",
        "Mean time to remediate": "+1 h", "Drift events per week": "+14.0",
        "Deploy block rate": "+25.0 pp", "SLOs meeting objective": "+1"}


def test_without_a_standing_stored_a_week_ago_the_slo_headline_has_no_change(seeded):
    at = open_page("executive.py")

    assert metrics(at)["SLOs meeting objective"] == "1 of 2"
    changes = deltas(at)
    assert changes["SLOs meeting objective"] == ""
    assert changes["Enforcement coverage"] == "+33.3 pp"  # the SLIs' changes stay


def test_coverage_by_team_is_drawn_against_the_coverage_slos_goal(seeded):
    at = open_page("executive.py")

    table = dataframe_after(at, "Enforcement coverage by team")
    assert table.to_dict("records") == [
        {"team": "payments", "enforced": 1.0, "workloads": 2.0, "coverage": "50.0%"},
        {"team": "search", "enforced": 1.0, "workloads": 1.0, "coverage": "100.0%"}]
    chart = figures(at)[0]
    assert traces(chart)["coverage"] == {"payments": 50.0, "search": 100.0}
    assert [s["y0"] for s in chart["layout"]["shapes"]] == [90.0]  # the goal line


def test_violations_by_severity_open_and_remediated(seeded, now):
    at = open_page("executive.py")

    open_line = values(figures(at)[1]["data"][0]["y"])
    assert len(open_line) == 31
    assert open_line[-1] == 1 and open_line[-8] == 2 and open_line[0] == 0  # v2 opened N - 20 d
    table = dataframe_after(at, "Time to remediate by severity")
    assert table.to_dict("records") == [
        {"severity": "medium", "remediated": 1, "mean": "1 d 23 h", "median": "1 d 23 h"}]


def test_drift_by_month_counts_each_months_events_to_date(seeded, now):
    at = open_page("executive.py")

    events = [now - k * H for k in (1, 2, 3)] + [now - 7 * D - 3 * H]
    expected: dict = {}
    for point in (now - 7 * D, now):  # the batch's two points; the later wins in its month
        month = point.replace(day=1, hour=0, minute=0)
        expected[month.strftime("%Y-%m")] = sum(1 for e in events if month <= e < point)
    drift = next(f for f in figures(at) if f["layout"]["title"]["text"] ==
                 "Drift events per month")
    shown = dict(zip([str(x)[:7] for x in values(drift["data"][0]["x"])],
                     values(drift["data"][0]["y"])))
    assert shown == {k: float(v) for k, v in expected.items() if v} | {
        k: 0.0 for k, v in expected.items() if not v and k in shown}


def test_slo_compliance_lists_each_slo_with_a_link_to_its_page(seeded):
    at = open_page("executive.py")

    table = dataframe_after(at, "SLO compliance")
    assert table.to_dict("records") == [  # in file name order
        {"slo": "workloads-enforced", "dimensions": "", "objective": "90.00%",
         "current": "66.67%", "budget left": "-233.3%", "status": "ticket: burning",
         "open": "/slos?slo=workloads-enforced"},
        {"slo": "admission-eval-success", "dimensions": "", "objective": "99.90%",
         "current": "100.00%", "budget left": "100.0%", "status": "ok",
         "open": "/slos?slo=admission-eval-success"},
    ]


def test_a_team_filter_from_the_url_narrows_the_headline(seeded):
    at = open_page("executive.py", {"team": "payments"})

    shown = metrics(at)
    assert shown["Enforcement coverage"] == "50.0%"
    assert shown["Open high/critical violations"] == "1"


def test_an_empty_store_says_what_to_send(dashboard_db):
    at = open_page("executive.py")

    assert metrics(at) == {
        "Enforcement coverage": "—", "Open high/critical violations": "0",
        "Mean time to remediate": "—", "Drift events per week": "—", "Deploy block rate": "—",
        "SLOs meeting objective": "—"}
    shown = texts(at)
    assert any(t.startswith("No SLI values for this range yet") for t in shown)
    assert any(t.startswith("No coverage yet") for t in shown)
    assert any("No SLOs in" in t for t in shown)
    assert figures(at) == []


# -- the page's violation numbers against M3's lifecycle (the definition) --------------------

def plain_remediation(client, end: datetime, span: timedelta, where: dict, days: int = 30
                      ) -> dict:
    """What `executive.remediation` must give, the plain way: the events read as rows,
    `metrics.sli.remediation.lifecycles` (M3's definition), each violation's latest non-empty
    severity, then counted per point, severity and week in Polars."""
    import numpy as np
    import polars as pl

    from dashboards.queries.executive import HIGH, SEVERITY_ORDER
    from metrics import sources
    from metrics.sli.remediation import LOOKBACK_DAYS, lifecycles

    columns = ["violation_id", "violation_status", "remediation_kind", "team", "service",
               "policy_id", "environment", "cluster", "severity"]
    counted = max(span, timedelta(days=days))
    events = sources.events(client, "policy.violation", columns,
                            end - counted - timedelta(days=LOOKBACK_DAYS), end)
    for name, wanted in where.items():
        events = events.filter(pl.col(name) == wanted)
    severity = events.filter(pl.col("severity") != "").group_by("violation_id").agg(
        pl.col("severity").sort_by("event_time").last())
    life = lifecycles(events).join(severity, on="violation_id", how="left").with_columns(
        pl.col("severity").fill_null(""))

    points = [floor_minute(end) - timedelta(days=k) for k in range(days, -1, -1)]
    high = life.filter(pl.col("severity").is_in(HIGH))
    open_high = [sum(1 for o, c in zip(high["opened_at"], high["closed_at"])
                     if o < p and (c is None or c >= p)) for p in points]

    done = life.filter(pl.col("remediated_at").is_not_null()).with_columns(
        (pl.col("duration_ms") / 1000).alias("seconds"))
    recent = done.filter((pl.col("remediated_at") >= end - span)
                         & (pl.col("remediated_at") < end))
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    table = [{"severity": s or "(none)", "remediated": len(g),
              "mean_s": float(np.mean(g)), "p50_s": float(np.median(g))}
             for s, g in sorted(((s, list(g["seconds"])) for (s,), g in
                                 recent.group_by("severity")),
                                key=lambda sg: rank.get(sg[0], len(rank)))]
    weekly = done.filter(pl.col("remediated_at") >= end - timedelta(days=30)).with_columns(
        pl.col("remediated_at").dt.truncate("1w").alias("week")).group_by(
        "week", "severity").agg(pl.col("seconds").mean()).sort("week", "severity")
    return {"open_high": open_high, "table": table,
            "weekly": [(w, s or "(none)", m) for w, s, m in weekly.iter_rows()]}


def test_violation_numbers_equal_m3s_lifecycle_counted_plainly(chdb_client, database, now):
    """Violations of every shape M3's lifecycle treats -- closed before opening (ignored),
    suppressed then remediated, reopened (the first opening counts), never opened (left
    out), severity changed or given only later, an empty severity, two teams -- at random
    times over four months: the page's one read gives what the definition gives, counted
    plainly, for several spans and a team filter."""
    import random

    from dashboards.queries.executive import remediation

    rng = random.Random(12)
    rows, ms = [], timedelta(milliseconds=1)
    for k in range(400):
        vid, team = f"v{k}", rng.choice(["payments", "search"])
        severities = ["critical", "high", "medium", "low", ""]
        opened = now - timedelta(minutes=rng.randrange(1, 120 * 1440)) + k * ms
        shape = rng.choice(["open", "remediated", "suppressed", "suppressed-then-remediated",
                            "closed-before-opening", "reopened", "never-opened",
                            "severity-later"])
        sev = rng.choice(severities)

        def add(status, when, severity=sev, kind=""):
            rows.append(violation(vid, status, when, severity, team=team, kind=kind))

        first = sev if shape != "severity-later" else ""
        if shape != "never-opened":
            add("opened", opened, first)
        if shape == "reopened":
            add("opened", opened + timedelta(hours=rng.randrange(1, 48)))
        after = opened + timedelta(minutes=rng.randrange(1, 20 * 1440))
        if shape in ("remediated", "reopened", "never-opened", "severity-later"):
            if after < now:
                add("remediated", after, kind="auto")
        if shape in ("suppressed", "suppressed-then-remediated"):
            add("suppressed", after)
            later = after + timedelta(hours=rng.randrange(1, 100))
            if shape.endswith("remediated") and later < now:
                add("remediated", later, rng.choice(severities), kind="manual")
        if shape == "closed-before-opening":
            add("remediated", opened - timedelta(hours=rng.randrange(1, 100)))
    rows = [r for r in rows if r["event_time"] < now]
    insert_events(chdb_client, rows)

    checked = 0
    for span, where in [(D, {}), (30 * D, {}), (90 * D, {}), (30 * D, {"team": "search"})]:
        got = remediation(chdb_client, now, span, where)
        want = plain_remediation(chdb_client, now, span, where)
        assert [int(n) for n in got["open_high"]["open"]] == want["open_high"]
        assert list(got["open_high"]["at"]) == [
            floor_minute(now) - timedelta(days=k) for k in range(30, -1, -1)]
        table = got["table"].to_dict("records")
        assert [(r["severity"], r["remediated"]) for r in table] == [
            (r["severity"], r["remediated"]) for r in want["table"]]
        for mine, plain in zip(table, want["table"]):
            assert mine["mean_s"] == pytest.approx(plain["mean_s"])
            assert mine["p50_s"] == pytest.approx(plain["p50_s"])
        weekly = list(got["weekly"].itertuples(index=False, name=None))
        assert [(w.to_pydatetime(), s) for w, s, _ in weekly] == [
            (w, s) for w, s, _ in want["weekly"]]
        assert [m for *_, m in weekly] == pytest.approx([m for *_, m in want["weekly"]])
        checked += sum(want["open_high"]) + len(want["table"]) + len(want["weekly"])
    assert checked > 100  # the shapes gave numbers to compare, not empty frames
