"""The standings the alert evaluator stores (`slo_standings`) and `slo.report.standings`, which
the dashboards read: the same rows `slo status` prints at the run's minute, read back instead of
evaluated; evaluated where nothing (fresh enough, of the SLO as defined now) is stored.

Scenario, evaluated at Monday 2026-11-02 12:00 UTC:
- `avail`: M1 at 99.9 % over 30 d by team, with budget policies at 25 % and 100 % consumed:
  payments 2,000 decisions two days ago with 1 error and 100 at 11:57 with 1 error (2 bad of
  2,100 against 2.1 allowed: 95 % spent, so the first policy acts, not the second); identity
  500 decisions at 10:30, none bad; search ten minutes of 100 from 11:30, 11:35 with 50 errors;
- `sliced`: M1 in 1m time slices (a slice is good at >= 90 % successes), target 99 %: one bad
  minute (11:35, 50 errors of 100) of the 43,200;
- `agent-health` (examples/slo/): M8 in time slices by cluster, from heartbeats of three agents
  (one of eu-1 unhealthy since 11:50).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from slo import spec
from slo.alerting import AlertEvaluator
from slo.report import definition, standings, status
from tests.builders import rows
from tests.builders.slos import COLUMNS, slo_doc

pytestmark = pytest.mark.integration

UTC = timezone.utc
AT = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "slo"
POLICIES = [{"consumed": 0.25, "action": "review-ticket"},
            {"consumed": 1.0, "action": "freeze-enforce-rollouts"}]


def batch(when: datetime, count: int, errors: int, team: str = "payments") -> list[list]:
    return [[uuid.uuid4().hex, when, team, "admission", "k8s.require-non-root", "opa", "prod",
             "eu-1", "error" if i < errors else "allow"] for i in range(count)]


def insert(client, *batches: list[list]) -> None:
    client.insert("policy_decisions", [r for b in batches for r in b], column_names=COLUMNS)


def heartbeats(client, until: datetime) -> None:
    """Every 30 s over the last 40 minutes: a1, a2 of eu-1 (a2 unhealthy from 11:50), a3 of
    us-1."""
    beats = []
    for k in range(80):
        when = until - timedelta(minutes=40) + k * timedelta(seconds=30)
        for agent, cluster in (("a1", "eu-1"), ("a2", "eu-1"), ("a3", "us-1")):
            healthy = agent != "a2" or when < AT - 10 * MINUTE
            beats.append(rows.ev("agent.heartbeat", when, agent_id=agent, cluster=cluster,
                                 agent_status="healthy" if healthy else "unhealthy",
                                 heartbeat_interval_seconds=30.0, engine="kyverno"))
    rows.insert_events(client, beats)


def avail(objective: float = 0.999):
    document = slo_doc("avail", by=["team"], budget_policies=POLICIES)
    document["spec"]["objectives"] = [{"target": objective}]
    return spec.parse(document)


def sliced():
    document = slo_doc("sliced")
    document["spec"]["budgetingMethod"] = "Timeslices"
    document["spec"]["objectives"] = [{"target": 0.99, "timeSliceTarget": 0.9,
                                       "timeSliceWindow": "1m"}]
    return spec.parse(document)


@pytest.fixture
def slos(chdb_client, database) -> list:
    insert(chdb_client, batch(AT - timedelta(days=2), 2000, 1), batch(AT - 3 * MINUTE, 100, 1),
           batch(AT - 90 * MINUTE, 500, 0, team="identity"),
           *[batch(AT - 30 * MINUTE + k * MINUTE, 100, 50 if k == 5 else 0, team="search")
             for k in range(10)])
    heartbeats(chdb_client, AT)
    return [avail(), sliced(), spec.load_file(EXAMPLES / "agent-health.yaml")]


def evaluate(client, slos, at: datetime = AT) -> None:
    AlertEvaluator(client, slos).run(at)


def stored_rows(client) -> int:
    return int(client.command("SELECT count() FROM slo_standings"))


def test_the_stored_standing_is_what_slo_status_prints_at_that_minute(chdb_client, slos):
    evaluate(chdb_client, slos)

    live = status(chdb_client, slos, AT)
    stored = standings(chdb_client, slos, [AT])[AT]

    assert stored == live
    assert stored_rows(chdb_client) == len(live)  # one row per SLO and dimension value
    by_slo = {(r["slo"], tuple(r["dimensions"].items())): r for r in stored}
    payments = by_slo[("avail", (("team", "payments"),))]
    assert (payments["good"], payments["total"]) == (2098, 2100)
    assert [a["action"] for a in payments["budget_policy_actions"]] == ["review-ticket"]
    assert [(r["total"] - r["good"], r["total"]) for r in stored if r["slo"] == "sliced"] \
        == [(1, 43_200)]
    clusters = {r["dimensions"]["cluster"]: r for r in stored if r["slo"] == "agent-health"}
    assert set(clusters) == {"eu-1", "us-1"}
    assert clusters["eu-1"]["good"] < clusters["eu-1"]["total"]  # a2 has failed minutes
    assert clusters["us-1"]["good"] == clusters["us-1"]["total"]


def test_a_reader_takes_the_stored_standing_not_data_that_came_later(chdb_client, slos):
    evaluate(chdb_client, slos)
    before = status(chdb_client, slos, AT)
    insert(chdb_client, batch(AT - 2 * MINUTE, 400, 40, team="identity"))  # after the run
    after = status(chdb_client, slos, AT)
    assert after != before

    assert standings(chdb_client, slos, [AT])[AT] == before
    # a minute later, a run two minutes old still stands for now; three minutes later not
    later = AT + MINUTE
    assert standings(chdb_client, slos, [later], within=2 * MINUTE)[later] == before
    stale = AT + 3 * MINUTE
    assert standings(chdb_client, slos, [stale], within=2 * MINUTE)[stale] \
        == status(chdb_client, slos, stale)
    assert standings(chdb_client, slos, [later])[later] == status(chdb_client, slos, later)


def test_a_minute_evaluated_again_is_read_from_its_latest_run(chdb_client, slos):
    evaluate(chdb_client, slos)
    insert(chdb_client, batch(AT - 2 * MINUTE, 400, 40, team="identity"))
    evaluate(chdb_client, slos)

    assert standings(chdb_client, slos, [AT])[AT] == status(chdb_client, slos, AT)


def test_nothing_stored_yet_is_evaluated_as_slo_status_does(chdb_client, slos):
    assert stored_rows(chdb_client) == 0

    found = standings(chdb_client, slos, [AT, AT - timedelta(days=7)])

    assert found[AT] == status(chdb_client, slos, AT)
    week_ago = AT - timedelta(days=7)
    assert found[week_ago] == status(chdb_client, slos, week_ago)
    assert stored_rows(chdb_client) == 0  # a reader stores nothing


def test_a_changed_slo_is_not_read_from_what_its_old_definition_stored(chdb_client, slos):
    evaluate(chdb_client, slos)
    looser = [avail(objective=0.99), *slos[1:]]
    assert definition(looser[0], 0.1) != definition(slos[0], 0.1)
    assert definition(slos[0], 0.2) != definition(slos[0], 0.1)  # nor another threshold

    found = standings(chdb_client, looser, [AT])[AT]

    assert found == status(chdb_client, looser, AT)
    assert found != status(chdb_client, slos, AT)


def test_points_with_and_without_a_stored_standing_are_read_together(chdb_client, slos):
    """Some points stored (then data added), others not: the stored ones keep the run's
    numbers, the others are evaluated now, each SLO in its order."""
    earlier = AT - timedelta(hours=3)
    evaluate(chdb_client, slos[:1], earlier)  # only `avail`, three hours ago
    at_earlier = status(chdb_client, slos, earlier)
    insert(chdb_client, batch(earlier - 10 * MINUTE, 300, 30))

    found = standings(chdb_client, slos, [earlier, AT])

    assert [r["slo"] for r in found[earlier]] == [r["slo"] for r in at_earlier]
    assert [r for r in found[earlier] if r["slo"] == "avail"] \
        == [r for r in at_earlier if r["slo"] == "avail"]
    assert [r for r in found[earlier] if r["slo"] != "avail"] \
        == [r for r in status(chdb_client, slos, earlier) if r["slo"] != "avail"]
    assert found[AT] == status(chdb_client, slos, AT)


def test_a_backfilled_history_is_what_the_evaluator_would_have_stored(chdb_client, slos):
    """`backfill_standings` (a demo's or an import's history, where no evaluator ran) stores
    every SLO's standing at each point, evaluated together: the numbers `status` gives there
    (plus empty rows for dimension values only other points have)."""
    from slo.report import backfill_standings

    points = [AT - timedelta(hours=h) for h in (3, 2, 1)]
    stored = backfill_standings(chdb_client, slos, points, latency_threshold=0.1,
                                computed_at=AT)
    assert stored == stored_rows(chdb_client) > 0
    found = standings(chdb_client, slos, points, stored_only=True)

    def numbers(rows):
        return {(r["slo"], tuple(sorted(r["dimensions"].items()))): (r["good"], r["total"],
                                                                    r["budget_remaining"])
                for r in rows if r["total"]}
    for point in points:
        assert numbers(found[point]) == numbers(status(chdb_client, slos, point))
        assert numbers(found[point])  # there was data at every point


def test_the_burndown_reads_a_past_point_from_a_standing_up_to_half_a_step_older(
        chdb_client, database, tmp_path, monkeypatch):
    """The SLO page's burndown (30 points over a 30-day period: a step of a day) takes, at each
    past point, the latest standing stored up to 12 hours before it -- even when data came in
    since -- and evaluates only the points with none; at the last point (now) only a fresh
    one counts."""
    import yaml

    from dashboards.queries import slos as queries
    from metrics.windows import floor_minute
    from slo.report import backfill_standings

    now = floor_minute(datetime.now(UTC))
    (tmp_path / "avail.yaml").write_text(yaml.safe_dump(slo_doc("avail")))
    (slo,) = spec.load_dir(tmp_path)
    points = queries.burndown_points(slo, now)
    point = points[20]  # ten days ago (standings are kept 40 days)
    insert(chdb_client, batch(point - timedelta(hours=6), 100, 1))
    backfill_standings(chdb_client, [slo], [point - timedelta(hours=5)],
                       latency_threshold=0.1, computed_at=now)
    insert(chdb_client, batch(point - timedelta(hours=2), 50, 0))  # after the stored run
    asked = []
    real = queries.standings

    def spy(client, slos_, points_, **kwargs):
        asked.append((len(points_), kwargs["within"]))
        return real(client, slos_, points_, **kwargs)
    monkeypatch.setattr(queries, "standings", spy)
    frame = queries.burndown(chdb_client, str(tmp_path), "avail", {}, now, 0.1, 120)

    assert list(frame["at"]) == points
    assert asked == [(30, timedelta(hours=12)), (1, timedelta(seconds=120))]
    row = frame[frame["at"] == point].iloc[0]
    assert (row["good"], row["total"]) == (99, 100)  # the stored standing, not 149 of 150
    later = frame[frame["at"] == points[21]].iloc[0]
    assert (later["good"], later["total"]) == (149, 150)  # none stored: evaluated
