"""Pandera models of the polars frames the batch layer reads from the event tables.

The allowed values come from schemas/events.py, never re-typed here; the contract test checks
that each model's columns exist in its table and that its enum checks match the column's
allowed values. Validate lazily to get every failing column at once:

    DecisionFrame.validate(frame, lazy=True)   # raises pandera.errors.SchemaErrors

`event_time` is cast to milliseconds, UTC (the ClickHouse `DateTime64(3, 'UTC')`), so a frame
read with another time unit validates; a naive datetime is taken as UTC. Extra columns are
allowed: a loader selects what it needs.
"""

from __future__ import annotations

import polars as pl
import pandera.polars as pa
from pandera.engines.polars_engine import DateTime

from schemas.events import (
    AGENT_STATUSES,
    DECISIONS,
    ENFORCEMENT_MODES,
    EVENT_KINDS,
    EVENTS,
    GATE_OUTCOMES,
    OUTCOMES,
    REMEDIATION_KINDS,
    SEVERITIES,
    VIOLATION_STATUSES,
)
from schemas.slis import SLIS

_UTC_MS = {"time_unit": "ms", "time_zone": "UTC"}

# Kinds stored in policy_events (every kind but policy.decision).
EVENT_TABLE_KINDS: tuple[str, ...] = tuple(
    k.name for k in EVENT_KINDS.values() if k.table is EVENTS)


def _optional(values: tuple[str, ...]) -> list[str]:
    """An enum column that may be empty: absent attributes default to ''."""
    return [*values, ""]


class _Common(pa.DataFrameModel):
    """Columns both tables share and the SLIs group by."""

    event_time: DateTime = pa.Field(dtype_kwargs=_UTC_MS, coerce=True)
    team: str
    service: str
    policy_id: str
    engine: str
    environment: str
    cluster: str
    enforcement: str = pa.Field(isin=list(ENFORCEMENT_MODES))
    severity: str = pa.Field(isin=_optional(SEVERITIES))

    class Config:
        strict = False


class DecisionFrame(_Common):
    """Rows of `policy_decisions`: one policy evaluation each."""

    outcome: str = pa.Field(isin=list(OUTCOMES))
    latency_seconds: float = pa.Field(nullable=True, ge=0)


class EventFrame(_Common):
    """Rows of `policy_events`: every kind but `policy.decision`, told apart by `event_kind`."""

    event_kind: str = pa.Field(isin=list(EVENT_TABLE_KINDS))
    violation_id: str
    violation_status: str = pa.Field(isin=_optional(VIOLATION_STATUSES))
    remediation_kind: str = pa.Field(isin=_optional(REMEDIATION_KINDS))
    gate_outcome: str = pa.Field(isin=_optional(GATE_OUTCOMES))
    agent_status: str = pa.Field(isin=_optional(AGENT_STATUSES))
    dropped_events: pl.UInt64 = pa.Field(nullable=True)
    workload_enforced: pl.Boolean = pa.Field(nullable=True)
    image: str
    vulnerability_id: str


FRAMES: dict[str, type[pa.DataFrameModel]] = {
    DECISIONS.name: DecisionFrame,
    EVENTS.name: EventFrame,
}


# SLIs whose value is a ratio good / total in [0, 1]; the others are durations, rates, counts.
RATIO_SLIS: tuple[str, ...] = tuple(s.id for s in SLIS.values() if s.kind == "ratio")


class SliValueFrame(pa.DataFrameModel):
    """Rows the batch layer writes to `sli_values` (long format, metrics/sli/base.OUTPUT)."""

    at: DateTime = pa.Field(dtype_kwargs={"time_unit": "us", "time_zone": "UTC"})
    sli: pl.Categorical
    window: pl.Categorical
    dimension: pl.Categorical
    dimension_value: pl.Categorical
    good: float = pa.Field(nullable=True, ge=0)
    total: float = pa.Field(nullable=True, ge=0)
    value: float = pa.Field(nullable=True)

    @pa.dataframe_check
    def ratios_are_between_0_and_1(cls, data) -> pl.LazyFrame:
        is_ratio = pl.col("sli").is_in(list(RATIO_SLIS))
        return data.lazyframe.select(
            ~is_ratio | pl.col("value").is_null() | pl.col("value").is_between(0, 1))

    @pa.dataframe_check
    def good_never_exceeds_total(cls, data) -> pl.LazyFrame:
        is_ratio = pl.col("sli").is_in(list(RATIO_SLIS))
        return data.lazyframe.select(
            ~is_ratio | pl.col("good").is_null() | (pl.col("good") <= pl.col("total")))

    @pa.dataframe_check
    def an_empty_window_has_no_value(cls, data) -> pl.LazyFrame:
        is_ratio = pl.col("sli").is_in(list(RATIO_SLIS))
        return data.lazyframe.select(
            ~is_ratio | (pl.col("total") > 0) | pl.col("value").is_null())

    class Config:
        strict = True


def validate_sli_values(frame: pl.DataFrame) -> pl.DataFrame:
    """Validate SLI rows before they are written; raises pandera SchemaErrors naming checks."""
    return SliValueFrame.validate(frame, lazy=True)
