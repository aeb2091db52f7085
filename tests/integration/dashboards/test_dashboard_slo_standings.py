"""The dashboards read the standing the alert evaluator stored (`slo_standings`) and evaluate
only where nothing is stored: the M1 SLO of tests/builders/slos.py at 99.9 % per team.

- payments: 2000 decisions three days ago, 1 error: budget left 1 - 1 / (0.001 x 2000) = 50 %;
- search: 100 decisions two minutes ago, 10 errors: 1 - 10 / (0.001 x 100) = -9900 %.

The evaluator runs over that; then 100 more allowed decisions of search land (a minute ago):
evaluated now, search would have 1 - 10 / (0.001 x 200) = -4900 % left. A page showing
-9900 % read the stored standing, one showing -4900 % evaluated.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from dashboards.queries import slos as queries
from metrics.windows import floor_minute
from slo import spec
from slo.alerting import AlertEvaluator
from slo.report import status
from tests.builders.dashboards import dataframe_after, metrics, open_page
from tests.builders.rows import dec, insert_decisions
from tests.builders.slos import NAME, slo_doc

pytestmark = pytest.mark.integration

SEARCH = {"team": "search"}
PAYMENTS = {"team": "payments"}
MAX_AGE_S = 120  # the dashboards' default: two batch intervals of 60 s, at least 2 minutes


@pytest.fixture
def now() -> datetime:
    return floor_minute(datetime.now(timezone.utc))


@pytest.fixture
def seeded(chdb_client, dashboard_db, slo_dir, now):
    (slo_dir / f"{NAME}.yaml").write_text(yaml.safe_dump(slo_doc(by=["team"])))
    insert_decisions(chdb_client, [
        *[dec(now - timedelta(days=3), "allow") for _ in range(1999)],
        dec(now - timedelta(days=3), "error"),
        *[dec(now - timedelta(minutes=2), "allow", team="search") for _ in range(90)],
        *[dec(now - timedelta(minutes=2), "error", team="search") for _ in range(10)],
    ])
    return chdb_client


def evaluate(client, slo_dir, at: datetime) -> None:
    AlertEvaluator(client, spec.load_dir(slo_dir)).run(at)


def more_search_traffic(client, now: datetime) -> None:
    insert_decisions(client, [dec(now - timedelta(minutes=1), "allow", team="search")
                              for _ in range(100)])


def test_the_slo_page_shows_the_standing_the_evaluator_stored(seeded, slo_dir, now):
    evaluate(seeded, slo_dir, now)
    more_search_traffic(seeded, now)

    at = open_page("slos.py", {"slo": NAME, "team": "search"})

    assert metrics(at)["Budget left"] == "-9900.0%"
    summary = dataframe_after(at, "Every SLO")  # the link's team filters it
    assert summary[["dimensions", "good", "total"]].to_dict("records") == [
        {"dimensions": "team=search", "good": 90, "total": 100}]


def test_with_nothing_stored_the_page_evaluates(seeded, now):
    more_search_traffic(seeded, now)

    at = open_page("slos.py", {"slo": NAME, "team": "search"})

    assert metrics(at)["Budget left"] == "-4900.0%"
    assert int(seeded.command("SELECT count() FROM slo_standings")) == 0


def test_status_rows_are_slo_status_at_the_stored_minute(seeded, slo_dir, now):
    """Read a minute after the run (within the age allowed): the run's rows, as `slo status`
    printed them for its minute, with the page's columns added."""
    evaluate(seeded, slo_dir, now)
    printed = status(seeded, spec.load_dir(slo_dir), now)
    more_search_traffic(seeded, now)

    rows = queries.status_rows(seeded, str(slo_dir), now + timedelta(minutes=1), 0.1,
                               MAX_AGE_S)

    added = ("state", "current", "display_name", "by")
    assert [{k: v for k, v in r.items() if k not in added} for r in rows] == printed
    assert [r["state"] for r in rows] == ["ok", "page: burning fast"]
    # older than the age allowed: evaluated, so the later traffic counts
    late = queries.status_rows(seeded, str(slo_dir), now + timedelta(minutes=3), 0.1,
                               MAX_AGE_S)
    assert [r["total"] for r in late] == [2000, 200]


def test_the_executive_pages_now_and_week_ago_are_read_together(seeded, slo_dir, now):
    week_ago = now - timedelta(days=7)
    evaluate(seeded, slo_dir, week_ago)
    evaluate(seeded, slo_dir, now)
    slos = spec.load_dir(slo_dir)
    printed = [status(seeded, slos, now), status(seeded, slos, week_ago)]
    more_search_traffic(seeded, now)
    insert_decisions(seeded, [dec(week_ago - timedelta(hours=1), "error")])

    both = queries.status_rows_at(seeded, str(slo_dir), (now, week_ago), 0.1, MAX_AGE_S)

    added = ("state", "current", "display_name", "by")
    assert [[{k: v for k, v in r.items() if k not in added} for r in rows] for rows in both] \
        == printed
    assert [r["total"] for r in both[1]] == [0]  # nothing in the period a week ago


def test_the_burndown_reads_the_stored_points_and_evaluates_the_others(seeded, slo_dir, now):
    """Stored at the last two points (now and a day before); then one more error of payments
    lands three days ago: the stored points keep 50 %, the points evaluated see 2 errors of
    2001 (1 - 2 / 2.001 ~ 0.05 %), the points before three days ago nothing."""
    slo = spec.load_dir(slo_dir)[0]
    points = queries.burndown_points(slo, now)
    stored = points[-2:]
    for point in stored:
        evaluate(seeded, slo_dir, point)
    insert_decisions(seeded, [dec(now - timedelta(days=3), "error")])

    frame = queries.burndown(seeded, str(slo_dir), NAME, PAYMENTS, now, 0.1, MAX_AGE_S)

    assert frame["at"].tolist() == points
    by_point = dict(zip(frame["at"], frame["budget_remaining"]))
    assert [by_point[p] for p in stored] == [pytest.approx(0.5)] * 2
    evaluated = [p for p in points[:-2] if p > now - timedelta(days=3)]
    assert evaluated and [by_point[p] for p in evaluated] \
        == [pytest.approx(1 - 2 / 2.001)] * len(evaluated)
    before = [by_point[p] for p in points if p <= now - timedelta(days=3)]
    assert before and all(v is None or v != v for v in before)  # None or NaN: no events
