"""Human wording of an alert's numbers, shared by the chat and Alertmanager notifiers.

    >>> burn(14.4)
    '14.4x'
    >>> burn(None)
    'no data'
    >>> budget(0.625), budget(-1.5), budget(None)
    ('62.5% left', '150.0% overspent', 'no data')
    >>> duration(0), duration(59), duration(3 * 3600 + 20 * 60), duration(90061)
    ('now', '59s', '3h 20m', '1d 1h')
"""

from __future__ import annotations

from slo.notify.base import AlertNotice


def burn(value: float | None) -> str:
    return "no data" if value is None else f"{value:.3g}x"


def budget(remaining: float | None) -> str:
    if remaining is None:
        return "no data"
    if remaining < 0:
        return f"{-remaining * 100:.1f}% overspent"
    return f"{remaining * 100:.1f}% left"


def duration(seconds: float | None) -> str:
    """Two most significant units; 'now' for zero (the budget is spent), '-' for None."""
    if seconds is None:
        return "-"
    total = int(round(seconds))
    if total <= 0:
        return "now"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return " ".join(parts[:2])


def dimensions(alert: AlertNotice) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(alert.dimensions.items())) or "all"


def burn_line(alert: AlertNotice) -> str:
    return (f"burn {burn(alert.burn_long)} over {alert.long_window}, "
            f"{burn(alert.burn_short)} over {alert.short_window} "
            f"(threshold {burn(alert.factor)})")


def budget_line(alert: AlertNotice) -> str:
    line = f"error budget {budget(alert.budget_remaining)}"
    if alert.firing and alert.time_to_exhaustion_s is not None:
        line += f", exhausted in {duration(alert.time_to_exhaustion_s)} at this burn"
    return line


def description(alert: AlertNotice) -> str:
    """Multi-line plain text: what, where, how fast, how much is left."""
    return "\n".join([alert.summary, f"dimensions: {dimensions(alert)}", burn_line(alert),
                      budget_line(alert)])
