"""Violation subjects of the triage queue, read from `triage_violations` (migration 0020: each
violation's state kept at insert time), against the definition counted plainly over the raw
violation events: a violation is a subject of [start, end) when its first 'opened' event lies
in the range and its latest event is 'opened' or 'updated'; its time and fields are that first
opening's, whatever range is asked for. Random histories (re-openings, openings with other
fields, events before and after the range, violations never opened, duplicates) are stored in
several inserts with merges stopped, so the table holds rows of one violation that the read
has to merge."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

import triage
from schemas.events import VIOLATION_STATUSES
from tests.builders.rows import insert_events
from tests.builders.triage import END, NOW, START, T, violation
from triage import Filters, Fingerprint
from triage import store as triage_store

pytestmark = pytest.mark.integration

FINGERPRINTS = [Fingerprint(f"policy-{p}", "rule", "Pod", f"pod-{r}", "why")
                for p in "ab" for r in range(3)]
TEAMS = ("payments", "identity")
SHOWN = ("subject_id", "subject_time", "policy_id", "resource_name", "team", "severity")


def histories(rng: random.Random, count: int) -> dict[str, list[dict]]:
    """`count` violations, each 1-5 events at distinct times from 2 h before the range to
    1 h after it."""
    span = int((END - START).total_seconds()) + 3 * 3600
    made = {}
    for k in range(count):
        times = sorted(rng.sample(range(span), rng.randint(1, 5)))
        made[f"v{k}"] = [violation(
            f"v{k}", rng.choice(VIOLATION_STATUSES),
            START - timedelta(hours=2) + timedelta(seconds=s, milliseconds=rng.randrange(1000)),
            rng.choice(FINGERPRINTS), team=rng.choice(TEAMS),
            severity=rng.choice(("low", "high")), event_id=f"v{k}-{n}")
            for n, s in enumerate(times)]
    return made


def plainly(made: dict[str, list[dict]], start, end) -> dict[str, dict]:
    """The subjects of [start, end) by the definition, by id: their shown fields."""
    found = {}
    for vid, events in made.items():
        opened = [e for e in events if e["violation_status"] == "opened"]
        if not opened:
            continue
        first = min(opened, key=lambda e: e["event_time"])
        latest = max(events, key=lambda e: e["event_time"])
        if start <= first["event_time"] < end and latest["violation_status"] in (
                "opened", "updated"):
            found[vid] = {"subject_id": vid, "subject_time": first["event_time"],
                          "policy_id": first["policy_id"],
                          "resource_name": first["resource_name"], "team": first["team"],
                          "severity": first["severity"], "fingerprint": Fingerprint(
                              first["policy_id"], first["rule"], first["resource_kind"],
                              first["resource_name"], first["reason"])}
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_violation_subjects_are_the_definition_counted_plainly(chdb_client, database, seed):
    rng = random.Random(seed)
    made = histories(rng, 120)
    # opened before the range, then again in it (another insert, another row): a subject of
    # the range its first opening lies in only
    made["again"] = [violation("again", "opened", START - timedelta(minutes=5),
                               event_id="again-0", team="payments", severity="low"),
                     violation("again", "opened", START + timedelta(minutes=5),
                               event_id="again-1", team="identity", severity="high")]
    events = [e for evs in made.values() for e in evs]
    rng.shuffle(events)
    third = len(events) // 3
    chdb_client.command("SYSTEM STOP MERGES triage_violations")  # rows stay as inserted
    for batch in ([made["again"][0]], [made["again"][1]], events[:third],
                  events[third:2 * third], events[2 * third:],
                  rng.sample(events, 20)):  # the last: duplicates
        insert_events(chdb_client, batch)
    rows = chdb_client.query("SELECT count() FROM triage_violations").result_rows[0][0]
    assert rows > len(made)  # unmerged rows of one violation, merged by the reads
    for start, end in ((START, END), (T("11-02 11:00"), END), (START - timedelta(hours=3),
                                                                 END + timedelta(hours=2))):
        want = plainly(made, start, end)
        assert want  # the histories give subjects in each range
        got = triage_store.subjects(chdb_client, start, end, Filters(kind="violation"), NOW,
                                    include_current=True, limit=500)
        assert {r["subject_id"]: {k: r[k] for k in SHOWN}
                for r in got.iter_rows(named=True)} == {
            vid: {k: s[k] for k in SHOWN} for vid, s in want.items()}
        assert triage.queue_totals(chdb_client, start, end, Filters(kind="violation"),
                                   now=NOW) == (len({s["fingerprint"] for s in want.values()}),
                                                len(want))
        team = {vid: s for vid, s in want.items() if s["team"] == "payments"}
        assert triage.queue_totals(chdb_client, start, end,
                                   Filters(kind="violation", team="payments"), now=NOW) == (
            len({s["fingerprint"] for s in team.values()}), len(team))
        groups = triage.queue_groups(chdb_client, start, end, Filters(kind="violation"),
                                     limit=500, now=NOW)
        assert {g.fingerprint: g.violations for g in groups} == {
            fp: sum(s["fingerprint"] == fp for s in want.values())
            for fp in {s["fingerprint"] for s in want.values()}}
        one = next(iter(want.values()))["fingerprint"]
        listed = triage.group_subjects(chdb_client, one, start, end,
                                       Filters(kind="violation"), limit=500, now=NOW)
        assert {s.ref.id for s in listed} == {
            vid for vid, s in want.items() if s["fingerprint"] == one}


def test_migration_0020_fills_the_table_from_stored_violations(chdb_client, database):
    """Created over a store that already holds violation events (0020 on an upgrade), the
    table is filled from them once; its view keeps it after."""
    from schemas import migrations

    insert_events(chdb_client, [violation("old", "opened", T("11-02 10:00")),
                                violation("old", "updated", T("11-02 10:30"))])
    chdb_client.command(f"DROP VIEW {database}.triage_violations_mv")
    chdb_client.command(f"DROP TABLE {database}.triage_violations")
    insert_events(chdb_client, [violation("gap", "opened", T("11-02 10:40"))])
    (fill,) = [m for m in migrations.available() if m.version == 20]
    for _ in range(2):  # a crash before it is recorded runs it again: filled once
        for statement in fill.statements(database):
            chdb_client.command(statement)
    insert_events(chdb_client, [violation("new", "opened", T("11-02 11:00")),
                                violation("old", "remediated", T("11-02 11:10"))])
    got = triage_store.subjects(chdb_client, START, END, Filters(kind="violation"), NOW,
                                include_current=True, limit=10)
    assert sorted(got.get_column("subject_id").to_list()) == ["gap", "new"]
    rows = chdb_client.query(f"SELECT count() FROM {database}.triage_violations "
                             "WHERE violation_id = 'gap'").result_rows[0][0]
    assert rows == 1
