"""The On-call page's agents (`dashboards.queries.oncall.agents`) against their definition
counted plainly over the raw heartbeats: every agent with a heartbeat in [start, end) that the
filters select, with the report of its latest such heartbeat. The read takes the range's whole
days from `agent_heartbeats_1d` (migration 0021) and its partial days raw, so the ranges here
start and end inside days, span whole days, and lie inside one day; heartbeats are stored in
several inserts (rows of one day and agent the engine has not merged) and some twice."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from dashboards.queries import oncall
from tests.builders.rows import ev, insert_events

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
AGENTS = [f"agent-{k}" for k in range(6)]


def heartbeats(rng: random.Random) -> list[dict]:
    made = []
    for agent in AGENTS:
        team = rng.choice(("payments", "identity"))
        for n, second in enumerate(sorted(rng.sample(range(4 * 86400), 40))):
            made.append(ev(
                "agent.heartbeat", T0 + timedelta(seconds=second, milliseconds=n),
                event_id=f"{agent}-{n}", agent_id=agent, engine=rng.choice(("falco", "kyverno")),
                agent_status=rng.choice(("healthy", "degraded", "")),
                heartbeat_interval_seconds=rng.choice((None, 30.0, 60.0)),
                team=team if rng.random() < 0.8 else "search",  # some beats of another team
                environment=rng.choice(("production", "staging")), cluster="c1"))
    return made


def plainly(beats: list[dict], start, end, where: dict[str, str]) -> dict[str, tuple]:
    found: dict[str, dict] = {}
    for b in beats:
        if start <= b["event_time"] < end and all(b[k] == v for k, v in where.items()):
            if b["agent_id"] not in found or b["event_time"] > found[b["agent_id"]]["event_time"]:
                found[b["agent_id"]] = b
    return {a: (b["engine"], b["team"], b["environment"], b["cluster"], b["agent_status"],
                b["heartbeat_interval_seconds"], b["event_time"]) for a, b in found.items()}


@pytest.mark.parametrize("seed", [1, 2])
def test_agents_are_the_latest_heartbeat_of_each_agent_counted_plainly(chdb_client, database,
                                                                      seed):
    rng = random.Random(seed)
    beats = heartbeats(rng)
    rng.shuffle(beats)
    for k in range(0, len(beats), 60):
        insert_events(chdb_client, beats[k:k + 60])
    insert_events(chdb_client, rng.sample(beats, 30))  # stored twice
    hour = timedelta(hours=1)
    ranges = [(T0, T0 + 4 * timedelta(days=1)), (T0 + 5 * hour, T0 + 3 * timedelta(days=1)
                                                  + 7 * hour),
              (T0 + 26 * hour, T0 + 30 * hour), (T0 + 2 * hour, T0 + 2 * timedelta(days=1))]
    for start, end in ranges:
        for where in ({}, {"team": "payments"}, {"environment": "staging", "team": "search"}):
            rows, _ = oncall.agents(chdb_client, start, end, where)
            got = {r["agent_id"]: (r["engine"], r["team"], r["environment"], r["cluster"],
                                   r["status"], None if r["interval_s"] != r["interval_s"]
                                   else r["interval_s"], r["last_heartbeat"].to_pydatetime())
                   for r in rows.to_dict("records")}
            assert got == plainly(beats, start, end, where), (start, end, where)
    assert plainly(beats, *ranges[1], {})  # the ranges hold agents


def test_migration_0021_fills_the_rollup_from_stored_heartbeats(chdb_client, database):
    from schemas import migrations

    beat = ev("agent.heartbeat", T0 + timedelta(hours=3), event_id="h1", agent_id="old",
              engine="falco", agent_status="healthy", team="payments")
    insert_events(chdb_client, [beat])
    chdb_client.command(f"DROP VIEW {database}.agent_heartbeats_1d_mv")
    chdb_client.command(f"DROP TABLE {database}.agent_heartbeats_1d")
    (fill,) = [m for m in migrations.available() if m.version == 21]
    for _ in range(2):  # a crash before it is recorded runs it again: filled once
        for statement in fill.statements(database):
            chdb_client.command(statement)
    insert_events(chdb_client, [{**beat, "event_id": "h2", "agent_id": "new"}])
    rows, _ = oncall.agents(chdb_client, T0, T0 + timedelta(days=2), {})
    assert sorted(rows["agent_id"]) == ["new", "old"]
    assert chdb_client.query(f"SELECT count() FROM {database}.agent_heartbeats_1d "
                             "WHERE agent_id = 'old'").result_rows[0][0] == 1
