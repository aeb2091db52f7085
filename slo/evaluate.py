"""Evaluate SLOs: burn rates of every alert pair, budget left, which tiers fire.

Pure over counts: `evaluate(client, slos, points)` reads the counts each SLO needs (all its
alert windows and its period, at every point, in one pass per SLO) and returns one
`Evaluation` per (SLO, dimension values, point). The decision a pair fires is exact
(slo/burn_rate.py); floats appear only in what is shown.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

import polars as pl
from clickhouse_connect.driver.client import Client

from slo import burn_rate, spec
from slo.counts import counts, parse_key, prefetch
from slo.timeslices import slice_table


@functools.cache
def window_name(seconds: int) -> str:
    """3600 -> '1h', 300 -> '5m', 86400 -> '1d' (the largest whole unit)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise ValueError(f"window of {seconds} s is not a whole number of minutes")


@dataclass(frozen=True)
class PairResult:
    severity: str
    long_window: str
    short_window: str
    factor: Fraction
    burn_long: Fraction | None
    burn_short: Fraction | None
    firing: bool


@dataclass(frozen=True)
class Evaluation:
    slo: str
    dimensions: dict[str, str]
    at: datetime
    objective: Fraction
    period: str
    good: int
    total: int
    budget_remaining: Fraction | None
    time_to_exhaustion_s: float | None
    pairs: tuple[PairResult, ...] = field(default_factory=tuple)

    def tier_firing(self, severity: str) -> PairResult | None:
        """The first firing pair of a tier (the fastest), or None."""
        return next((p for p in self.pairs if p.severity == severity and p.firing), None)


def _period_window(slo) -> str:
    return "month" if slo.period_seconds is None else window_name(slo.period_seconds)


def _windows(slo) -> list[str]:
    """Every alert window of the SLO and its period."""
    return sorted({window_name(p.long_window) for p in slo.pairs}
                  | {window_name(p.short_window) for p in slo.pairs} | {_period_window(slo)})


def evaluate(client: Client, slos, points: list[datetime], *, latency_threshold: float = 0.1
             ) -> list[Evaluation]:
    results: list[Evaluation] = []
    cache: dict = {}
    # one read per rollup for every Occurrences SLO (counts then come from the cache)
    prefetch(client, [(slo.sli, dict(slo.where), list(slo.by), _windows(slo)) for slo in slos
                      if slo.budgeting_method != "Timeslices"], points, cache,
             latency_threshold=latency_threshold)
    for slo in slos:
        results.extend(evaluate_one(client, slo, points, latency_threshold=latency_threshold,
                                    cache=cache))
    return results


def evaluate_one(client: Client, slo, points: list[datetime], *,
                 latency_threshold: float = 0.1, cache: dict | None = None
                 ) -> list[Evaluation]:
    period = _period_window(slo)
    windows = _windows(slo)
    if slo.budgeting_method == "Timeslices":
        table = slice_table(client, slo, points, windows, window_name,
                            latency_threshold=latency_threshold)
    else:
        frame = counts(client, slo.sli, dict(slo.where), list(slo.by), points, windows,
                       latency_threshold=latency_threshold, cache=cache)
        table = {}
        for row in frame.iter_rows(named=True):
            bad, total = spec.events(slo.sli, row["numerator"], row["total"])
            table[(row["at"], row["key"], row["window"])] = (bad, total)
    keys = sorted({k for (_, k, _) in table}) or [""]
    out = []
    for at in points:
        for key in keys:
            out.append(_evaluation(slo, at, key, period, table))
    return out


def _evaluation(slo, at: datetime, key: str, period: str, table) -> Evaluation:
    def get(window: str) -> tuple[int, int]:
        return table.get((at, key, window), (0, 0))

    period_seconds = slo.period_seconds or slo.period_for(at)
    pairs = []
    for pair in slo.pairs:
        factor = pair.factor(period_seconds)
        long_name, short_name = window_name(pair.long_window), window_name(pair.short_window)
        long, short = get(long_name), get(short_name)
        burns = (burn_rate.burn_rate(*long, slo.objective),
                 burn_rate.burn_rate(*short, slo.objective))
        pairs.append(PairResult(
            pair.severity, long_name, short_name, factor, *burns,
            burn_rate.burns_fire(burns, (long[1], short[1]), factor, slo.min_events)))
    bad, total = get(period)
    remaining = burn_rate.budget_remaining(bad, total, slo.objective)
    current_burn = pairs[0].burn_long if pairs else None
    return Evaluation(slo.name, parse_key(key), at, slo.objective, period, total - bad, total,
                      remaining, burn_rate.time_to_exhaustion(remaining, current_burn,
                                                              period_seconds), tuple(pairs))


def to_frame(evaluations: list[Evaluation]) -> pl.DataFrame:
    """One row per (evaluation, pair), for display and tests."""
    rows = []
    for e in evaluations:
        for p in e.pairs:
            rows.append({"slo": e.slo, "dimensions": e.dimensions, "at": e.at,
                         "severity": p.severity, "long_window": p.long_window,
                         "short_window": p.short_window, "factor": float(p.factor),
                         "burn_long": None if p.burn_long is None else float(p.burn_long),
                         "burn_short": None if p.burn_short is None else float(p.burn_short),
                         "firing": p.firing})
    return pl.DataFrame(rows)
