"""M2 enforcement coverage and M9 SBOM coverage, from `workload.inventory` and `sbom.generated`.

The inventory of a window is every workload reported in it, in the state of its latest report.
M2  good = inventoried workloads whose latest report has `workload.enforced` true (>= 1 policy
    in enforce mode), total = inventoried workloads. Overall and by team, service,
    environment, cluster.
M9  good = distinct images of the window's inventory that have an `sbom.generated` event
    before the evaluation time (up to 90 days back), total = distinct inventoried images.
    Same dimensions.
An empty window (no inventory reports): total 0, value null.
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

DIMENSIONS = {"team": "team", "service": "service", "environment": "environment",
              "cluster": "cluster"}
SBOM_LOOKBACK_DAYS = 90


def compute(ctx: Context) -> pl.DataFrame:
    end = max(ctx.points)
    inventory = sources.latest_rows(
        ctx.client, "workload.inventory", "workload_id", list(DIMENSIONS.values()),
        ["workload_enforced", "image"], lookback_start(ctx), end, ctx.points)
    sboms = sources.events(ctx.client, "sbom.generated", ["image"],
                           lookback_start(ctx, SBOM_LOOKBACK_DAYS), end)
    first_sbom = sboms.group_by("image").agg(pl.col("event_time").min().alias("sbom_time"))
    latest = latest_in_windows(ctx, inventory, "workload_id", DIMENSIONS)
    m2 = aggregate(latest, [pl.col("workload_enforced").fill_null(False).sum().alias("good"),
                            pl.len().alias("total")])
    images = latest.filter(pl.col("image") != "").join(first_sbom, on="image", how="left")
    has_sbom = pl.col("sbom_time").is_not_null() & (pl.col("sbom_time") < pl.col("at"))
    m9 = aggregate(images, [pl.col("image").filter(has_sbom).n_unique().alias("good"),
                            pl.col("image").n_unique().alias("total")])
    zero = {"good": 0, "total": 0}
    return pl.concat([ratio(complete(ctx, m2, zero), "M2", pl.col("good"), pl.col("total")),
                      ratio(complete(ctx, m9, zero), "M9", pl.col("good"), pl.col("total"))])
