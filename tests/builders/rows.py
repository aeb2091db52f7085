"""Rows inserted straight into a test's database (no collector; the materialized views fill
the rollups): decisions, events, triage verdicts and alert history from templates, a fresh
migrated database, and `exactly`, a matcher for stored (good, total, value) triples."""

from __future__ import annotations

import math
import os
import uuid
from datetime import datetime, timedelta

from opentelemetry.proto.logs.v1 import logs_pb2

from schemas.migrations import migrate
from tests.builders.otlp import kv

# what a triage subject's fingerprint and queue read, empty unless a test sets them
SUBJECT = {"rule": "", "resource_kind": "", "resource_name": "", "reason": "", "severity": "",
           "namespace": ""}
DECISION = {"event_id": None, "event_time": None, "team": "payments", "service": "checkout",
            "policy_id": "k8s.require-non-root", "engine": "opa", "environment": "prod",
            "cluster": "eu-1", "outcome": "allow", "latency_seconds": None, **SUBJECT}
EVENT = {"event_id": None, "event_time": None, "event_kind": "", "team": "payments",
         "service": "checkout", "policy_id": "", "engine": "", "environment": "prod",
         "cluster": "eu-1", **SUBJECT, "violation_id": "", "violation_status": "",
         "remediation_kind": "",
         "deploy_id": "", "gate_outcome": "", "agent_id": "", "agent_status": "",
         "heartbeat_interval_seconds": None, "workload_id": "", "workload_enforced": None,
         "image": "", "secret_fingerprint": ""}
VERDICT = {"subject_id": None, "subject_kind": "decision", "subject_time": None,
           "verdict": None, "reason": "", "analyst": "ana", "team": "payments",
           "service": "checkout", "policy_id": "k8s.require-non-root", "engine": "opa",
           "environment": "prod", "cluster": "eu-1", "triaged_at": None, "source": "hand",
           "rule_id": "", "expires_at": None}
ALERT = {"alert_id": None, "slo": "admission-availability", "severity": "page",
         "state": "firing", "at": None, "team": "payments", "service": "admission",
         "dimensions": {}}


def _rows(template: dict, rows: list[dict]) -> list[list]:
    out = []
    for row in rows:
        unknown = set(row) - set(template)
        assert not unknown, f"unknown columns {unknown}"
        full = {**template, **row}
        if "event_id" in full and full["event_id"] is None:
            full["event_id"] = uuid.uuid4().hex
        out.append([full[c] for c in template])
    return out


def dec(when: datetime, outcome: str = "allow", **columns) -> dict:
    return {"event_time": when, "outcome": outcome, **columns}


def ev(kind: str, when: datetime, **columns) -> dict:
    return {"event_kind": kind, "event_time": when, **columns}


def insert_decisions(client, rows: list[dict]) -> None:
    client.insert("policy_decisions", _rows(DECISION, rows), column_names=list(DECISION))


def insert_events(client, rows: list[dict]) -> None:
    client.insert("policy_events", _rows(EVENT, rows), column_names=list(EVENT))


def insert_verdicts(client, rows: list[dict]) -> None:
    client.insert("triage_verdicts", _rows(VERDICT, rows), column_names=list(VERDICT))


def insert_alerts(client, rows: list[dict]) -> None:
    client.insert("alert_events", _rows(ALERT, rows), column_names=list(ALERT))


def fresh_database(client) -> str:
    """A new migrated database, made the client's default (like the `database` fixture)."""
    name = f"sli_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    client.command(f"CREATE DATABASE {name}")
    migrate(client, name)
    client.database = name
    return name


def record(kind: str, when: datetime, uid: str, attributes: dict) -> logs_pb2.LogRecord:
    """One OTLP log record of event kind `kind` at `when` with a stable id."""
    nanos = int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
    attrs = {"log.record.uid": uid, **attributes}
    return logs_pb2.LogRecord(time_unix_nano=nanos, event_name=kind,
                              attributes=[kv(k, v) for k, v in attrs.items()])


class exactly:  # noqa: N801 - reads as a matcher: `got == exactly((1, 2, 0.5))`
    """(good, total, value) equal to `expected` up to float rounding; None only equals None."""

    def __init__(self, expected: tuple):
        self.expected = tuple(expected)

    def __eq__(self, got) -> bool:
        got = tuple(got) if got is not None else None
        return got is not None and len(got) == len(self.expected) and all(
            (e is None and g is None) or (e is not None and g is not None and math.isclose(
                g, e, rel_tol=1e-9, abs_tol=1e-12)) for g, e in zip(got, self.expected))

    def __repr__(self) -> str:
        return repr(self.expected)


# -- random event sets (property tests): a few teams, every outcome -----------------------------

TEAMS = ["payments", "identity", "search"]
OUTCOMES = ["allow", "deny", "warn", "error"]


def to_decisions(at: datetime, rows) -> list[dict]:
    return [{"event_time": at + timedelta(milliseconds=ms), "team": team, "outcome": outcome,
             "latency_seconds": latency} for ms, team, outcome, latency in rows]


def insert_all(client, at: datetime, kinds: dict) -> None:
    def t(ms):
        return at + timedelta(milliseconds=ms)

    if kinds["decisions"]:
        insert_decisions(client, to_decisions(at, kinds["decisions"]))
    events = [ev("deploy.gate", t(ms), team=tm, deploy_id=f"g{i}", gate_outcome=o)
              for i, (ms, tm, o) in enumerate(kinds["gates"])]
    events += [ev("workload.inventory", t(ms), team=tm, workload_id=w, workload_enforced=e,
                  image=img) for ms, tm, w, e, img in kinds["inventory"]]
    events += [ev("sbom.generated", t(ms), image=img) for ms, img in kinds["sboms"]]
    events += [ev("agent.heartbeat", t(ms), agent_id=a, agent_status=s,
                  heartbeat_interval_seconds=iv) for ms, a, s, iv in kinds["beats"]]
    if events:
        insert_events(client, events)
    if kinds["verdicts"]:
        insert_verdicts(client, [
            {"subject_id": s, "subject_time": t(ms), "verdict": v, "team": tm,
             "triaged_at": t(ms) + timedelta(minutes=i)}
            for i, (ms, tm, s, v) in enumerate(kinds["verdicts"])])
    if kinds["alerts"]:
        insert_alerts(client, [{"alert_id": a, "at": t(ms), "severity": sev, "state": state}
                               for ms, a, sev, state in kinds["alerts"]])
