"""The SLO page's reads (and the Executive page's compliance table): every SLO of the
configured `slo_dir`, its standing now by the same functions `policyscope slo status` prints
(`slo.report.status`, over `slo.evaluate`: budget left, burn per alert window, time to
exhaustion), its budget over the period (the same evaluation at earlier points), and its alert
history (`alert_events`).

SLOs are named by their directory (a str, part of the cache key) and loaded again inside each
query, so a cached result never holds an SLO object.
"""

from __future__ import annotations

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
from slo.evaluate import evaluate_one
from slo.report import status as slo_status

BURNDOWN_POINTS = 30  # points over the period (plus now)


class _SloSections(Section):
    alerting: AlertingConfig = AlertingConfig()
    batch: BatchConfig = BatchConfig()


@dataclass(frozen=True)
class SloSettings:
    slo_dir: str
    latency_threshold: float
    dashboard_url: str


def settings() -> SloSettings:
    """Where the SLO files are and the latency threshold, from the config handed to the
    dashboards (`policyscope up`), else read from the config file and environment as the
    alert evaluator reads them."""
    config = current()
    if not hasattr(config, "alerting"):
        config = load(_SloSections, partial=True)
    return SloSettings(str(config.alerting.slo_dir), config.batch.latency_threshold,
                       config.alerting.dashboard_url)


def load_slos(slo_dir: str) -> list:
    """The SLOs of the directory, [] when it does not exist; raises `spec.SpecError` naming
    every bad file and key."""
    directory = Path(slo_dir)
    return spec.load_dir(directory) if directory.is_dir() else []


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


def status_rows(client: Client, slo_dir: str, at: datetime, latency_threshold: float
                ) -> list[dict]:
    """`slo status`'s rows at `at` (one per SLO and dimension value), each with `state`,
    `current` (good / total over the period, None when empty) and `display_name`."""
    slos = load_slos(slo_dir)
    names = {s.name: s.metadata.display_name or "" for s in slos}
    by = {s.name: list(s.by) for s in slos}
    rows = slo_status(client, slos, floor_minute(at), latency_threshold=latency_threshold)
    for row in rows:
        row["state"] = state(row)
        row["current"] = row["good"] / row["total"] if row["total"] else None
        row["display_name"] = names[row["slo"]]
        row["by"] = by[row["slo"]]
    return rows


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
             at: datetime, latency_threshold: float) -> pd.DataFrame:
    """at, budget_remaining, good, total of one SLO and dimension value at the points of
    `burndown_points` (the period's budget as it stood at each; None where empty)."""
    slo = next((s for s in load_slos(slo_dir) if s.name == name), None)
    columns = ["at", "budget_remaining", "good", "total"]
    if slo is None:
        return pd.DataFrame(columns=columns)
    rows = [{"at": e.at, "budget_remaining": None if e.budget_remaining is None
             else float(e.budget_remaining), "good": e.good, "total": e.total}
            for e in evaluate_one(client, slo, burndown_points(slo, at),
                                  latency_threshold=latency_threshold)
            if e.dimensions == dimensions]
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
