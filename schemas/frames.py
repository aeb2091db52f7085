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
