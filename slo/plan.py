"""What an SLO's alerts mean, before any data: `policyscope slo plan PATH`.

For every window pair of every SLO: the burn-rate factor for the SLO's period, the error-rate
threshold it stands for (factor x (1 - objective)), the share of the period's budget the long
window burns at that rate, and how much traffic one bad event needs not to trip the short
window. With an expected traffic (events per day; for Timeslices the slices are the events and
their count is fixed) also the bad events that fire each window and the bad events allowed in
the period. Warnings: a pair that can never fire (threshold above 100 %), and traffic too low
for the objective (one bad event alone already reaches the short window's threshold).

All maths is exact (slo.burn_rate); numbers are printed as decimals, marked `~` where rounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from slo.burn_rate import DAY, never_fires
from slo.spec import SLO, format_duration

MILLION = 1_000_000
NOMINAL_MONTH = 30 * DAY  # a calendar month's plan, unless `at` picks a month


@dataclass(frozen=True)
class PlanRow:
    """One window pair of one SLO. Event counts are per evaluated group (per `by` value)."""

    slo: str
    severity: str
    long_window: str
    short_window: str
    factor: Fraction             # burn-rate threshold for the period
    threshold: Fraction          # error rate = factor x (1 - objective); > 1 never fires
    budget_consumed: Fraction    # share of the period's budget the long window burns at it
    one_bad_fires_up_to: int | None  # short-window events at or below which one bad event
    #                                  alone reaches the threshold; None when it never fires
    long_events: Fraction | None = None   # expected events (or slices) in each window
    short_events: Fraction | None = None
    bad_to_fire_long: int | None = None   # fewest bad events that reach the threshold
    bad_to_fire_short: int | None = None
    never_fires: bool = False
    warnings: tuple[str, ...] = ()


def period_of(slo: SLO, at: datetime | date | None = None) -> int:
    """The period the plan uses: rolling, the month of `at`, or a nominal 30-day month."""
    if slo.period_seconds is not None:
        return slo.period_seconds
    return NOMINAL_MONTH if at is None else slo.period_for(at)


def events_per_day(slo: SLO, expected_events_per_day: float | None) -> Fraction | None:
    """Timeslices count slices, a fixed number per day; otherwise the traffic given (or None)."""
    if slo.budgeting_method == "Timeslices":
        return Fraction(DAY, slo.time_slice_seconds)
    if expected_events_per_day is None:
        return None
    return Fraction(repr(expected_events_per_day)) if isinstance(expected_events_per_day, float) \
        else Fraction(expected_events_per_day)


def plan(slo: SLO, expected_events_per_day: float | None = None,
         at: datetime | date | None = None) -> list[PlanRow]:
    """One PlanRow per window pair of `slo`, in its order."""
    period, budget = period_of(slo, at), 1 - slo.objective
    per_day = events_per_day(slo, expected_events_per_day)
    unit = _unit(slo)
    rows = []
    for pair in slo.pairs:
        factor = pair.factor(period)
        threshold = factor * budget
        long, short = format_duration(pair.long_window), format_duration(pair.short_window)
        label = f"{pair.severity} {long}/{short}"
        dead = never_fires(factor, slo.objective)
        warnings = []
        if dead:
            warnings.append(f"{label} can never fire: factor {decimal(factor)} x error budget "
                            f"{percent(budget)} = {percent(threshold)} error rate (above 100 %)")
        row = dict(slo=slo.name, severity=pair.severity, long_window=long, short_window=short,
                   factor=factor, threshold=threshold,
                   budget_consumed=factor * Fraction(pair.long_window, period),
                   one_bad_fires_up_to=None if dead else math.floor(1 / threshold),
                   never_fires=dead)
        if per_day is not None:
            long_n = per_day * Fraction(pair.long_window, DAY)
            short_n = per_day * Fraction(pair.short_window, DAY)
            row.update(long_events=long_n, short_events=short_n)
            if not dead:
                row.update(bad_to_fire_long=max(1, math.ceil(threshold * long_n)),
                           bad_to_fire_short=max(1, math.ceil(threshold * short_n)))
                if short_n * threshold <= 1:
                    warnings.append(
                        f"{label}: traffic too low for the objective: {count(short_n)} {unit} "
                        f"expected in {short}, so one bad {unit[:-1]} alone "
                        f"({percent(1 / short_n) if short_n else 'all'} errors) already reaches "
                        f"the {percent(threshold)} threshold; consider "
                        + ("a longer short window" if unit == "slices"
                           else "minEvents or a longer short window"))
            if slo.min_events > short_n:
                warnings.append(f"{label}: minEvents {slo.min_events} exceeds the "
                                f"{count(short_n)} {unit} expected in {short}: this pair "
                                "cannot fire at this traffic")
        rows.append(PlanRow(**row, warnings=tuple(warnings)))
    return rows


def render_plan(slos: list[SLO], expected_events_per_day: float | None = None,
                at: datetime | date | None = None) -> str:
    """The plan of every SLO as text, for `policyscope slo plan PATH`."""
    return "\n\n".join(_render_one(slo, expected_events_per_day, at) for slo in slos) + "\n"


def _render_one(slo: SLO, expected_events_per_day: float | None,
                at: datetime | date | None) -> str:
    period, budget, unit = period_of(slo, at), 1 - slo.objective, _unit(slo)
    per_day = events_per_day(slo, expected_events_per_day)
    rows = plan(slo, expected_events_per_day, at)
    scope = [f"by {', '.join(slo.by)}"] if slo.by else []
    scope += [f"{k}={v}" for k, v in slo.where.items()]
    lines = [" ".join([f"{slo.name}: {slo.sli} ({slo.numerator}/total)", *scope])
             + f", service {slo.spec.service}"]
    if slo.is_calendar:
        window = ("calendar month (UTC), factors for a 30-day month" if at is None
                  else f"calendar month (UTC) of {at:%Y-%m}, {period // DAY} days")
    else:
        window = f"rolling {slo.period_name}"
    method = slo.budgeting_method
    if method == "Timeslices":
        method += (f" ({format_duration(slo.time_slice_seconds)} slices, good at "
                   f"{percent(slo.time_slice_target)} or better)")
    lines.append(f"  objective {percent(slo.objective)} over a {window}; {method}")
    lines.append(f"  error budget {percent(budget)}: {count(budget * MILLION)} bad {unit} "
                 f"allowed per {MILLION:,}")
    if per_day is not None:
        total = per_day * Fraction(period, DAY)
        traffic = (f"{count(per_day)} slices/day" if method.startswith("Timeslices")
                   else f"{count(per_day)} events/day")
        lines.append(f"  at {traffic}{' per ' + ', '.join(slo.by) if slo.by else ''}: "
                     f"{count(total)} {unit} in the period, {count(budget * total)} bad allowed")
    settings = []
    if slo.min_events:
        settings.append(f"minEvents {slo.min_events}")
    if slo.pending_seconds:
        settings.append(f"for {format_duration(slo.pending_seconds)}")
    if settings:
        lines.append(f"  alerting: {', '.join(settings)}")
    header = ["severity", "long", "short", "factor", "threshold", "budget/long",
              "1 bad alone fires at"]
    table = [[r.severity, r.long_window, r.short_window, decimal(r.factor),
              percent(r.threshold), percent(r.budget_consumed),
              "never" if r.one_bad_fires_up_to is None else
              f"<= {r.one_bad_fires_up_to:,} {_plural(unit, r.one_bad_fires_up_to)}"]
             for r in rows]
    if per_day is not None:
        header.append("bad to fire long/short")
        for cells, r in zip(table, rows):
            cells.append("never" if r.never_fires else
                         f"{r.bad_to_fire_long:,} of {count(r.long_events)} / "
                         f"{r.bad_to_fire_short:,} of {count(r.short_events)}")
    widths = [max(len(c[i]) for c in [header, *table]) for i in range(len(header))]
    for cells in [header, *table]:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    for policy in slo.budget_policies:
        allowed = (f" ({count(policy.consumed * budget * per_day * Fraction(period, DAY))} "
                   f"bad {unit})" if per_day is not None else "")
        owner = f" to {policy.owner}" if policy.owner else ""
        lines.append(f"  budget policy: {policy.action}{owner} at {percent(policy.consumed)} "
                     f"of the budget consumed{allowed}")
    lines += [f"  warning: {w}" for r in rows for w in r.warnings]
    return "\n".join(lines)


def _unit(slo: SLO) -> str:
    return "slices" if slo.budgeting_method == "Timeslices" else "events"


def decimal(x: Fraction, places: int = 4) -> str:
    """An exact decimal when `x` has one within `places` digits, else '~' and the rounding:
    Fraction(72, 5) -> '14.4', Fraction(14, 15) -> '~0.9333'."""
    r = round(x, places)
    digits = abs(r) * 10**places
    whole, part = divmod(digits.numerator // digits.denominator, 10**places)
    text = f"{whole:,}.{part:0{places}d}".rstrip("0").rstrip(".")
    return ("~" if r != x else "") + ("-" if r < 0 else "") + text


def percent(x: Fraction) -> str:
    return f"{decimal(x * 100)} %"


def count(x: Fraction) -> str:
    """A count of events: whole when it is, else '~' and one decimal."""
    return decimal(x, 1)


def _plural(unit: str, n: int) -> str:
    return unit if n != 1 else unit[:-1]
