"""Cross-field checks of an SLO, run once its structure is sound: (key path, message)."""

from __future__ import annotations

from catalog.parse import runbook_problem
from slo.burn_rate import DAY, DEFAULT_POLICY
from core.units import format_duration
from slo.spec.fields import (
    ALERT_WINDOWS,
    BAD_NUMERATOR_SLIS,
    MULTI_DIMENSION_SLIS,
    SLI_DIMENSIONS,
)
from slo.spec.model import SLO


_RATIO = "spec.indicator.spec.ratioMetric"
_TOTAL = f"{_RATIO}.total.metricSource.spec"
_WINDOW = "spec.timeWindow[0]"
_OBJECTIVE = "spec.objectives[0]"


def check(slo: SLO) -> list[tuple[str, str]]:
    return [*_check_indicator(slo), *_check_period(slo), *_check_objective(slo),
            *_check_alerting(slo), *_check_budget_policies(slo), *_check_runbook(slo)]


def _check_runbook(slo: SLO) -> list[tuple[str, str]]:
    """An SLO's own runbook (`metadata.annotations.runbook_url`) is a link in every alert
    notification: an http(s) URL, as the policy catalog's runbooks are."""
    url = slo.metadata.annotations.get("runbook_url")
    problem = runbook_problem(url) if url is not None else None
    return [("metadata.annotations.runbook_url", problem)] if problem else []


def _check_indicator(slo: SLO) -> list[tuple[str, str]]:
    ratio, out = slo.spec.indicator.spec.ratio_metric, []
    if (ratio.good is None) == (ratio.bad is None):
        return [(_RATIO, "give exactly one numerator, good or bad, beside total")]
    key = slo.numerator
    numerator = getattr(ratio, key).metric_source.spec
    settings = ratio.total.metric_source.spec
    sli = settings.sli
    if numerator.sli != sli:
        out.append((f"{_RATIO}.{key}.metricSource.spec.sli",
                    f"must name the same SLI as total ({sli}), got {numerator.sli}"))
    elif key == "good" and sli in BAD_NUMERATOR_SLIS:
        out.append((f"{_RATIO}.good", f"{sli}'s numerator counts bad events: name it under "
                                      "ratioMetric.bad, not good"))
    elif key == "bad" and sli not in BAD_NUMERATOR_SLIS:
        out.append((f"{_RATIO}.bad", f"{sli}'s numerator counts good events: name it under "
                                     "ratioMetric.good, not bad"))
    if dict(numerator.where) != dict(settings.where):
        out.append((f"{_RATIO}.{key}.metricSource.spec.where",
                    f"must equal total's where {dict(settings.where)}, got "
                    f"{dict(numerator.where)}"))
    known = SLI_DIMENSIONS[sli]
    for dim in settings.where:
        if dim not in known:
            out.append((f"{_TOTAL}.where.{dim}",
                        f"{sli} is not computed by {dim}; its dimensions: {', '.join(known)}"))
    for i, dim in enumerate(settings.by):
        if dim not in known:
            out.append((f"{_TOTAL}.by[{i}]",
                        f"{sli} is not computed by {dim}; its dimensions: {', '.join(known)}"))
        elif dim in settings.where:
            out.append((f"{_TOTAL}.by[{i}]", f"{dim} is already fixed by where"))
        elif dim in settings.by[:i]:
            out.append((f"{_TOTAL}.by[{i}]", f"{dim} is listed twice"))
    named = set(settings.where) | set(settings.by)
    if len(named) > 1 and sli not in MULTI_DIMENSION_SLIS:
        out.append((_TOTAL, f"where and by name {len(named)} dimensions "
                            f"({', '.join(sorted(named))}); {sli} is computed by one dimension "
                            "at a time, so its SLOs may name one (only "
                            f"{', '.join(sorted(MULTI_DIMENSION_SLIS))} combine dimensions)"))
    return out


def _check_period(slo: SLO) -> list[tuple[str, str]]:
    window = slo.spec.time_window[0]
    calendar_duration = window.duration == "1M"
    if window.is_rolling and window.calendar is not None:
        return [(f"{_WINDOW}.isRolling", "a window is rolling or calendar-aligned, not both: "
                                         "drop calendar or set isRolling: false")]
    if window.is_rolling is None and window.calendar is None:
        return [(f"{_WINDOW}.isRolling", "required: true for a rolling window (e.g. 30d), "
                                         "false for a calendar month (1M)")]
    rolling = bool(window.is_rolling)
    if rolling and calendar_duration:
        return [(f"{_WINDOW}.duration", "1M is a calendar month; a rolling window is like 30d, "
                                        "28d or 7d, got 1M")]
    if not rolling and not calendar_duration:
        return [(f"{_WINDOW}.duration", "a calendar window must be 1M (a calendar month), got "
                                        f"{window.duration}")]
    settings = slo.spec.indicator.spec.ratio_metric.total.metric_source.spec
    longest = max(p.long_window for p in DEFAULT_POLICY)
    if rolling and settings.alerting.windows is None and slo.period_seconds < longest:
        return [(f"{_WINDOW}.duration", f"must be at least {format_duration(longest)}, the "
                                        "longest default alert window (or set "
                                        f"alerting.windows), got {window.duration}")]
    return []


def _check_objective(slo: SLO) -> list[tuple[str, str]]:
    objective, out = slo.spec.objectives[0], []
    keys = {"timeSliceTarget": objective.time_slice_target,
            "timeSliceWindow": objective.time_slice_window}
    for key, value in keys.items():
        if slo.budgeting_method == "Timeslices" and value is None:
            out.append((f"{_OBJECTIVE}.{key}", "required when budgetingMethod is Timeslices"))
        if slo.budgeting_method == "Occurrences" and value is not None:
            out.append((f"{_OBJECTIVE}.{key}", "only allowed when budgetingMethod is "
                                               "Timeslices"))
    slice_s = objective.time_slice_window
    if slice_s is not None and slo.budgeting_method == "Timeslices":
        bad = sorted({s for p in slo.pairs for s in (p.long_window, p.short_window)
                      if s % slice_s}, reverse=True)
        if slice_s % 60:
            out.append((f"{_OBJECTIVE}.timeSliceWindow", "must be whole minutes (the SLIs are "
                                                         f"computed per minute), got {slice_s}s"))
        elif bad:
            out.append((f"{_OBJECTIVE}.timeSliceWindow",
                        f"must divide every alert window evenly; not multiples of "
                        f"{format_duration(slice_s)}: {', '.join(map(format_duration, bad))}"))
    return out


def _check_alerting(slo: SLO) -> list[tuple[str, str]]:
    windows = slo.spec.indicator.spec.ratio_metric.total.metric_source.spec.alerting.windows
    out, seen = [], {}
    shortest_period = slo.period_seconds or 28 * DAY
    for i, w in enumerate(windows or ()):
        path = f"{_TOTAL}.alerting.windows[{i}]"
        if (w.budget_share is None) == (w.factor is None):
            out.append((path, "give exactly one of budgetShare (share of the period's budget "
                              "the long window may burn, e.g. 0.02) or factor (e.g. 14.4)"))
        elif w.factor is not None and slo.is_calendar:
            out.append((f"{path}.factor", "a calendar month's factor varies with its length: "
                                          "give budgetShare instead"))
        if ALERT_WINDOWS[w.short] >= ALERT_WINDOWS[w.long]:
            out.append((f"{path}.short",
                        f"must be shorter than long ({w.long}), got {w.short}"))
        if ALERT_WINDOWS[w.long] > shortest_period:
            out.append((f"{path}.long", f"must not exceed the period ({slo.period_name}), got "
                                        f"{w.long}"))
        if (w.long, w.short) in seen:
            first = seen[w.long, w.short]
            out.append((path, f"repeats windows {w.long}/{w.short} of windows[{first}]"))
        seen.setdefault((w.long, w.short), i)
    return out


def _check_budget_policies(slo: SLO) -> list[tuple[str, str]]:
    out, seen = [], set()
    for i, p in enumerate(slo.spec.indicator.spec.ratio_metric.total.metric_source.spec
                          .budget_policies):
        if (p.consumed, p.action) in seen:
            out.append((f"{_TOTAL}.budgetPolicies[{i}]",
                        f"repeats {p.action} at {float(p.consumed):g} consumed"))
        seen.add((p.consumed, p.action))
    return out
