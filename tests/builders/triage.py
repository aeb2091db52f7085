"""Triage subjects inserted straight into a test's database: three fingerprint groups of denies,
warns and an open violation, and events that are not subjects (allows, errors, a remediated
violation, one opened before the range, one at its end), around Monday 2026-11-02.

Group A (`API`): d1, d2, d3 deny, w1 warn, v1 open violation; team payments, namespaces shop
and shop-canary, severities up to critical; d1 is stored twice (a duplicate the engine has
not merged yet). Group B (`WEB`): d4 deny, team identity, environment staging. Group C
(`LATEST`): d5 deny of another policy, cluster us-1."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.builders.rows import dec, ev, insert_decisions, insert_events
from triage import Fingerprint

UTC = timezone.utc


def T(text: str) -> datetime:
    """'11-02 10:00' in 2026, UTC."""
    return datetime.fromisoformat(f"2026-{text}").replace(tzinfo=UTC)


START, END = T("11-02 09:00"), T("11-02 12:00")  # the range the tests read
NOW = T("11-02 12:00")
API = Fingerprint("k8s.require-non-root", "check-user", "Pod", "api", "container runs as root")
WEB = Fingerprint("k8s.require-non-root", "check-user", "Pod", "web", "container runs as root")
LATEST = Fingerprint("k8s.disallow-latest-tag", "pin-tag", "Deployment", "job",
                     "image uses the latest tag")


def fields(fingerprint: Fingerprint, **extra) -> dict:
    """Event columns carrying a fingerprint (and any other columns)."""
    return {"policy_id": fingerprint.policy_id, "rule": fingerprint.rule,
            "resource_kind": fingerprint.resource_kind,
            "resource_name": fingerprint.resource_name, "reason": fingerprint.reason,
            "engine": "kyverno", **extra}


def deny(uid: str, when: datetime, fingerprint: Fingerprint = API, outcome: str = "deny",
         **extra) -> dict:
    return dec(when, outcome, event_id=uid, **fields(fingerprint, **extra))


def violation(vid: str, status: str, when: datetime, fingerprint: Fingerprint = API,
              **extra) -> dict:
    return ev("policy.violation", when, violation_id=vid, violation_status=status,
              **fields(fingerprint, **extra))


def seed(client) -> None:
    m = timedelta(minutes=1)
    shop = {"namespace": "shop"}
    insert_decisions(client, [
        deny("d1", T("11-02 10:00"), severity="medium", **shop),
        deny("d2", T("11-02 10:00") + m, severity="high", namespace="shop-canary"),
        deny("d3", T("11-02 10:00") + 2 * m, severity="low", **shop),
        deny("w1", T("11-02 10:00") + 3 * m, outcome="warn", severity="low", **shop),
        deny("a1", T("11-02 10:30"), outcome="allow", **shop),      # allowed: no subject
        deny("e1", T("11-02 10:31"), outcome="error", **shop),      # an error: no subject
        deny("d6", END, **shop),                                    # at the end: out
        deny("d4", T("11-02 10:10"), WEB, team="identity", environment="staging"),
        deny("d5", T("11-02 10:20"), LATEST, cluster="us-1", severity="high"),
    ])
    # a duplicate of d1 in a part of its own: stored twice until the engine merges them
    insert_decisions(client, [deny("d1", T("11-02 10:00"), severity="medium", **shop)])
    insert_events(client, [
        violation("v1", "opened", T("11-02 10:04"), severity="critical", **shop),
        violation("v1", "updated", T("11-02 10:05"), severity="critical", **shop),
        violation("v2", "opened", T("11-02 10:06")),                  # remediated: closed
        violation("v2", "remediated", T("11-02 10:07")),
        violation("v3", "opened", T("11-02 08:00")),                  # before the range
    ])
