"""M4 false-positive rate, from analysts' verdicts in `triage_verdicts`.

Verdicts count in the window of their subject's time (when the triaged deny or violation
happened). good (the numerator) = verdicts `false_positive`, total = all verdicts
(`true_positive` + `false_positive`); value = FP / triaged. Untriaged work is reported apart as
M4_untriaged (in `total` and `value`): deny decisions in the window (decision rollups) minus
the decisions triaged, never below 0. Overall, by team, service, policy, engine, environment,
cluster. An empty window: total 0, value null.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from metrics import sources
from metrics.sli import decisions
from metrics.sli.base import (
    Context,
    empty,
    empty_overall,
    lookback_start,
    per_dimension,
    ratio,
    shape,
    windowed,
)

DIMENSIONS = {"team": "team", "service": "service", "policy": "policy_id", "engine": "engine",
              "environment": "environment", "cluster": "cluster"}
VERDICTS_SQL = """
    SELECT subject_time AS event_time, subject_kind, verdict, team, service, policy_id, engine,
           environment, cluster
    FROM triage_verdicts FINAL
    WHERE subject_time >= {start:DateTime64(3, 'UTC')} AND subject_time < {end:DateTime64(3, 'UTC')}
    ORDER BY subject_time"""


def compute(ctx: Context) -> pl.DataFrame:
    verdicts = sources.table_rows(ctx.client, VERDICTS_SQL, {
        "start": lookback_start(ctx), "end": max(ctx.points)})
    if verdicts.height:
        verdicts = verdicts.with_columns(sources.utc_datetime(verdicts, "event_time"))

    def one(rows: pl.DataFrame, at: datetime, start: datetime) -> pl.DataFrame:
        if not rows.height:
            return empty_overall("M4").with_columns(triaged_decisions=pl.lit(0))
        return per_dimension(rows, DIMENSIONS, [
            (pl.col("verdict") == "false_positive").sum().alias("good"),
            pl.len().alias("total"),
            (pl.col("subject_kind") == "decision").sum().alias("triaged_decisions"),
        ]).with_columns(sli=pl.lit("M4"))

    frame = windowed(ctx, verdicts, one)
    parts = []
    if frame.height:
        parts.append(ratio(frame, "M4", pl.col("good"), pl.col("total")))
    denies = decisions.window_frame(ctx).select("at", "window", "dimension", "dimension_value",
                                                "denies")
    triaged = frame.select("at", "window", "dimension", "dimension_value",
                           "triaged_decisions") if frame.height else None
    untriaged = denies if triaged is None else denies.join(
        triaged, on=["at", "window", "dimension", "dimension_value"], how="left")
    untriaged = untriaged.with_columns(
        (pl.col("denies") - pl.col("triaged_decisions").fill_null(0)
         if triaged is not None else pl.col("denies")).clip(lower_bound=0).alias("n"))
    parts.append(shape(untriaged.with_columns(sli=pl.lit("M4_untriaged"),
                                              good=pl.lit(None, pl.Float64),
                                              total=pl.col("n"), value=pl.col("n"))))
    return pl.concat(parts) if parts else empty()
