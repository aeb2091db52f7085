"""SLOs as code: strict parsing of OpenSLO v1 `SLO` documents whose SLI is a PolicyScope one.

A file is a plain OpenSLO v1 document (DESIGN §6), so other OpenSLO tools can read it. All that
is PolicyScope's lives in the `spec` of the metric sources of type `policyscope` (OpenSLO leaves
a source's spec to its type):

- numerator source (`good`, or `bad` for SLIs whose numerator counts bad events, see
  `BAD_NUMERATOR_SLIS`): `sli` (a ratio SLI id) and `where` ({dimension: value}).
- `total` source: the same `sli` and `where`, plus the SLO's settings, written once:
  `by` (evaluate per value of a dimension), `alerting` (window pairs, `minEvents`, `for`) and
  `budgetPolicies` (actions at a share of the period budget consumed).

Parsing is lazy: every problem is reported, one line each, naming the file and the key path
(`x.yaml: spec.objectives[0].target: must be between 0 and 1 exclusive, got 1.2`). Structural
problems come first; the cross-field checks run once the structure is sound.
"""

from __future__ import annotations

import calendar as _calendar
import difflib
import math
import re
from datetime import date, datetime, timezone
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Iterable, Literal, Mapping, get_args

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, PrivateAttr,
                      ValidationError)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from metrics.windows import WINDOWS
from schemas.frames import RATIO_SLIS
from slo.burn_rate import DAY, DEFAULT_POLICY, WindowPair, fraction, never_fires

# SLIs whose numerator (`good` in sli_values) counts bad events: a false positive (M4), a
# blocked deploy (M6), an alert that pages someone (M7: pages interrupt people, tickets wait).
# Their SLO names the SLI under `ratioMetric.bad`; every other ratio SLI under `good`.
BAD_NUMERATOR_SLIS = frozenset({"M4", "M6", "M7"})

# Dimensions each ratio SLI is computed by (metrics/sli/*.py, metrics/sources.py; a unit test
# keeps the two in step). SLIs read from rollups (MULTI_DIMENSION_SLIS) are counted for any
# `where` and `by` combination (slo/counts.py); the others come from their SLI family, which
# breaks values down one dimension at a time, so their SLOs name at most one dimension.
_DECISIONS = ("team", "service", "policy", "engine", "environment", "cluster")
_INVENTORY = ("team", "service", "environment", "cluster")
SLI_DIMENSIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "M1": _DECISIONS, "L_under": _DECISIONS, "M4": _DECISIONS,
    "M2": _INVENTORY, "M9": _INVENTORY,
    "M6": ("team", "service", "policy", "environment", "cluster"),
    "M7": ("team", "service", "slo"),
    "M8": ("engine", "team", "environment", "cluster"),
})
DIMENSIONS = _DECISIONS + ("slo",)
MULTI_DIMENSION_SLIS = frozenset({"M1", "L_under", "M6"})
ALERT_WINDOWS = {name: int(w.total_seconds()) for name, w in WINDOWS.items() if w is not None}
Action = Literal["review-ticket", "notify-owner", "freeze-enforce-rollouts"]
ACTIONS: tuple[str, ...] = get_args(Action)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY}
_DURATION = re.compile(r"^([1-9]\d*)([smhdw])$")
_PERIOD = re.compile(r"^([1-9]\d*)([mhdwMQY])$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Valid OpenSLO that PolicyScope does not evaluate: say so instead of "unknown key".
_UNSUPPORTED = {
    "indicatorRef": "inline the indicator (spec.indicator)",
    "alertPolicies": "alert windows go in the total metric source's spec.alerting",
    "thresholdMetric": "only ratioMetric SLOs are supported",
    "raw": "name the SLI's counts with good or bad and total",
    "rawType": "name the SLI's counts with good or bad and total",
    "targetPercent": "give target as a ratio, e.g. 0.999",
    "op": "threshold objectives are not supported",
    "value": "threshold objectives are not supported",
    "compositeWeight": "composite SLOs are not supported",
}
_SETTINGS = ("by", "alerting", "budgetPolicies")  # only on the total source's spec


class SpecError(ValueError):
    """One or more SLO files are invalid. `errors` holds one line per problem:
    `<file>: <key path>: <what is wrong>, got <value>`."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("policyscope", message)


def parse_duration(text: Any) -> int:
    """'30s', '5m', '1h', '1d', '1w' -> whole seconds. Raises ValueError otherwise."""
    m = _DURATION.match(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"duration {text!r} is not like 30s, 5m, 1h, 1d or 1w")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: int) -> str:
    """Seconds -> the largest whole unit up to days, as the SLI windows are named: 3600 -> '1h',
    5400 -> '90m', 604800 -> '7d'."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _duration(value: Any) -> int:
    try:
        return parse_duration(value)
    except ValueError:
        raise _fail("must be a duration like 30s, 5m, 1h or 1d") from None


def _pending(value: Any) -> int:
    return 0 if value in (0, "0") else _duration(value)


def _window(value: Any) -> str:
    if value not in ALERT_WINDOWS:
        raise _fail("must be one of the SLI windows " + ", ".join(ALERT_WINDOWS))
    return value


def _period(value: Any) -> str:
    m = _PERIOD.match(value) if isinstance(value, str) else None
    if not m:
        raise _fail("must be a duration like 30d, 28d, 7d (rolling) or 1M (calendar month)")
    if m.group(2) in "MQY" and value != "1M":
        raise _fail("the only calendar period supported is 1M (a calendar month)")
    return value


def _number(value: Any) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise _fail("must be a number")
    return fraction(value)  # a float by its shortest repr: the YAML text 0.999 stays 999/1000


def _between(low: int, high: int | None, *, low_open: bool = True, high_open: bool = True):
    ends = {(True, True): "exclusive", (True, False): "excluding 0",
            (False, True): "excluding 1", (False, False): "inclusive"}[(low_open, high_open)]
    message = f"must be between {low} and {high} {ends}" if high is not None \
        else f"must be {'greater than' if low_open else 'at least'} {low}"

    def check(value: Any) -> Fraction:
        x = _number(value)
        if (x <= low if low_open else x < low) or (
                high is not None and (x >= high if high_open else x > high)):
            raise _fail(message)
        return x
    return PlainValidator(check)


def _dns_name(value: str) -> str:
    if not _NAME.match(value):
        raise _fail("must be a DNS label: lowercase letters, digits and '-', at most 63 "
                    "characters, starting and ending with a letter or digit")
    return value


def _sli(value: Any) -> str:
    if value not in RATIO_SLIS:
        hint = ("; M3, M5, M10 and the latency percentiles are not ratios: watch them on "
                "dashboards and thresholds") if isinstance(value, str) and re.match(
                    r"^(M3|M5|M10|L_p)", value) else ""
        raise _fail("must be a ratio SLI, one of " + ", ".join(RATIO_SLIS) + hint)
    return value


def _dimension(value: Any) -> str:
    if value not in DIMENSIONS:
        raise _fail("is not a dimension; expected one of " + ", ".join(DIMENSIONS))
    return value


def _labels(value: Any) -> dict[str, str | tuple[str, ...]]:
    ok = isinstance(value, dict) and all(
        isinstance(k, str) and (isinstance(v, str) or (
            isinstance(v, list) and all(isinstance(i, str) for i in v)))
        for k, v in value.items())
    if not ok:
        raise _fail("must map names to a string or a list of strings")
    return {k: v if isinstance(v, str) else tuple(v) for k, v in value.items()}


def _start_time(value: Any) -> datetime:
    try:
        t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise _fail("must be a date and time like 2024-01-01 00:00:00") from None
    if (t.day, t.hour, t.minute, t.second, t.microsecond) != (1, 0, 0, 0, 0):
        raise _fail("must be the start of a month (the 1st at 00:00:00): PolicyScope's "
                    "calendar months are UTC calendar months")
    return t.replace(tzinfo=timezone.utc)


Text = Annotated[str, Field(min_length=1)]
Name = Annotated[str, AfterValidator(_dns_name)]
Ratio = Annotated[Fraction, _between(0, 1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel,
                              arbitrary_types_allowed=True)


class Metadata(_Strict):
    name: Name
    display_name: Text | None = None
    labels: Annotated[dict, PlainValidator(_labels)] = {}
    annotations: dict[str, str] = {}


class SourceFilter(_Strict):
    """The numerator's PolicyScope source spec: which SLI and which slice of it."""
    sli: Annotated[str, PlainValidator(_sli)]
    where: dict[Annotated[str, PlainValidator(_dimension)], Text] = {}


class AlertWindow(_Strict):
    severity: Literal["page", "ticket"]
    long: Annotated[str, PlainValidator(_window)]
    short: Annotated[str, PlainValidator(_window)]
    budget_share: Annotated[Fraction | None, _between(0, 1, high_open=False)] = None
    factor: Annotated[Fraction | None, _between(0, None)] = None


class Alerting(_Strict):
    windows: Annotated[tuple[AlertWindow, ...], Field(min_length=1)] | None = None
    min_events: Annotated[int, Field(ge=0, strict=True)] = 0
    for_: Annotated[int, PlainValidator(_pending)] = Field(0, alias="for")


class BudgetPolicy(_Strict):
    consumed: Annotated[Fraction, _between(0, None)]
    action: Action
    owner: Text | None = None


class SourceSettings(SourceFilter):
    """The total's PolicyScope source spec: the filter plus the SLO's settings."""
    by: tuple[Annotated[str, PlainValidator(_dimension)], ...] = ()
    alerting: Alerting = Alerting()
    budget_policies: tuple[BudgetPolicy, ...] = ()


class _NumeratorSource(_Strict):
    type: Literal["policyscope"]
    spec: SourceFilter


class _TotalSource(_Strict):
    type: Literal["policyscope"]
    spec: SourceSettings


class Numerator(_Strict):
    metric_source: _NumeratorSource


class Total(_Strict):
    metric_source: _TotalSource


class RatioMetric(_Strict):
    counter: Annotated[bool, Field(strict=True)]
    good: Numerator | None = None
    bad: Numerator | None = None
    total: Total


class IndicatorMetadata(_Strict):
    name: Name
    display_name: Text | None = None


class IndicatorSpec(_Strict):
    description: Annotated[str, Field(max_length=1050)] | None = None
    ratio_metric: RatioMetric


class Indicator(_Strict):
    metadata: IndicatorMetadata
    spec: IndicatorSpec


class Calendar(_Strict):
    start_time: Annotated[datetime, PlainValidator(_start_time)]
    time_zone: Literal["UTC"]


class TimeWindow(_Strict):
    duration: Annotated[str, PlainValidator(_period)]
    is_rolling: Annotated[bool, Field(strict=True)] | None = None
    calendar: Calendar | None = None


class Objective(_Strict):
    display_name: Text | None = None
    target: Ratio
    time_slice_target: Annotated[Fraction | None, _between(0, 1, high_open=False)] = None
    time_slice_window: Annotated[int | None, PlainValidator(_duration)] = None


class SloSpec(_Strict):
    description: Annotated[str, Field(max_length=1050)] | None = None
    service: Text
    indicator: Indicator
    time_window: Annotated[tuple[TimeWindow, ...], Field(min_length=1, max_length=1)]
    budgeting_method: Literal["Occurrences", "Timeslices"]
    objectives: Annotated[tuple[Objective, ...], Field(min_length=1, max_length=1)]


class SLO(_Strict):
    """One validated SLO document. Immutable; the helpers give exact, evaluator-ready values."""
    api_version: Literal["openslo/v1"]
    kind: Literal["SLO"]
    metadata: Metadata
    spec: SloSpec
    _source: Path | None = PrivateAttr(None)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def source(self) -> Path | None:
        """The file the SLO was loaded from (None when built from a dict)."""
        return self._source

    @property
    def _ratio(self) -> RatioMetric:
        return self.spec.indicator.spec.ratio_metric

    @property
    def _settings(self) -> SourceSettings:
        return self._ratio.total.metric_source.spec

    @property
    def numerator(self) -> Literal["good", "bad"]:
        """Which OpenSLO key names the SLI's numerator: 'bad' for BAD_NUMERATOR_SLIS."""
        return "good" if self._ratio.good is not None else "bad"

    @property
    def sli(self) -> str:
        return self._settings.sli

    @property
    def where(self) -> Mapping[str, str]:
        return MappingProxyType(dict(self._settings.where))

    @property
    def by(self) -> tuple[str, ...]:
        return self._settings.by

    @property
    def objective(self) -> Fraction:
        """The target as an exact ratio: 0.999 -> Fraction(999, 1000)."""
        return self.spec.objectives[0].target

    @property
    def budgeting_method(self) -> str:
        return self.spec.budgeting_method

    @property
    def time_slice_target(self) -> Fraction | None:
        """Timeslices only: a slice is good when its SLI value is at least this."""
        return self.spec.objectives[0].time_slice_target

    @property
    def time_slice_seconds(self) -> int | None:
        return self.spec.objectives[0].time_slice_window

    @property
    def period_name(self) -> str:
        """The period as written: '30d', '28d' or '1M' (calendar month)."""
        return self.spec.time_window[0].duration

    @property
    def is_calendar(self) -> bool:
        return self.period_name == "1M"

    @property
    def period_seconds(self) -> int | None:
        """The rolling period in seconds; None for a calendar month (see `period_for`)."""
        if self.is_calendar:
            return None
        n, unit = int(self.period_name[:-1]), self.period_name[-1]
        return n * _UNITS[unit]

    def period_for(self, at: datetime | date) -> int:
        """Seconds in the period that contains `at`: the UTC calendar month's length for a
        calendar SLO (28-31 days), the rolling period otherwise."""
        if not self.is_calendar:
            return self.period_seconds
        if isinstance(at, datetime) and at.tzinfo is not None:
            at = at.astimezone(timezone.utc)
        return _calendar.monthrange(at.year, at.month)[1] * DAY

    @property
    def pairs(self) -> tuple[WindowPair, ...]:
        """The alert window pairs: `alerting.windows` when given, else the SRE Workbook
        defaults (burn_rate.DEFAULT_POLICY). A pair given by `factor` is converted to the
        budget share it stands for over this SLO's (rolling) period."""
        windows = self._settings.alerting.windows
        if windows is None:
            return DEFAULT_POLICY
        return tuple(WindowPair(
            w.severity, ALERT_WINDOWS[w.long], ALERT_WINDOWS[w.short],
            w.budget_share if w.budget_share is not None
            else w.factor * Fraction(ALERT_WINDOWS[w.long], self.period_seconds))
            for w in windows)

    @property
    def min_events(self) -> int:
        """A window with fewer events never fires; 0 = off."""
        return self._settings.alerting.min_events

    @property
    def pending_seconds(self) -> int:
        """How long a pair must keep firing before the alert fires (`for`); 0 = at once."""
        return self._settings.alerting.for_

    @property
    def budget_policies(self) -> tuple[BudgetPolicy, ...]:
        """Ordered by the share consumed."""
        return tuple(sorted(self._settings.budget_policies, key=lambda p: p.consumed))

    def warnings(self) -> list[str]:
        """Valid but suspicious: pairs that can never fire (factor x (1 - objective) > 1;
        for a calendar month, in its longest, 31-day form)."""
        period = self.period_seconds or 31 * DAY
        out = []
        for pair in self.pairs:
            factor = pair.factor(period)
            if never_fires(factor, self.objective):
                out.append(
                    f"{_where(self)}: {pair.severity} {format_duration(pair.long_window)}/"
                    f"{format_duration(pair.short_window)} can never fire: factor "
                    f"{float(factor):g} x error budget {float(1 - self.objective):g} = "
                    f"{float(factor * (1 - self.objective)):g} > 1 (an error rate above 100 %)")
        return out


def events(sli: str, good: float | int, total: float | int) -> tuple[int, int]:
    """(bad, total) events of a ratio SLI's row (`good`, `total` as in sli_values). For
    BAD_NUMERATOR_SLIS the SLI's numerator counts bad events: bad = good. Otherwise
    bad = total - good. Counts must be whole and 0 <= good <= total."""
    g, t = _count(good), _count(total)
    if not 0 <= g <= t:
        raise ValueError(f"{sli}: good {good!r} must lie between 0 and total {total!r}")
    return (g, t) if sli in BAD_NUMERATOR_SLIS else (t - g, t)


def _count(value: float | int) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"event count {value!r} is not a whole number")


def _where(slo: SLO) -> str:
    return str(slo.source) if slo.source else slo.name


# -- cross-field checks: (key path, message) once the structure is sound -----------------------

_RATIO = "spec.indicator.spec.ratioMetric"
_TOTAL = f"{_RATIO}.total.metricSource.spec"
_WINDOW = "spec.timeWindow[0]"
_OBJECTIVE = "spec.objectives[0]"


def _check(slo: SLO) -> list[tuple[str, str]]:
    return [*_check_indicator(slo), *_check_period(slo), *_check_objective(slo),
            *_check_alerting(slo), *_check_budget_policies(slo)]


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


# -- loading -----------------------------------------------------------------------------------

class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        keys.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _known_keys() -> set[str]:
    models = [Metadata, SourceFilter, AlertWindow, Alerting, BudgetPolicy, SourceSettings,
              _NumeratorSource, Numerator, RatioMetric, IndicatorMetadata, IndicatorSpec,
              Indicator, Calendar, TimeWindow, Objective, SloSpec, SLO]
    return {f.alias or n for m in models for n, f in m.model_fields.items()}


_EXACTLY_ONE = ("timeWindow", "objectives")  # OpenSLO lists; PolicyScope evaluates one of each


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _messages(err: ValidationError) -> list[tuple[str, str]]:
    out = []
    for e in err.errors():
        path, kind, value = _path(e["loc"]), e["type"], e.get("input")
        key = str(e["loc"][-1])
        if kind == "extra_forbidden":
            hint = _UNSUPPORTED.get(key)
            close = difflib.get_close_matches(key, _known_keys(), n=1, cutoff=0.75)
            message = f"unknown key {key!r}" + (
                f" (valid OpenSLO, not supported: {hint})" if hint
                else " (SLO settings by, alerting and budgetPolicies go in the total metric "
                     "source's spec)" if key in _SETTINGS
                else f" (did you mean {close[0]!r}?)" if close else "")
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "literal_error":
            message = f"must be {e['ctx']['expected']}, got {value!r}"
        elif kind == "policyscope":
            message = f"{e['msg']}, got {value!r}"
        elif kind in ("too_short", "too_long"):
            size = len(value) if isinstance(value, (list, tuple)) else e["ctx"]["actual_length"]
            if kind == "too_short" and size >= e["ctx"]["min_length"]:
                continue  # pydantic counts only the items that validated: not a real problem
            message = (f"must hold exactly one item, got {size}" if key in _EXACTLY_ONE
                       else f"must hold at least {e['ctx'].get('min_length', 1)} item(s), got "
                            f"{size}")
        elif kind == "greater_than_equal":
            message = f"must be at least {e['ctx']['ge']}, got {value!r}"
        elif kind in ("int_type", "int_parsing", "int_from_float"):
            message = f"must be a whole number, got {value!r}"
        else:
            message = f"{e['msg'][0].lower()}{e['msg'][1:]}, got {value!r}"
        out.append((path, message))
    return out


def parse(document: Any, source: str | Path = "<document>") -> SLO:
    """Validate one parsed YAML document. Raises SpecError with every problem found."""
    where = str(source)
    if not isinstance(document, dict):
        raise SpecError([f"{where}: must be a mapping (an OpenSLO document), got "
                         f"{type(document).__name__}"])
    try:
        slo = SLO.model_validate(document)
    except ValidationError as exc:
        raise SpecError([f"{where}: {p}: {m}" for p, m in _messages(exc)]) from exc
    problems = _check(slo)
    if problems:
        raise SpecError([f"{where}: {p}: {m}" for p, m in problems])
    if isinstance(source, Path):
        slo._source = source
    return slo


def load_file(path: str | Path) -> SLO:
    """Read and validate one SLO file (one YAML document). Raises SpecError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise SpecError([f"{path}: not valid YAML (one SLO document per file): {detail}"]) \
            from exc
    return parse(document, path)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def _load_all(paths: Iterable[str | Path]) -> tuple[list[SLO], list[str]]:
    slos, errors, names = [], [], {}
    for root in map(Path, paths):
        if not root.exists():
            errors.append(f"{root}: no such file or directory")
            continue
        for path in _files(root):
            try:
                slo = load_file(path)
            except SpecError as exc:
                errors.extend(exc.errors)
                continue
            if slo.name in names:
                errors.append(f"{path}: metadata.name: {slo.name!r} is already the name of "
                              f"the SLO in {names[slo.name]}")
                continue
            names[slo.name] = path
            slos.append(slo)
    return slos, errors


def load_dir(path: str | Path) -> list[SLO]:
    """Every *.yaml / *.yml SLO in a directory (not recursive), sorted by file name. Raises
    SpecError listing every problem of every file, duplicate names included."""
    slos, errors = _load_all([path])
    if errors:
        raise SpecError(errors)
    return slos


def check_paths(paths: Iterable[str | Path]) -> tuple[list[SLO], list[str], list[str]]:
    """(valid SLOs, error lines, warning lines) for files and directories together; names
    must be unique across all of them."""
    slos, errors = _load_all(paths)
    return slos, errors, [w for slo in slos for w in slo.warnings()]


def validate_paths(paths: Iterable[str | Path]) -> list[str]:
    """Error lines for `policyscope slo validate PATH...`; empty when every file is valid."""
    return check_paths(paths)[1]
