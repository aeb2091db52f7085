"""Triage verdicts reach M4 through a real batch run: labels given with `triage` count at the
next `jobs.run_incremental`, a sticky rule handed to the batch as its `prepare` step labels the
later subjects before the SLIs are computed, and those count apart (`M4_propagated`); an
undone or expired verdict stops counting. The evaluation point is 2026-11-02 12:00 UTC."""

from __future__ import annotations

from datetime import timedelta

import pytest

import triage
from metrics import jobs
from tests.builders.rows import exactly, insert_decisions
from tests.builders.triage import API, WEB, T, deny
from triage import Actor, SubjectRef, Verdict

pytestmark = pytest.mark.integration

AT = T("11-02 12:00")
START, END = T("11-02 11:00"), T("11-02 12:00")
ANA = Actor("ana", "analyst")
FP = Verdict("false_positive", "the sidecar runs as root by design")


def stored(client, at, window="1h", dimension="", value="") -> dict:
    """sli -> (good, total, value) of the M4 family stored for one point and window."""
    rows = client.query(
        "SELECT sli, good, total, value FROM sli_values FINAL WHERE at = {at:DateTime('UTC')} "
        "AND window = {window:String} AND dimension = {dimension:String} AND "
        "dimension_value = {value:String} AND startsWith(sli, 'M4')",
        parameters={"at": at, "window": window, "dimension": dimension, "value": value}
    ).result_rows
    return {r[0]: tuple(r[1:]) for r in rows}


def test_hand_and_propagated_verdicts_count_apart_after_a_batch_run(chdb_client, database):
    client = chdb_client
    insert_decisions(client, [deny(f"d{i}", T(f"11-02 11:1{i}")) for i in range(3)]
                     + [deny("w1", T("11-02 11:20"), WEB, team="identity")])
    made = triage.label_group(client, ANA, API, FP, start=START, end=END, sticky_rule=True,
                              now=T("11-02 11:30"))
    assert made.labelled == 3
    insert_decisions(client, [deny("d7", T("11-02 11:40")), deny("d8", T("11-02 11:41"))])

    report = jobs.run_incremental(client, AT, prepare=triage.apply_rules)
    assert report.prepare_error is None
    m4 = stored(client, AT)
    assert m4["M4"] == exactly((5, 5, 1.0))             # 3 by hand + 2 by the rule
    assert m4["M4_propagated"] == exactly((2, 2, 2.0))  # d7, d8: counted apart
    assert m4["M4_untriaged"] == exactly((6, 1, 1.0))   # w1 (WEB) is the one left
    assert stored(client, AT, dimension="team", value="identity")["M4_untriaged"] == exactly(
        (1, 1, 1.0))
    propagated = triage.current_verdicts(client, START, END, source="rule", now=AT)
    assert sorted((v["subject_id"], v["rule_id"], v["analyst"]) for v in propagated) == [
        ("d7", made.rule_id, "ana"), ("d8", made.rule_id, "ana")]

    # the next run reads only newly ingested subjects and finds the rule's work done
    again = jobs.run_incremental(client, AT + timedelta(minutes=1), prepare=triage.apply_rules)
    assert again.prepare_error is None
    assert len(triage.history(client, subject=SubjectRef("decision", "d7"))) == 1
    assert stored(client, AT + timedelta(minutes=1))["M4_propagated"] == exactly((2, 2, 2.0))


def test_an_undone_label_and_an_expired_benign_verdict_stop_counting(chdb_client, database):
    client = chdb_client
    insert_decisions(client, [deny("d1", T("11-02 11:10")),
                              deny("w1", T("11-02 11:20"), WEB, outcome="warn")])
    labelled = triage.label(client, ANA, [SubjectRef("decision", "d1")], FP, start=START,
                            end=END, now=T("11-02 11:30"))
    triage.label(client, ANA, [SubjectRef("decision", "w1")],
                 Verdict("benign", "accepted until noon", AT + timedelta(minutes=1)),
                 start=START, end=END, now=T("11-02 11:30"))
    jobs.run_incremental(client, AT)
    assert stored(client, AT)["M4"] == exactly((1, 2, 0.5))
    assert stored(client, AT)["M4_untriaged"] == exactly((2, 0, 0.0))

    triage.undo(client, ANA, labelled.action_id, now=T("11-02 11:31"))
    jobs.run_incremental(client, AT + timedelta(minutes=1))  # the benign verdict expired
    later = stored(client, AT + timedelta(minutes=1))
    assert later["M4"] == exactly((0, 0, None))
    assert later["M4_untriaged"] == exactly((2, 2, 2.0))


def test_a_failing_prepare_step_is_reported_and_the_slis_are_still_computed(chdb_client,
                                                                            database):
    def broken(client, start, end, since):
        raise RuntimeError("rules store unreachable")

    report = jobs.run_incremental(chdb_client, AT, prepare=broken)
    assert report.prepare_error == "RuntimeError: rules store unreachable"
    assert report.rows > 0 and stored(chdb_client, AT)["M4"] == exactly((0, 0, None))


def test_a_backfill_applies_the_rules_first(chdb_client, database):
    client = chdb_client
    insert_decisions(client, [deny("d1", T("11-02 10:10"))])
    triage.make_sticky(client, ANA, API, FP, now=T("11-02 09:00"))
    report = jobs.backfill(client, timedelta(hours=3), until=AT, prepare=triage.apply_rules)
    assert report.prepare_error is None
    assert stored(client, AT, window="6h")["M4_propagated"] == exactly((1, 1, 1.0))
