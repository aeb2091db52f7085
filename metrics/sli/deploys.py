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


def compute(ctx: Context) -> pl.DataFrame:
    frame = sources.rollup_window_sums(ctx.client, sources.GATES, ctx.intervals,
                                       ["total", "blocked", "overridden"])
    frame = complete(ctx, frame, {"total": 0, "blocked": 0, "overridden": 0})
    return ratio(frame, "M6", pl.col("blocked"), pl.col("total"))
