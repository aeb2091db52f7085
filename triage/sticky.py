"""Sticky rules: a verdict given to a fingerprint that its later subjects get automatically.

A rule matches subjects by the five fingerprint fields. `apply_rules` gives the rule's
verdict to every matching subject in a range that has **no history entry at all** — so a
hand label always wins, a subject an analyst undid or relabelled is never overwritten, an
expired benign verdict does not come back, and running it twice writes nothing the second
time (idempotent). Its entries have source `rule`, the rule's id, and the rule's creator as
analyst (M4 counts them apart: `M4_propagated`).

When it runs: before each SLI batch. `metrics.jobs.run_incremental` / `backfill` take a
`prepare` step; pass `triage.apply_rules` (the scheduler of `up` / `worker` must hand it in:
`metrics` may not import `triage`). It is called with the run's lookback range and, for an
incremental run, the ingest time the previous run had seen, so only newly ingested subjects
are read. It may also be called on its own (e.g. by the dashboard after making a rule).

One active rule per fingerprint: making a new one disables the old. Rule changes are appended
states (`triage_rules`); disabling keeps the verdicts it already gave.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from clickhouse_connect.driver.client import Client

from triage import store
from triage.access import Actor, require_labeller
from triage.entries import after, entries, new_id
from triage.fingerprint import Fingerprint
from triage.model import ACTIVE, DISABLED, RULE, ActionResult, Rule, Verdict, check_range


def _rule(row: dict) -> Rule:
    return Rule(
        rule_id=row["rule_id"],
        fingerprint=Fingerprint(row["policy_id"], row["rule"], row["resource_kind"],
                                row["resource_name"], row["subject_reason"]),
        verdict=Verdict(row["verdict"], row["reason"], row["expires_at"]),
        state=row["state"], created_by=row["created_by"], created_at=row["created_at"],
        changed_by=row["changed_by"], changed_at=row["changed_at"],
        applied=int(row.get("applied", 0)))


def _state(rule: Rule, state: str, by: str, at: datetime) -> dict:
    f = rule.fingerprint
    return {"rule_id": rule.rule_id, "fingerprint": f.id, "policy_id": f.policy_id,
            "rule": f.rule, "resource_kind": f.resource_kind,
            "resource_name": f.resource_name, "subject_reason": f.reason,
            "verdict": rule.verdict.kind.value, "reason": rule.verdict.reason,
            "expires_at": rule.verdict.expires_at, "state": state,
            "created_by": rule.created_by, "created_at": rule.created_at, "changed_by": by,
            "changed_at": at}


def rules(client: Client, *, include_disabled: bool = False) -> list[Rule]:
    """The sticky rules (active ones only, unless `include_disabled`), oldest first, each
    with how many subjects' current verdict it gave."""
    found = [_rule(row) for row in store.rules(client)]
    return found if include_disabled else [r for r in found if r.state == ACTIVE]


def make_sticky(client: Client, actor: Actor, fingerprint: Fingerprint, verdict: Verdict, *,
                now: datetime | None = None) -> Rule:
    """Make `verdict` sticky for `fingerprint` (its expiry, for benign, is the rule's): an
    active rule of the same fingerprint is disabled first."""
    require_labeller(actor, "make triage verdicts sticky")
    now = store.now_or_server(client, now)
    if verdict.expires_at is not None and verdict.expires_at <= now:
        raise ValueError(f"a rule expiring at {verdict.expires_at.isoformat()} would never "
                         f"apply (now is {now.isoformat()})")
    states = [_state(old, DISABLED, actor.name, after(now, old.changed_at))
              for old in rules(client) if old.fingerprint == fingerprint]
    rule = Rule(new_id(), fingerprint, verdict, ACTIVE, actor.name, now, actor.name, now)
    store.append_rule_states(client, [*states, _state(rule, ACTIVE, actor.name, now)])
    return rule


def disable_rule(client: Client, actor: Actor, rule_id: str, *,
                 now: datetime | None = None) -> Rule:
    """Stop a rule applying (the verdicts it gave stay; undo their actions to take them
    back). LookupError for an unknown rule id."""
    require_labeller(actor, "disable sticky triage rules")
    now = store.now_or_server(client, now)
    matching = [r for r in rules(client, include_disabled=True) if r.rule_id == rule_id]
    if not matching:
        raise LookupError(f"no sticky rule {rule_id!r}")
    (rule,) = matching
    at = after(now, rule.changed_at)  # a later state sorts after the one it replaces
    store.append_rule_states(client, [_state(rule, DISABLED, actor.name, at)])
    return Rule(rule.rule_id, rule.fingerprint, rule.verdict, DISABLED, rule.created_by,
                rule.created_at, actor.name, at, rule.applied)


def apply_rules(client: Client, start: datetime, end: datetime,
                ingested_since: datetime | None = None, *, now: datetime | None = None,
                rule_ids: Sequence[str] | None = None) -> ActionResult:
    """Give each active rule's verdict to the matching subjects timed in [start, end) that
    have no verdict history (ingested since `ingested_since`, when given; of `rule_ids`
    only, when given): one action, source `rule`. Idempotent. Returns what it wrote
    (`labelled` 0 and no action id when nothing matched)."""
    start, end = check_range(start, end)
    now = store.now_or_server(client, now)
    live = [r for r in rules(client) if r.applies(now)
            and (rule_ids is None or r.rule_id in rule_ids)]
    if not live:
        return ActionResult("", 0)
    matches = store.rule_matches(client, start, end, now, ingested_since,
                                 [r.rule_id for r in live])
    if not matches.height:
        return ActionResult("", 0)
    action = new_id()
    out = []
    by_rule = {r.rule_id: r for r in live}
    for rule_id, rows in matches.partition_by("rule_id", as_dict=True).items():
        rule = by_rule[rule_id[0]]
        out += entries(rows.iter_rows(named=True), action_id=action, now=now,
                       verdict=rule.verdict.kind.value, reason=rule.verdict.reason,
                       expires_at=rule.verdict.expires_at, source=RULE,
                       rule_id=rule.rule_id, analyst=rule.created_by)
    return ActionResult(action, store.append_history(client, out))
