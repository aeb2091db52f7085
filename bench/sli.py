"""SLI batch benchmark: full backfill and one incremental run over 10M decisions in chDB.

What it measures (the issue's bar: full backfill of all SLIs, all windows, all dimensions over
10M decision events / 30 days <= 5 s on this machine, goal <= 2 s; one incremental minute run
<= 0.5 s; peak RSS):

* a fresh embedded store (`chdb://<tmp>`) is migrated, then filled *inside ClickHouse* with
  `INSERT ... SELECT FROM numbers(N)`: `--events` `policy.decision` rows spread over `--days`
  (5 teams, 50 services each in one team, 12 policies in 2 engines, 3 clusters in 2
  environments; outcomes allow 93% / deny 5% / warn 1.5% / error 0.5%; log-normal latency,
  1% without one), and the lifecycle kinds the other SLIs read: hourly `workload.inventory`
  of 500 workloads, `sbom.generated` per image version, `policy.violation` opened/remediated
  (auto/manual)/suppressed, `deploy.gate`, `agent.heartbeat` of 30 agents every 60 s,
  `drift.detected`, `secret.detected`, plus `triage_verdicts` and `alert_events` rows. The
  materialized views fill the rollups during the inserts; generation is timed apart, in a
  child process: the measured stages then open the stored data afresh, as
  `policyscope batch --backfill` does (see `generate_in_child` for why). Each
  event row is stamped with the ingest time it would have had (`ingested_at` = observed
  time + 1.5 s, never after the load), not the moment of the bulk load: a store whose every
  row was ingested a minute ago is no store the scheduler meets (to its report memo,
  `metrics.sources.events`, every row would be newly stored and re-read each minute).
* backfill: `metrics.jobs.backfill(client, timedelta(days=days), until=end, step=step)` --
  every SLI family, every window, every dimension, computed *and written* to `sli_values`;
* incremental: a minute of new decisions and heartbeats is inserted (untimed), then
  `metrics.jobs.run_incremental(client, end + k min, memo=memo)` is timed, with one `memo`
  kept across the runs as the scheduler keeps it (`metrics.scheduler.BatchScheduler`); k = 1
  is the first (cold) run after the backfill (it fills the memo), k = 2.. are warm runs;
* peak RSS of the measuring process (chDB runs in-process, so it includes ClickHouse; the
  generating child's for generation) per phase: the
  kernel's high-water mark, reset before each phase (/proc/self/clear_refs), and a 10 ms
  psutil sampler as a fallback;
* baseline: what a user would write without PolicyScope -- raw `policy_decisions` rows into
  pandas (`client.query_df`), then for each evaluation point and window a boolean mask and a
  `groupby` per dimension for M1 (non-error share) and the latency p50/p95/p99. It is timed
  against PolicyScope's computation of the same SLIs (`metrics.sli.decisions.compute` over
  the same points, same chunks as the backfill, rollup reads included). The baseline runs on
  `--baseline-points` points spread over the span and is extrapolated linearly to all of
  them (said so in the output); the like-for-like ratio on just those points is reported too,
  and the values are compared (M1 exactly, percentiles within the histogram's bucket width).

Run: `cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.sli --help`
The figures go to stdout as JSON and into the SLI section of `--output` (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import re
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
from bench.results import write_section
from bench import machine
from bench.machine import busy_seconds, cpu_model, wait_idle

ROOT = Path(__file__).resolve().parent.parent
SECTION_START = "<!-- bench:sli:start -->"
SECTION_END = "<!-- bench:sli:end -->"
TARGET_BACKFILL_S = 5.0
GOAL_BACKFILL_S = 2.0
TARGET_INCREMENTAL_S = 0.5
DATABASE = "bench"

# -- the fleet ------------------------------------------------------------------------------

TEAMS = ["payments", "checkout", "identity", "search", "platform"]
POLICIES = [  # the first 7 run in gatekeeper, the other 5 in kyverno
    "k8s.require-non-root", "k8s.disallow-privileged", "k8s.require-resource-limits",
    "k8s.allowed-registries", "k8s.disallow-latest-tag", "k8s.require-labels",
    "k8s.restrict-seccomp", "k8s.disallow-host-path", "k8s.require-probes",
    "k8s.disallow-capabilities", "k8s.require-network-policy", "k8s.block-nodeport"]
GATEKEEPER_POLICIES = 7
CLUSTERS = ["prod-eu-1", "prod-us-1", "staging-eu-1"]  # the first two are production
SERVICES = 50
WORKLOADS = 500
AGENTS = 30
IMAGE_VERSION_HOURS = 96  # each service rolls out a new image every 4 days
VIOLATIONS_PER_HOUR = 28
GATES_PER_HOUR = 85
DRIFTS_PER_HOUR = 4
SECRETS_PER_DAY = 20
VERDICTS_PER_DAY = 130
ALERTS_PER_DAY = 10


def _array(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def u(k: int, base: str = "number") -> str:
    """A uniform [0, 1) pseudo-random number per row (deterministic: a hash of row and k)."""
    return f"(intHash64({base} * 64 + {k}) / 18446744073709551616.0)"


def team(s: str) -> str:
    return f"{_array(TEAMS)}[({s}) % {len(TEAMS)} + 1]"


def service(s: str) -> str:
    return f"concat({team(s)}, '-svc-', leftPad(toString({s}), 2, '0'))"


def cluster(c: str) -> str:
    return f"{_array(CLUSTERS)}[({c}) + 1]"


def environment(c: str) -> str:
    return f"if(({c}) < 2, 'production', 'staging')"


def policy(p: str) -> str:
    return f"{_array(POLICIES)}[({p}) + 1]"


def engine(p: str) -> str:
    return f"if(({p}) < {GATEKEEPER_POLICIES}, 'gatekeeper', 'kyverno')"


def at_ms(ms: str) -> str:
    return f"fromUnixTimestamp64Milli(toInt64({ms}), 'UTC')"


def normal(k1: int, k2: int, base: str = "number") -> str:
    """A standard normal per row (Box-Muller over two of the uniforms)."""
    return (f"(sqrt(-2 * log(greatest({u(k1, base)}, 1e-12))) * "
            f"cos(2 * pi() * {u(k2, base)}))")


# -- generation (inside ClickHouse) ---------------------------------------------------------

def table_columns(client, table: str) -> list[str]:
    return [r[0] for r in client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = "
        "{t:String} ORDER BY position", parameters={"t": table}).result_rows]


INGEST_DELAY_MS = 1500  # observed -> stored: the collector's batching and insert


class Generator:
    """INSERT ... SELECT statements that synthesize the dataset; `end_ms` is exclusive."""

    def __init__(self, client, start_ms: int, end_ms: int, tag: str):
        self.client = client
        self.start_ms, self.end_ms = start_ms, end_ms
        self.span_ms = end_ms - start_ms
        self.tag = tag  # makes event ids unique per invocation
        self.columns = {t: set(table_columns(client, t)) for t in (
            "policy_decisions", "policy_events", "triage_verdicts", "alert_events")}
        from schemas.events import DECISIONS, EVENTS

        assert set(DECISIONS.column_names) | {"ingested_at"} == self.columns["policy_decisions"]
        assert set(EVENTS.column_names) | {"ingested_at"} == self.columns["policy_events"]

    def insert(self, table: str, exprs: dict[str, str], source: str, where: str = "1") -> int:
        unknown = set(exprs) - self.columns[table]
        assert not unknown, f"not columns of {table}: {unknown}"
        if "observed_time" in exprs and "ingested_at" not in exprs:
            # the ingest time the row would have had: observed, then stored by the
            # collector's next batch -- not the moment of this bulk load (no later than it)
            exprs = {**exprs, "ingested_at": f"least(now64(3, 'UTC'), {exprs['observed_time']}"
                                             f" + toIntervalMillisecond({INGEST_DELAY_MS}))"}
        before = int(self.client.command(f"SELECT count() FROM {table}"))
        select = ", ".join(f"{e} AS {c}" for c, e in exprs.items())
        self.client.command(f"INSERT INTO {table} ({', '.join(exprs)}) SELECT {select} "
                            f"FROM {source} WHERE {where}")
        return int(self.client.command(f"SELECT count() FROM {table}")) - before

    def decisions(self, n: int, start_ms: int | None = None, span_ms: int | None = None,
                  first: int = 0) -> int:
        """`n` decisions evenly over [start, start + span); ids numbered from `first`."""
        start_ms = self.start_ms if start_ms is None else start_ms
        span_ms = self.span_ms if span_ms is None else span_ms
        # The alias is visible in the rest of this SELECT: `number` below is already
        # number + first, so the position in [0, n) is `number - first`.
        source = f"""(SELECT number + {first} AS number,
            {start_ms} + toInt64((number - {first} + {u(0)}) * {span_ms} / {n}) AS g_ms,
            toUInt32(floor({SERVICES} * pow({u(1)}, 1.6))) AS g_s,
            toUInt32(floor({len(POLICIES)} * pow({u(2)}, 1.4))) AS g_p,
            multiIf({u(3)} < 0.45, 0, {u(3)} < 0.85, 1, 2) AS g_c,
            multiIf({u(4)} < 0.93, 'allow', {u(4)} < 0.98, 'deny', {u(4)} < 0.995, 'warn',
                    'error') AS g_outcome,
            {normal(5, 6)} AS g_z,
            {u(7)} AS g_u7, {u(8)} AS g_u8
            FROM numbers({n}))"""
        kinds = _array(["Pod", "Deployment", "StatefulSet", "Job", "Service"])
        return self.insert("policy_decisions", {
            "event_id": f"concat('d-{self.tag}-', toString(number))",
            "event_time": at_ms("g_ms"),
            "observed_time": at_ms("g_ms + 20 + toInt64(g_u8 * 200)"),
            "engine": engine("g_p"),
            "policy_id": policy("g_p"),
            "policy_version": "concat('v1.', toString(g_p % 3), '.0')",
            "rule": "concat('rule-', toString(number % 3))",
            "enforcement": "if(g_u8 < 0.8, 'enforce', 'audit')",
            "severity": f"{_array(['critical', 'high', 'medium', 'low', 'info'])}[g_p % 5 + 1]",
            "team": team("g_s"),
            "service": service("g_s"),
            "environment": environment("g_c"),
            "cluster": cluster("g_c"),
            "namespace": team("g_s"),
            "resource_kind": f"{kinds}[number % 5 + 1]",
            "resource_name": f"concat({service('g_s')}, '-', lower(hex(intHash32(number) % 4096)))",
            "resource_id": f"concat({team('g_s')}, '/', {service('g_s')})",
            "actor": f"concat('system:serviceaccount:', {team('g_s')}, ':deployer')",
            "reason": f"if(g_outcome = 'allow', '', concat('violates ', {policy('g_p')}))",
            "trace_id": "if(g_u7 < 0.3, lower(hex(intHash64(number))), '')",
            "outcome": "g_outcome",
            # log-normal, median ~4 ms; kyverno 1.5x slower, errors 4x; 1% report none
            "latency_seconds": "if(g_u7 > 0.99, NULL, exp(-5.5 + 0.8 * g_z) * "
                               f"if(g_p < {GATEKEEPER_POLICIES}, 1.0, 1.5) * "
                               "if(g_outcome = 'error', 4.0, 1.0))",
        }, source)

    def heartbeats(self, first_minute: int, minutes: int) -> int:
        """Every agent beats every 60 s; ~0.3% of agent-hours are silent (an outage)."""
        source = f"""(SELECT number,
            number % {AGENTS} AS g_a, intDiv(number, {AGENTS}) + {first_minute} AS g_m,
            {self.start_ms} + g_m * 60000 + g_a * 1900 AS g_ms
            FROM numbers({AGENTS * minutes}))"""
        return self.insert("policy_events", {
            "event_id": f"concat('hb-{self.tag}-', toString(g_a), '-', toString(g_m))",
            "event_time": at_ms("g_ms"), "observed_time": at_ms("g_ms + 5"),
            "event_kind": "'agent.heartbeat'",
            "engine": "if(g_a % 2 = 0, 'gatekeeper', 'kyverno')",
            "team": team("g_a"), "cluster": cluster("g_a % 3"),
            "environment": environment("g_a % 3"),
            "agent_id": f"concat('agent-', {cluster('g_a % 3')}, '-', toString(g_a))",
            "agent_status": f"multiIf({u(1, 'g_a * 1000003 + g_m')} < 0.985, 'healthy', "
                            f"{u(1, 'g_a * 1000003 + g_m')} < 0.995, 'degraded', 'unhealthy')",
            "heartbeat_interval_seconds": "60.0", "dropped_events": "toUInt64(0)",
        }, source, f"intHash64(g_a * 100003 + intDiv(g_m, 60)) % 300 != 0 AND g_ms < "
                   f"{self.start_ms + (first_minute + minutes) * 60000}")

    def lifecycle(self) -> dict[str, int]:
        hours = self.span_ms // 3_600_000
        days = max(1, self.span_ms // 86_400_000)
        start, end, span = self.start_ms, self.end_ms, self.span_ms
        counts = {}
        # Workloads: w -> service w % 50 (so team), a cluster, an image of its service that
        # rolls every 4 days; enforcement is on for ~75% and turned on for more over the month.
        offset = f"(intHash64(g_s + 1000) % {IMAGE_VERSION_HOURS})"
        image = (f"concat('reg.example.com/', {service('g_s')}, ':1.', "
                 f"toString(intDiv(toInt64(g_h) + {offset}, {IMAGE_VERSION_HOURS})))")
        counts["workload.inventory"] = self.insert("policy_events", {
            "event_id": f"concat('inv-{self.tag}-', toString(number))",
            "event_time": at_ms("g_ms"), "observed_time": at_ms("g_ms + 5"),
            "event_kind": "'workload.inventory'", "engine": "'gatekeeper'",
            "team": team("g_s"), "service": service("g_s"), "namespace": team("g_s"),
            "cluster": cluster("g_c"), "environment": environment("g_c"),
            "resource_kind": "'Deployment'", "resource_name": "g_wid",
            "workload_id": "g_wid", "image": image,
            "workload_enforced": f"toBool(intHash64(g_w + 7) % 100 < 75 OR (g_h > "
                                 f"{hours // 2} + intHash64(g_w + 9) % {max(1, hours // 2)} "
                                 "AND intHash64(g_w + 11) % 100 < 60))",
        }, f"""(SELECT number, number % {WORKLOADS} AS g_w, intDiv(number, {WORKLOADS}) AS g_h,
                g_w % {SERVICES} AS g_s, intHash64(g_w) % 3 AS g_c,
                concat('wl-', toString(g_w)) AS g_wid,
                {start} + g_h * 3600000 + (g_w * 7 % 3600) * 1000 AS g_ms
                FROM numbers({WORKLOADS * hours}))""")
        # An SBOM for ~85% of image versions, 30 min after the version rolls out (version 0 is
        # older than the span, its SBOM too).
        versions = hours // IMAGE_VERSION_HOURS + 2
        counts["sbom.generated"] = self.insert("policy_events", {
            "event_id": f"concat('sbom-{self.tag}-', toString(number))",
            "event_time": at_ms("g_ms"), "observed_time": at_ms("g_ms + 5"),
            "event_kind": "'sbom.generated'", "engine": "'cyclonedx'",
            "team": team("g_s"), "service": service("g_s"),
            "image": f"concat('reg.example.com/', {service('g_s')}, ':1.', toString(g_v))",
            "sbom_format": "if(g_s % 4 = 0, 'SPDX', 'CycloneDX')",
            "sbom_components": "toUInt64(40 + intHash64(number) % 860)",
        }, f"""(SELECT number, number % {SERVICES} AS g_s, intDiv(number, {SERVICES}) AS g_v,
                {start} + (toInt64(g_v) * {IMAGE_VERSION_HOURS} - {offset}) * 3600000
                    + 1800000 AS g_ms
                FROM numbers({SERVICES * versions}))""",
            f"g_ms < {end} AND intHash64(number + 555) % 100 < 85")
        # Violations: opened uniformly; 85% remediated (60% auto after ~10 min, 40% manual
        # after ~1.5 days), 3% suppressed after 3 days, the rest still open.
        n_viol = VIOLATIONS_PER_HOUR * hours
        viol_source = f"""(SELECT number,
            {start} + toInt64({u(0)} * {span}) AS g_open,
            toUInt32(floor({SERVICES} * pow({u(1)}, 1.6))) AS g_s,
            toUInt32(floor({len(POLICIES)} * pow({u(2)}, 1.4))) AS g_p,
            multiIf({u(3)} < 0.45, 0, {u(3)} < 0.85, 1, 2) AS g_c,
            {u(4)} AS g_r, {u(5)} < 0.6 AS g_auto,
            multiIf(g_r < 0.85, g_open + toInt64(1000 * if(g_auto,
                        exp(log(600) + 0.8 * {normal(6, 7)}),
                        exp(log(129600) + 0.9 * {normal(6, 7)}))),
                    g_r < 0.88, g_open + 3 * 86400000, 0) AS g_close
            FROM numbers({n_viol}))"""
        viol_common = {
            "event_kind": "'policy.violation'", "engine": engine("g_p"),
            "policy_id": policy("g_p"), "team": team("g_s"), "service": service("g_s"),
            "namespace": team("g_s"), "cluster": cluster("g_c"),
            "environment": environment("g_c"),
            "severity": f"{_array(['critical', 'high', 'medium', 'low', 'info'])}[g_p % 5 + 1]",
            "resource_kind": "'Deployment'",
            "resource_name": f"concat({service('g_s')}, '-', toString(number % 7))",
            "violation_id": f"concat('viol-{self.tag}-', toString(number))",
        }
        counts["policy.violation opened"] = self.insert("policy_events", {
            "event_id": f"concat('vo-{self.tag}-', toString(number))",
            "event_time": at_ms("g_open"), "observed_time": at_ms("g_open + 5"),
            **viol_common, "violation_status": "'opened'"}, viol_source)
        counts["policy.violation closed"] = self.insert("policy_events", {
            "event_id": f"concat('vc-{self.tag}-', toString(number))",
            "event_time": at_ms("g_close"), "observed_time": at_ms("g_close + 5"),
            **viol_common,
            "violation_status": "if(g_r < 0.85, 'remediated', 'suppressed')",
            "remediation_kind": "if(g_r < 0.85, if(g_auto, 'auto', 'manual'), '')",
        }, viol_source, f"g_close > 0 AND g_close < {end}")
        # Deploy gates: passed 90% / blocked 8% / overridden 2% (blocking policy named).
        counts["deploy.gate"] = self.insert("policy_events", {
            "event_id": f"concat('gate-{self.tag}-', toString(number))",
            "event_time": at_ms("g_ms"), "observed_time": at_ms("g_ms + 5"),
            "event_kind": "'deploy.gate'", "engine": "'conftest'",
            "team": team("g_s"), "service": service("g_s"), "namespace": team("g_s"),
            "cluster": cluster("g_c"), "environment": environment("g_c"),
            "policy_id": f"if(g_o = 'passed', '', {policy('g_p')})",
            "deploy_id": f"concat('deploy-{self.tag}-', toString(number))",
            "gate_outcome": "g_o",
        }, f"""(SELECT number,
                {start} + toInt64((number + {u(0)}) * {span} / {GATES_PER_HOUR * hours}) AS g_ms,
                toUInt32(floor({SERVICES} * pow({u(1)}, 1.6))) AS g_s,
                toUInt32(floor({len(POLICIES)} * pow({u(2)}, 1.4))) AS g_p,
                multiIf({u(3)} < 0.45, 0, {u(3)} < 0.85, 1, 2) AS g_c,
                multiIf({u(4)} < 0.90, 'passed', {u(4)} < 0.98, 'blocked', 'overridden') AS g_o
                FROM numbers({GATES_PER_HOUR * hours}))""")
        counts["agent.heartbeat"] = self.heartbeats(0, span // 60_000)
        counts["drift.detected"] = self.insert("policy_events", {
            "event_id": f"concat('drift-{self.tag}-', toString(number))",
            "event_time": at_ms("g_ms"), "observed_time": at_ms("g_ms + 5"),
            "event_kind": "'drift.detected'", "engine": "'argocd'",
            "team": team("g_s"), "service": service("g_s"), "namespace": team("g_s"),
            "cluster": cluster("g_c"), "environment": environment("g_c"),
            "resource_kind": "'Deployment'", "resource_name": service("g_s"),
            "drift_field": f"{_array(['spec.replicas', 'spec.template.spec.containers[0].image', 'metadata.labels.team'])}[number % 3 + 1]",
        }, f"""(SELECT number, {start} + toInt64({u(0)} * {span}) AS g_ms,
                toUInt32(floor({SERVICES} * pow({u(1)}, 1.6))) AS g_s,
                multiIf({u(3)} < 0.45, 0, {u(3)} < 0.85, 1, 2) AS g_c
                FROM numbers({DRIFTS_PER_HOUR * hours}))""")
        counts["secret.detected"] = self.insert("policy_events", {
            "event_id": f"concat('secret-{self.tag}-', toString(number))",
            "event_time": at_ms("g_ms"), "observed_time": at_ms("g_ms + 5"),
            "event_kind": "'secret.detected'", "engine": "'gitleaks'",
            "team": team("g_s"), "service": service("g_s"),
            "cluster": cluster("g_c"), "environment": environment("g_c"),
            # the same secret is often found again (another commit, another scan)
            "secret_fingerprint": f"concat('fp-', toString(intHash64(number + 3) % "
                                  f"{max(2, SECRETS_PER_DAY * days // 2)}))",
            "secret_rule": f"{_array(['aws-access-key', 'generic-api-key', 'private-key'])}"
                           "[number % 3 + 1]",
            "repository": f"concat('https://git.example.com/', {service('g_s')})",
            "file_path": "concat('config/settings-', toString(number % 11), '.yaml')",
        }, f"""(SELECT number, {start} + toInt64({u(0)} * {span}) AS g_ms,
                toUInt32(floor({SERVICES} * pow({u(1)}, 1.6))) AS g_s,
                multiIf({u(3)} < 0.45, 0, {u(3)} < 0.85, 1, 2) AS g_c
                FROM numbers({SECRETS_PER_DAY * days}))""")
        # Triage verdicts on denies (80%) and violations; 15% false positives.
        counts["triage_verdicts"] = self.insert("triage_verdicts", {
            "subject_id": f"concat(if(g_dec, 'd-', 'viol-'), '{self.tag}-', toString(number))",
            "subject_kind": "if(g_dec, 'decision', 'violation')",
            "subject_time": at_ms("g_ms"),
            "verdict": f"if({u(4)} < 0.15, 'false_positive', 'true_positive')",
            "reason": "''", "analyst": "concat('analyst-', toString(number % 6))",
            "team": team("g_s"), "service": service("g_s"), "policy_id": policy("g_p"),
            "engine": engine("g_p"), "cluster": cluster("g_c"),
            "environment": environment("g_c"),
            "triaged_at": at_ms(f"g_ms + 3600000 + toInt64({u(5)} * 86400000)"),
        }, f"""(SELECT number, {start} + toInt64({u(0)} * {span}) AS g_ms,
                toUInt32(floor({SERVICES} * pow({u(1)}, 1.6))) AS g_s,
                toUInt32(floor({len(POLICIES)} * pow({u(2)}, 1.4))) AS g_p,
                multiIf({u(3)} < 0.45, 0, {u(3)} < 0.85, 1, 2) AS g_c,
                {u(6)} < 0.8 AS g_dec
                FROM numbers({VERDICTS_PER_DAY * days}))""")
        # Alerts: each fires once and resolves 5 min..6 h later; 30% page, 70% ticket.
        alerts = ALERTS_PER_DAY * days
        alert_source = f"""(SELECT number % {alerts} AS g_n, intDiv(number, {alerts}) AS g_st,
            {start} + toInt64({u(0, 'g_n')} * {span}) + if(g_st = 1,
                300000 + toInt64({u(1, 'g_n')} * 21300000), 0) AS g_ms,
            toUInt32(floor({SERVICES} * pow({u(2, 'g_n')}, 1.6))) AS g_s,
            {_array(['M1', 'L_p99', 'M6', 'M8', 'M2'])}[g_n % 5 + 1] AS g_slo
            FROM numbers({2 * alerts}))"""
        counts["alert_events"] = self.insert("alert_events", {
            "alert_id": f"concat('alert-{self.tag}-', toString(g_n))",
            "slo": "g_slo",
            "severity": f"if({u(3, 'g_n')} < 0.3, 'page', 'ticket')",
            "state": "if(g_st = 0, 'firing', 'resolved')", "at": at_ms("g_ms"),
            "team": team("g_s"), "service": service("g_s"),
            "dimensions": f"map('team', {team('g_s')})",
        }, alert_source, f"g_ms < {end}")
        return counts


# -- measuring ------------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _hwm_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set size (VmHWM) to the current RSS
        return True
    except OSError:
        return False


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class PeakRss:
    """Peak RSS of this process over a `with` block: VmHWM (reset on entry) or sampled."""

    def __init__(self):
        self.proc = psutil.Process()
        self.peak = 0
        self.start = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                pass

    def __enter__(self) -> "PeakRss":
        gc.collect()
        self.hwm = _hwm_reset()
        self.start = self.proc.memory_info().rss
        self.peak = self.start
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.hwm:
            self.peak = max(self.peak, _status_kib("VmHWM") * 1024)

    @property
    def mib(self) -> float:
        return round(self.peak / 2**20, 1)

    @property
    def start_mib(self) -> float:
        return round(self.start / 2**20, 1)


@contextmanager
def stage_times(stages: dict[str, float]):
    """Time each SLI family's `compute`, validation and the write while jobs run (the module
    attributes are wrapped for the block and restored after; nothing else changes)."""
    from metrics import jobs, sli_writer

    saved = []

    def timed(owner, attr, name):
        original = getattr(owner, attr)

        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - t

        saved.append((owner, attr, original))
        setattr(owner, attr, wrapper)

    for family in jobs.FAMILIES:
        timed(family, "compute", family.__name__.rsplit(".", 1)[1])
    timed(jobs, "validate_sli_values", "validate (pandera)")
    timed(sli_writer, "write", "write sli_values")
    try:
        yield stages
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


def backfill_points(end: datetime, span: timedelta, step: timedelta) -> list[datetime]:
    """The evaluation points `metrics.jobs.backfill` uses (same formula)."""
    count = int(span / step)
    points = [end - step * i for i in range(count, -1, -1)]
    return [p for p in points if p > end - span] or [end]


def parse_step(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+)\s*([smhd])", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"step {text!r}: expected e.g. 30m, 1h, 1d")
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})


def format_step(step: timedelta) -> str:
    seconds = int(step.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_count(text: str) -> int:
    return int(text.replace("_", "").replace(",", ""))


# -- the pandas baseline --------------------------------------------------------------------

BASELINE_DIMENSIONS = ["team", "service", "policy_id", "engine", "environment", "cluster"]
BASELINE_PERCENTILES = {"L_p50": 0.5, "L_p95": 0.95, "L_p99": 0.99}


def baseline_read(client):
    """Raw rows as a user would load them: `query_df` of the columns the SLIs need."""
    df = client.query_df("SELECT event_time, outcome, latency_seconds, team, service, "
                         "policy_id, engine, environment, cluster FROM policy_decisions")
    df["is_error"] = df["outcome"] == "error"
    return df


def baseline_window_start(at, window: str, lengths: dict):
    length = lengths[window]
    if length is None:
        return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return at - length


def baseline_compute(df, points: list[datetime], windows: list[str], lengths: dict):
    """M1 and exact latency percentiles per (point, window, dimension value), the direct
    way: a boolean mask per window, then a groupby per dimension. Returns a long frame."""
    import pandas as pd

    naive = df["event_time"].dt.tz is None
    out = []
    for at in points:
        at_ts = pd.Timestamp(at.replace(tzinfo=None) if naive else at)
        for window in windows:
            start = baseline_window_start(at, window, lengths)
            start_ts = pd.Timestamp(start.replace(tzinfo=None) if naive else start)
            sub = df[(df["event_time"] >= start_ts) & (df["event_time"] < at_ts)]
            if not len(sub):
                continue
            parts = []
            overall = pd.DataFrame({
                "total": [len(sub)], "errors": [int(sub["is_error"].sum())],
                **{k: [sub["latency_seconds"].quantile(q)]
                   for k, q in BASELINE_PERCENTILES.items()}},
                index=pd.Index([""], name="dimension_value"))
            parts.append(overall.assign(dimension=""))
            for dim in BASELINE_DIMENSIONS:
                grouped = sub.groupby(dim, observed=True)
                counts = grouped["is_error"].agg(total="size", errors="sum")
                lat = grouped["latency_seconds"].quantile(
                    list(BASELINE_PERCENTILES.values())).unstack()
                lat.columns = list(BASELINE_PERCENTILES)
                part = counts.join(lat)
                part.index = part.index.astype(str).rename("dimension_value")
                parts.append(part.assign(dimension="policy" if dim == "policy_id" else dim))
            frame = pd.concat(parts).reset_index()
            frame["M1"] = 1 - frame["errors"] / frame["total"]
            frame["at"] = at
            frame["window"] = window
            out.append(frame)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def compare_values(baseline, ours) -> dict:
    """Baseline vs PolicyScope values on the same (point, window, dimension value)."""
    import numpy as np
    import pandas as pd
    import polars as pl

    wide = ours.filter(pl.col("sli").is_in(["M1", *BASELINE_PERCENTILES])).pivot(
        on="sli", index=["at", "window", "dimension", "dimension_value"], values="value")
    theirs = wide.to_pandas()
    theirs["at"] = pd.to_datetime(theirs["at"], utc=True).astype("datetime64[ns, UTC]")
    base = baseline.copy()
    base["at"] = pd.to_datetime(base["at"], utc=True).astype("datetime64[ns, UTC]")
    merged = base.merge(theirs, on=["at", "window", "dimension", "dimension_value"],
                        how="outer", suffixes=("_pandas", "_ps"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    result = {"rows_pandas": int(len(base)), "rows_policyscope": int(len(theirs)),
              "rows_matched": int(len(both)),
              "m1_max_abs_diff": float(np.nanmax(np.abs(both["M1_pandas"] - both["M1_ps"])))
              if len(both) else None}
    # Exact quantiles of a handful of values and a histogram's interpolation can differ a lot;
    # the bound that matters (one bucket, <= 25%) is for cells with many latencies.
    big = both[both["total"] >= 1000]
    result["cells_with_1000_plus_decisions"] = int(len(big))
    for key in BASELINE_PERCENTILES:
        for name, part in (("", both), ("_1000plus", big)):
            rel = (np.abs(part[f"{key}_ps"] - part[f"{key}_pandas"])
                   / part[f"{key}_pandas"]).dropna()
            result[f"{key}_rel_diff_median{name}"] = round(float(rel.median()), 4) \
                if len(rel) else None
            result[f"{key}_rel_diff_max{name}"] = round(float(rel.max()), 4) if len(rel) else None
    return result


# -- the run --------------------------------------------------------------------------------

def code_version() -> str:
    return machine.code_version("metrics", "schemas")


def code_digest() -> str:
    """A short hash of metrics/ and schemas/ as they are on disk when the run starts (the code
    under test may be edited while a long run goes on; this pins what was imported)."""
    import hashlib

    digest = hashlib.sha1()
    for path in sorted([*ROOT.glob("metrics/**/*.py"), *ROOT.glob("schemas/**/*.py"),
                        *ROOT.glob("schemas/**/*.sql")]):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]






def generate_in_child(workdir: Path, events: int, end: datetime, span: timedelta,
                      tag: str) -> dict:
    """Stage 1 in a child process (`--generate-into`): its figures, as `generate` returns
    them. The child's chDB engine is gone when the measured stages open the store: bulk
    loading and OPTIMIZE in the measuring process left its allocator holding the load's
    memory, and every later stage paid for it (backfill ~4.2 s -> ~4.6 s, measured)."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "bench.sli", "--generate-into", str(workdir), "--events",
         str(events), "--days", str(span.days), "--end", end.isoformat(), "--tag", tag],
        stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout)


def generate(workdir: Path, events: int, end: datetime, span: timedelta, tag: str) -> dict:
    """Migrate a fresh store in `workdir` and fill it (see the module docstring), then merge
    the rollups' parts; returns the figures of it."""
    from core.storage import connect
    from schemas.migrations import migrate

    client, _ = connect(f"chdb://{workdir / 'ch'}", DATABASE)
    migrate(client, DATABASE)
    start = end - span
    gen = Generator(client, int(start.timestamp() * 1000), int(end.timestamp() * 1000), tag)
    log(f"generating {events:,} decisions over {span.days} days into "
        f"chdb://{workdir / 'ch'} (a child process) ...")
    with PeakRss() as rss_gen:
        t = time.perf_counter()
        n_dec = gen.decisions(events)
        gen_dec_s = time.perf_counter() - t
        log(f"  {n_dec:,} decisions (and their rollups) in {gen_dec_s:.1f}s")
        t = time.perf_counter()
        counts = gen.lifecycle()
        gen_life_s = time.perf_counter() - t
    log(f"  lifecycle rows in {gen_life_s:.1f}s: " + ", ".join(
        f"{k} {v:,}" for k, v in counts.items()))
    sizes = {r[0]: int(r[1]) for r in client.query(
        "SELECT table, sum(rows) FROM system.parts WHERE database = currentDatabase() "
        "AND active GROUP BY table").result_rows}
    log("  rows per table: " + ", ".join(f"{k} {v:,}" for k, v in sorted(sizes.items())))
    t = time.perf_counter()
    rollups = [r[0] for r in client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = "
        "'AggregatingMergeTree' ORDER BY name").result_rows]
    for table in ("policy_events", *rollups):
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    optimize_s = time.perf_counter() - t
    sizes_merged = {r[0]: int(r[1]) for r in client.query(
        "SELECT table, sum(rows) FROM system.parts WHERE database = currentDatabase() "
        "AND active GROUP BY table").result_rows}
    log(f"  OPTIMIZE FINAL (merges the rollups' parts, as background merges would) in "
        f"{optimize_s:.1f}s; decisions_1m {sizes_merged.get('decisions_1m', 0):,} rows, "
        f"decisions_1h {sizes_merged.get('decisions_1h', 0):,} rows")
    client.close()
    return {"decisions": n_dec, "decisions_s": gen_dec_s, "life_s": gen_life_s,
            "counts": counts, "optimize_s": optimize_s, "sizes": sizes_merged,
            "peak_rss_mib": rss_gen.mib}


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def run(args) -> dict:
    version, digest = code_version(), code_digest()  # before the code under test is imported

    from metrics import jobs
    from metrics.sli import decisions
    from metrics.sli.base import Context
    from metrics.windows import WINDOWS
    from core.storage import connect

    workdir = Path(tempfile.mkdtemp(prefix="policyscope-bench-sli-"))
    result: dict = {}
    try:
        span = timedelta(days=args.days)
        now = datetime.now(timezone.utc)
        end = now.replace(minute=0, second=0, microsecond=0)  # a whole hour, as a cron'd
        start = end - span                                     # backfill would pick
        tag = f"{os.getpid():x}{time.time_ns():x}"

        # 1. generate, in a process of its own (the store is then opened afresh, as
        # `policyscope batch --backfill` opens an existing store)
        made = generate_in_child(workdir, args.events, end, span, tag)
        n_dec, gen_dec_s, gen_life_s = made["decisions"], made["decisions_s"], made["life_s"]
        counts, optimize_s, sizes_merged = made["counts"], made["optimize_s"], made["sizes"]
        client, _ = connect(f"chdb://{workdir / 'ch'}", DATABASE)
        gen = Generator(client, int(start.timestamp() * 1000), int(end.timestamp() * 1000), tag)

        # 2. backfill
        points = backfill_points(end, span, args.step)
        log(f"backfill: {len(points)} points every {format_step(args.step)} over {args.days} days, "
            f"{len(WINDOWS)} windows, chunks of {args.chunk} ...")
        stages_bf: dict[str, float] = {}
        wait_idle(args.wait_idle, args.wait_idle_timeout, log)
        load_at_backfill = round(os.getloadavg()[0], 2)
        machine_before, own_before = busy_seconds(), _own_cpu()
        profiler = cProfile.Profile() if args.profile else None
        t_bf = time.perf_counter()

        def progress(done: int, total: int) -> None:
            log(f"  {done}/{total} points  {time.perf_counter() - t_bf:6.2f}s")

        with PeakRss() as rss_bf, stage_times(stages_bf):
            if profiler:
                profiler.enable()
            t = time.perf_counter()
            report = jobs.backfill(client, span, until=end, step=args.step, chunk=args.chunk,
                                   progress=progress)
            backfill_s = time.perf_counter() - t
            if profiler:
                profiler.disable()
        bf_own_cpu = _own_cpu() - own_before
        bf_other_cores = max(0.0, (busy_seconds() - machine_before) - bf_own_cpu) / backfill_s
        log(f"backfill: {report.points} points, {report.rows:,} rows in {backfill_s:.2f}s "
            f"(peak RSS {rss_bf.mib} MiB)")
        if profiler:
            profiler.dump_stats(args.profile)
            log(f"  cProfile of the backfill written to {args.profile}")
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(30)

        # 3. incremental runs, each after a minute of new data
        per_minute = max(1, round(args.events / (span / timedelta(minutes=1))))
        incremental = []
        first_id = args.events
        wait_idle(args.wait_idle, args.wait_idle_timeout, log)
        machine_before, own_before, t_inc = busy_seconds(), _own_cpu(), time.perf_counter()
        memo: dict = {}  # kept between runs, as BatchScheduler keeps it
        for k in range(1, args.incremental_runs + 2):
            at = end + timedelta(minutes=k)
            gen.decisions(per_minute, int((at - timedelta(minutes=1)).timestamp() * 1000),
                          60_000, first_id)
            first_id += per_minute
            gen.heartbeats(int(span / timedelta(minutes=1)) + k - 1, 1)
            stages: dict[str, float] = {}
            with PeakRss() as rss_inc, stage_times(stages):
                t = time.perf_counter()
                inc = jobs.run_incremental(client, at, memo=memo)
                seconds = time.perf_counter() - t
            incremental.append({"at": at.isoformat(), "seconds": round(seconds, 3),
                                "points": inc.points, "late_points": inc.late_points,
                                "rows": inc.rows, "peak_rss_mib": rss_inc.mib,
                                "stages": {k2: round(v, 3) for k2, v in stages.items()}})
            log(f"incremental at end+{k}m ({'cold' if k == 1 else 'warm'}): "
                f"{inc.points} point(s), {inc.rows:,} rows in {seconds:.3f}s "
                f"(peak RSS {rss_inc.mib} MiB)")
        inc_wall = time.perf_counter() - t_inc
        inc_own = _own_cpu() - own_before
        inc_other_cores = max(0.0, (busy_seconds() - machine_before) - inc_own) / inc_wall
        cold = incremental[0]
        warm = incremental[1:]
        warm_median = statistics.median(r["seconds"] for r in warm) if warm else None

        # 4. the comparable part of PolicyScope: M1 + L over the same points and chunks
        with PeakRss() as rss_dec:
            t = time.perf_counter()
            for i in range(0, len(points), args.chunk):
                decisions.compute(Context(client, points[i:i + args.chunk], list(WINDOWS)))
            ps_dec_s = time.perf_counter() - t
        log(f"PolicyScope M1 + L_p50/p95/p99 (+ L_under) only (decisions.compute), "
            f"{len(points)} points: {ps_dec_s:.2f}s")

        baseline: dict | None = None
        if not args.skip_baseline:
            import numpy as np

            k = min(args.baseline_points, len(points))
            idx = sorted({int(round(x)) for x in np.linspace(0, len(points) - 1, k)})
            sample = [points[i] for i in idx]
            wait_idle(args.wait_idle, args.wait_idle_timeout, log)
            t = time.perf_counter()
            ours_sample = decisions.compute(Context(client, sample, list(WINDOWS)))
            ps_sample_s = time.perf_counter() - t
            log("baseline: reading raw policy_decisions into pandas (query_df) ...")
            with PeakRss() as rss_base:
                t = time.perf_counter()
                df = baseline_read(client)
                read_s = time.perf_counter() - t
                rows_read = len(df)
                log(f"  {len(df):,} rows in {read_s:.2f}s; computing {len(sample)} of "
                    f"{len(points)} points x {len(WINDOWS)} windows x "
                    f"{len(BASELINE_DIMENSIONS) + 1} dimension sets ...")
                t = time.perf_counter()
                per_point = []
                frames = []
                for at in sample:
                    t1 = time.perf_counter()
                    frames.append(baseline_compute(df, [at], list(WINDOWS), WINDOWS))
                    per_point.append(time.perf_counter() - t1)
                    log(f"  point {at:%Y-%m-%d %H:%M}: {per_point[-1]:.2f}s")
                compute_s = time.perf_counter() - t
            base_frame = __import__("pandas").concat(frames, ignore_index=True)
            del df
            gc.collect()
            agreement = compare_values(base_frame, ours_sample)
            estimate_all = read_s + compute_s * len(points) / len(sample)
            baseline = {
                "what": "M1 and latency p50/p95/p99, all windows, overall + 6 dimensions",
                "read_seconds": round(read_s, 2),
                "rows_read": rows_read,
                "sample_points": len(sample),
                "compute_seconds_sample": round(compute_s, 2),
                "seconds_per_point_mean": round(statistics.fmean(per_point), 3),
                "seconds_per_point_min": round(min(per_point), 3),
                "seconds_per_point_max": round(max(per_point), 3),
                "measured_seconds_sample": round(read_s + compute_s, 2),
                "policyscope_seconds_sample": round(ps_sample_s, 3),
                "ratio_sample_measured": round((read_s + compute_s) / ps_sample_s, 1),
                "extrapolated": len(sample) < len(points),
                "estimated_seconds_all_points": round(estimate_all, 1),
                "policyscope_decisions_seconds_all_points": round(ps_dec_s, 3),
                "ratio_all_points": round(estimate_all / ps_dec_s, 1),
                "ratio_vs_full_backfill": round(estimate_all / backfill_s, 1),
                "peak_rss_mib": rss_base.mib,
                "agreement": agreement,
            }
            log(f"baseline: read {read_s:.2f}s + {compute_s:.2f}s for {len(sample)} points "
                f"-> est. {estimate_all:.0f}s for {len(points)} points; PolicyScope "
                f"{ps_dec_s:.2f}s -> {baseline['ratio_all_points']}x")

        result = {
            "events": args.events, "days": args.days, "step": format_step(args.step),
            "chunk": args.chunk, "end": end.isoformat(), "points": len(points),
            "windows": list(WINDOWS),
            "generate_decisions_seconds": round(gen_dec_s, 2),
            "generate_lifecycle_seconds": round(gen_life_s, 2),
            "generate_peak_rss_mib": made["peak_rss_mib"],
            "optimize_seconds": round(optimize_s, 2),
            "lifecycle_rows": counts,
            "table_rows": sizes_merged,
            "backfill_seconds": round(backfill_s, 3),
            "backfill_rows": report.rows,
            "backfill_peak_rss_mib": rss_bf.mib,
            "backfill_start_rss_mib": rss_bf.start_mib,
            "backfill_stages": {k: round(v, 3) for k, v in sorted(
                stages_bf.items(), key=lambda kv: -kv[1])},
            "backfill_other_processes_cores": round(bf_other_cores, 2),
            "backfill_load_average_1m_at_start": load_at_backfill,
            "incremental_other_processes_cores": round(inc_other_cores, 2),
            "incremental_cold_seconds": cold["seconds"],
            "incremental_warm_seconds_median": warm_median,
            "incremental_warm_seconds": [r["seconds"] for r in warm],
            "incremental_peak_rss_mib": max(r["peak_rss_mib"] for r in incremental),
            "incremental_runs": incremental,
            "incremental_new_decisions_per_minute": per_minute,
            "policyscope_decisions_seconds": round(ps_dec_s, 3),
            "policyscope_decisions_peak_rss_mib": rss_dec.mib,
            "baseline": baseline,
            "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                          / 1024, 1),
            "target_backfill_seconds": TARGET_BACKFILL_S,
            "goal_backfill_seconds": GOAL_BACKFILL_S,
            "target_incremental_seconds": TARGET_INCREMENTAL_S,
            "cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "versions": _versions(),
            "code_version": version,
            "code_digest": digest,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": args.command_line,
            "data_dir": str(workdir) if args.keep else None,
        }
        result["backfill_verdict"] = "PASS" if backfill_s <= TARGET_BACKFILL_S else "FAIL"
        result["backfill_goal_verdict"] = "PASS" if backfill_s <= GOAL_BACKFILL_S else "FAIL"
        inc_s = warm_median if warm_median is not None else cold["seconds"]
        result["incremental_verdict"] = "PASS" if inc_s <= TARGET_INCREMENTAL_S else "FAIL"
        result["incremental_cold_verdict"] = "PASS" if cold["seconds"] <= TARGET_INCREMENTAL_S \
            else "FAIL"
        client.close()
        return result
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _versions() -> dict[str, str]:
    out = {}
    for name in ("chdb", "clickhouse_connect", "polars", "pandas", "pyarrow", "numpy"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing optional package is just not listed
            pass
    return out


def markdown(r: dict) -> str:
    b = r["baseline"]
    stages = " · ".join(f"{k} {v:.2f} s" for k, v in r["backfill_stages"].items())
    inc_rows = "\n".join(
        f"| end + {i + 1} min ({'cold' if i == 0 else 'warm'}) | {x['seconds']} s | "
        f"{x['points']} | {x['rows']:,} | {x['peak_rss_mib']} MiB |"
        for i, x in enumerate(r["incremental_runs"]))
    warm = r["incremental_runs"][1:] or r["incremental_runs"][:1]
    names = list(warm[0]["stages"])
    inc_stages = " · ".join(f"{n} {statistics.median(x['stages'].get(n, 0.0) for x in warm):.3f} s"
                            for n in sorted(names, key=lambda n: -statistics.median(
                                x["stages"].get(n, 0.0) for x in warm)))
    life = ", ".join(f"{k} {v:,}" for k, v in r["lifecycle_rows"].items())
    rows = r["table_rows"]
    if b:
        a = b["agreement"]
        label = (f"measured on {b['sample_points']} of {r['points']} points (spread evenly over "
                 f"the span) and **extrapolated** linearly to all {r['points']}"
                 if b["extrapolated"] else f"measured on all {r['points']} points")
        base_md = f"""
**Baseline: the same SLIs in plain pandas over raw rows.** What was compared: M1 and the
latency p50/p95/p99 for every window x (overall + team, service, policy, engine, environment,
cluster). Baseline = `client.query_df` of the 9 needed columns of all {r['events']:,} raw rows
({b['read_seconds']} s, once) + per point and window a boolean time mask and one `groupby` per
dimension (exact quantiles), {label}. PolicyScope = `metrics.sli.decisions.compute` (rollup reads
included; it also yields L_under) over the same points in the backfill's chunks of {r['chunk']}.

| | pandas baseline | PolicyScope | ratio |
|---|---|---|---|
| all {r['points']} points | {'~' if b['extrapolated'] else ''}{b['estimated_seconds_all_points']:,} s{' (extrapolated)' if b['extrapolated'] else ''} | {b['policyscope_decisions_seconds_all_points']} s | **{b['ratio_all_points']:,}x** |
| the {b['sample_points']} sampled points only (both measured) | {b['measured_seconds_sample']} s (read {b['read_seconds']} s + {b['compute_seconds_sample']} s) | {b['policyscope_seconds_sample']} s | {b['ratio_sample_measured']:,}x |
| baseline (extrapolated) vs the *whole* backfill (all SLIs, written) | ~{b['estimated_seconds_all_points']:,} s | {r['backfill_seconds']} s | {b['ratio_vs_full_backfill']:,}x |

Baseline per point: {b['seconds_per_point_mean']} s mean ({b['seconds_per_point_min']}–{b['seconds_per_point_max']} s;
later points have fuller 30d windows); peak RSS {b['peak_rss_mib']} MiB. Values agree:
{a['rows_matched']:,} of {a['rows_pandas']:,} baseline rows matched, M1 max |difference|
{a['m1_max_abs_diff']:.2g}; percentiles from the histogram vs exact: median relative difference
p50 {a['L_p50_rel_diff_median']:.1%} / p95 {a['L_p95_rel_diff_median']:.1%} / p99
{a['L_p99_rel_diff_median']:.1%}; max over the {a['cells_with_1000_plus_decisions']:,} cells with
>= 1,000 decisions {a['L_p50_rel_diff_max_1000plus']:.1%} / {a['L_p95_rel_diff_max_1000plus']:.1%} /
{a['L_p99_rel_diff_max_1000plus']:.1%} (log-linear interpolation inside a bucket, whose width is
<= 25%; over all cells, tiny groups included, the max is {a['L_p50_rel_diff_max']:.0%} /
{a['L_p95_rel_diff_max']:.0%} / {a['L_p99_rel_diff_max']:.0%}).
"""
    else:
        base_md = "\nBaseline skipped (`--skip-baseline`).\n"
    minute_vs_baseline = (
        f"| baseline, same run: one point of the pandas baseline (M1 + latency only, mean of "
        f"{b['sample_points']} points; below) vs the warm minute (every SLI, written) | "
        f"{b['seconds_per_point_mean']} s vs {r['incremental_warm_seconds_median']} s: "
        f"**{b['seconds_per_point_mean'] / r['incremental_warm_seconds_median']:,.1f}x** | | |\n"
        f"| baseline, same run: the pandas baseline over all points vs the backfill (every "
        f"SLI, written) | **{b['ratio_vs_full_backfill']:,}x** | | |\n") if b else ""
    return f"""{SECTION_START}
## SLI batch: backfill and incremental runs over {r['events']:,} decisions (chDB)

Measured {r['date']} at commit `{r['code_version']}` (metrics/ + schemas/ digest \
`{r.get('code_digest', '?')}`) on {r['cpu_count']} CPU(s) \
({r['cpu_model']}), {r['memory_gib']} GiB RAM, Python {r['python']}, chDB {r['versions'].get('chdb', '?')}, \
polars {r['versions'].get('polars', '?')}, pandas {r['versions'].get('pandas', '?')}.

```
{r['command']}
```

Data, generated inside ClickHouse (`INSERT ... SELECT FROM numbers()`, the materialized views
filling the rollups): {r['events']:,} `policy.decision` rows over {r['days']} days up to
{r['end']} (5 teams, 50 services, 12 policies, 2 engines, 2 environments, 3 clusters; allow 93% /
deny 5% / warn 1.5% / error 0.5%; log-normal latency) in {r['generate_decisions_seconds']} s,
and lifecycle rows in {r['generate_lifecycle_seconds']} s: {life}. Then `OPTIMIZE FINAL`
({r['optimize_seconds']} s) so the rollups are merged as background merges would leave them:
{", ".join(f"{name} {n:,}" for name, n in sorted(rows.items())
           if name.endswith(("_1m", "_1h")))} rows; policy_events {rows.get('policy_events', 0):,}.

| figure | value | target | verdict |
|---|---|---|---|
| full backfill: `jobs.backfill(30 days, step {r['step']})`, {r['points']} points x {len(r['windows'])} windows x all dimensions, every SLI, written ({r['backfill_rows']:,} rows) | **{r['backfill_seconds']} s** | <= {TARGET_BACKFILL_S:g} s (goal <= {GOAL_BACKFILL_S:g} s) | **{r['backfill_verdict']}** (goal: {r['backfill_goal_verdict']}) |
| one incremental minute `jobs.run_incremental(end + k min, memo=...)`, warm (median of {len(r['incremental_warm_seconds'])}) | **{r['incremental_warm_seconds_median']} s** | <= {TARGET_INCREMENTAL_S:g} s | **{r['incremental_verdict']}** |
| the same, cold (first run after the backfill; fills the memo) | {r['incremental_cold_seconds']} s | <= {TARGET_INCREMENTAL_S:g} s | {r['incremental_cold_verdict']} |
{minute_vs_baseline}| peak RSS of the process (chDB in-process) during the backfill | {r['backfill_peak_rss_mib']} MiB (at start {r['backfill_start_rss_mib']} MiB) | | |
| peak RSS during an incremental run | {r['incremental_peak_rss_mib']} MiB | | |
| peak RSS while generating the data | {r['generate_peak_rss_mib']} MiB | | |

Backfill time by stage (wall seconds; families in `metrics.jobs.FAMILIES`; they compute two at
a time while two writer threads run `write sli_values`, so the stages add up to more than the
backfill's wall time): {stages}.
Other processes used {r['backfill_other_processes_cores']} of the {r['cpu_count']} cores during the
backfill (1-min load average at its start {r['backfill_load_average_1m_at_start']}), and
{r['incremental_other_processes_cores']} during the incremental runs.

Incremental runs (before each, a minute of new data is inserted, untimed:
{r['incremental_new_decisions_per_minute']} decisions + 30 heartbeats). Median warm run by stage:
{inc_stages}.

| run | seconds | points | rows | peak RSS |
|---|---|---|---|---|
{inc_rows}
{base_md}{SECTION_END}"""


NOTES_START = "<!-- bench:sli:notes:start -->"
NOTES_END = "<!-- bench:sli:notes:end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sli",
        description="SLI batch benchmark: generates decisions and lifecycle events straight "
                    "into a fresh chDB store, then times a full backfill of every SLI (all "
                    "windows, all dimensions), incremental minute runs and a plain-pandas "
                    f"baseline. Targets: backfill <= {TARGET_BACKFILL_S:g} s (goal "
                    f"{GOAL_BACKFILL_S:g} s), incremental <= {TARGET_INCREMENTAL_S:g} s.")
    parser.add_argument("--events", type=parse_count, default=10_000_000,
                        help="policy.decision rows to generate (default 10_000_000)")
    parser.add_argument("--days", type=int, default=30,
                        help="span of the data and of the backfill, days (default 30)")
    parser.add_argument("--step", type=parse_step, default=timedelta(hours=1),
                        help="backfill step, e.g. 1h, 30m (default 1h)")
    parser.add_argument("--chunk", type=int, default=744,
                        help="backfill points per compute call (jobs.backfill's default 744)")
    parser.add_argument("--incremental-runs", type=int, default=5,
                        help="warm incremental runs after the cold one (default 5)")
    parser.add_argument("--baseline-points", type=int, default=8,
                        help="evaluation points the pandas baseline computes (spread over the "
                             "span; extrapolated to all points; default 8)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="skip the pandas baseline")
    parser.add_argument("--profile", metavar="PATH", default=None,
                        help="run the backfill under cProfile and dump the stats to PATH "
                             "(figures are slowed by profiling; not written to --output)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md",
                        help="markdown file whose SLI section is replaced "
                             "(default bench/RESULTS.md); '-' to skip")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="PERCENT",
                        help="before the backfill, the incremental runs and the baseline, wait "
                             "until the machine's CPUs are at most this busy (over 3 s) -- for "
                             "shared machines (default 0: don't wait)")
    parser.add_argument("--wait-idle-timeout", type=float, default=600,
                        help="seconds --wait-idle waits at most (default 600)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    # stage 1 in a child process (run() starts it): generate into DIR, print the figures
    parser.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--end", type=datetime.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate_into:
        if args.end is None or not args.tag:
            parser.error("--generate-into (stage 1 in a child process) needs --end and --tag")
        print(json.dumps(generate(args.generate_into, args.events, args.end,
                                  timedelta(days=args.days), args.tag)))
        return 0
    if args.events < 1 or args.days < 1 or args.chunk < 1 or args.incremental_runs < 0:
        parser.error("--events, --days and --chunk must be >= 1, --incremental-runs >= 0")
    args.command_line = "cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.sli " + \
        shlex.join(argv if argv is not None else sys.argv[1:])
    result = run(args)
    print(json.dumps(result, indent=2, default=str))
    if str(args.output) != "-" and not args.profile:
        write_section(args.output, "sli", markdown(result))
        log(f"wrote {args.output}")
    ok = result["backfill_verdict"] == "PASS" and result["incremental_verdict"] == "PASS"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
