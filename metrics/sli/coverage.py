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

import numpy as np
import polars as pl

from metrics import sources
from metrics.sli.base import (
    Context,
    by_sli,
    codes_of,
    lookback_start,
    ratio,
    window_rows,
)
from metrics.sli.latest import latest_reports, window_counts
from schemas import slis

DIMENSIONS = slis.family_dimensions("coverage")  # name -> column (schemas/slis.py)
SBOM_LOOKBACK_DAYS = 90
NO_SBOM = np.iinfo(np.int64).max


def first_sboms(ctx: Context, images: pl.Series) -> np.ndarray:
    """Per image of `images`: the time of its first `sbom.generated` event (microseconds;
    NO_SBOM when it has none) up to 90 days before the earliest window."""
    sboms = sources.events(ctx.client, "sbom.generated", ["image"],
                           lookback_start(ctx, SBOM_LOOKBACK_DAYS), max(ctx.points))
    first = sboms.group_by("image").agg(pl.col("event_time").min().alias("sbom_time"))
    times = pl.DataFrame({"image": images}).with_row_index().join(
        first, on="image", how="left").sort("index")
    return times.get_column("sbom_time").dt.epoch("us").fill_null(NO_SBOM).to_numpy()


def compute(ctx: Context) -> pl.DataFrame:
    inventory = sources.report_histories(
        ctx.client, "workload.inventory", "workload_id", list(DIMENSIONS.values()),
        ["workload_enforced", "image"], lookback_start(ctx), max(ctx.points), ctx.points,
        memo=ctx.memo)
    enforced = inventory.get_column("workload_enforced").fill_null(False).to_numpy()
    images, image = codes_of(inventory.get_column("image"))
    has_image = (inventory.get_column("image").fill_null("") != "").to_numpy()
    sbom_time = first_sboms(ctx, images)
    at, _ = ctx.interval_times
    m2, m9 = [], []
    for latest in latest_reports(ctx, inventory, "workload_id", DIMENSIONS):
        m2.append(window_counts(ctx, latest, {"good": enforced[latest.state]}))
        imaged = latest.select(has_image[latest.state])
        has_sbom = sbom_time[image[imaged.state]] < at[imaged.point]
        m9.append(window_counts(ctx, imaged, {"good": has_sbom}, distinct=image))
    return by_sli([ratio(window_rows(ctx, m2), "M2", pl.col("good"), pl.col("n")),
                   ratio(window_rows(ctx, m9), "M9", pl.col("good"), pl.col("n"))])
