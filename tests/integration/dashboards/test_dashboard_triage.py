"""The Triage page under AppTest, over subjects of known times in the last hour (the
fingerprints of tests/builders/triage.py):

- API (k8s.require-non-root, Pod api): d1, d2, d3 deny, w1 warn, v1 open violation; namespaces
  shop and shop-canary, severities up to critical; newest w1 (10 minutes ago): 5 subjects;
- WEB (same policy, Pod web): d4 deny, 20 minutes ago, team identity: 1 subject;
- LATEST (k8s.disallow-latest-tag, Deployment job): d5, d6 deny, up to 30 minutes ago, severity
  high: 2 subjects;
- not subjects: an allow, an error, a deny two days ago (outside the day), a remediated
  violation.

The page runs as the local admin (no login on loopback) unless a test logs in a user.
"""

from __future__ import annotations

import importlib
import io
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

import triage
from dashboards import roles
from dashboards.auth import User
from metrics import jobs
from metrics.windows import floor_minute
from tests.builders.dashboards import (
    dataframe_after,
    figures,
    metrics,
    open_page,
    rerun,
    texts,
    traces,
    users_file_login,
)
from tests.builders.rows import exactly, insert_decisions, insert_events
from tests.builders.triage import API, LATEST, WEB, deny, violation
from triage import Actor, Verdict

pytestmark = pytest.mark.integration

M = timedelta(minutes=1)
REASON = "the istio sidecar runs as root by design"
PAGE_FILE = str(Path(__file__).resolve().parents[3] / "dashboards" / "pages" / "triage_page.py")
ANA = Actor("ana", "analyst")


def page_module():
    return importlib.import_module("dashboards.pages.triage_page")


@pytest.fixture
def now() -> datetime:
    return floor_minute(datetime.now(timezone.utc))


@pytest.fixture
def seeded(chdb_client, dashboard_db, now):
    shop = {"namespace": "shop"}
    insert_decisions(chdb_client, [
        deny("d1", now - 40 * M, severity="medium", **shop),
        deny("d2", now - 39 * M, severity="high", namespace="shop-canary"),
        deny("d3", now - 38 * M, severity="low", **shop),
        deny("w1", now - 10 * M, outcome="warn", severity="low", **shop),
        deny("a1", now - 9 * M, outcome="allow", **shop),     # allowed: not a subject
        deny("e1", now - 9 * M, outcome="error", **shop),     # an error: not a subject
        deny("d0", now - timedelta(days=2), **shop),          # before the day's range
        deny("d4", now - 20 * M, WEB, team="identity"),
        deny("d5", now - 31 * M, LATEST, cluster="us-1", severity="high"),
        deny("d6", now - 30 * M, LATEST, cluster="us-1", severity="medium"),
    ])
    insert_events(chdb_client, [
        violation("v1", "opened", now - 35 * M, severity="critical", **shop),
        violation("v2", "opened", now - 34 * M),                # remediated: closed
        violation("v2", "remediated", now - 33 * M),
    ])
    return chdb_client


def bounds() -> tuple[datetime, datetime]:
    """The range the page reads (the default day), now."""
    end = floor_minute(datetime.now(timezone.utc)) + M
    return end - timedelta(days=1), end


def queue_rows(at: AppTest) -> list[tuple]:
    queue = dataframe_after(at, "Queue")
    return list(queue[["resource", "subjects", "decisions", "violations", "severity"]]
                .itertuples(index=False, name=None))


def stored_entries(client) -> int:
    return client.command("SELECT count() FROM triage_history")


def label_group(at: AppTest, verdict: str, reason: str = "", *, until: date | None = None,
                sticky: bool = False) -> AppTest:
    """Fill the group form for the group chosen and submit it."""
    at.radio(key="triage_label_verdict").set_value(verdict)
    at.text_area(key="triage_label_reason").input(reason)
    if until is not None:
        at.date_input(key="triage_label_until").set_value(until)
    if sticky:
        at.checkbox(key="triage_sticky").check()
    at.button(key="triage_label_submit").click()
    return rerun(at)


def choose_group(at: AppTest, fingerprint: triage.Fingerprint) -> AppTest:
    at.selectbox(key="triage_group").set_value(fingerprint.id)
    return rerun(at)


# -- the queue ------------------------------------------------------------------------------

def test_the_queue_groups_subjects_by_fingerprint_with_counts_newest_and_severity(seeded, now):
    at = open_page("triage_page.py")

    assert queue_rows(at) == [("Pod/api", 5, 4, 1, "critical"), ("Pod/web", 1, 1, 0, ""),
                              ("Deployment/job", 2, 2, 0, "high")]
    queue = dataframe_after(at, "Queue")
    assert queue["newest"].tolist() == [now - 10 * M, now - 20 * M, now - 30 * M]
    assert queue["namespaces"].tolist()[0] == "shop, shop-canary"
    assert queue["fingerprint"].tolist() == [API.id, WEB.id, LATEST.id]
    assert "Groups 1–3 of 3 (8 subjects without a verdict), newest first" in texts(at)
    subjects = dataframe_after(at, "Label a group")  # the first group's subjects
    assert sorted(subjects["subject"]) == ["decision:d1", "decision:d2", "decision:d3",
                                           "decision:w1", "violation:v1"]


def test_the_global_filters_and_the_policy_narrow_the_queue(seeded):
    at = open_page("triage_page.py", {"team": "identity"})
    assert queue_rows(at) == [("Pod/web", 1, 1, 0, "")]

    at = open_page("triage_page.py", {"policy": LATEST.policy_id})
    assert queue_rows(at) == [("Deployment/job", 2, 2, 0, "high")]
    assert at.query_params["policy"] == LATEST.policy_id


def test_the_queue_is_paginated_by_groups(chdb_client, dashboard_db, now):
    insert_decisions(chdb_client, [
        deny(f"p{i:02d}", now - (i + 1) * M, triage.Fingerprint(
            "k8s.require-labels", "check-team", "Pod", f"pod-{i:02d}", "no team label"))
        for i in range(30)])
    at = open_page("triage_page.py")
    assert "Groups 1–25 of 30 (30 subjects without a verdict), newest first" in texts(at)
    assert dataframe_after(at, "Queue")["resource"].iloc[0] == "Pod/pod-00"

    at.number_input(key="triage_page").set_value(2)
    rerun(at)
    assert "Groups 26–30 of 30 (30 subjects without a verdict), newest first" in texts(at)
    assert dataframe_after(at, "Queue")["resource"].tolist() == [
        f"Pod/pod-{i}" for i in range(25, 30)]


def test_event_strings_are_shown_as_text(chdb_client, dashboard_db, now):
    odd = triage.Fingerprint("p", "r", "Pod", "<b>web</b>", "**bold** [link](http://evil.example)")
    insert_decisions(chdb_client, [deny("x1", now - M, odd)])
    at = open_page("triage_page.py")

    queue = dataframe_after(at, "Queue")
    assert (queue["resource"].iloc[0], queue["reason"].iloc[0]) == ("Pod/<b>web</b>", odd.reason)
    assert not any("evil.example" in t or "<b>" in t for t in texts(at))


# -- labelling a group ----------------------------------------------------------------------

def test_a_false_positive_without_a_reason_is_refused_and_nothing_is_stored(seeded):
    at = label_group(open_page("triage_page.py"), "false_positive", "   ")

    assert any("needs a reason" in e.value for e in at.error)
    assert not at.success
    assert stored_entries(seeded) == 0
    assert len(queue_rows(at)) == 3


def test_a_false_positive_label_goes_to_the_history_and_undo_brings_the_group_back(seeded):
    at = label_group(open_page("triage_page.py"), "false_positive", REASON)

    assert at.success[0].value.startswith("Labelled 5 subjects false_positive")
    assert queue_rows(at) == [("Pod/web", 1, 1, 0, ""), ("Deployment/job", 2, 2, 0, "high")]
    history = dataframe_after(at, "Verdict history")
    assert sorted(history["subject"]) == ["decision:d1", "decision:d2", "decision:d3",
                                          "decision:w1", "violation:v1"]
    assert set(zip(history["by"], history["previous"], history["verdict"], history["reason"],
                   history["given"])) == {("local", "(none)", "false_positive", REASON,
                                           "by hand")}
    assert history["action"].nunique() == 1
    stored = {r[0]: r[1:] for r in seeded.query(
        "SELECT subject_id, verdict, analyst FROM triage_verdicts FINAL").result_rows}
    assert stored == {s: ("false_positive", "local") for s in ("d1", "d2", "d3", "w1", "v1")}

    action = history["action"].iloc[0]
    at.button(key="triage_undo").click()
    rerun(at)
    assert at.success[0].value == f"Undid action {action}: 5 subjects restored."
    assert len(queue_rows(at)) == 3
    history = dataframe_after(at, "Verdict history")
    assert len(history) == 10
    undo = history[history["undoes"] == action]
    assert set(zip(undo["previous"], undo["verdict"])) == {("false_positive", "(none)")}
    assert len(undo) == 5


def test_a_benign_verdict_keeps_its_expiry_and_the_group_leaves_the_queue(seeded):
    at = choose_group(open_page("triage_page.py"), WEB)
    until = datetime.now(timezone.utc).date() + timedelta(days=3)
    at = label_group(at, "benign", "accepted until the migration", until=until)

    assert at.success[0].value.startswith("Labelled 1 subjects benign")
    assert [r[0] for r in queue_rows(at)] == ["Pod/api", "Deployment/job"]
    (entry,) = triage.history(seeded, subject=triage.SubjectRef("decision", "d4"))
    expected = datetime.combine(until + timedelta(days=1), datetime.min.time(), timezone.utc)
    assert (entry.verdict, entry.expires_at, entry.analyst) == ("benign", expected, "local")
    assert dataframe_after(at, "Verdict history")["expires"].tolist() == [expected]


def test_an_expiry_on_a_verdict_other_than_benign_is_refused(seeded):
    at = label_group(open_page("triage_page.py"), "true_positive", "real",
                     until=datetime.now(timezone.utc).date() + timedelta(days=1))

    assert any("only a benign verdict may expire" in e.value for e in at.error)
    assert stored_entries(seeded) == 0


# -- bulk -------------------------------------------------------------------------------------

def test_bulk_label_by_policy_shows_its_count_first_then_labels_every_group_of_it(seeded):
    at = open_page("triage_page.py")
    at.text_input(key="triage_policy").input(API.policy_id)
    rerun(at)
    assert [r[0] for r in queue_rows(at)] == ["Pod/api", "Pod/web"]
    assert (f"The selection (policy={API.policy_id}) holds 6 subjects without a verdict in "
            "2 groups.") in [t.value for t in at.text]
    assert at.button(key="triage_bulk_submit").proto.label == "Label all 6 subjects"
    assert stored_entries(seeded) == 0  # the count alone writes nothing

    at.radio(key="triage_bulk_verdict").set_value("true_positive")
    at.text_area(key="triage_bulk_reason").input("they really run as root")
    at.button(key="triage_bulk_submit").click()
    rerun(at)
    assert at.success[0].value.startswith("Labelled 6 subjects true_positive (the preview "
                                          "counted 6;")
    at.text_input(key="triage_policy").input("")
    rerun(at)
    assert queue_rows(at) == [("Deployment/job", 2, 2, 0, "high")]
    history = dataframe_after(at, "Verdict history")
    assert len(history) == 6 and history["action"].nunique() == 1
    assert set(history["verdict"]) == {"true_positive"}


# -- sticky rules ---------------------------------------------------------------------------

def test_a_sticky_verdict_is_listed_and_its_propagated_verdicts_are_marked(seeded, now):
    at = choose_group(open_page("triage_page.py"), LATEST)
    at = label_group(at, "false_positive", "tags are pinned by digest", sticky=True)
    assert "sticky rule" in at.success[0].value
    rules = dataframe_after(at, "Sticky rules")
    assert rules[["policy", "resource", "verdict", "state", "made by", "applied to"]].to_dict(
        "records") == [{"policy": LATEST.policy_id, "resource": "Deployment/job",
                        "verdict": "false_positive", "state": "active", "made by": "local",
                        "applied to": 0}]  # the group's own verdicts are hand labels
    rule_id = rules["sticky rule"].iloc[0]

    insert_decisions(seeded, [deny("d7", now - 2 * M, LATEST, cluster="us-1")])  # later
    at.button(key="triage_apply").click()
    rerun(at)
    assert at.success[0].value == "The sticky rules labelled 1 subjects."
    history = dataframe_after(at, "Verdict history")
    newest = history.iloc[0]
    assert (newest["subject"], newest["verdict"], newest["given"]) == (
        "decision:d7", "false_positive", f"propagated by local's rule {rule_id}")
    assert set(history.iloc[1:]["given"]) == {"by hand"}
    assert dataframe_after(at, "Sticky rules")["applied to"].tolist() == [1]
    assert metrics(at)["Propagated"] == "1"
    assert "Deployment/job" not in [r[0] for r in queue_rows(at)]

    at.button(key="triage_disable").click()
    rerun(at)
    assert dataframe_after(at, "Sticky rules")["state"].tolist() == ["disabled"]


# -- FP rate and exceptions -----------------------------------------------------------------

def test_the_fp_rate_by_policy_and_its_chart_come_from_the_current_verdicts(seeded):
    start, end = bounds()
    triage.label_group(seeded, ANA, API, Verdict("false_positive", REASON), start=start,
                       end=end)
    triage.label_group(seeded, ANA, LATEST, Verdict("true_positive"), start=start, end=end)
    at = open_page("triage_page.py")

    assert {k: metrics(at)[k] for k in ("Triaged", "False positives", "FP rate")} == {
        "Triaged": "7", "False positives": "5", "FP rate": "71.4%"}
    table = dataframe_after(at, "False-positive rate by policy")
    assert table[["policy", "false positives", "triaged", "FP rate"]].to_dict("records") == [
        {"policy": LATEST.policy_id, "false positives": 0, "triaged": 2, "FP rate": "0.0%"},
        {"policy": API.policy_id, "false positives": 5, "triaged": 5, "FP rate": "100.0%"}]
    (chart,) = figures(at)
    lines = traces(chart)
    assert set(lines) == {API.policy_id, LATEST.policy_id}
    assert set(lines[API.policy_id].values()) == {100.0}
    assert set(lines[LATEST.policy_id].values()) == {0.0}
    hover = {t["name"]: t["text"] for t in chart["data"]}  # "false positives of triaged"
    assert sum(int(h.split(" of ")[0]) for h in hover[API.policy_id]) == 5
    assert sum(int(h.split(" of ")[1]) for h in hover[API.policy_id]) == 5
    assert [h.split(" of ")[0] for h in hover[LATEST.policy_id]] == ["0"] * len(
        hover[LATEST.policy_id])


def test_a_false_positive_group_gets_its_kyverno_policy_exception_as_yaml(seeded):
    start, end = bounds()
    triage.label_group(seeded, ANA, API, Verdict("false_positive", REASON), start=start,
                       end=end)
    at = open_page("triage_page.py")

    groups = dataframe_after(at, "Exceptions as code")
    assert groups[["policy", "resource", "false positives", "labelled by"]].to_dict(
        "records") == [{"policy": API.policy_id, "resource": "Pod/api",
                        "false positives": 5, "labelled by": "ana"}]
    (code,) = [c.value for c in at.code]
    document = yaml.safe_load(code)
    assert (document["apiVersion"], document["kind"]) == ("kyverno.io/v2", "PolicyException")
    assert document["metadata"]["namespace"] == "kyverno"
    assert document["metadata"]["annotations"]["policyscope.io/fingerprint"] == API.id
    assert document["metadata"]["annotations"]["policyscope.io/false-positives"] == "5"
    assert document["metadata"]["annotations"]["policyscope.io/proposed-by"] == "local"
    assert document["metadata"]["annotations"]["policyscope.io/reasons"] == REASON
    assert document["spec"] == {
        "exceptions": [{"policyName": API.policy_id, "ruleNames": [API.rule]}],
        "match": {"any": [{"resources": {"kinds": ["Pod"],
                                         "namespaces": ["shop", "shop-canary"],
                                         "names": ["api"]}}]}}
    downloads = at.get("download_button")
    assert len(downloads) == 2  # the group's, and all of them


def test_with_several_false_positive_groups_one_exception_is_shown_at_a_time(seeded):
    """The table lists every group; the exception shown is the chosen group's, and the zip
    of all of them stays one button."""
    start, end = bounds()
    for fingerprint in (API, LATEST):
        triage.label_group(seeded, ANA, fingerprint, Verdict("false_positive", REASON),
                           start=start, end=end)
    at = open_page("triage_page.py")

    groups = dataframe_after(at, "Exceptions as code")
    assert sorted(groups["policy"]) == sorted([API.policy_id, LATEST.policy_id])
    chooser = at.selectbox(key="triage_exception_group")
    shown = []
    for index in range(len(chooser.options)):
        at.selectbox(key="triage_exception_group").select_index(index).run()
        (code,) = [c.value for c in at.code]
        shown.append(yaml.safe_load(code)["spec"]["exceptions"][0]["policyName"])
        labels = [b.proto.label for b in at.get("download_button")]
        assert len(labels) == 2 and labels[1] == "Download all 2 exceptions (zip)"
    assert sorted(shown) == sorted([API.policy_id, LATEST.policy_id])


def test_the_download_of_every_exception_holds_one_file_per_group(seeded):
    start, end = bounds()
    for fingerprint in (API, LATEST):
        triage.label_group(seeded, ANA, fingerprint, Verdict("false_positive", REASON),
                           start=start, end=end)
    proposals = triage.propose_all(triage.false_positive_groups(seeded, start, end))

    archive = zipfile.ZipFile(io.BytesIO(page_module().bundle(proposals)))
    assert sorted(archive.namelist()) == sorted(p.filename for p in proposals)
    assert len(proposals) == 2
    for proposal in proposals:
        assert yaml.safe_load(archive.read(proposal.filename))["kind"] == "PolicyException"


# -- empty states ---------------------------------------------------------------------------

def test_an_empty_store_says_what_to_send_and_how_to_label(dashboard_db):
    at = open_page("triage_page.py")

    shown = texts(at)
    assert any(t.startswith("No denies, warns or open violations in this range") and
               "policyscope demo" in t for t in shown)
    assert any(t.startswith("No verdict given in this range yet") for t in shown)
    assert any(t.startswith("No sticky rules") for t in shown)
    assert any(t.startswith("No verdicts on subjects in this range yet") for t in shown)
    assert any(t.startswith("No false-positive group in this range") for t in shown)
    assert not at.dataframe and not figures(at) and not at.get("form")


def test_a_queue_with_everything_labelled_says_so(seeded):
    start, end = bounds()
    triage.label_matching(seeded, ANA, Verdict("true_positive"), start=start, end=end)
    at = open_page("triage_page.py")

    assert any(t.startswith("Every deny, warn and open violation in this range has a "
                            "verdict") for t in texts(at))
    assert len(dataframe_after(at, "Verdict history")) == 8


# -- roles --------------------------------------------------------------------------------------

@pytest.fixture
def log_in(dashboard_db, tmp_path, monkeypatch):
    """Run the page as a logged-in user of a users file with this role."""
    return users_file_login(PAGE_FILE, tmp_path, monkeypatch)


def test_the_page_run_without_a_login_shows_only_the_login_form(seeded, log_in):
    at = log_in(None)
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert [f.proto.form.form_id for f in at.get("form")] == ["policyscope-login"]
    assert not at.dataframe and not at.radio and [h.value for h in at.title] == ["PolicyScope"]


@pytest.mark.parametrize("role", ["viewer", "oncall"])
def test_a_role_that_may_not_label_gets_no_form_and_the_write_is_refused(seeded, log_in,
                                                                         role):
    at = log_in("olga", role)
    assert [e.value for e in at.error] == [f"Your role ({role}) does not see this page."]
    assert not at.get("form") and not at.dataframe

    start, end = bounds()
    with pytest.raises(PermissionError, match=f"role {role}"):
        page_module().write(User("olga", role), triage.label_group, API,
                            Verdict("false_positive", REASON), start=start, end=end)
    assert stored_entries(seeded) == 0


def test_a_role_shown_the_page_without_the_right_to_label_reads_it_without_forms(
        seeded, log_in, monkeypatch):
    monkeypatch.setitem(roles.PAGES, "triage", roles.PAGES["triage"] | {"viewer"})
    start, end = bounds()
    triage.label_group(seeded, ANA, API, Verdict("false_positive", REASON), start=start,
                       end=end, sticky_rule=True)
    at = log_in("vera", "viewer")

    assert [r[0] for r in queue_rows(at)] == ["Pod/web", "Deployment/job"]
    assert len(dataframe_after(at, "Verdict history")) == 5
    assert len(dataframe_after(at, "Sticky rules")) == 1
    assert any("may read the queue but not label" in t for t in texts(at))
    assert not at.get("form") and not at.text_area and not at.radio
    assert [b.proto.label for b in at.button] == []  # no label, undo, disable or apply
    assert stored_entries(seeded) == 5


def test_an_analyst_may_label(seeded, log_in):
    at = log_in("ana", "analyst")
    at = label_group(at, "true_positive", "real")
    assert at.success[0].value.startswith("Labelled 5 subjects true_positive")
    assert {e.analyst for e in triage.history(seeded, subject=triage.SubjectRef(
        "decision", "d1"))} == {"ana"}


# -- M4 -------------------------------------------------------------------------------------

def test_the_form_labels_the_group_it_was_drawn_for_when_the_queue_moved_on(seeded, now):
    """A submit reruns the page: if newer groups have pushed the chosen one off the queue's
    first page meanwhile (another group is first now), the verdict still goes to the group
    the analyst saw."""
    import streamlit as st

    at = open_page("triage_page.py")
    shown = at.selectbox(key="triage_group").value
    assert shown == API.id
    insert_decisions(seeded, [
        deny(f"n{k}", now - timedelta(seconds=30), triage.Fingerprint(
            "k8s.new", "r", "Pod", f"new-{k}", "denied"), namespace="shop")
        for k in range(30)])
    st.cache_data.clear()  # as after the loaders' TTL: the rerun reads the queue again

    at = label_group(at, "true_positive")

    assert at.success, [e.value for e in at.error]
    assert "Labelled 5 subjects" in at.success[0].value
    labelled = {r[0] for r in seeded.query(
        "SELECT subject_id FROM triage_verdicts FINAL WHERE verdict != ''").result_rows}
    assert labelled == {"d1", "d2", "d3", "w1", "v1"}  # API's group, none of the new ones


def test_labelling_from_the_page_moves_m4_at_the_next_batch(seeded, now):
    def m4(at: datetime) -> dict:
        rows = seeded.query(
            "SELECT sli, good, total, value FROM sli_values FINAL WHERE at = "
            "{at:DateTime('UTC')} AND window = '1h' AND dimension = '' AND startsWith(sli, "
            "'M4')", parameters={"at": at}).result_rows
        return {r[0]: tuple(r[1:]) for r in rows}

    jobs.run_incremental(seeded, now, prepare=triage.apply_rules)
    assert m4(now)["M4"] == exactly((0, 0, None))

    at = label_group(open_page("triage_page.py"), "false_positive", REASON, sticky=True)
    assert at.success
    insert_decisions(seeded, [deny("d7", now - 2 * M, severity="low", namespace="shop")])
    report = jobs.run_incremental(seeded, now + M, prepare=triage.apply_rules)

    assert report.prepare_error is None
    later = m4(now + M)
    assert later["M4"] == exactly((6, 6, 1.0))             # 5 by hand from the page + d7
    assert later["M4_propagated"] == exactly((1, 1, 1.0))  # d7, by the page's sticky rule
