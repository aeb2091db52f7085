"""The SLO page's reads (and the Executive page's compliance table): every SLO of the
configured `slo_dir`, its standing now as `policyscope slo status` prints it (budget left,
burn per alert window, time to exhaustion), its budget over the period (the standing at
earlier points), and its alert history (`alert_events`).

Standings come from `slo.report.standings`: the rows the alert evaluator stored at its latest
run (each minute, after the SLI batch) when that run is at most `SloSettings.standing_max_age_s`
old, the same numbers `slo status` printed for that minute, read from a small table; only
where nothing is stored yet (a fresh store, no evaluator running, a changed SLO file) are the
SLOs evaluated here, by the same functions.

SLOs are named by their directory (a str, part of the cache key) and loaded again inside each
query, so a cached result never holds an SLO object.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from clickhouse_connect.driver.client import Client

from core.config import Section, load
from dashboards.config import current
from dashboards.queries import frame
from metrics.config import BatchConfig
from metrics.windows import floor_minute
from schemas.tables import ALERT_EVENTS
from slo import spec
from slo.config import AlertingConfig
from slo.report import standings

BURNDOWN_POINTS = 30  # points over the period (plus now)
MIN_STANDING_AGE_S = 120  # a stored standing this old is still the latest run's
PAST_STANDING_AGE = timedelta(days=1)  # a comparison "a week ago" takes one up to a day older


class _SloSections(Section):
    alerting: AlertingConfig = AlertingConfig()
    batch: BatchConfig = BatchConfig()


@dataclass(frozen=True)
class SloSettings:
    slo_dir: str
    latency_threshold: float
    dashboard_url: str
    standing_max_age_s: int = 0  # a stored standing up to this old stands for now


def settings() -> SloSettings:
    """Where the SLO files are and the latency threshold, from the config handed to the
    dashboards (`policyscope up`), else read from the config file and environment as the
    alert evaluator reads them; and how old a stored standing may be: two batch intervals
    (the evaluator runs after each batch), at least `MIN_STANDING_AGE_S`."""
    config = current()
    if not hasattr(config, "alerting"):
        config = load(_SloSections, partial=True)
    max_age = max(MIN_STANDING_AGE_S, int(2 * config.batch.batch_interval))
    return SloSettings(str(config.alerting.slo_dir), config.batch.latency_threshold,
                       config.alerting.dashboard_url, max_age)


def load_slos(slo_dir: str) -> list:
    """The SLOs of the directory, [] when it does not exist; raises `spec.SpecError` naming
    every bad file and key. Parsed again only when a file of it changed (name, size or
    modification time): YAML parsing and validation would be most of a stored standing's
    read."""
    directory = Path(slo_dir)
    if not directory.is_dir():
        return []
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                   for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return list(_parsed(slo_dir, tuple(files)))


@functools.lru_cache(maxsize=16)
def _parsed(directory: str, files: tuple) -> tuple:
    """`spec.load_dir` of a directory whose files are `files` (the cache key; SLOs are
    immutable, so they are shared)."""
    return tuple(spec.load_dir(Path(directory)))


def label(dimensions: dict[str, str]) -> str:
    """'team=payments, cluster=eu-1', or '' for the overall value."""
    return ", ".join(f"{k}={v}" for k, v in sorted(dimensions.items()))


def state(row: dict) -> str:
    """What an SLO's standing means, for a status column: no data, paging / ticketing
    (a pair of that tier firing), budget spent, or ok."""
    if not row["total"]:
        return "no data"
    firing = {p["severity"] for p in row["pairs"] if p["firing"]}
    if "page" in firing:
        return "page: burning fast"
    if "ticket" in firing:
        return "ticket: burning"
    if row["budget_remaining"] is not None and row["budget_remaining"] <= 0:
        return "budget spent"
    return "ok"


def status_rows(client: Client, slo_dir: str, at: datetime, latency_threshold: float,
                max_age_s: int = 0) -> list[dict]:
    """`slo status`'s rows at `at` (one per SLO and dimension value), each with `state`,
    `current` (good / total over the period, None when empty) and `display_name`: the
    evaluator's stored standing of at most `max_age_s` before `at` where there is one."""
    return status_rows_at(client, slo_dir, (at,), latency_threshold, max_age_s)[0]


def status_rows_at(client: Client, slo_dir: str, points: tuple[datetime, ...],
                   latency_threshold: float, max_age_s: int = 0, *,
                   stored_only: bool = False) -> list[list[dict]]:
    """`status_rows` at each of `points` (in their order), read together; `stored_only`:
    only what the evaluator stored, none evaluated (`slo.report.standings`)."""
    slos = load_slos(slo_dir)
    names = {s.name: s.metadata.display_name or "" for s in slos}
    by = {s.name: list(s.by) for s in slos}
    found = standings(client, slos, list(points), latency_threshold=latency_threshold,
                      within=timedelta(seconds=max_age_s), stored_only=stored_only)
    out = []
    for at in points:
        rows = [dict(row) for row in found[floor_minute(at)]]
        for row in rows:
            row["state"] = state(row)
            row["current"] = row["good"] / row["total"] if row["total"] else None
            row["display_name"] = names[row["slo"]]
            row["by"] = by[row["slo"]]
        out.append(rows)
    return out


def burndown_points(slo, at: datetime) -> list[datetime]:
    """Evaluation points over the SLO's period ending at `at`: its start (a rolling period's
    length back, or the calendar month's first minute) and BURNDOWN_POINTS equal steps on to
    `at`."""
    end = floor_minute(at)
    if slo.period_seconds is None:
        start = end.replace(day=1, hour=0, minute=0)
    else:
        start = end - timedelta(seconds=slo.period_seconds)
    step = max((end - start) / BURNDOWN_POINTS, timedelta(minutes=1))
    points, t = [], start
    while t < end:
        points.append(floor_minute(t))
        t += step
    return sorted({*points, end})


def burndown(client: Client, slo_dir: str, name: str, dimensions: dict[str, str],
             at: datetime, latency_threshold: float, max_age_s: int = 0) -> pd.DataFrame:
    """at, budget_remaining, good, total of one SLO and dimension value at the points of
    `burndown_points` (the period's budget as it stood at each; None where empty): the
    evaluator's stored standings -- at the last point (now) one at most `max_age_s` old, at
    each earlier point the latest stored up to half a step before it (the chart's
    resolution) -- evaluated at the points where none is stored."""
    slo = next((s for s in load_slos(slo_dir) if s.name == name), None)
    columns = ["at", "budget_remaining", "good", "total"]
    if slo is None:
        return pd.DataFrame(columns=columns)
    points = burndown_points(slo, at)
    recent = timedelta(seconds=max_age_s)
    half_step = max(recent, (points[-1] - points[0]) / BURNDOWN_POINTS / 2)
    found = {**standings(client, [slo], points[:-1], latency_threshold=latency_threshold,
                         within=half_step, together=True),
             **standings(client, [slo], points[-1:], latency_threshold=latency_threshold,
                         within=recent)}
    rows = []
    for point, standing in found.items():
        row = next((r for r in standing if r["dimensions"] == dimensions), None)
        rows.append({"at": point, "budget_remaining": None, "good": 0, "total": 0}
                    if row is None else  # no events of these dimension values then
                    {"at": point, "budget_remaining": row["budget_remaining"],
                     "good": row["good"], "total": row["total"]})
    return pd.DataFrame(rows, columns=columns).sort_values("at", ignore_index=True)


def alert_history(client: Client, name: str, dimensions: dict[str, str], limit: int = 200
                  ) -> pd.DataFrame:
    """The newest `limit` lifecycle events (fired, resolved, ...) of one SLO's alerts whose
    dimension values are `dimensions` (all of them for {}), newest first."""
    rows = frame(client, f"""
        SELECT at, severity, state, dimensions, alert_id FROM {ALERT_EVENTS}
        WHERE slo = {{slo:String}} ORDER BY at DESC, alert_id LIMIT {{limit:UInt32}}""",
                 {"slo": name, "limit": int(limit) * 10},
                 ["at", "severity", "state", "dimensions", "alert_id"])
    if rows.empty:
        return rows
    if dimensions:
        rows = rows.loc[rows["dimensions"].map(lambda d: dict(d) == dimensions).astype(bool)]
    rows = rows.head(limit).assign(dimensions=rows["dimensions"].map(lambda d: label(dict(d))))
    return rows.reset_index(drop=True)
