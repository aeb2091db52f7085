"""M6 deployment block rate, from the deploy-gate rollups.

good (the numerator) = gates whose outcome is `blocked`, total = all gate outcomes (`passed`,
`blocked`, `overridden`); value = blocked / total. Reads `gates_1h` / `gates_1m` (fed by
`deploy.gate` events), by team, service, blocking policy, environment, cluster and overall.
An empty window: total 0, value null.
"""

from __future__ import annotations

import polars as pl

from metrics import sources
from metrics.sli.base import Context, complete, ratio
from metrics.windows import partial_hours, required_times, window_sums


def compute(ctx: Context) -> pl.DataFrame:
    times = required_times(ctx.points, ctx.windows)
    hourly = sources.rollup_hours(ctx.client, sources.GATES, min(times), max(times))
    minutely = sources.rollup_minutes(ctx.client, sources.GATES, partial_hours(times))
    frame = window_sums(hourly, minutely, ctx.points, ctx.windows, sources.KEYS,
                        ["total", "blocked", "overridden"])
    frame = complete(ctx, frame, {"total": 0, "blocked": 0, "overridden": 0})
    return ratio(frame, "M6", pl.col("blocked"), pl.col("total"))
