"""The SLO document as pydantic models (strict: unknown keys are errors) and the exact,
evaluator-ready values derived from it."""

from __future__ import annotations

import calendar as _calendar
from datetime import date, datetime, timezone
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, PrivateAttr
from pydantic.alias_generators import to_camel

from core.units import UNIT_SECONDS, format_duration
from slo.burn_rate import DAY, DEFAULT_POLICY, WindowPair, never_fires
from slo.spec.fields import (
    ALERT_WINDOWS,
    Action,
    BAD_NUMERATOR_SLIS,
    Name,
    Ratio,
    Text,
    _between,
    _dimension,
    _duration,
    _labels,
    _pending,
    _period,
    _sli,
    _start_time,
    _window,
)


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
        return n * int(UNIT_SECONDS[unit])

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
