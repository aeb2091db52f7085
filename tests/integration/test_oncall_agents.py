"""The On-call page's agents (`dashboards.queries.oncall.agents`) against their definition
counted plainly over the raw heartbeats: every agent with a heartbeat in [start, end) that the
filters select, with the report of its latest such heartbeat. A range ending after every
selected heartbeat (the page's: they end now) is read from each agent's latest heartbeat
(`agent_heartbeats_latest`, migration 0024); any other from the range's whole days in
`agent_heartbeats_1d` (migration 0021) and its partial days raw, so the ranges here start and
end inside days, span whole days, lie inside one day, and end after the last heartbeat;
heartbeats are stored in several inserts (rows the engine has not merged) and some twice."""

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
              (T0 + 26 * hour, T0 + 30 * hour), (T0 + 2 * hour, T0 + 2 * timedelta(days=1)),
              (T0 + 50 * hour, T0 + 5 * timedelta(days=1)),  # after every heartbeat
              (T0 + 100 * hour, T0 + 5 * timedelta(days=1))]
    for start, end in ranges:
        for where in ({}, {"team": "payments"}, {"environment": "staging", "team": "search"}):
            rows, _ = oncall.agents(chdb_client, start, end, where)
            got = {r["agent_id"]: (r["engine"], r["team"], r["environment"], r["cluster"],
                                   r["status"], None if r["interval_s"] != r["interval_s"]
                                   else r["interval_s"], r["last_heartbeat"].to_pydatetime())
                   for r in rows.to_dict("records")}
            assert got == plainly(beats, start, end, where), (start, end, where)
    assert plainly(beats, *ranges[1], {})  # the ranges hold agents
    assert plainly(beats, *ranges[5], {}) == {}  # every latest heartbeat before the range


def test_a_range_ending_after_every_heartbeat_is_read_from_the_latest_ones(
        chdb_client, database, monkeypatch):
    """The page's ranges end now: the agents' latest heartbeats answer, and the history is
    not read; a heartbeat at or after the range's end (a clock ahead) sends the read to the
    history, which leaves it out."""
    rng = random.Random(3)
    beats = heartbeats(rng)
    insert_events(chdb_client, beats)
    start, end = T0 + 30 * timedelta(hours=1), T0 + 5 * timedelta(days=1)
    history = oncall._reported_in
    read_history = []

    def spy(*args):
        read_history.append(args)
        return history(*args)

    monkeypatch.setattr(oncall, "_reported_in", spy)
    for where in ({}, {"team": "payments"}, {"cluster": "c1", "environment": "production"}):
        rows, _ = oncall.agents(chdb_client, start, end, where)
        assert set(rows["agent_id"]) == set(plainly(beats, start, end, where)), where
    assert read_history == []
    assert oncall.agents(chdb_client, start, end, {"service": "x"})[0].empty  # another filter
    assert len(read_history) == 1
    ahead = {**beats[0], "event_id": "ahead", "event_time": end + timedelta(minutes=5)}
    insert_events(chdb_client, [ahead])
    rows, _ = oncall.agents(chdb_client, start, end, {})
    assert len(read_history) == 2
    got = {r["agent_id"]: r["last_heartbeat"].to_pydatetime() for r in rows.to_dict("records")}
    assert got == {a: r[-1] for a, r in plainly(beats, start, end, {}).items()}


@pytest.mark.parametrize("version, table", [(21, "agent_heartbeats_1d"),
                                            (24, "agent_heartbeats_latest")])
def test_the_migration_fills_its_rollup_from_stored_heartbeats(chdb_client, database, version,
                                                                table):
    from schemas import migrations

    beat = ev("agent.heartbeat", T0 + timedelta(hours=3), event_id="h1", agent_id="old",
              engine="falco", agent_status="healthy", team="payments")
    insert_events(chdb_client, [beat])
    chdb_client.command(f"DROP VIEW {database}.{table}_mv")
    chdb_client.command(f"DROP TABLE {database}.{table}")
    (fill,) = [m for m in migrations.available() if m.version == version]
    for _ in range(2):  # a crash before it is recorded runs it again: filled once
        for statement in fill.statements(database):
            chdb_client.command(statement)
    insert_events(chdb_client, [{**beat, "event_id": "h2", "agent_id": "new"}])
    for end in (T0 + timedelta(days=2), T0 + timedelta(hours=5)):  # latest and daily reads
        rows, _ = oncall.agents(chdb_client, T0, end, {})
        assert sorted(rows["agent_id"]) == ["new", "old"]
    assert chdb_client.query(f"SELECT count() FROM {database}.{table} "
                             "WHERE agent_id = 'old'").result_rows[0][0] == 1
