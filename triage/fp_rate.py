"""False-positive rate by policy per day, with its trend.

Counted as M4 counts (`metrics/sli/false_positives.py`): current verdicts, by the subject's
time (the day the deny or violation happened, UTC), false positives / all triaged
(true_positive + false_positive + unexpired benign), hand and propagated together, with the
propagated part alongside.

Why not from `sli_values`: verdicts mostly come days after their subjects, and the batch
re-evaluates at most `late_horizon` recent points when late rows arrive, so a stored daily M4
value of last week does not see this week's labels. The verdict table is small (one row per
triaged subject) and is read here directly, so the trend always reflects every label given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
from clickhouse_connect.driver.client import Client

from triage import store
from triage.model import Filters, check_range

DAILY_SCHEMA = {"day": pl.Date, "policy": pl.String, "false_positives": pl.Int64,
                "triaged": pl.Int64, "fp_rate": pl.Float64,
                "propagated_false_positives": pl.Int64, "propagated": pl.Int64}


@dataclass(frozen=True)
class FpRates:
    """`daily`: one row per policy and day with verdicts (`DAILY_SCHEMA`; fp_rate =
    false_positives / triaged; a day without verdicts is absent, never a rate of 0).
    `by_policy`: per policy over the whole range: false_positives, triaged, fp_rate, and the
    trend — fp_rate over the first and the second half of the range (`first_half`,
    `second_half`, null when a half has no verdicts) and `change` = second - first."""

    daily: pl.DataFrame
    by_policy: pl.DataFrame


def fp_rate_by_policy(client: Client, start: datetime, end: datetime,
                      filters: Filters = Filters(), *, now: datetime | None = None) -> FpRates:
    """FP rate per policy per day over subjects timed in [start, end), and its trend."""
    start, end = check_range(start, end)
    counts = store.verdicts_by_policy_day(client, start, end, filters,
                                          store.now_or_server(client, now))
    daily = counts.with_columns(
        pl.col("false_positives", "triaged", "propagated_false_positives", "propagated")
        .cast(pl.Int64),
        fp_rate=pl.col("false_positives") / pl.col("triaged")).select(list(DAILY_SCHEMA))
    daily = daily.cast(DAILY_SCHEMA) if daily.height else pl.DataFrame(schema=DAILY_SCHEMA)
    return FpRates(daily, trend(daily, start, end))


def trend(daily: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Per policy of `daily`: totals, fp_rate, and the rates of the range's two halves (days
    before the middle day / from it)."""
    middle = (start + (end - start) / 2).date()
    first = pl.col("day") < middle

    def rate(mask: pl.Expr) -> pl.Expr:
        fp = pl.col("false_positives").filter(mask).sum()
        triaged = pl.col("triaged").filter(mask).sum()
        return pl.when(triaged > 0).then(fp / triaged)

    return daily.group_by("policy").agg(
        pl.col("false_positives").sum(), pl.col("triaged").sum(),
        first_half=rate(first), second_half=rate(~first)).with_columns(
        fp_rate=pl.col("false_positives") / pl.col("triaged"),
        change=pl.col("second_half") - pl.col("first_half")).select(
        "policy", "false_positives", "triaged", "fp_rate", "first_half", "second_half",
        "change").sort("policy")
