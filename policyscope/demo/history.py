"""The demo's history on first start: days of generated events (`timeline.generate`) written
through the collector's own row building and insert, analysts' past verdicts, then the SLIs
backfilled over those days -- so every page has something to show in the first minute.

    run = ensure_history(client, days=30, seed=7)      # `up --demo`: None when skipped
    report = generate_history(client, days=3, seed=7)  # the events and verdicts only

Rows are built by `collector.rows.RowBuilder` (the coercion, ids and redaction of every
receiver; pass the collector's, `RowBuilder(**row_settings(config.collector))`) from the
attributes the live demo traffic sends, shared attributes in a `SourceContext` as an OTLP
resource carries them; they are inserted by `collector.writer.ClickHouseWriter.store_accepted`,
the exactly-once insert the writer and the dead-letter replay use. A batch the builder rejects
a record of, or that storage refuses rows of, raises `HistoryError`: the generator has a bug.

A store that holds any decision is left alone (`ensure_history` logs that it skipped), so a
second start never adds history twice. The SLI backfill is `metrics.jobs.backfill`, hourly
points, with `triage.apply_rules` first: what `policyscope batch --backfill 30d` runs.
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from clickhouse_connect.driver.client import Client

import triage
from collector.rows import NormalizedBatch, RowBuilder, SourceContext
from collector.writer import ClickHouseWriter
from metrics import jobs
from metrics.windows import floor_minute
from schemas.events import DECISIONS, EVENTS

from . import timeline
from .engine import PolicyEngine

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)
CHUNK = 50_000  # events per row batch and insert
INSTANCE = "demohistory"  # names the writer's staging tables
BACKFILL_STEP = timedelta(hours=1)
ANALYSTS = ("maria.lopez@acme.example", "sam.okafor@acme.example")
_TP, _FP, _BENIGN = "true_positive", "false_positive", "benign"
# What analysts said of each policy's largest groups, largest first (None: not looked at).
# A benign verdict holds for BENIGN_FOR after it was given, then its subjects come back.
VERDICTS: dict[str, tuple[tuple[str, str] | None, ...]] = {
    "k8s.allowed-registries": ((_TP, "image pulled from Docker Hub"), (_TP, ""), None),
    "k8s.require-non-root": ((_TP, "runs as root"), None, (_TP, "")),
    "k8s.require-resource-limits": ((_TP, ""), None, (_TP, "")),
    "k8s.disallow-latest-tag": (
        (_BENIGN, "staging may track latest while a release is cut"), (_TP, ""), None),
    "k8s.require-team-label": (
        (_FP, "the team label is set on the namespace; the policy reads only the "
              "workload's labels"), (_TP, ""),
        (_FP, "owned by the platform team through its namespace"), None),
    "k8s.max-replicas": ((_TP, ""), None),
}
BENIGN_FOR = timedelta(days=30)


class HistoryError(RuntimeError):
    """The generated history could not be stored as generated (a bug, not a data problem)."""


@dataclass
class HistoryReport:
    """What `generate_history` wrote: events by kind, rows, verdicts, and where the time went."""

    start: datetime
    until: datetime
    events: dict[str, int]
    rows: int
    verdicts: int
    evaluations: int  # Rego evaluations (distinct workload states x policies)
    generate_seconds: float
    write_seconds: float
    verdict_seconds: float
    open_violations: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.generate_seconds + self.write_seconds + self.verdict_seconds


@dataclass
class FirstStart:
    """`ensure_history`'s run: the history written and the SLI backfill over it."""

    history: HistoryReport
    backfill: jobs.BatchReport
    seconds: float


def stored_decisions(client: Client) -> int:
    return int(client.command(f"SELECT count() FROM {DECISIONS.name}"))


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


def generate_history(client: Client, *, days: int = 30, seed: int = 7,
                     until: datetime | None = None, progress: Progress | None = None,
                     rows: RowBuilder | None = None, database: str | None = None,
                     engine: PolicyEngine | None = None) -> HistoryReport:
    """Generate `days` of demo history ending at `until` (default: now) for the fleet of
    `seed` and store it: the events, then the analysts' verdicts. `progress(done, total)`
    counts events stored. `rows` builds the rows (default: a RowBuilder with the default
    limits and redaction); `database` defaults to the client's."""
    began = time.perf_counter()
    until_ms = _ms(until or datetime.now(timezone.utc))
    history = timeline.generate(days, seed, until_ms=until_ms, engine=engine)
    generated = time.perf_counter()
    written = _store(client, history, rows or RowBuilder(), database or client.database,
                     progress)
    stored = time.perf_counter()
    verdicts = _label(client, history, seed)
    return HistoryReport(_utc(history.start_ms), _utc(history.until_ms), dict(history.kinds),
                         written, verdicts, history.evaluations, generated - began,
                         stored - generated, time.perf_counter() - stored,
                         history.open_violations)


def _store(client: Client, history: timeline.History, rows: RowBuilder, database: str,
           progress: Progress | None) -> int:
    """Build the rows a chunk at a time while the previous chunk is inserted (one writer
    thread: chDB runs outside the GIL, so building and inserting share the two cores)."""
    contexts = {key: SourceContext(base) for key, base in history.contexts.items()}
    writer = ClickHouseWriter(client, database, None, instance=INSTANCE, max_rows=CHUNK,
                              max_delay=0.0)
    writer.create_staging()
    total, stored = len(history.events), 0

    def insert(built: NormalizedBatch, done: int) -> None:
        refused = writer.store_accepted(built.tables.items())
        if refused.rows:
            raise HistoryError(f"storage refused {refused.rows} generated rows: "
                               f"{dict(refused.reasons)}")
        if progress is not None:
            progress(done, total)

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-history") as pool:
            pending: Future | None = None
            for i in range(0, total, CHUNK):
                chunk = history.events[i:i + CHUNK]
                batch = rows.batch(now_ms=history.until_ms)
                for event in chunk:
                    batch.add(contexts[event.context], event.kind, event.attrs,
                              time_ms=event.time_ms, observed_ms=event.time_ms)
                built = batch.finish()
                if built.rejected or built.ignored:
                    raise HistoryError(f"the row builder did not take {built.rejected} + "
                                       f"{built.ignored} generated events: "
                                       f"{built.reject_message()}")
                if pending is not None:
                    pending.result()  # one batch in flight: bounded memory, errors early
                pending = pool.submit(insert, built, i + len(chunk))
                stored += built.accepted
            if pending is not None:
                pending.result()
    finally:
        writer.drop_staging()
    return stored


def _label(client: Client, history: timeline.History, seed: int) -> int:
    """Verdicts analysts gave over the period (`VERDICTS`, for each policy's largest groups
    of the queue): each group labelled whole, as much of it as had come in by then, through
    `triage.label_group` (the dashboard's own write)."""
    rng = random.Random(f"{timeline.SALT}:{seed}:verdicts")
    start, until = _utc(history.start_ms), _utc(history.until_ms)
    groups, offset = [], 0
    while True:
        page = triage.queue(client, start, until, limit=500, offset=offset, now=until)
        groups += page.groups
        offset += len(page.groups)
        if not page.groups or offset >= page.total_groups:
            break
    by_policy: dict[str, list] = {}
    for group in sorted(groups, key=lambda g: (-g.subjects, g.id)):
        by_policy.setdefault(group.fingerprint.policy_id, []).append(group)
    labelled = 0
    for policy in sorted(by_policy):
        for group, said in zip(by_policy[policy], VERDICTS.get(policy, ())):
            # a few hours to two days after the group's newest subject; a group still
            # growing was looked at today (its later subjects wait in the queue)
            when = min(group.newest + timedelta(hours=rng.uniform(3, 48)),
                       until - timedelta(minutes=rng.uniform(10, 180)))
            if said is None or when <= group.oldest:
                continue
            kind, reason = said
            verdict = triage.Verdict(kind, reason,
                                     when + BENIGN_FOR if kind == _BENIGN else None)
            result = triage.label_group(client, triage.Actor(rng.choice(ANALYSTS), "analyst"),
                                        group.fingerprint, verdict, start=start, end=when,
                                        now=when)
            labelled += result.labelled
    return labelled


# ---------------------------------------------------------------------- first start
@contextmanager
def _bars(show: bool) -> Iterator[tuple[Progress | None, Progress | None]]:
    """Two rich progress bars (history, SLI backfill) on stderr, or none."""
    if not show:
        yield None, None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bars, TextColumn, \
        TimeElapsedColumn

    with Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
              TimeElapsedColumn(), console=Console(stderr=True)) as bars:
        events = bars.add_task("demo history: events", total=None)
        backfill = bars.add_task("demo history: SLI backfill", total=None)
        yield (lambda done, total: bars.update(events, completed=done, total=total),
               lambda done, total: bars.update(backfill, completed=done, total=total))


def ensure_history(client: Client, *, days: int = 30, seed: int = 7,
                   until: datetime | None = None, rows: RowBuilder | None = None,
                   latency_threshold: float = 0.1, progress: bool = True,
                   database: str | None = None) -> FirstStart | None:
    """On a store without decisions: `generate_history`, then the SLI backfill over the same
    days, with progress bars (`progress`) and the time taken logged. A store holding any
    decision is left as it is (logged; returns None)."""
    stored = stored_decisions(client)
    if stored:
        log.info("demo history skipped: the store already holds %d decisions", stored)
        return None
    began = time.perf_counter()
    until = until or datetime.now(timezone.utc)
    log.info("demo history: generating %d days for an empty store", days)
    try:
        with _bars(progress) as (on_events, on_backfill):
            history = generate_history(client, days=days, seed=seed, until=until,
                                       progress=on_events, rows=rows, database=database)
            backfill = jobs.backfill(client, timedelta(days=days), until=floor_minute(until),
                                     step=BACKFILL_STEP, latency_threshold=latency_threshold,
                                     prepare=triage.apply_rules, progress=on_backfill)
    except KeyboardInterrupt:
        log.warning("demo history interrupted: the store may hold part of it, and a start "
                    "with decisions stored does not generate it again (empty the store, e.g. "
                    "`make clean`, to start afresh)")
        raise
    run = FirstStart(history, backfill, time.perf_counter() - began)
    log.info("demo history: %d days, %d events (%s), %d verdicts, %d Rego evaluations in "
             "%.1fs (generate %.1fs, store %.1fs, verdicts %.1fs); SLI backfill: %d points, "
             "%d rows in %.1fs; %.1fs in all", days, history.rows,
             ", ".join(f"{k} {v}" for k, v in sorted(history.events.items())),
             history.verdicts, history.evaluations, history.seconds,
             history.generate_seconds, history.write_seconds, history.verdict_seconds,
             backfill.points, backfill.rows, backfill.seconds, run.seconds)
    return run


def open_violations(client: Client, since: datetime) -> dict[tuple[str, str], str]:
    """(resource id, policy id) -> id of the newest violation opened since `since` and
    neither remediated nor suppressed: what the live demo traffic continues
    (`DemoTraffic.adopt_open_violations`), so it remediates them rather than opening them
    again."""
    rows = client.query(
        f"SELECT resource_id, policy_id, argMax(violation_id, opened_at) FROM ("
        f"SELECT resource_id, policy_id, violation_id, min(event_time) AS opened_at "
        f"FROM {EVENTS.name} WHERE event_kind = 'policy.violation' "
        "AND event_time >= {since:DateTime64(3, 'UTC')} "
        "GROUP BY resource_id, policy_id, violation_id "
        "HAVING countIf(violation_status = 'opened') > 0 "
        "AND countIf(violation_status IN ('remediated', 'suppressed')) = 0) "
        "GROUP BY resource_id, policy_id",
        parameters={"since": since}).result_rows
    return {(resource, policy): violation for resource, policy, violation in rows}
