"""M4 false-positive rate, from analysts' verdicts in `triage_verdicts`.

Verdicts count in the window of their subject's time (when the triaged deny or violation
happened). good (the numerator) = verdicts `false_positive`, total = all verdicts
(`true_positive` + `false_positive`); value = FP / triaged. Untriaged work is reported apart as
M4_untriaged (in `total` and `value`): deny decisions in the window (decision rollups, in
`good`) minus the decisions triaged, never below 0. Overall, by team, service, policy, engine,
environment, cluster. An empty window: total 0, value null.
"""

from __future__ import annotations

import polars as pl

from metrics import sources
from metrics.sli import decisions
from metrics.sli.base import (
    Context,
    by_sli,
    complete,
    lookback_start,
    ratio,
    shape,
    to_long,
)
from metrics.window_sums import event_window_sums
from schemas import slis

DIMENSIONS = slis.family_dimensions("false_positives")  # name -> column (schemas/slis.py)
KEYS = ["dimension", "dimension_value"]


def compute(ctx: Context) -> pl.DataFrame:
    verdicts = sources.triage_verdicts(ctx.client, lookback_start(ctx), max(ctx.points))
    verdicts = verdicts.with_columns(
        fp=(pl.col("verdict") == "false_positive").cast(pl.Int64),
        triaged=pl.lit(1, pl.Int64),
        triaged_decisions=(pl.col("subject_kind") == "decision").cast(pl.Int64))
    sums = event_window_sums(to_long(verdicts, DIMENSIONS), ctx.intervals, KEYS,
                             ["fp", "triaged", "triaged_decisions"])
    m4 = ratio(complete(ctx, sums, {"fp": 0, "triaged": 0}), "M4", pl.col("fp"),
               pl.col("triaged"))
    denies = decisions.window_frame(ctx).select("at", "window", *KEYS, "denies")
    untriaged = denies.join(sums.select("at", "window", *KEYS, "triaged_decisions"),
                            on=["at", "window", *KEYS], how="left",
                            maintain_order="left").with_columns(
        n=(pl.col("denies") - pl.col("triaged_decisions").fill_null(0)).clip(lower_bound=0))
    return by_sli([m4, shape(untriaged.with_columns(
        sli=pl.lit("M4_untriaged", pl.Categorical), good=pl.col("denies"), total=pl.col("n"),
        value=pl.col("n")))])
