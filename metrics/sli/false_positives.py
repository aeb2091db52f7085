"""M4 false-positive rate, from analysts' verdicts in `triage_verdicts`.

Verdicts count in the window of their subject's time (when the triaged deny, warn or violation
happened). Only current verdicts count: the latest per subject (`triage/` appends every verdict
to `triage_history`; a view keeps `triage_verdicts` the latest entry), not "no verdict" (an
undone first label), and a `benign` verdict only until its expiry (as of the run's latest
point; after it, the subject is untriaged again).

M4            good (the numerator) = verdicts `false_positive`, total = all current verdicts
              (`true_positive` + `false_positive` + `benign`), hand and propagated alike;
              value = FP / triaged.
M4_propagated the part of M4 a sticky rule gave (source `rule`), counted apart from hand
              labels: good = propagated false positives, total = value = propagated verdicts
              (hand-labelled = M4's numbers less these).
M4_untriaged  untriaged work: good = deny and warn decisions in the window (decision rollups),
              total = value = those less the decisions triaged, never below 0.
Overall, by team, service, policy, engine, environment, cluster. An empty window: M4 total 0,
value null; the counts 0.
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
COUNTS = ["fp", "triaged", "triaged_decisions", "propagated", "propagated_fp"]


def compute(ctx: Context) -> pl.DataFrame:
    latest = max(ctx.points)
    verdicts = sources.triage_verdicts(ctx.client, lookback_start(ctx), latest, as_of=latest)
    fp = pl.col("verdict") == "false_positive"
    rule = pl.col("source") == "rule"
    verdicts = verdicts.with_columns(
        fp=fp.cast(pl.Int64), triaged=pl.lit(1, pl.Int64),
        triaged_decisions=(pl.col("subject_kind") == "decision").cast(pl.Int64),
        propagated=rule.cast(pl.Int64), propagated_fp=(rule & fp).cast(pl.Int64))
    sums = complete(ctx, event_window_sums(to_long(verdicts, DIMENSIONS), ctx.intervals, KEYS,
                                           COUNTS), {c: 0 for c in COUNTS})
    m4 = ratio(sums, "M4", pl.col("fp"), pl.col("triaged"))
    propagated = shape(sums.with_columns(
        sli=pl.lit("M4_propagated", pl.Categorical), good=pl.col("propagated_fp"),
        total=pl.col("propagated"), value=pl.col("propagated")))
    flagged = decisions.window_frame(ctx).select(
        "at", "window", *KEYS, flagged=pl.col("denies") + pl.col("warns"))
    untriaged = flagged.join(sums.select("at", "window", *KEYS, "triaged_decisions"),
                             on=["at", "window", *KEYS], how="left",
                             maintain_order="left").with_columns(
        n=(pl.col("flagged") - pl.col("triaged_decisions").fill_null(0)).clip(lower_bound=0))
    return by_sli([m4, propagated, shape(untriaged.with_columns(
        sli=pl.lit("M4_untriaged", pl.Categorical), good=pl.col("flagged"), total=pl.col("n"),
        value=pl.col("n")))])
