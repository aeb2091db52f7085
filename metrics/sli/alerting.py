"""M7 alert-to-page ratio, from the alert evaluator's own history (`alert_events`).

Alerts of a window are the distinct alerts that entered `firing` in it; good (the numerator) =
those whose severity is `page`, total = all of them (pages + tickets); value = pages / alerts.
Overall, by team, service and SLO. An empty window: total 0, value null.
"""

from __future__ import annotations

import polars as pl

from metrics import sources
from metrics.sli.base import Context, lookback_start, ratio, window_rows
from metrics.sli.latest import histories_of, latest_reports, window_sums

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
    histories = histories_of(fired, ["alert_id", "severity", *DIMENSIONS.values()])
    page = (histories.get_column("severity") == "page").fill_null(False).to_numpy()
    cells = [window_sums(ctx, latest, {"good": page[latest.state]})
             for latest in latest_reports(ctx, histories, "alert_id", DIMENSIONS)]
    return ratio(window_rows(ctx, cells), "M7", pl.col("good"), pl.col("n"))
