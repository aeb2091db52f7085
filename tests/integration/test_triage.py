"""The triage workflow over chDB: the queue groups subjects by fingerprint, verdicts are appended
to the history (never updated or deleted), the latest entry counts, undo restores, an expired
benign verdict returns its subject to the queue, bulk labels by filter, sticky rules propagate
to later subjects (idempotently, never over a hand label), roles are enforced before any
write, and the FP rate and exception proposals come from the current verdicts. Subjects:
tests/builders/triage.py."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import timedelta

import pytest

import triage
from metrics import sources
from tests.builders.triage import API, END, LATEST, NOW, START, WEB, T, deny, seed, violation
from tests.builders.rows import insert_decisions, insert_events
from triage import Actor, Filters, SubjectRef, TriagePermissionError, Verdict

pytestmark = pytest.mark.integration

ANA = Actor("ana", "analyst")
SAM = Actor("sam", "sre")
FP = Verdict("false_positive", "the istio sidecar runs as root by design")
TP = Verdict("true_positive", "really runs as root")
SECOND = timedelta(seconds=1)


@pytest.fixture
def store(chdb_client, database):
    seed(chdb_client)
    return chdb_client


def page(client, filters=Filters(), at=NOW, **kw):
    return triage.queue(client, START, END, filters, now=at, **kw)


def summary(result) -> list[tuple]:
    return [(g.fingerprint.resource_name, g.subjects, g.decisions, g.violations)
            for g in result.groups]


def current(client, kind, uid, at=NOW) -> tuple:
    (found,) = triage.find_subjects(client, [SubjectRef(kind, uid)], START, END, now=at)
    return found.verdict, found.current, found.source


def history_rows(client) -> set[tuple]:
    return set(client.query("SELECT * FROM triage_history").result_rows)


# -- the queue ----------------------------------------------------------------------------------

def test_the_queue_groups_subjects_by_fingerprint_newest_group_first(store):
    result = page(store)
    assert (result.total_groups, result.total_subjects) == (3, 7)
    assert summary(result) == [("job", 1, 1, 0), ("web", 1, 1, 0), ("api", 5, 4, 1)]
    api = result.groups[2]
    assert api.fingerprint == API and api.id == API.id and api.reason == API.reason
    assert (api.newest, api.oldest) == (T("11-02 10:04"), T("11-02 10:00"))
    assert api.severity == "critical"  # the open violation's; allows and errors are no subjects
    assert api.namespaces == ("shop", "shop-canary") and api.teams == ("payments",)
    assert api.engines == ("kyverno",) and api.expired == 0


def test_the_queue_pages_and_counts_every_group(store):
    first, second = page(store, limit=2), page(store, limit=2, offset=2)
    assert summary(first) == [("job", 1, 1, 0), ("web", 1, 1, 0)]
    assert summary(second) == [("api", 5, 4, 1)]
    beyond = page(store, limit=2, offset=10)
    assert (beyond.groups, beyond.total_groups, beyond.total_subjects) == ((), 3, 7)


@pytest.mark.parametrize("filters,expected", [
    pytest.param(Filters(team="identity"), [("web", 1, 1, 0)], id="by team"),
    pytest.param(Filters(environment="staging"), [("web", 1, 1, 0)], id="by environment"),
    pytest.param(Filters(cluster="us-1"), [("job", 1, 1, 0)], id="by cluster"),
    pytest.param(Filters(policy="k8s.disallow-latest-tag"), [("job", 1, 1, 0)], id="by policy"),
    pytest.param(Filters(kind="violation"), [("api", 1, 0, 1)], id="open violations only"),
    pytest.param(Filters(team="payments", policy="k8s.require-non-root"),
                 [("api", 5, 4, 1)], id="filters combine"),
    pytest.param(Filters(team="nobody"), [], id="a filter nothing matches: an empty queue"),
])
def test_the_queue_filters(store, filters, expected):
    assert summary(page(store, filters)) == expected


def test_a_group_lists_its_subjects_newest_first(store):
    subjects = triage.group_subjects(store, API, START, END, now=NOW)
    assert [(s.ref.kind, s.ref.id) for s in subjects] == [
        ("violation", "v1"), ("decision", "w1"), ("decision", "d3"), ("decision", "d2"),
        ("decision", "d1")]
    assert subjects[0].severity == "critical" and subjects[0].namespace == "shop"
    assert all(s.verdict == "" and not s.current for s in subjects)


def test_the_queue_page_carries_each_groups_newest_subjects_as_the_group_lists_them(store):
    later = NOW + timedelta(days=1)
    triage.label(store, ANA, [SubjectRef("decision", "d2")], TP, start=START, end=END, now=NOW)
    triage.label(store, ANA, [SubjectRef("decision", "d3")],
                 Verdict("benign", "accepted", expires_at=NOW + SECOND), start=START, end=END,
                 now=NOW)  # expired by `later`: back in the queue, shown with its verdict
    for shown in (1, 2, 50):
        for group in page(store, at=later, subjects=shown).groups:
            listed = triage.group_subjects(store, group.fingerprint, START, END, now=later,
                                           limit=shown)
            assert group.newest_subjects == tuple(listed)
    (api,) = [g for g in page(store, at=later, subjects=50).groups if g.fingerprint == API]
    assert [s.ref.id for s in api.newest_subjects] == ["v1", "w1", "d3", "d1"]
    assert api.newest_subjects[2].verdict == "benign" and not api.newest_subjects[2].current
    assert page(store).groups[0].newest_subjects == ()  # only when asked for


def test_the_queue_page_is_the_newest_groups_of_the_whole_range(chdb_client, database):
    """Pages of a queue whose newest groups lie in different tails of the range (the queue
    looks for them in the range's last 1/32nd first, then in longer tails) against the plain
    definition: every group's newest subject, newest group first."""
    import random

    rng, span_ms = random.Random(7), int((END - START).total_seconds() * 1000)
    prints = [replace(API, resource_name=f"pod-{i}") for i in range(60)]
    rows, newest, taken = [], {}, set()
    for i in range(400):  # many subjects near the end, a few spread over the range
        before_end = 0
        while before_end == 0 or before_end in taken:  # distinct ms: no ties between groups
            before_end = 1 + int((span_ms - 1) * rng.random() ** 6)
        taken.add(before_end)
        when = END - timedelta(milliseconds=before_end)
        print_ = prints[rng.randrange(len(prints) if i % 3 else 8)]
        rows.append(deny(f"s{i}", when, print_))
        newest[print_] = max(newest.get(print_, START), when)
    insert_decisions(chdb_client, rows)
    expected = sorted(newest, key=lambda f: newest[f], reverse=True)
    for limit, offset in ((5, 0), (5, 5), (25, 0), (7, 30), (10, 55), (3, 100)):
        groups = triage.queue_groups(chdb_client, START, END, limit=limit, offset=offset,
                                     now=NOW)
        assert [g.fingerprint for g in groups] == expected[offset:offset + limit]
        assert [g.newest for g in groups] == [newest[f] for f in expected[offset:][:limit]]
    assert triage.queue_totals(chdb_client, START, END, now=NOW) == (len(newest), 400)


def test_the_number_of_groups_is_exact_up_to_its_limit_and_an_estimate_beyond(
        chdb_client, database):
    """`queue_totals` counts subjects exactly and groups exactly up to `EXACT_GROUPS`; past
    it, the number of groups is an estimate within 1 % that the page marks as such."""
    from triage.model import EXACT_GROUPS, QueuePage

    step = (END - START) / 50_000
    rows = [deny(f"g{i}", START + i * step, replace(API, resource_name=f"pod-{i}"))
            for i in range(EXACT_GROUPS - 1)]
    rows += [deny(f"h{i}", START + i * step, API) for i in range(3)]  # one group of three
    insert_decisions(chdb_client, rows)
    assert triage.queue_totals(chdb_client, START, END, now=NOW) == (
        EXACT_GROUPS, EXACT_GROUPS + 2)

    more = 8_000
    insert_decisions(chdb_client, [
        deny(f"k{i}", START + (EXACT_GROUPS + i) * step, replace(API, resource_name=f"job-{i}"))
        for i in range(more)])
    groups, subjects = triage.queue_totals(chdb_client, START, END, now=NOW)
    assert subjects == EXACT_GROUPS + 2 + more
    assert abs(groups - (EXACT_GROUPS + more)) <= 0.01 * (EXACT_GROUPS + more)
    assert QueuePage((), groups, subjects, 0, 50).groups_estimated
    assert not QueuePage((), EXACT_GROUPS, subjects, 0, 50).groups_estimated


def test_a_selection_of_no_subject_kind_reads_nothing(store):
    from triage import store as triage_store

    none = triage_store.subjects(store, START, END, Filters(kind="violation"), NOW,
                                 ids={"decision": ["d1"], "violation": []}, limit=5)
    assert none.height == 0 and "subject_id" in none.columns
    found = triage_store.subjects(store, START, END, Filters(), NOW,
                                  ids={"decision": ["d1"], "violation": ["v1"]}, limit=5)
    assert sorted(found.get_column("subject_id")) == ["d1", "v1"]  # d1's duplicate once


# -- verdicts -----------------------------------------------------------------------------------

def test_labelling_a_group_takes_it_out_of_the_queue_and_feeds_m4s_table(store):
    result = triage.label_group(store, ANA, API, FP, start=START, end=END, now=NOW)
    assert result.labelled == 5 and result.rule_id is None
    assert summary(page(store)) == [("job", 1, 1, 0), ("web", 1, 1, 0)]
    entries = triage.history(store, action_id=result.action_id)
    assert {(e.subject.kind, e.subject.id) for e in entries} == {
        ("decision", "d1"), ("decision", "d2"), ("decision", "d3"), ("decision", "w1"),
        ("violation", "v1")}
    assert all((e.previous_verdict, e.verdict, e.analyst, e.source, e.reason) == (
        "", "false_positive", "ana", "hand", FP.reason) for e in entries)
    assert all(e.fingerprint == API and e.triaged_at == NOW for e in entries)
    m4 = sources.triage_verdicts(store, START, END).sort("event_time")
    assert m4.get_column("verdict").to_list() == ["false_positive"] * 5
    assert m4.get_column("subject_kind").to_list() == ["decision"] * 4 + ["violation"]
    assert set(m4.get_column("source")) == {"hand"}


def test_every_verdict_carries_its_decisions_version_mode_outcome_and_resource(store):
    """By hand, by undo and by a sticky rule: what the Policy tuning page counts verdicts by
    (`triage_verdicts` alone); a violation has no version, mode or outcome."""
    from tests.builders.dashboards import insert_decisions as insert_versioned

    insert_versioned(store, [
        deny("d7", T("11-02 11:30"), WEB, outcome="warn", policy_version="v7",
             enforcement="audit"),
        deny("d8", T("11-02 11:31"), WEB, policy_version="v8", enforcement="dryrun")])

    def stored(uid):
        return store.query(
            "SELECT verdict, policy_version, enforcement, outcome, resource_kind, "
            "resource_name FROM triage_verdicts FINAL WHERE subject_id = {id:String}",
            parameters={"id": uid}).result_rows[0]

    labelled = triage.label(store, ANA, [SubjectRef("decision", "d7"),
                                         SubjectRef("violation", "v1")], TP,
                            start=START, end=END, now=NOW)
    assert stored("d7") == ("true_positive", "v7", "audit", "warn", "Pod", "web")
    assert stored("v1") == ("true_positive", "", "", "", "Pod", "api")
    relabelled = triage.label(store, ANA, [SubjectRef("decision", "d7")], FP, start=START,
                              end=END, now=NOW + SECOND)
    triage.undo(store, ANA, relabelled.action_id, now=NOW + 2 * SECOND)
    assert stored("d7") == ("true_positive", "v7", "audit", "warn", "Pod", "web")
    triage.undo(store, ANA, labelled.action_id, now=NOW + 3 * SECOND)  # d7's since undone
    assert stored("v1") == ("", "", "", "", "Pod", "api")
    triage.make_sticky(store, ANA, WEB, FP, now=NOW + 3 * SECOND)
    assert triage.apply_rules(store, START, END, now=NOW + 4 * SECOND).labelled == 2  # d4, d8
    assert stored("d8") == ("false_positive", "v8", "dryrun", "deny", "Pod", "web")


def test_the_latest_verdict_wins_and_undo_restores_the_one_before(store):
    d1 = [SubjectRef("decision", "d1")]
    first = triage.label(store, ANA, d1, TP, start=START, end=END, now=NOW)
    second = triage.label(store, SAM, d1, FP, start=START, end=END, now=NOW)  # same millisecond
    assert current(store, "decision", "d1") == ("false_positive", True, "hand")
    entries = triage.history(store, subject=d1[0])
    assert [(e.previous_verdict, e.verdict, e.analyst) for e in entries] == [
        ("true_positive", "false_positive", "sam"), ("", "true_positive", "ana")]
    assert entries[0].triaged_at == entries[1].triaged_at + timedelta(milliseconds=1)

    undone = triage.undo(store, ANA, second.action_id, now=NOW + SECOND)
    assert (undone.labelled, undone.skipped) == (1, 0)
    assert current(store, "decision", "d1") == ("true_positive", True, "hand")
    latest = triage.history(store, subject=d1[0])[0]
    assert (latest.previous_verdict, latest.verdict, latest.reason, latest.undoes,
            latest.analyst) == ("false_positive", "true_positive", TP.reason,
                                second.action_id, "ana")

    redone = triage.undo(store, SAM, undone.action_id, now=NOW + 2 * SECOND)
    assert redone.labelled == 1
    assert current(store, "decision", "d1") == ("false_positive", True, "hand")
    stale = triage.undo(store, ANA, first.action_id, now=NOW + 3 * SECOND)
    assert (stale.labelled, stale.skipped) == (0, 1)  # d1 was labelled again since
    assert len(triage.history(store, subject=d1[0])) == 4


def test_undoing_a_first_label_puts_the_subject_back_in_the_queue(store):
    result = triage.label_group(store, ANA, WEB, TP, start=START, end=END, now=NOW)
    assert "web" not in [g.fingerprint.resource_name for g in page(store).groups]
    triage.undo(store, ANA, result.action_id, now=NOW + SECOND)
    assert summary(page(store, at=NOW + SECOND))[1] == ("web", 1, 1, 0)
    assert current(store, "decision", "d4", NOW + SECOND) == ("", False, "hand")
    assert sources.triage_verdicts(store, START, END).height == 0  # M4 no longer counts it


def test_an_expired_benign_verdict_returns_the_subject_to_the_queue(store):
    until = NOW + timedelta(hours=1)
    triage.label_group(store, ANA, WEB, Verdict("benign", "accepted risk", until),
                       start=START, end=END, now=NOW)
    assert "web" not in [g.fingerprint.resource_name for g in page(store).groups]
    assert current(store, "decision", "d4", until - SECOND) == ("benign", True, "hand")
    later = page(store, at=until)
    web = [g for g in later.groups if g.fingerprint == WEB]
    assert len(web) == 1 and (web[0].subjects, web[0].expired) == (1, 1)
    assert current(store, "decision", "d4", until) == ("benign", False, "hand")
    assert sources.triage_verdicts(store, START, END, as_of=until - SECOND).height == 1
    assert sources.triage_verdicts(store, START, END, as_of=until).height == 0


def test_a_benign_expiry_must_lie_ahead(store):
    with pytest.raises(ValueError, match="not after now"):
        triage.label_group(store, ANA, WEB, Verdict("benign", "", NOW), start=START, end=END,
                           now=NOW)
    assert history_rows(store) == set()


def test_bulk_labelling_by_filter_labels_the_queue_it_selects(store):
    triage.label(store, ANA, [SubjectRef("decision", "d2")], TP, start=START, end=END, now=NOW)
    result = triage.label_matching(store, SAM, FP, start=START, end=END,
                                   filters=Filters(team="payments"), now=NOW + SECOND)
    assert result.labelled == 5  # d1, d3, w1, v1 of API and d5; d2 already has a verdict
    assert current(store, "decision", "d2") == ("true_positive", True, "hand")
    assert summary(page(store, at=NOW + SECOND)) == [("web", 1, 1, 0)]
    again = triage.label_matching(store, SAM, TP, start=START, end=END,
                                  filters=Filters(team="payments"), relabel=True,
                                  now=NOW + 2 * SECOND)
    assert again.labelled == 6
    assert current(store, "decision", "d2") == ("true_positive", True, "hand")
    assert current(store, "violation", "v1") == ("true_positive", True, "hand")


def test_labelling_a_subject_that_is_not_there_writes_nothing(store):
    with pytest.raises(LookupError, match="decision:nope"):
        triage.label(store, ANA, [SubjectRef("decision", "d1"), SubjectRef("decision", "nope")],
                     TP, start=START, end=END, now=NOW)
    with pytest.raises(LookupError, match="decision:d6"):  # at the range's end: outside
        triage.label(store, ANA, [SubjectRef("decision", "d6")], TP, start=START, end=END,
                     now=NOW)
    assert history_rows(store) == set()


@pytest.mark.parametrize("role", ["viewer", "exec", "oncall"])
def test_roles_without_labelling_rights_are_refused_before_any_write(store, role):
    bob = Actor("bob", role)
    done = triage.label_group(store, ANA, WEB, TP, start=START, end=END, now=NOW)
    rule = triage.make_sticky(store, ANA, API, FP, now=NOW)
    before = history_rows(store)
    attempts = [
        lambda: triage.label(store, bob, [SubjectRef("decision", "d1")], FP, start=START,
                             end=END, now=NOW),
        lambda: triage.label_group(store, bob, API, FP, start=START, end=END, now=NOW),
        lambda: triage.label_matching(store, bob, FP, start=START, end=END, now=NOW),
        lambda: triage.undo(store, bob, done.action_id, now=NOW),
        lambda: triage.make_sticky(store, bob, LATEST, FP, now=NOW),
        lambda: triage.disable_rule(store, bob, rule.rule_id, now=NOW),
    ]
    for attempt in attempts:
        with pytest.raises(TriagePermissionError, match=f"'bob' with role '{role}'"):
            attempt()
    assert history_rows(store) == before
    assert [r.rule_id for r in triage.rules(store)] == [rule.rule_id]


class Recording:
    """A client that records the SQL of every call it passes on."""

    def __init__(self, client):
        self.client, self.sql = client, []

    def _call(self, name):
        def call(sql, *args, **kwargs):
            self.sql.append(sql if name != "insert" else f"INSERT INTO {sql}")
            return getattr(self.client, name)(sql, *args, **kwargs)
        return call

    def __getattr__(self, name):
        if name in ("query", "query_arrow", "command", "insert"):
            return self._call(name)
        return getattr(self.client, name)


def test_the_history_is_append_only(store):
    spy = Recording(store)
    snapshots = []
    first = triage.label_group(spy, ANA, API, FP, start=START, end=END, sticky_rule=True,
                               now=NOW)
    snapshots.append(history_rows(store))
    triage.label(spy, SAM, [SubjectRef("decision", "d1")], TP, start=START, end=END, now=NOW)
    snapshots.append(history_rows(store))
    triage.undo(spy, ANA, first.action_id, now=NOW + SECOND)
    snapshots.append(history_rows(store))
    insert_decisions(store, [deny("d7", T("11-02 11:30"))])
    triage.apply_rules(spy, START, END, now=NOW + 2 * SECOND)
    triage.disable_rule(spy, ANA, first.rule_id, now=NOW + 3 * SECOND)
    snapshots.append(history_rows(store))
    assert [len(s) for s in snapshots] == [5, 6, 10, 11]
    assert all(a < b for a, b in zip(snapshots, snapshots[1:]))  # every row stays, unchanged
    mutations = [s for s in spy.sql if re.search(r"\b(UPDATE|DELETE|ALTER|TRUNCATE|DROP)\b",
                                                 s, re.I)]
    assert mutations == [] and any(s.startswith("INSERT INTO triage_history") for s in spy.sql)


# -- sticky rules -------------------------------------------------------------------------------

def test_a_sticky_verdict_propagates_to_later_matching_subjects_once(store):
    made = triage.label_group(store, ANA, API, FP, start=START, end=END, sticky_rule=True,
                              now=NOW)
    (rule,) = triage.rules(store)
    assert (rule.rule_id, rule.fingerprint, rule.verdict, rule.created_by) == (
        made.rule_id, API, FP, "ana")
    insert_decisions(store, [deny("d7", T("11-02 11:30")),
                             deny("d8", T("11-02 11:31"), WEB)])   # another fingerprint
    insert_events(store, [violation("v9", "opened", T("11-02 11:32"))])
    applied = triage.apply_rules(store, START, END, now=NOW + SECOND)
    assert applied.labelled == 2
    entries = triage.history(store, action_id=applied.action_id)
    assert {(e.subject.id, e.verdict, e.source, e.rule_id, e.analyst, e.reason) for e in entries
            } == {(s, "false_positive", "rule", rule.rule_id, "ana", FP.reason)
                  for s in ("d7", "v9")}
    assert current(store, "decision", "d7", NOW + SECOND) == ("false_positive", True, "rule")
    assert summary(page(store, at=NOW + SECOND)) == [("web", 2, 2, 0), ("job", 1, 1, 0)]
    assert triage.apply_rules(store, START, END, now=NOW + 2 * SECOND).labelled == 0
    assert len(history_rows(store)) == 7  # idempotent: nothing written the second time
    (counted,) = triage.rules(store)
    assert counted.applied == 2
    propagated = triage.current_verdicts(store, START, END, source="rule", now=NOW + SECOND)
    assert sorted((v["subject_id"], v["rule_id"], v["analyst"]) for v in propagated) == [
        ("d7", rule.rule_id, "ana"), ("v9", rule.rule_id, "ana")]


def test_a_rule_never_overrides_history_and_stops_when_disabled(store):
    triage.make_sticky(store, ANA, API, FP, now=NOW)
    hand = triage.label(store, SAM, [SubjectRef("decision", "d1")], TP, start=START, end=END,
                        now=NOW)
    triage.undo(store, SAM, triage.label(store, SAM, [SubjectRef("decision", "d2")], TP,
                                         start=START, end=END, now=NOW).action_id, now=NOW)
    applied = triage.apply_rules(store, START, END, now=NOW + SECOND)
    assert applied.labelled == 3  # d3, w1, v1: d1 is labelled by hand, d2 has history
    assert current(store, "decision", "d1", NOW + SECOND) == ("true_positive", True, "hand")
    assert current(store, "decision", "d2", NOW + SECOND) == ("", False, "hand")
    assert hand.labelled == 1
    (rule,) = triage.rules(store)
    disabled = triage.disable_rule(store, ANA, rule.rule_id, now=NOW + SECOND)
    assert disabled.state == "disabled" and triage.rules(store) == []
    assert [r.state for r in triage.rules(store, include_disabled=True)] == ["disabled"]
    insert_decisions(store, [deny("d7", T("11-02 11:30"))])
    assert triage.apply_rules(store, START, END, now=NOW + 2 * SECOND).labelled == 0
    with pytest.raises(LookupError, match="no sticky rule 'nope'"):
        triage.disable_rule(store, ANA, "nope")


def test_a_new_rule_for_a_fingerprint_replaces_the_old(store):
    old = triage.make_sticky(store, ANA, API, FP, now=NOW)
    new = triage.make_sticky(store, SAM, API, TP, now=NOW)
    assert [r.rule_id for r in triage.rules(store)] == [new.rule_id]
    states = {r.rule_id: r.state for r in triage.rules(store, include_disabled=True)}
    assert states == {old.rule_id: "disabled", new.rule_id: "active"}
    triage.apply_rules(store, START, END, now=NOW + SECOND)
    assert current(store, "decision", "d1", NOW + SECOND) == ("true_positive", True, "rule")


def test_an_expired_benign_rule_does_not_apply(store):
    triage.make_sticky(store, ANA, WEB, Verdict("benign", "ok until then", NOW + SECOND),
                       now=NOW)
    assert triage.apply_rules(store, START, END, now=NOW + SECOND).labelled == 0
    assert triage.apply_rules(store, START, END, now=NOW).labelled == 1


def test_rules_apply_only_to_subjects_ingested_since_when_asked(store):
    triage.make_sticky(store, ANA, API, FP, now=NOW)
    since = sources.ingested_through(store) + timedelta(milliseconds=1)
    time.sleep(0.01)  # ingest times are milliseconds: d7 lands after `since`
    insert_decisions(store, [deny("d7", T("11-02 11:30"))])
    applied = triage.apply_rules(store, START, END, since, now=NOW + SECOND)
    assert applied.labelled == 1
    assert [e.subject.id for e in triage.history(store, action_id=applied.action_id)] == ["d7"]
    assert triage.apply_rules(store, START, END, now=NOW + SECOND).labelled == 5  # the rest


# -- what the verdicts add up to ----------------------------------------------------------------

def test_fp_rate_by_policy_per_day_with_its_trend(store):
    insert_decisions(store, [deny("y1", T("11-01 10:00")), deny("y2", T("11-01 11:00"))])
    start, end = T("11-01 00:00"), T("11-03 00:00")
    triage.label(store, ANA, [SubjectRef("decision", "y1"), SubjectRef("decision", "y2")], TP,
                 start=start, end=end, now=NOW)
    triage.label_group(store, ANA, API, FP, start=START, end=END, now=NOW)
    triage.label_group(store, ANA, LATEST, TP, start=START, end=END, now=NOW)
    rates = triage.fp_rate_by_policy(store, start, end, now=NOW)
    assert rates.daily.select("day", "policy", "false_positives", "triaged", "fp_rate").rows(
    ) == [
        (T("11-02 00:00").date(), "k8s.disallow-latest-tag", 0, 1, 0.0),
        (T("11-01 00:00").date(), "k8s.require-non-root", 0, 2, 0.0),
        (T("11-02 00:00").date(), "k8s.require-non-root", 5, 5, 1.0)]
    trend = {r["policy"]: r for r in rates.by_policy.iter_rows(named=True)}
    assert (trend["k8s.require-non-root"]["fp_rate"], trend["k8s.require-non-root"]["change"]
            ) == (5 / 7, 1.0)
    assert trend["k8s.disallow-latest-tag"]["first_half"] is None
    only = triage.fp_rate_by_policy(store, start, end, Filters(team="nobody"), now=NOW)
    assert only.daily.height == 0 and only.by_policy.height == 0


def test_one_exception_proposal_per_false_positive_group(store):
    triage.label_group(store, ANA, API, FP, start=START, end=END, now=NOW)
    triage.label_group(store, SAM, LATEST, Verdict("false_positive", "jobs pin by digest"),
                       start=START, end=END, now=NOW)
    triage.label_group(store, ANA, WEB, TP, start=START, end=END, now=NOW)
    groups = triage.false_positive_groups(store, START, END)
    assert [(g.fingerprint, g.subjects, g.analysts) for g in groups] == [
        (API, 5, ("ana",)), (LATEST, 1, ("sam",))]
    assert groups[0].namespaces == ("shop", "shop-canary") and groups[0].reasons == (FP.reason,)
    proposals = triage.propose_all(groups, proposed_by="ana")
    assert [(p.engine, p.fingerprint) for p in proposals] == [
        ("kyverno", API.id), ("kyverno", LATEST.id)]
    resources = proposals[0].document["spec"]["match"]["any"][0]["resources"]
    assert resources == {"kinds": ["Pod"], "namespaces": ["shop", "shop-canary"],
                         "names": ["api"]}
