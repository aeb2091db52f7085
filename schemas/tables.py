"""Every ClickHouse table the migrations create, by name, once: the raw event tables, the
rollups (per family and grain, combined and per dimension value), the batch layer's and the
alert evaluator's tables, the triage workflow's, the collector's own metrics, and the tables the
SLI batch probes for its watermark.

Code names tables from here, never by building names from other names; a test checks that
this registry and `schemas/clickhouse/*.sql` agree both ways (every name here exists after the
migrations, every table and view they create is here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from schemas.events import DECISIONS, EVENTS

# -- raw event tables (schemas/events.py defines their columns) ---------------------------------

RAW: tuple[str, ...] = (DECISIONS.name, EVENTS.name)

# -- rollups ------------------------------------------------------------------------------------

GRAINS = ("1m", "5m", "1h", "1d")
TIME_COLUMNS = MappingProxyType({"1m": "minute", "5m": "five", "1h": "hour", "1d": "day"})


@dataclass(frozen=True)
class RollupTable:
    """One rollup table: its grain (`GRAINS`), its time column, whether it holds one row per
    single dimension value (`dimension`, `dimension_value`) or per combination of dimension
    columns, and the materialized view that fills it (`<name>_mv`, the DDL's convention)."""

    name: str
    grain: str
    per_value: bool

    @property
    def time_column(self) -> str:
        return TIME_COLUMNS[self.grain]

    @property
    def view(self) -> str:
        return f"{self.name}_mv"


@dataclass(frozen=True)
class RollupFamily:
    """The rollup tables of one event stream, fed from `source` by materialized views: per
    grain, a combined table (one row per combination of dimension columns: for SLOs that
    filter and group by several) and a per-value one (one row per dimension value: what the
    SLI batch reads)."""

    name: str
    source: str
    tables: tuple[RollupTable, ...]

    def table(self, grain: str, *, per_value: bool = False) -> str:
        """The name of the table of `grain`; KeyError for a grain the family lacks."""
        for table in self.tables:
            if table.grain == grain and table.per_value == per_value:
                return table.name
        raise KeyError(f"{self.name} has no {'per-value ' if per_value else ''}{grain} rollup")


def _family(name: str, source: str, combined: dict[str, str], per_value: dict[str, str]
            ) -> RollupFamily:
    return RollupFamily(name, source, (
        *(RollupTable(t, g, False) for g, t in combined.items()),
        *(RollupTable(t, g, True) for g, t in per_value.items())))


DECISION_ROLLUPS = _family(
    "decisions", DECISIONS.name,
    {"1m": "decisions_1m", "1h": "decisions_1h", "1d": "decisions_1d"},
    {"1m": "decisions_dims_1m", "5m": "decisions_dims_5m", "1h": "decisions_dims_1h",
     "1d": "decisions_dims_1d"})
GATE_ROLLUPS = _family(  # deploy.gate events
    "gates", EVENTS.name,
    {"1m": "gates_1m", "1h": "gates_1h", "1d": "gates_1d"},
    {"1m": "gates_dims_1m", "5m": "gates_dims_5m", "1h": "gates_dims_1h",
     "1d": "gates_dims_1d"})
ROLLUPS: Mapping[str, RollupFamily] = MappingProxyType(
    {f.name: f for f in (DECISION_ROLLUPS, GATE_ROLLUPS)})

# the Policy tuning page's hour rollups of decisions (migration 0015), each filled by its view
# `<name>_mv`: by policy, version and enforcement mode; and the denies of the decisions not
# enforced (audit, dryrun, warn) by resource, what enforcing would block
DECISION_VERSIONS = "decisions_versions_1h"
AUDIT_DENIES = "decisions_audit_denies_1h"
TUNING: tuple[str, ...] = (DECISION_VERSIONS, AUDIT_DENIES)

# -- the batch layer's and the alert evaluator's tables -----------------------------------------

SLI_VALUES = "sli_values"
SLI_WATERMARK = "sli_watermark"
TRIAGE_VERDICTS = "triage_verdicts"  # the latest verdict per subject (M4 reads it)
ALERT_EVENTS = "alert_events"
ALERTS = "alerts"
SILENCES = "silences"
BUDGET_POLICY_EVENTS = "budget_policy_events"
NOTIFICATION_DEAD_LETTERS = "notification_dead_letters"
SLO_STANDINGS = "slo_standings"  # every SLO's standing at each evaluator run (the pages read it)
SCHEMA_MIGRATIONS = "schema_migrations"  # made by schemas/migrations.py itself

BATCH: tuple[str, ...] = (SLI_VALUES, SLI_WATERMARK, TRIAGE_VERDICTS)
ALERTING: tuple[str, ...] = (ALERT_EVENTS, ALERTS, SILENCES, BUDGET_POLICY_EVENTS,
                             NOTIFICATION_DEAD_LETTERS, SLO_STANDINGS)

# -- the triage workflow's tables (triage/store.py) ---------------------------------------------

TRIAGE_HISTORY = "triage_history"  # every verdict, appended; feeds TRIAGE_VERDICTS by a view
TRIAGE_RULES = "triage_rules"  # sticky rules' states, appended
TRIAGE_VERDICTS_VIEW = "triage_verdicts_mv"  # triage_history -> triage_verdicts
# the deny and warn decisions, narrow, the queue's subjects (migration 0018): a copy of raw
# rows, so it keeps the raw tables' retention; filled by its view `<name>_mv`
TRIAGE_SUBJECTS = "triage_subjects"
# the violations' queue state, one row per violation (migration 0020): raw rows aggregated, so
# it keeps the raw tables' retention too; filled by its view `<name>_mv`
TRIAGE_VIOLATIONS = "triage_violations"
TRIAGE: tuple[str, ...] = (TRIAGE_HISTORY, TRIAGE_RULES, TRIAGE_SUBJECTS, TRIAGE_VIOLATIONS)
# tables of raw rows beside RAW, with the same TTL
RAW_COPIES: tuple[str, ...] = (TRIAGE_SUBJECTS, TRIAGE_VIOLATIONS)

# -- the agents' latest heartbeat per day (0021) and of all (0024); the On-call page reads them

AGENT_HEARTBEATS_DAILY = "agent_heartbeats_1d"  # filled by its view `<name>_mv`
AGENT_HEARTBEATS_LATEST = "agent_heartbeats_latest"  # filled by its view `<name>_mv`
AGENTS: tuple[str, ...] = (AGENT_HEARTBEATS_DAILY, AGENT_HEARTBEATS_LATEST)

# -- the collector's own counters (collector/self_metrics.py writes, self_metrics_read.py reads)

COLLECTOR_METRICS = "collector_metrics"
COLLECTOR: tuple[str, ...] = (COLLECTOR_METRICS,)

# -- the importers' state (importers/snapshots.py): each state-only source's last snapshot -----

IMPORT_SNAPSHOTS = "import_snapshots"
IMPORTERS: tuple[str, ...] = (IMPORT_SNAPSHOTS,)

# -- the policy catalog's versions (catalog/store.py) -------------------------------------------

POLICY_CATALOG = "policy_catalog"  # one row per catalog version, its policies as arrays
CATALOG: tuple[str, ...] = (POLICY_CATALOG,)


def all_tables() -> tuple[str, ...]:
    """Every table name of the registry (not the views), in no particular order."""
    rollups = tuple(t.name for f in ROLLUPS.values() for t in f.tables)
    return (*RAW, *rollups, *TUNING, *BATCH, *ALERTING, *TRIAGE, *AGENTS, *COLLECTOR,
            *IMPORTERS, *CATALOG, SCHEMA_MIGRATIONS)


def all_views() -> tuple[str, ...]:
    """Every materialized view the migrations create: one per rollup table (the tuning
    ones included), the ones filling the queue's subjects and violations and the agents'
    daily heartbeats, and the one keeping the latest verdict per subject
    (`TRIAGE_VERDICTS_VIEW`)."""
    return (*(t.view for f in ROLLUPS.values() for t in f.tables),
            *(f"{t}_mv" for t in (*TUNING, *RAW_COPIES, *AGENTS)), TRIAGE_VERDICTS_VIEW)


# -- what the SLI batch reads, as its watermark sees it -----------------------------------------

@dataclass(frozen=True)
class SliSource:
    """A table whose rows SLIs are computed from, for the batch's watermark and late-data
    probes: its event-time column, its ingest-time column (when a row landed), and whether
    its event times are whole minutes (a rollup, whose rows of a minute keep the latest
    ingest time of their events: a minute gained rows <=> its ingest time moved past)."""

    table: str
    event_time: str
    ingested_at: str
    minute_grain: bool = False


# decisions are probed through their minute rollup (a row per minute and combination, not per
# decision); deploy gates through policy_events, which feeds their rollups
SLI_SOURCES: tuple[SliSource, ...] = (
    SliSource(DECISION_ROLLUPS.table("1m"), "minute", "max_ingested_at", minute_grain=True),
    SliSource(EVENTS.name, "event_time", "ingested_at"),
    SliSource(TRIAGE_VERDICTS, "subject_time", "triaged_at"),
    SliSource(ALERT_EVENTS, "at", "ingested_at"),
)


def probed(source: str) -> bool:
    """Whether late rows of `source` (a table, or a rollup family by name) reach the
    watermark probes: it is probed itself, or (a rollup) its minute table or its raw source."""
    tables = {s.table for s in SLI_SOURCES}
    family = ROLLUPS.get(source)
    if family is None:
        return source in tables
    return family.table("1m") in tables or family.source in tables
