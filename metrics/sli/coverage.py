"""M2 enforcement coverage and M9 SBOM coverage, from `workload.inventory` and `sbom.generated`.

The inventory of a window is every workload reported in it, in the state of its latest report.
M2  good = inventoried workloads whose latest report has `workload.enforced` true (>= 1 policy
    in enforce mode), total = inventoried workloads. Overall and by team, service,
    environment, cluster.
M9  good = distinct images of the window's inventory that have an `sbom.generated` event at
    any time before the evaluation time (up to 90 days back), total = distinct inventoried
    images. Same dimensions.
An empty window (no inventory reports): total 0, value null.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from metrics import sources
from metrics.sli.base import (
    Context,
    empty,
    empty_overall,
    lookback_start,
    per_dimension,
    ratio,
    windowed,
)

DIMENSIONS = {"team": "team", "service": "service", "environment": "environment",
              "cluster": "cluster"}
SBOM_LOOKBACK_DAYS = 90


def compute(ctx: Context) -> pl.DataFrame:
    end = max(ctx.points)
    inventory = sources.events(ctx.client, "workload.inventory",
                               ["workload_id", "workload_enforced", "image", *DIMENSIONS.values()],
                               lookback_start(ctx), end)
    sboms = sources.events(ctx.client, "sbom.generated", ["image"],
                           lookback_start(ctx, SBOM_LOOKBACK_DAYS), end)
    first_sbom = sboms.group_by("image").agg(pl.col("event_time").min().alias("sbom_time"))

    def one(rows: pl.DataFrame, at: datetime, start: datetime) -> pl.DataFrame:
        if not rows.height:
            return empty_overall("M2", "M9")
        latest = rows.group_by("workload_id").agg(pl.all().sort_by("event_time").last())
        m2 = per_dimension(latest, DIMENSIONS, [
            pl.col("workload_enforced").fill_null(False).sum().alias("good"),
            pl.len().alias("total")]).with_columns(sli=pl.lit("M2"))
        images = latest.filter(pl.col("image") != "").join(first_sbom, on="image", how="left")
        has_sbom = pl.col("sbom_time").is_not_null() & (pl.col("sbom_time") < at)
        m9 = per_dimension(images, DIMENSIONS, [
            pl.col("image").filter(has_sbom).n_unique().alias("good"),
            pl.col("image").n_unique().alias("total")]).with_columns(sli=pl.lit("M9"))
        return pl.concat([m2, m9], how="diagonal_relaxed")

    frame = windowed(ctx, inventory, one)
    if not frame.height:
        return empty()
    return pl.concat([ratio(frame.filter(pl.col("sli") == s), s, pl.col("good"),
                            pl.col("total")) for s in ("M2", "M9")])
