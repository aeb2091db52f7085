"""Burn-rate maths for multi-window, multi-burn-rate alerts, in exact arithmetic.

Source: Google SRE Workbook, "Alerting on SLOs", recommendation 6 (multiwindow, multi-burn-rate
alerts). For an SLO with objective `o` (e.g. 0.999) the error budget is `1 - o`; the burn rate
over a window is `error_rate / (1 - o)`: 1 spends the budget exactly over the SLO period.

The defaults are stated as the share of the period's budget a long window may consume, so other
periods derive their factors: factor = budget_share x period / long_window.

    >>> from fractions import Fraction
    >>> [str(p.factor(30 * DAY)) for p in DEFAULT_POLICY]
    ['72/5', '6', '3', '1']
    >>> [float(round(p.factor(28 * DAY), 3)) for p in DEFAULT_POLICY]
    [13.44, 5.6, 2.8, 0.933]

Decisions compare Fractions, never floats: in floats 14.4 * (1 - 0.999) > 0.0144.

    >>> 14.4 * (1 - 0.999) > 0.0144
    True
    >>> burns_at_least(bad=144, total=10_000, objective=Fraction("0.999"), factor=Fraction("14.4"))
    True
    >>> burns_at_least(bad=143, total=10_000, objective=Fraction("0.999"), factor=Fraction("14.4"))
    False
    >>> burns_at_least(bad=0, total=0, objective=Fraction("0.999"), factor=Fraction(1)) is None
    True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

MINUTE = 60
HOUR = 3600
DAY = 86400


def fraction(value) -> Fraction:
    """An exact Fraction from an int, a decimal string or a float's shortest repr (0.999 ->
    999/1000, not the binary float's 0.99899999999999999911...)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


@dataclass(frozen=True)
class WindowPair:
    """A long and a short window (seconds) and the budget share the long window may burn."""

    severity: str  # "page" or "ticket"
    long_window: int
    short_window: int
    budget_share: Fraction  # of the whole period's error budget, consumed over long_window

    def factor(self, period: int) -> Fraction:
        """The burn-rate threshold for an SLO period of `period` seconds."""
        return self.budget_share * Fraction(period, self.long_window)


# SRE Workbook defaults for a 30-day period: 2 % of the budget in 1 h (14.4x), 5 % in 6 h (6x)
# page; 10 % in 1 d (3x), 10 % in 3 d (1x) ticket.
DEFAULT_POLICY: tuple[WindowPair, ...] = (
    WindowPair("page", 1 * HOUR, 5 * MINUTE, Fraction(2, 100)),
    WindowPair("page", 6 * HOUR, 30 * MINUTE, Fraction(5, 100)),
    WindowPair("ticket", 1 * DAY, 2 * HOUR, Fraction(10, 100)),
    WindowPair("ticket", 3 * DAY, 6 * HOUR, Fraction(10, 100)),
)


def burn_rate(bad: int, total: int, objective: Fraction) -> Fraction | None:
    """error rate / error budget; None for an empty window (no events: nothing burns)."""
    if total <= 0:
        return None
    budget = _error_budget(objective)  # bad/total / (n/d) = bad*d / (total*n): one Fraction
    return Fraction(bad * budget.denominator, total * budget.numerator)


@functools.cache
def _error_budget(objective: Fraction) -> Fraction:
    return 1 - objective


def burns_at_least(bad: int, total: int, objective: Fraction, factor: Fraction) -> bool | None:
    """burn >= factor, decided exactly as bad * 1 >= factor * (1 - objective) * total."""
    rate = burn_rate(bad, total, objective)
    return None if rate is None else rate >= factor


def pair_fires(long: tuple[int, int], short: tuple[int, int], objective: Fraction,
               factor: Fraction, min_events: int = 0) -> bool:
    """An alert pair fires when BOTH windows burn at or above `factor`. (bad, total) each.
    An empty window never fires; neither does one with fewer than `min_events` events."""
    return burns_fire((burn_rate(*long, objective), burn_rate(*short, objective)),
                      (long[1], short[1]), factor, min_events)


def burns_fire(burns: tuple[Fraction | None, Fraction | None], totals: tuple[int, int],
               factor: Fraction, min_events: int = 0) -> bool:
    """`pair_fires` from the two windows' burn rates (None: empty) and event totals."""
    return all(burn is not None and total >= min_events and burn >= factor
               for burn, total in zip(burns, totals))


def budget_remaining(bad: int, total: int, objective: Fraction) -> Fraction | None:
    """1 - bad / ((1 - objective) x total) over the period, unclamped; None when empty.

    >>> budget_remaining(5, 10_000, Fraction("0.999"))
    Fraction(1, 2)
    >>> budget_remaining(30, 10_000, Fraction("0.999"))
    Fraction(-2, 1)
    """
    if total <= 0:
        return None
    return 1 - Fraction(bad) / ((1 - objective) * total)


def time_to_exhaustion(remaining: Fraction | None, burn: Fraction | None,
                       period: int) -> float | None:
    """Seconds until the budget is spent at the current burn rate; 0 when already spent,
    None when nothing burns (or no data). At burn b the budget lasts period / b."""
    if remaining is None or burn is None or burn <= 0:
        return None
    if remaining <= 0:
        return 0.0
    return float(remaining * period / burn)


def never_fires(factor: Fraction, objective: Fraction) -> bool:
    """A pair whose factor x (1 - objective) > 1 would need an error rate above 100 %."""
    return factor * (1 - objective) > 1
