"""M7 alert-to-page ratio, from the alert evaluator's own history (`alert_events`).

Alerts of a window are the distinct alerts that entered `firing` in it; good (the numerator) =
those whose severity is `page`, total = all of them (pages + tickets); value = pages / alerts.
Overall, by team, service and SLO. An empty window: total 0, value null.
"""

from __future__ import annotations

import polars as pl

from metrics import sources
from metrics.sli.base import (
    Context,
    aggregate,
    complete,
    latest_in_windows,
    lookback_start,
    ratio,
)

DIMENSIONS = {"team": "team", "service": "service", "slo": "slo"}
ALERTS_SQL = """
    SELECT at AS event_time, alert_id, slo, severity, team, service
    FROM alert_events
    WHERE state = 'firing' AND at >= {start:DateTime64(3, 'UTC')}
      AND at < {end:DateTime64(3, 'UTC')}
    ORDER BY at"""


def compute(ctx: Context) -> pl.DataFrame:
    fired = sources.table_rows(ctx.client, ALERTS_SQL, {"start": lookback_start(ctx),
                                                        "end": max(ctx.points)})
    fired = fired.with_columns(sources.utc_datetime(fired, "event_time"))
    latest = latest_in_windows(ctx, fired, "alert_id", DIMENSIONS)
    frame = aggregate(latest, [
        pl.col("alert_id").filter(pl.col("severity") == "page").n_unique().alias("good"),
        pl.col("alert_id").n_unique().alias("total")])
    return ratio(complete(ctx, frame, {"good": 0, "total": 0}), "M7", pl.col("good"),
                 pl.col("total"))
