"""Fault campaign: a numbered event set sent with client retries while the collector is
SIGKILLed, its storage fails, its spool limit is hit and a spool segment is left torn; then
every acknowledged event is looked for in ClickHouse: 0 lost, 0 duplicated.

Two phases, in one run, each against a fresh `policyscope collector` subprocess on a scratch
chDB store and spool, with the same event set, config and clients:

* baseline: no faults, before and after the fault phase;
* faults (the schedule, by share of the events acknowledged so far):
  10%  SIGKILL 1, then the newest spool segment is left with a torn last frame
       (bench/faults_spool.py), restart (the spool must cut the torn tail, replay the rest);
  30%  storage fails for `--outage` seconds (bench/faults_launcher.py: the writer's insert
       attempts fail in turn as unreachable and as "answer lost" after the INSERT ran); the
       spool fills to `spool_max_size` and clients get 503 + Retry-After; a third into the
       outage SIGKILL 2 and restart (replaying a full spool into a storage still down);
  75%  SIGKILL 3 while the writer drains the backlog, restart.
  A kill comes at a moment the spool holds frames the writer has not released, and is
  followed by waiting for the process and its workers to exit (the store lock is then free;
  a start that still finds it locked is retried).
  Then: every request acknowledged, the spool drained, SIGTERM (must exit 0), and the store,
  opened in a process of its own, is counted number by number (bench/faults_count.py).

The figures (stdout as JSON, and the `faults` section of `--output`): acknowledged, stored,
lost, duplicated, unacknowledged-but-stored, phantom rows, 503/429 answers, kills, run time,
and events/s acknowledged with faults / without (the mean of the two baselines). Exit status 0 only when nothing was lost or
duplicated and every fault was exercised.

Run: `cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.faults --help`
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench.faults_collector import TORN_TAIL_LOG, CollectorFailed, FaultyCollector
from bench.faults_count import check, tally_store
from bench.faults_launcher import LOST_ANSWER_LOG
from bench.faults_spool import TornTail, holds_frames, tear
from bench.faults_traffic import EventSet, Senders

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Plan:
    events: int = 200_000
    per_request: int = 500
    threads: int = 4
    kills: int = 3
    outage_s: float = 60.0
    tear: bool = True
    spool_max_size: str = "8MiB"
    retry_after: str = "1s"  # what the collector tells clients on 503
    retry_cap: float = 0.25  # the most a client waits before a retry
    abandon_every: int = 100  # every n-th request is sent once, never read: unacknowledged
    timeout: float = 1800.0  # for the traffic of one phase
    drain_timeout: float = 600.0  # for the spool to drain afterwards
    log_level: str = "WARNING"

    def settings(self) -> dict:
        return {"spool_max_size": self.spool_max_size, "retry_after": self.retry_after}


@dataclass
class Phase:
    name: str
    port: int
    timeline: list = field(default_factory=list)  # (seconds since traffic started, what)
    problems: list = field(default_factory=list)
    kills: int = 0
    torn: TornTail | None = None
    torn_cut_confirmed: bool = False
    outage_failed_inserts: int = 0
    outage_503: int = 0
    outage_lost_answers: int = 0  # INSERTs that ran but whose answer the writer never got
    results: dict = field(default_factory=dict)

    def at(self, t0: float, text: str) -> None:
        self.timeline.append((round(time.monotonic() - t0, 1), text))
        log(f"{self.name} +{time.monotonic() - t0:6.1f}s {text}")


def log(message: str) -> None:
    print(f"[faults] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Schedule:
    """The faults of one phase, applied from the main thread while the senders run."""

    def __init__(self, plan: Plan, phase: Phase, collector: FaultyCollector, senders: Senders,
                 event_set: EventSet):
        self.plan, self.phase, self.collector = plan, phase, collector
        self.senders, self.event_set = senders, event_set
        self.t0 = senders.tally.first_send
        self.deadline = self.t0 + plan.timeout

    def run(self) -> None:
        kills = self.plan.kills
        if kills and self.progress(0.10):
            self.kill_and_restart(tear_tail=self.plan.tear)
            kills -= 1
        if self.plan.outage_s > 0 and self.progress(0.30):
            self.outage(kill_during=kills > 0)
            kills -= 1 if kills > 0 else 0
        for k in range(kills):
            if self.progress(0.6 + 0.3 * (k + 1) / (kills + 1)):
                self.kill_and_restart()

    def progress(self, share: float) -> bool:
        """Wait until `share` of the events is acknowledged; False if traffic ended first."""
        tally = self.senders.tally
        while tally.acknowledged_events < share * self.event_set.events:
            if self.senders.done or time.monotonic() > self.deadline:
                self.phase.at(self.t0, f"traffic ended before {share:.0%} was acknowledged")
                return False
            time.sleep(0.02)
        return True

    def kill_and_restart(self, tear_tail: bool = False) -> None:
        # killed at a moment its spool holds durable rows not yet released by the writer,
        # so the restart has something to replay
        spool_dir = self.collector.spool_dir
        held = self.collector.kill(when=lambda: holds_frames(spool_dir))
        acked = self.senders.tally.acknowledged_events
        self.phase.kills += 1
        self.phase.at(self.t0, f"SIGKILL {self.phase.kills} ({acked:,} events acknowledged"
                               + (")" if held else "; the spool held no frame)"))
        if tear_tail:
            time.sleep(1.0)  # answers already on the wire are read by now: acks are final
            with self.senders.tally.lock:
                acknowledged = bytearray(self.senders.tally.acknowledged)
            self.phase.torn = tear(self.collector.spool_dir, self.event_set, acknowledged)
            self.phase.at(self.t0, "torn tail: " + self.phase.torn.describe())
        inc = start_on_a_free_port(self.collector, self.senders, self.phase)
        self.phase.at(self.t0, f"restarted (collector {inc.number}): ready in {inc.ready_s:.1f}s"
                               f", {inc.replayed_rows:,} spool rows replayed"
                               + (f", store locked {inc.lock_waits}x" if inc.lock_waits else ""))
        if tear_tail and self.phase.torn is not None:
            self.phase.torn_cut_confirmed = any(
                TORN_TAIL_LOG in line and self.phase.torn.segment in line
                and f" {self.phase.torn.torn_bytes} bytes" in line
                for line in inc.log.read_text(errors="replace").splitlines())

    def outage(self, kill_during: bool) -> None:
        tally = self.senders.tally
        start, before_503 = time.monotonic(), tally.statuses[503]
        self.collector.set_outage(True)
        self.phase.at(self.t0, f"storage down for {self.plan.outage_s:g}s")
        try:
            if kill_during:
                time.sleep(max(0.0, start + self.plan.outage_s / 3 - time.monotonic()))
                self.phase.outage_failed_inserts += self.failed_inserts()
                self.kill_and_restart()
            time.sleep(max(0.0, start + self.plan.outage_s - time.monotonic()))
            self.phase.outage_failed_inserts += self.failed_inserts()
        finally:
            self.collector.set_outage(False)
        self.phase.outage_503 = tally.statuses[503] - before_503
        self.phase.outage_lost_answers = self.collector.logs().count(LOST_ANSWER_LOG)
        self.phase.at(self.t0, f"storage back ({self.phase.outage_failed_inserts} failed "
                               f"inserts, {self.phase.outage_lost_answers} of them after "
                               f"the server ran the INSERT; {self.phase.outage_503:,} answers "
                               "503 meanwhile)")
        acked, back = tally.acknowledged_events, time.monotonic()
        while tally.acknowledged_events == acked and not self.senders.done \
                and time.monotonic() < self.deadline:
            time.sleep(0.05)
        if tally.acknowledged_events > acked:
            self.phase.at(self.t0, f"acknowledgements resume {time.monotonic() - back:.1f}s "
                                   "after storage came back")

    def failed_inserts(self) -> int:
        return int(self.collector.metrics().get("policyscope_writer_failed_inserts_total", 0))


def start_on_a_free_port(collector: FaultyCollector, senders: Senders, phase: Phase):
    """Start (or restart) the collector on its port; one taken meanwhile by another process
    (while the collector was down, say) is traded for a new one, and the clients follow."""
    for attempt in range(3):
        try:
            return collector.start()
        except CollectorFailed as exc:
            if "address already in use" not in str(exc) or attempt == 2:
                raise
            phase.port = collector.port = senders.port = free_port()
            collector.write_config()
            log(f"{phase.name}: port taken by another process; the collector moves to "
                f"{phase.port}")


def run_phase(plan: Plan, event_set: EventSet, workdir: Path, *, faults: bool,
              name: str = "") -> Phase:
    phase = Phase(name or ("faults" if faults else "baseline"), free_port())
    collector = FaultyCollector(workdir, phase.port, plan.settings(), log_level=plan.log_level)
    senders = Senders(event_set, phase.port, threads=plan.threads, retry_cap=plan.retry_cap,
                      abandon_every=plan.abandon_every)
    tally, rc, landed_s = senders.tally, None, None
    load_at_start = round(os.getloadavg()[0], 2)
    try:
        first = start_on_a_free_port(collector, senders, phase)
        log(f"{phase.name}: collector ready in {first.ready_s:.1f}s on port {phase.port}")
        senders.start()
        t0 = tally.first_send
        phase.at(t0, f"traffic: {event_set.events:,} events in {event_set.requests:,} requests "
                     f"from {plan.threads} client threads")
        try:
            if faults:
                Schedule(plan, phase, collector, senders, event_set).run()
            if not senders.join(max(0.0, t0 + plan.timeout - time.monotonic())):
                phase.problems.append(f"traffic did not finish within {plan.timeout:.0f}s")
            phase.at(t0, f"traffic done: {tally.acknowledged_events:,} events acknowledged")
            if not collector.drained(plan.drain_timeout):
                phase.problems.append(f"spool not drained within {plan.drain_timeout:.0f}s")
            landed_s = time.monotonic() - t0
            phase.at(t0, "spool drained; SIGTERM")
            rc = collector.stop()
            phase.at(t0, f"collector exited rc={rc}")
        except CollectorFailed as exc:  # a finding: report it with what the store holds
            phase.problems.append(f"the collector failed: {exc}")
            phase.at(t0, f"the collector failed: {str(exc)[:300]}")
        ack_s = (tally.last_ack or time.monotonic()) - t0
    finally:
        senders.stop.set()
        senders.join(60)
        collector.set_outage(False)
        collector.ensure_stopped()
    groups, totals = tally_store(collector.dsn, workdir / "stored.arrow")
    count = check(groups, totals, event_set, tally.acknowledged)
    leftovers = collector.spool_leftovers()
    phase.problems += count.problems
    if rc is not None and rc != 0:
        phase.problems.append(f"SIGTERM: the collector exited {rc}, expected 0")
    if tally.given_up:
        phase.problems.append(f"{len(tally.given_up)} request(s) never acknowledged")
    if tally.unexpected:
        phase.problems.append(f"unexpected answers: {tally.unexpected[:3]}")
    phase.results = {
        "count": count.as_dict(), "rc": rc, "load_average_1m_at_start": load_at_start,
        "ack_seconds": round(ack_s, 2),
        "landed_seconds": round(landed_s, 2) if landed_s is not None else None,
        "events_per_s_acknowledged": round(count.acknowledged / ack_s) if ack_s > 0 else None,
        "requests": event_set.requests, "abandoned_requests": len(tally.abandoned),
        "given_up_requests": len(tally.given_up),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "connection_errors": tally.connection_errors, "unexpected": tally.unexpected,
        "spool_leftovers": leftovers,
        "incarnations": [{"number": i.number, "ready_s": round(i.ready_s or 0, 2),
                          "replayed_rows": i.replayed_rows, "lock_waits": i.lock_waits,
                          "end": i.end} for i in collector.incarnations],
        "collector_command": shlex.join(collector.command()).replace(str(workdir), "<scratch>"),
        "collector_config": collector.config_file.read_text(),
    }
    if faults:
        phase.problems += exercised(plan, phase)
    return phase


def exercised(plan: Plan, phase: Phase) -> list[str]:
    """Each planned fault really happened (else the campaign proves less than it says)."""
    out = []
    if phase.kills != plan.kills:
        out.append(f"{phase.kills} SIGKILL(s) done of {plan.kills} planned")
    if plan.tear and plan.kills and not phase.torn_cut_confirmed:
        out.append("the torn spool tail was not reported cut by the restarted collector")
    if plan.outage_s > 0 and not phase.outage_failed_inserts:
        out.append("the storage outage caused no failed insert")
    if plan.outage_s > 0 and not phase.outage_lost_answers:
        out.append("no INSERT ran whose answer was lost during the outage")
    if plan.outage_s > 0 and not phase.outage_503:
        out.append("no client got 503 during the outage: the spool limit was never hit")
    if plan.kills and not any(i["replayed_rows"] for i in phase.results["incarnations"][1:]):
        out.append("no restart replayed a spool row: every kill found the spool empty")
    return out


def run_campaign(plan: Plan, workdir: Path, *, baseline: bool = True) -> dict:
    tag = f"{os.getpid():x}{time.time_ns() & 0xFFFFFFFF:08x}"
    event_set = EventSet(plan.events, plan.per_request, tag)
    started, date = time.monotonic(), datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    phases = {}
    if baseline:
        phases["baseline"] = run_phase(plan, event_set, workdir / "baseline", faults=False)
    phases["faults"] = run_phase(plan, event_set, workdir / "faults", faults=True)
    if baseline:  # once more after, so a machine busier during one phase shows
        phases["baseline_after"] = run_phase(plan, event_set, workdir / "baseline-after",
                                             faults=False, name="baseline after")
    out = {"plan": asdict(plan), "tag": tag, "date": date,
           "phases": {name: {**asdict(p), "torn": asdict(p.torn) if p.torn else None}
                      for name, p in phases.items()},
           "wall_seconds": round(time.monotonic() - started, 1)}
    base = [phases[n].results["events_per_s_acknowledged"] for n in ("baseline",
                                                                     "baseline_after")
            if n in phases and phases[n].results["events_per_s_acknowledged"]]
    out["baseline_events_per_s"] = round(sum(base) / len(base)) if base else None
    out["rate_ratio"] = round(phases["faults"].results["events_per_s_acknowledged"]
                              / out["baseline_events_per_s"], 3) if base else None
    out["problems"] = [f"{n}: {p}" for n, ph in phases.items() for p in ph.problems]
    out["verdict"] = "PASS" if not out["problems"] else "FAIL"
    return out


def main(argv: list[str] | None = None) -> int:
    from bench.faults_report import markdown
    from bench.machine import wait_idle
    from bench.results import write_section

    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Plan()
    p.add_argument("--events", type=int, default=d.events, help=f"events (default {d.events})")
    p.add_argument("--per-request", type=int, default=d.per_request,
                   help=f"events per request (default {d.per_request})")
    p.add_argument("--threads", type=int, default=d.threads, help="client threads (default 4)")
    p.add_argument("--kills", type=int, default=d.kills, help="SIGKILLs (default 3)")
    p.add_argument("--outage", type=float, default=d.outage_s,
                   help="seconds the storage fails (default 60; 0: none)")
    p.add_argument("--no-tear", action="store_true", help="leave the spool tail intact")
    p.add_argument("--spool-max-size", default=d.spool_max_size,
                   help=f"the collector's spool_max_size (default {d.spool_max_size})")
    p.add_argument("--retry-after", default=d.retry_after,
                   help="the collector's retry_after, told to clients (default 1s)")
    p.add_argument("--retry-cap", type=float, default=d.retry_cap,
                   help="longest a client honours Retry-After, seconds (default 0.25)")
    p.add_argument("--abandon-every", type=int, default=d.abandon_every,
                   help="every n-th request is sent once and not read (default 100; 0: none)")
    p.add_argument("--no-baseline", action="store_true", help="skip the no-fault phase")
    p.add_argument("--timeout", type=float, default=d.timeout,
                   help="seconds of traffic per phase at most (default 1800)")
    p.add_argument("--wait-idle", type=float, default=0, metavar="PERCENT",
                   help="first wait until the CPUs are at most this busy (default: don't)")
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md",
                   help="markdown file whose faults section is replaced ('-': don't write)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    if min(args.events, args.per_request, args.threads) < 1 or min(args.kills,
                                                                   args.abandon_every) < 0:
        p.error("--events, --per-request and --threads must be >= 1; --kills and "
                "--abandon-every >= 0")
    plan = Plan(events=args.events, per_request=args.per_request, threads=args.threads,
                kills=args.kills, outage_s=args.outage, tear=not args.no_tear,
                spool_max_size=args.spool_max_size, retry_after=args.retry_after,
                retry_cap=args.retry_cap, abandon_every=args.abandon_every,
                timeout=args.timeout)
    if args.wait_idle:
        wait_idle(args.wait_idle, 600, log)
    workdir = Path(tempfile.mkdtemp(prefix="policyscope-faults-"))
    try:
        result = run_campaign(plan, workdir, baseline=not args.no_baseline)
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["command"] = "cd /work/main && PYTHONPATH=. .venv/bin/python -m bench.faults " + \
        shlex.join(argv if argv is not None else sys.argv[1:])
    print(json.dumps(result, indent=2, default=str))
    if str(args.output) != "-":
        write_section(args.output, "faults", markdown(result))
        log(f"wrote the faults section of {args.output}")
    log(f"verdict {result['verdict']}" + "".join(f"\n  {p}" for p in result["problems"]))
    return 0 if result["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
