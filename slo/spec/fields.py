"""The field types of an SLO document: durations, periods, ratios, names, labels, and the
constants that say which SLIs and dimensions exist."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from fractions import Fraction
from types import MappingProxyType
from typing import Annotated, Any, Literal, Mapping, get_args

from pydantic import AfterValidator, Field, PlainValidator
from pydantic_core import PydanticCustomError

from core.units import parse_whole_duration
from metrics.windows import WINDOWS
from schemas.frames import RATIO_SLIS
from schemas.slis import SLIS, dimension_names
from slo.burn_rate import fraction


# All from the SLI catalogue (schemas/slis.py). BAD_NUMERATOR_SLIS: SLIs whose numerator
# (`good` in sli_values) counts bad events (a false positive, a blocked deploy, a page): their
# SLO names the SLI under `ratioMetric.bad`, every other ratio SLI under `good`.
# SLI_DIMENSIONS: the dimensions each ratio SLI is computed by. SLIs counted straight from a
# rollup (MULTI_DIMENSION_SLIS) are counted for any `where` and `by` combination
# (slo/counts.py); the others come from their SLI family, which breaks values down one
# dimension at a time, so their SLOs name at most one dimension.
BAD_NUMERATOR_SLIS = frozenset(s for s in RATIO_SLIS if SLIS[s].bad_numerator)
SLI_DIMENSIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    s: tuple(SLIS[s].dimensions) for s in RATIO_SLIS})
DIMENSIONS = dimension_names(RATIO_SLIS)
MULTI_DIMENSION_SLIS = frozenset(s for s in RATIO_SLIS if SLIS[s].multi_dimension)
ALERT_WINDOWS = {name: int(w.total_seconds()) for name, w in WINDOWS.items() if w is not None}
Action = Literal["review-ticket", "notify-owner", "freeze-enforce-rollouts"]
ACTIONS: tuple[str, ...] = get_args(Action)

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


def _duration(value: Any) -> int:
    try:
        return parse_whole_duration(value)
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
        group = (SLIS[value].group if value in SLIS else value) if isinstance(value, str) \
            else None  # "M3" names the group of M3_mean, M3_p50, ...
        others = [s.id for s in SLIS.values() if s.group == group and not s.slo_usable]
        hint = (f"; {', '.join(others)} {'is' if len(others) == 1 else 'are'} not "
                f"{'a ratio' if len(others) == 1 else 'ratios'}: watch "
                f"{'it' if len(others) == 1 else 'them'} on dashboards and thresholds"
                ) if others else ""
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
