"""Batch runs: compute SLIs at evaluation points and write them to `sli_values` (`sli_writer`).

- `run_incremental` (every minute in `policyscope up` / `worker`, or `policyscope batch`):
  evaluates every whole minute since the watermark (at most `max_catchup` of them), and
  re-evaluates recent points whose windows late events changed (rows ingested after the
  watermark but timed before it), up to `late_horizon` back.
- `backfill` evaluates points every `step` over a past span, in chunks, with a progress bar,
  computing and writing several SLI families at once (`compute_families`).
Both take a `prepare` step run first, before anything is read: a layer above hands one in
(`triage.apply_rules`, which gives sticky triage verdicts to new subjects so M4 counts them
in the same run; `metrics` may not import `triage`). It is called as
`prepare(client, start, end, ingested_since)`: the event times the run's windows can read
(and a day ahead, for clocks that run early), and for an incremental run the newest ingest the
previous run had seen (less `OVERLAP`), None for a backfill. A failing step is logged and
reported in `BatchReport.prepare_error`; the SLIs are computed regardless.
Both run the same SLI families and keep rows by the same rule (`without_empty_breakdowns`),
so a backfill and incremental runs over the same data store the same rows (tested).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

import numpy as np
import polars as pl
from clickhouse_connect.driver.client import Client

from metrics import sli_writer
from metrics import sources
from metrics.sources.events import OVERLAP
from metrics.sli import agents, alerting, coverage, decisions, deploys, false_positives
from metrics.sli import rates, remediation
from metrics.sli.base import Context, empty
from metrics.windows import WINDOWS, floor_minute, required_times
from core import storage
from schemas.frames import validate_sli_values

log = logging.getLogger(__name__)

FAMILIES = (decisions, deploys, coverage, remediation, false_positives, rates, agents, alerting)
JOB = "sli"


# prepare(client, start, end, ingested_since): a step run before a batch (see the docstring)
Prepare = Callable[[Client, datetime, datetime, datetime | None], object]
AHEAD = timedelta(days=1)  # subjects timed up to this far after the run's point are prepared


@dataclass
class BatchReport:
    points: int
    rows: int
    seconds: float
    late_points: int = 0
    prepare_error: str | None = None  # what the prepare step raised, if it failed


def _prepare(prepare: Prepare | None, client: Client, first: datetime, at: datetime,
             since: datetime | None) -> str | None:
    """Run `prepare` over the events the windows of points from `first` to `at` read; the
    error text if it raised (logged with its traceback: the SLIs must not wait on it)."""
    if prepare is None:
        return None
    start = min(required_times([first], list(WINDOWS)))
    try:
        prepare(client, start, at + AHEAD, since)
    except Exception as exc:  # noqa: BLE001 - logged and reported; the batch goes on
        log.exception("the batch's prepare step %r failed; computing the SLIs without it",
                      getattr(prepare, "__name__", prepare))
        return f"{type(exc).__name__}: {exc}"
    return None


def compute(client: Client, points: list[datetime], windows: list[str] | None = None,
            latency_threshold: float = 0.1, memo: dict | None = None) -> pl.DataFrame:
    """Every SLI at every point for every window; validated rows of `base.OUTPUT`. `memo`:
    state a caller keeps between runs (see `run_incremental`)."""
    if not points:
        return validate_sli_values(empty())
    ctx = Context(client, sorted(points), list(windows or WINDOWS), latency_threshold,
                  memo=memo)
    first, *rest = FAMILIES  # decisions first: false_positives reuses its window sums
    frames = [first.compute(ctx)]
    # the others two at a time: one waits on ClickHouse while the other computes in Polars
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sli") as pool:
        frames += pool.map(lambda family: family.compute(ctx), rest)
    return validate_sli_values(without_empty_breakdowns(
        pl.concat(frames, how="vertical_relaxed")))


def compute_families(client: Client, points: list[datetime], windows: list[str] | None = None,
                     latency_threshold: float = 0.1,
                     connections: Callable[[], Client] | None = None) -> Iterator[pl.DataFrame]:
    """The rows of `compute`, one SLI family at a time as each finishes, before
    `without_empty_breakdowns` and validation (their SLIs never overlap, so both give the
    same rows per family as over all of them). Two families compute at a time, each through
    the connection `connections()` gives its thread (default: all through `client`, whose
    calls then take turns)."""
    if not points:
        return
    ctx = Context(client, sorted(points), list(windows or WINDOWS), latency_threshold)
    # false_positives waits for decisions' window sums: last, so no worker idles on them
    order = sorted(FAMILIES, key=lambda family: family is false_positives)

    def rows(family) -> pl.DataFrame:
        return family.compute(replace(ctx, client=connections()) if connections else ctx)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sli-compute") as pool:
        for done in as_completed([pool.submit(rows, family) for family in order]):
            yield done.result()


def _halves(frame: pl.DataFrame, at_least: int = 1_000_000) -> list[pl.DataFrame]:
    """A family's rows in two slices of whole SLIs, for the two writers, when there are
    many (the largest family would otherwise be written by one of them, the other idle, at
    the end of a backfill) and each SLI's rows are contiguous, as families build them."""
    if frame.height < at_least:
        return [frame]
    runs = frame.get_column("sli").rle()
    if runs.len() < 2 or runs.struct.field("value").n_unique() < runs.len():
        return [frame]  # one SLI, or one in several runs (copying them apart costs more)
    ends = runs.struct.field("len").cum_sum().to_list()
    cut = min(ends[:-1], key=lambda end: abs(2 * end - frame.height))
    return [frame.slice(0, cut), frame.slice(cut)]


class _Connections:
    """A connection per thread (`storage.another`) for work meant to overlap -- a client
    runs one call at a time -- all closed by `close`."""

    def __init__(self, client: Client):
        self.client = client
        self.local = threading.local()
        self.opened: list[Client] = []

    def __call__(self) -> Client:
        if not hasattr(self.local, "client"):
            self.local.client = storage.another(self.client)
            self.opened.append(self.local.client)  # list.append is atomic
        return self.local.client

    def close(self) -> None:
        for other in self.opened:
            if other is not self.client:
                other.close()


def _finish_and_write(client: Client, frame: pl.DataFrame) -> int:
    # validated before the filter: the rows it keeps are a subset
    return sli_writer.write(client, without_empty_breakdowns(validate_sli_values(frame)))


def without_empty_breakdowns(frame: pl.DataFrame) -> pl.DataFrame:
    """Keep a dimension value's rows at a point only if it had events in some window of that
    point (then every window shows it, an empty one as null). Which zero rows a family emits
    depends on the keys it read, i.e. on which other points were computed in the same call;
    this rule makes a backfill and incremental runs store the same rows. The overall row of
    every window is always kept.

    Only groups with an empty row can go, and those are few: they are found first, then the
    rows of the ones with no events anywhere dropped -- each group named by one integer
    packed from its minute and the dictionary codes of its strings (much faster than
    grouping every row by the four columns)."""
    keeps = (pl.col("total").fill_null(0) > 0) | (pl.col("good").fill_null(0) > 0) | (
        pl.col("dimension") == "")
    keep = frame.select(keep=keeps).to_series()
    if keep.all():  # no row without events (the families on sorted arrays emit none)
        return frame
    rows = pl.DataFrame([keep, _group_key(frame)])
    empty = rows.filter(~pl.col("keep")).get_column("group").unique()
    if not empty.len():
        return frame
    alive = rows.filter(pl.col("keep") & pl.col("group").is_in(empty.implode()))
    dead = empty.filter(~empty.is_in(alive.get_column("group").unique().implode()))
    return frame.filter(~rows.get_column("group").is_in(dead.implode())) if dead.len() \
        else frame


KEY_BITS = 64


def _group_key(frame: pl.DataFrame) -> pl.Series:
    """An integer per (at, sli, dimension, dimension_value): the minute since the first `at`
    and the columns' dictionary codes side by side in 64 bits (numpy), or a struct of the
    four columns when they do not fit."""
    strings = ["sli", "dimension", "dimension_value"]
    if not frame.height:
        return pl.Series("group", [], dtype=pl.UInt64)
    at = frame.get_column("at").dt.epoch("s").to_numpy()
    parts = [((at - at.min()) // 60).astype(np.uint64), *(
        frame.get_column(c).cast(pl.Categorical).to_physical().to_numpy().astype(np.uint64)
        for c in strings)]
    widths = [max(int(part.max()), 1).bit_length() for part in parts]
    if sum(widths) > KEY_BITS:
        return frame.select(group=pl.struct("at", *strings)).get_column("group")
    key, shift = np.zeros(frame.height, dtype=np.uint64), 0
    for part, width in zip(parts, widths):
        key |= part << np.uint64(shift)
        shift += width
    return pl.Series("group", key)


def watermark(client: Client) -> tuple[datetime | None, datetime | None]:
    """(the last evaluation time written, the newest ingest it had seen), or (None, None)."""
    return sources.watermark(client, JOB)


def run_incremental(client: Client, now: datetime | None = None, *, max_catchup: int = 60,
                    late_horizon: int = 60, latency_threshold: float = 0.1,
                    memo: dict | None = None, prepare: Prepare | None = None) -> BatchReport:
    """One scheduled run as of `now` (default: the current time). A scheduler passes the same
    `memo` dict to every run: the latest report of each entity state is then kept between
    runs and only newer rows are read (`sources.report_histories`). `prepare` runs first
    (see the module docstring), so what it writes counts in this run."""
    started = time.perf_counter()
    at = floor_minute(now or datetime.now(timezone.utc))
    last_at, seen_through = watermark(client)
    first = at if last_at is None else min(at, last_at - timedelta(minutes=late_horizon))
    failed = _prepare(prepare, client, first, at,
                      None if seen_through is None else seen_through - OVERLAP)
    through = sources.ingested_through(client)
    if last_at is None or at - last_at > timedelta(minutes=max_catchup):
        points = [at]
    else:
        points = [last_at + timedelta(minutes=i + 1)
                  for i in range(int((at - last_at) / timedelta(minutes=1)))]
    late_points: list[datetime] = []
    if last_at is not None and seen_through is not None:
        late = sources.late_minutes(client, seen_through, last_at)
        if late is not None:
            first = max(late + timedelta(minutes=1), last_at - timedelta(minutes=late_horizon))
            late_points = [first + timedelta(minutes=i) for i in
                           range(int((last_at - first) / timedelta(minutes=1)) + 1)]
    all_points = sorted(set(points) | set(late_points))
    if not all_points:
        return BatchReport(0, 0, time.perf_counter() - started, prepare_error=failed)
    rows = sli_writer.write(client, compute(client, all_points,
                                        latency_threshold=latency_threshold, memo=memo))
    sli_writer.set_watermark(client, JOB, max(at, last_at or at), through)
    report = BatchReport(len(all_points), rows, time.perf_counter() - started, len(late_points),
                         failed)
    log.info("SLI batch at %s: %d points (%d re-evaluated for late data), %d rows in %.2fs",
             at.isoformat(), report.points, report.late_points, rows, report.seconds)
    return report


def backfill(client: Client, span: timedelta, *, until: datetime | None = None,
             step: timedelta = timedelta(hours=1), chunk: int = 744,
             latency_threshold: float = 0.1,
             progress: Callable[[int, int], None] | None = None,
             prepare: Prepare | None = None) -> BatchReport:
    """Evaluate points every `step` over (until - span, until], `chunk` points per pass over
    the rollups (the default: 31 days of hourly points in one). `progress(done, total)`
    counts (chunk, SLI family) steps. Each family's rows are filtered, validated and
    written by two writer threads while the next family computes: one filters in Polars
    while the other inserts (ClickHouse's native time), so the two cores stay busy; each
    writer has its own connection (`storage.another`), so inserts run while the next
    family reads (one client runs one call at a time, so a shared one would serialize
    them). `prepare` runs first, over every event the points' windows read (see the module
    docstring)."""
    started = time.perf_counter()
    end = floor_minute(until or datetime.now(timezone.utc))
    count = int(span / step)
    points = [end - step * i for i in range(count, -1, -1)]
    points = [p for p in points if p > end - span] or [end]
    failed = _prepare(prepare, client, points[0], end, None)
    chunks = [points[i:i + chunk] for i in range(0, len(points), chunk)]
    steps = len(chunks) * len(FAMILIES)
    readers, writers = _Connections(client), _Connections(client)
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sli-write") as write_pool:
            pending: list[Future] = []
            for i, part in enumerate(chunks):
                for j, frame in enumerate(compute_families(
                        client, part, latency_threshold=latency_threshold,
                        connections=readers)):
                    pending += [write_pool.submit(
                        lambda rows: _finish_and_write(writers(), rows), piece)
                        for piece in _halves(frame)]
                    if progress is not None:
                        progress(i * len(FAMILIES) + j + 1, steps)
            rows = sum(f.result() for f in pending)
    finally:
        readers.close()
        writers.close()
    last_at, _ = watermark(client)
    if last_at is None or end > last_at:
        sli_writer.set_watermark(client, JOB, end, sources.ingested_through(client))
    return BatchReport(len(points), rows, time.perf_counter() - started, prepare_error=failed)

