"""M7 alert-to-page ratio, from the alert evaluator's own history (`alert_events`).

Alerts of a window are the distinct alerts that entered `firing` in it; good (the numerator) =
those whose severity is `page`, total = all of them (pages + tickets); value = pages / alerts.
Overall, by team, service and SLO. An empty window: total 0, value null.
"""

from __future__ import annotations

import polars as pl

from metrics import sources
from metrics.sli.base import Context, lookback_start, ratio, window_rows
from metrics.sli.latest import histories_of, latest_reports, window_counts
from schemas import slis

DIMENSIONS = slis.family_dimensions("alerting")  # name -> column (schemas/slis.py)


def compute(ctx: Context) -> pl.DataFrame:
    fired = sources.fired_alerts(ctx.client, lookback_start(ctx), max(ctx.points))
    histories = histories_of(fired, ["alert_id", "severity", *DIMENSIONS.values()])
    page = (histories.get_column("severity") == "page").fill_null(False).to_numpy()
    cells = [window_counts(ctx, latest, {"good": page[latest.state]})
             for latest in latest_reports(ctx, histories, "alert_id", DIMENSIONS)]
    return ratio(window_rows(ctx, cells), "M7", pl.col("good"), pl.col("n"))
