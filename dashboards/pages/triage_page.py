"""Triage (analysts): the queue of denies, warns and open violations in the range without a
verdict, grouped by fingerprint, each group labelled in one action; bulk labels of everything a
selection holds (with its count before applying); sticky rules; the verdict history with undo;
the false-positive rate by policy with its trend; and each false-positive group's exception as
code, to download.

The model and its SQL are the `triage` package's; this page only calls it. Every write goes
through `write` (server side: `require(user, "label")`, then the triage call as
`Actor(user.name, user.role)` through the dashboard's storage client); a write is confirmed only
after it returned, and the cached loads are cleared so the rerun shows it. A role that may not
label sees the page without any form. Strings from events are shown as text (tables, st.text,
st.code) or through `safe_text`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import streamlit as st

import triage
from dashboards import charts, filters, format, writes
from dashboards.auth import User, can, page_user, require, safe_text
from dashboards.loaders import call, client, load, page_filters, reading
from triage import Actor, Verdict
from triage.model import ACTIVE, MAX_REASON, RULE
from triage.policy_exceptions import ENGINES, engine_of

PAGE_SIZE = 25  # groups per queue page
_LABEL_TARGET = "triage_label_target"  # session key: the group the label form was drawn for
SUBJECTS_SHOWN = 50  # subjects of the chosen group listed
HISTORY_LIMIT = 200  # history entries listed (newest first)
VERDICTS = {"true_positive": "true positive", "false_positive": "false positive (reason required)",
            "benign": "benign (expected / accepted risk)"}
KINDS = ("", "decision", "violation")
NONE = "(none)"


# -- writes ------------------------------------------------------------------------------------

def write(user: User, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The page's one way to write: refuse a role that may not label (PermissionError, before
    anything is read or written), then `call(client, Actor(user), *args, **kwargs)` -- a
    triage write: label_group, label_matching, undo, disable_rule, or `apply_rules_now` --
    through the dashboard's storage client, then clear the cached loads. Returns what the
    call returned, which it does only once the insert has."""
    require(user, "label")
    try:
        return call(client(), Actor(user.name, user.role), *args, **kwargs)
    finally:  # even a call that failed half-way (labelled, then no rule) may have written
        st.cache_data.clear()


def apply_rules_now(store, actor: Actor, start: datetime, end: datetime):
    """Apply the sticky rules to [start, end) now, instead of at the next batch (the rules'
    entries are recorded as their makers')."""
    return triage.apply_rules(store, start, end)




def _verdict_fields(form: str) -> Callable[[], Verdict]:
    """The verdict widgets of a form; the returned function builds the Verdict (ValueError
    with the model's message: a false positive without a reason, an expiry not benign)."""
    kind = st.radio("Verdict", list(VERDICTS), key=f"{form}_verdict", format_func=VERDICTS.get,
                    horizontal=True)
    reason = st.text_area("Reason", key=f"{form}_reason", max_chars=MAX_REASON,
                          placeholder="why the policy was wrong (false positive), why it is "
                                      "accepted (benign)")
    until = st.date_input("Benign until (optional, the day included, UTC)", value=None,
                          min_value=datetime.now(timezone.utc).date(), key=f"{form}_until")
    return lambda: Verdict(kind, reason, until)


# -- tables ------------------------------------------------------------------------------------

def _queue_frame(page: triage.QueuePage) -> pd.DataFrame:
    return pd.DataFrame([{
        "policy": g.fingerprint.policy_id, "rule": g.fingerprint.rule,
        "resource": f"{g.fingerprint.resource_kind}/{g.fingerprint.resource_name}",
        "reason": g.reason, "subjects": g.subjects, "decisions": g.decisions,
        "violations": g.violations, "severity": g.severity, "newest": g.newest,
        "oldest": g.oldest, "namespaces": ", ".join(g.namespaces), "teams": ", ".join(g.teams),
        "engines": ", ".join(g.engines), "expired benign": g.expired, "fingerprint": g.id}
        for g in page.groups])


def _group_name(group: triage.QueueGroup) -> str:
    f = group.fingerprint
    return (f"{f.policy_id} · {f.rule or '(no rule)'} · {f.resource_kind}/{f.resource_name} — "
            f"{f.reason} ({group.subjects})")


def _given(source: str, rule_id: str, analyst: str) -> str:
    return f"propagated by {analyst}'s rule {rule_id[:8]}" if source == RULE \
        else "by hand"


def _history_frame(entries: list[triage.HistoryEntry]) -> pd.DataFrame:
    return pd.DataFrame([{
        "triaged at": e.triaged_at, "by": e.analyst,
        "subject": f"{e.subject.kind}:{e.subject.id}", "policy": e.fingerprint.policy_id,
        "resource": f"{e.fingerprint.resource_kind}/{e.fingerprint.resource_name}",
        "previous": e.previous_verdict or NONE, "verdict": e.verdict or NONE,
        "reason": e.reason, "expires": e.expires_at,
        "given": _given(e.source, e.rule_id, e.analyst), "action": e.action_id[:8],
        "undoes": e.undoes[:8]} for e in entries])


def _rules_frame(rules: list[triage.Rule]) -> pd.DataFrame:
    return pd.DataFrame([{
        "sticky rule": r.rule_id[:8], "policy": r.fingerprint.policy_id,
        "rule": r.fingerprint.rule,
        "resource": f"{r.fingerprint.resource_kind}/{r.fingerprint.resource_name}",
        "event reason": r.fingerprint.reason, "verdict": r.verdict.kind.value,
        "verdict reason": r.verdict.reason, "expires": r.verdict.expires_at, "state": r.state,
        "made by": r.created_by, "made at": r.created_at, "changed by": r.changed_by,
        "applied to": r.applied} for r in rules])


def _percent(value) -> str:
    return format.percent(None if value is None or pd.isna(value) else float(value))


# -- sections ----------------------------------------------------------------------------------

def _selection(base: triage.Filters) -> tuple[triage.Filters, bool]:
    """The queue's selection: the global filters, narrowed by policy and subject kind (kept
    in the URL); True when narrowed."""
    left, right = st.columns([3, 1])
    filters.seed("triage_policy", "policy")
    filters.seed("triage_kind", "kind", "", KINDS)
    policy = left.text_input("Policy (exact id; empty: every policy)", key="triage_policy")
    kind = right.selectbox("Subjects", KINDS, key="triage_kind",
                           format_func=lambda k: f"{k}s" if k else "denies, warns, violations")
    filters.keep("triage_policy", "policy", policy.strip())
    filters.keep("triage_kind", "kind", kind)
    chosen = triage.Filters(team=base.team, environment=base.environment,
                            cluster=base.cluster, policy=policy.strip() or None,
                            kind=kind or None)
    return chosen, bool(policy.strip() or kind)


def _queue_reads(start, end, selection):
    """The queue page's groups and the queue's totals: two reads the page runs at once."""
    offset = (int(st.session_state.get("triage_page", 1)) - 1) * PAGE_SIZE
    return (call(triage.queue_groups, start, end, selection, limit=PAGE_SIZE, offset=offset,
                 subjects=SUBJECTS_SHOWN),
            call(triage.queue_totals, start, end, selection))


def _queue(start, end, selection, narrowed: bool, triaged: int, page: triage.QueuePage
           ) -> triage.QueuePage | None:
    st.subheader("Queue")
    pages = -(-page.total_groups // PAGE_SIZE)
    if page.total_groups and not page.groups:  # past the end (the queue shrank): the last
        number = st.session_state["triage_page"] = pages
        page = load(triage.queue, start, end, selection, limit=PAGE_SIZE,
                    offset=(number - 1) * PAGE_SIZE, subjects=SUBJECTS_SHOWN)
    if not page.total_groups:
        if narrowed:
            st.info("Nothing in the queue matches this policy and kind: clear them to see "
                    "the whole queue.")
        elif triaged:
            st.info("Every deny, warn and open violation in this range has a verdict: the "
                    "queue is empty. New ones (and benign verdicts that expire) come back "
                    "here.")
        else:
            st.info("No denies, warns or open violations in this range. Send "
                    "`policy.decision` events with outcome deny or warn, or "
                    "`policy.violation` events (opened), with `policy.id`, `policy.rule`, the "
                    "resource and a reason; or run `policyscope demo`; or widen the range.")
        return None
    first = page.offset + 1
    st.caption(f"Groups {first}–{first + len(page.groups) - 1} of "
               f"{format.count(page.total_groups, page.groups_estimated)} "
               f"({page.total_subjects:,} subjects without a verdict), newest first")
    st.dataframe(_queue_frame(page), hide_index=True)
    if pages > 1:
        st.number_input(f"Queue page (of {'about ' * page.groups_estimated}{pages:,})",
                        min_value=1, max_value=pages, step=1, key="triage_page")
    return page


def _label_group(user: User, page: triage.QueuePage, start, end, selection) -> None:
    st.subheader("Label a group")
    groups = {g.id: g for g in page.groups}
    ids = list(groups)
    filters.seed("triage_group", "group", ids[0], ids)
    chosen = st.selectbox("Group", ids, key="triage_group",
                          format_func=lambda i: _group_name(groups[i]))
    filters.keep("triage_group", "group", chosen)
    group = groups[chosen]
    subjects = group.newest_subjects  # read with the queue's page
    st.dataframe(pd.DataFrame([{
        "subject": f"{s.ref.kind}:{s.ref.id}", "time": s.time, "severity": s.severity,
        "namespace": s.namespace, "team": s.team, "service": s.service,
        "environment": s.environment, "cluster": s.cluster, "engine": s.engine,
        "expired benign": s.verdict == "benign"} for s in subjects]), hide_index=True)
    if not can(user, "label"):
        return
    # the group the form was drawn for in the previous run: a submit reruns the page, whose
    # queue may have moved on since (newer groups, another first group), and the verdict is
    # for the group the analyst saw
    shown = st.session_state.get(_LABEL_TARGET)
    st.session_state[_LABEL_TARGET] = group.fingerprint
    with st.form("triage_label", clear_on_submit=True):
        verdict = _verdict_fields("triage_label")
        sticky = st.checkbox("Make sticky: later events of this fingerprint get this verdict "
                             "(at the next batch, shown as propagated)", key="triage_sticky")
        submitted = st.form_submit_button(f"Label the group ({group.subjects} subjects)",
                                          key="triage_label_submit")
    if submitted:
        def act() -> str:
            given = verdict()
            target = shown if shown is not None else group.fingerprint
            done = write(user, triage.label_group, target, given, start=start,
                         end=end, filters=selection, sticky_rule=sticky)
            rule = (f"; sticky rule {done.rule_id[:8]} made: later matching subjects get it"
                    if done.rule_id else "")
            return (f"Labelled {done.labelled} subjects {given.kind.value}{rule} "
                    f"(action {done.action_id[:8]}; undo it in the history).")
        writes.attempt(act)


def _label_selection(user: User, page: triage.QueuePage, start, end, selection) -> None:
    st.subheader("Label everything selected")
    scope = [f"{k}={v}" for k, v in (("team", selection.team), ("environment",
             selection.environment), ("cluster", selection.cluster), ("policy",
             selection.policy), ("kind", selection.kind)) if v]
    st.text(f"The selection ({', '.join(scope) or 'the whole range'}) holds "
            f"{page.total_subjects:,} subjects without a verdict in "
            f"{format.count(page.total_groups, page.groups_estimated)} groups.")
    if not can(user, "label"):
        return
    with st.form("triage_bulk", clear_on_submit=True):
        verdict = _verdict_fields("triage_bulk")
        submitted = st.form_submit_button(f"Label all {page.total_subjects:,} subjects",
                                          key="triage_bulk_submit")
    if submitted:
        def act() -> str:
            given = verdict()
            done = write(user, triage.label_matching, given, start=start, end=end,
                         filters=selection)
            return (f"Labelled {done.labelled} subjects {given.kind.value} (the preview "
                    f"counted {page.total_subjects}; action {done.action_id[:8]}).")
        writes.attempt(act)


def _history(user: User, start, end, entries: list[triage.HistoryEntry]) -> None:
    st.subheader("Verdict history")
    if not entries:
        st.info("No verdict given in this range yet. Pick a group in the queue and label it "
                "(true positive, false positive with a reason, or benign); each verdict is "
                "listed here with who gave it, and can be undone.")
        return
    st.caption(f"Verdicts given in the range, newest first (at most {HISTORY_LIMIT}; every "
               "team). An undo is a new entry.")
    st.dataframe(_history_frame(entries), hide_index=True)
    if not can(user, "label"):
        return
    actions: dict[str, list[triage.HistoryEntry]] = {}
    for entry in entries:
        actions.setdefault(entry.action_id, []).append(entry)
    undone = {e.undoes for e in entries if e.undoes}

    def name(action: str) -> str:
        first = actions[action][0]
        what = "undo" if first.undoes else (first.verdict or NONE)
        return (f"{first.triaged_at:%Y-%m-%d %H:%M:%S} · {first.analyst} · {what} · "
                f"{len(actions[action])} subjects · {action[:8]}"
                + (" (undone)" if action in undone else ""))

    left, right = st.columns([3, 1])
    action = left.selectbox("Action", list(actions), key="triage_undo_action",
                            format_func=name)
    if right.button("Undo this action", key="triage_undo"):
        def act() -> str:
            done = write(user, triage.undo, action)
            skipped = (f"; {done.skipped} left alone (labelled again since)"
                       if done.skipped else "")
            return f"Undid action {action[:8]}: {done.labelled} subjects restored{skipped}."
        writes.attempt(act)


def _rules(user: User, start, end, rules: list[triage.Rule]) -> None:
    st.subheader("Sticky rules")
    if not rules:
        st.info("No sticky rules. Tick “Make sticky” when labelling a group: later events "
                "of its fingerprint then get the verdict at each batch, shown as propagated.")
        return
    st.dataframe(_rules_frame(rules), hide_index=True)
    active = [r.rule_id for r in rules if r.state == ACTIVE]
    if not active or not can(user, "label"):
        return
    left, middle, right = st.columns([2, 1, 1])
    rule_id = left.selectbox("Active rule", active, key="triage_rule",
                             format_func=lambda r: r[:8])
    if middle.button("Disable rule", key="triage_disable"):
        def disable() -> str:
            write(user, triage.disable_rule, rule_id)
            return f"Disabled sticky rule {rule_id[:8]}; the verdicts it gave stay."
        writes.attempt(disable)
    if right.button("Apply rules to the range now", key="triage_apply",
                    help="Else they apply at the next SLI batch"):
        def act() -> str:
            done = write(user, apply_rules_now, start, end)
            return f"The sticky rules labelled {done.labelled} subjects."
        writes.attempt(act)


def _fp_rate(rates: triage.FpRates) -> None:
    st.subheader("False-positive rate by policy")
    if not rates.daily.height:
        st.info("No verdicts on subjects in this range yet, so no false-positive rate: label "
                "groups in the queue. The rate is false positives / all triaged (M4), by the "
                "day of the deny or violation.")
        return
    daily = rates.daily.to_pandas()
    cols = st.columns(4)
    triaged, fps = int(daily["triaged"].sum()), int(daily["false_positives"].sum())
    cols[0].metric("Triaged", f"{triaged:,}")
    cols[1].metric("False positives", f"{fps:,}")
    cols[2].metric("FP rate", format.percent(fps / triaged))
    cols[3].metric("Propagated", f"{int(daily['propagated'].sum()):,}",
                   help="Verdicts a sticky rule gave (counted apart in M4_propagated)")
    table = rates.by_policy.to_pandas()
    st.dataframe(pd.DataFrame({
        "policy": table["policy"], "false positives": table["false_positives"],
        "triaged": table["triaged"], "FP rate": table["fp_rate"].map(_percent),
        "first half": table["first_half"].map(_percent),
        "second half": table["second_half"].map(_percent),
        "change": table["change"].map(lambda v: format.NONE if v is None or pd.isna(v)
                                      else f"{v * 100:+.1f} pp")}), hide_index=True)
    st.plotly_chart(charts.fp_rate_trend(daily), width="stretch")


def bundle(proposals: list[triage.Proposal]) -> bytes:
    """Every proposal as one zip file, each under its own file name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for proposal in proposals:
            archive.writestr(proposal.filename, proposal.text)
    return buffer.getvalue()


def _fp_group_name(group) -> str:
    return (f"{group.fingerprint.policy_id} · {group.fingerprint.resource_kind}/"
            f"{group.fingerprint.resource_name} ({group.subjects} false positives)")


def _exceptions(user: User, groups: list) -> None:
    st.subheader("Exceptions as code")
    if not groups:
        st.info("No false-positive group in this range. Label a group false positive (with "
                "its reason) and the exception that would stop it is proposed here, as a "
                "Kyverno PolicyException, a Gatekeeper excludedNamespaces patch or an OPA "
                "data patch to review in the policy repository.")
        return
    st.dataframe(pd.DataFrame([{
        "policy": g.fingerprint.policy_id, "rule": g.fingerprint.rule,
        "resource": f"{g.fingerprint.resource_kind}/{g.fingerprint.resource_name}",
        "event reason": g.fingerprint.reason, "false positives": g.subjects,
        "propagated": g.propagated, "engines": ", ".join(g.engines),
        "namespaces": ", ".join(g.namespaces), "labelled by": ", ".join(g.analysts),
        "reasons": " | ".join(g.reasons)} for g in groups]), hide_index=True)
    engines = {}  # each group's format: its engine's, else the one chosen on the page
    unsupported = {}  # why a group's engine has no format of its own
    for group in groups:
        try:
            engines[group.fingerprint.id] = engine_of(group)
        except triage.UnsupportedEngine as why:
            unsupported[group.fingerprint.id] = why
            engines[group.fingerprint.id] = st.session_state.get(
                f"triage_engine_{group.fingerprint.id}", ENGINES[0])
    # one group's exception at a time (the table lists them all); every one in the zip
    chosen = groups[0] if len(groups) == 1 else st.selectbox(
        "Exception for", groups, key="triage_exception_group", format_func=_fp_group_name)
    st.text(_fp_group_name(chosen))
    if chosen.fingerprint.id in unsupported:
        st.caption(safe_text(unsupported[chosen.fingerprint.id]))
        engines[chosen.fingerprint.id] = st.selectbox(
            "Exception format", ENGINES, key=f"triage_engine_{chosen.fingerprint.id}")
    proposal = triage.propose(chosen, engine=engines[chosen.fingerprint.id],
                              proposed_by=user.name)
    st.code(proposal.text, language="json" if proposal.engine == "opa" else "yaml")
    for note in proposal.notes:
        st.caption(safe_text(note))
    st.download_button(f"Download {safe_text(proposal.filename)}", proposal.text,
                       file_name=proposal.filename, mime=proposal.media_type,
                       key=f"triage_download_{chosen.fingerprint.id}")

    def every_exception() -> bytes:  # made when the button is clicked, not on every run
        return bundle([triage.propose(g, engine=engines[g.fingerprint.id],
                                      proposed_by=user.name) for g in groups])

    st.download_button(f"Download all {len(groups)} exceptions (zip)", every_exception,
                       file_name="policyscope-exceptions.zip", mime="application/zip",
                       key="triage_download_all")


def render() -> None:
    user = page_user("triage")
    chosen = page_filters()
    st.title("Triage")
    writes.confirmation()
    writes.read_only_note(user, "label", "read the queue but not label it")
    start, end = chosen.bounds()
    base = triage.Filters(team=chosen.team or None, environment=chosen.environment or None,
                          cluster=chosen.cluster or None)
    selection, narrowed = _selection(base)
    # the page's reads at once (`reading`), the queue's (the slowest) first; the sections
    # below the queue are drawn while those run, into their places after the queue's
    groups_read, totals_read = _queue_reads(start, end, selection)
    queue_section = st.container()
    with reading(groups_read, totals_read,
                 call(triage.fp_rate_by_policy, start, end, base),
                 call(triage.history, start=start, end=end, limit=HISTORY_LIMIT),
                 call(triage.rules, include_disabled=True),
                 call(triage.false_positive_groups, start, end, base)) as reads:
        _history(user, start, end, reads[3])
        _rules(user, start, end, reads[4])
        rates = reads[2]
        _fp_rate(rates)
        _exceptions(user, reads[5])
        with queue_section:
            page = _queue(start, end, selection, narrowed, rates.daily.height,
                          triage.QueuePage(reads[0], *reads[1], groups_read.kwargs["offset"],
                                           PAGE_SIZE))
            if page is not None:
                _label_group(user, page, start, end, selection)
                _label_selection(user, page, start, end, selection)


if __name__ == "__main__":  # Streamlit runs a page as __main__; tests import `write`
    render()
