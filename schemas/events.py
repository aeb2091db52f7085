"""The PolicyScope event record, defined once.

Every input (OTLP logs or spans, native receivers, importers) ends as rows of the columns below.
The ClickHouse migrations (`schemas/clickhouse/*.sql`), the pandera frame models
(`schemas/frames.py`), the normalizer's attribute mapping and `schemas/conventions.md` all derive
from, or are checked against, this module (see `tests/unit/test_schema_contract.py`).

Two tables hold the rows: `policy_decisions` for `policy.decision` (the high-volume kind, narrow
rows) and `policy_events` for every other kind (one wide row shape with `event_kind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pyarrow as pa


class ValueType(str, Enum):
    """How an attribute value is coerced into its column."""

    STRING = "string"
    ENUM = "enum"  # a string restricted to `Column.allowed`, compared lower-cased
    FLOAT = "float"
    UINT = "uint"
    BOOL = "bool"


@dataclass(frozen=True)
class Column:
    """One column of an event table and the OTLP attribute(s) that fill it.

    `attributes` lists the OTLP attribute keys in order of preference (the first present wins);
    an empty tuple means the normalizer fills the column from the record itself (times, ids).
    `default` is what an absent attribute becomes; None means SQL NULL (only for nullable types).
    """

    name: str
    clickhouse_type: str
    value_type: ValueType
    attributes: tuple[str, ...] = ()
    default: object = ""
    allowed: tuple[str, ...] = ()
    doc: str = ""
    codec: str = ""
    non_negative: bool = False  # a FLOAT that cannot be below 0 (a duration)

    @property
    def nullable(self) -> bool:
        return self.clickhouse_type.startswith("Nullable(")


def _s(name: str, *attributes: str, doc: str, low_cardinality: bool = True) -> Column:
    ch = "LowCardinality(String)" if low_cardinality else "String"
    return Column(name, ch, ValueType.STRING, attributes, "", doc=doc,
                  codec="" if low_cardinality else "ZSTD(1)")


def _enum(name: str, attribute: str, allowed: tuple[str, ...], *, default: str = "",
          doc: str) -> Column:
    return Column(name, "LowCardinality(String)", ValueType.ENUM, (attribute,), default,
                  allowed, doc=doc)


OUTCOMES = ("allow", "deny", "warn", "error")
ENFORCEMENT_MODES = ("enforce", "audit", "dryrun", "warn")
SEVERITIES = ("critical", "high", "medium", "low", "info")
VIOLATION_STATUSES = ("opened", "updated", "remediated", "suppressed")
GATE_OUTCOMES = ("passed", "blocked", "overridden")
REMEDIATION_KINDS = ("auto", "manual")
AGENT_STATUSES = ("healthy", "degraded", "unhealthy")
ENGINES = ("opa", "kyverno", "gatekeeper", "falco", "checkov", "conftest", "detect-secrets",
           "gitleaks", "cyclonedx", "trivy", "grype", "osv", "custom")

# Columns every event table has, in table order.
COMMON_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "String", ValueType.STRING, codec="ZSTD(1)",
           doc="stable id: log.record.uid, else a content hash of the record (dedup key)"),
    Column("event_time", "DateTime64(3, 'UTC')", ValueType.STRING, codec="Delta, ZSTD(1)",
           doc="record time (time_unix_nano), else observed time, else receive time"),
    Column("observed_time", "DateTime64(3, 'UTC')", ValueType.STRING, codec="Delta, ZSTD(1)",
           doc="observed_time_unix_nano, else receive time"),
    _s("engine", "policy.engine", doc="policy engine: " + ", ".join(ENGINES) + " (free text)"),
    _s("policy_id", "policy.id", doc="policy identifier, e.g. k8s.require-non-root"),
    _s("policy_version", "policy.version", doc="bundle revision / policy version"),
    _s("rule", "policy.rule", doc="rule within the policy"),
    _enum("enforcement", "policy.enforcement", ENFORCEMENT_MODES, default="enforce",
          doc="enforcement mode"),
    _enum("severity", "policy.severity", SEVERITIES, doc="severity, empty when unknown"),
    _s("team", "team.name", doc="owning team (record, scope or resource)"),
    _s("service", "service.name", doc="OpenTelemetry service.name"),
    _s("environment", "deployment.environment.name", "deployment.environment",
       doc="deployment environment"),
    _s("cluster", "k8s.cluster.name", doc="Kubernetes cluster"),
    _s("namespace", "k8s.namespace.name", doc="Kubernetes namespace"),
    _s("resource_kind", "policy.resource.kind", doc="kind of the evaluated subject"),
    _s("resource_name", "policy.resource.name", low_cardinality=False, doc="subject name"),
    _s("resource_id", "policy.resource.id", low_cardinality=False, doc="subject id"),
    _s("actor", "enduser.id", "user.id", low_cardinality=False, doc="who asked"),
    _s("reason", "policy.reason", low_cardinality=False, doc="human-readable reason"),
    Column("trace_id", "String", ValueType.STRING, codec="ZSTD(1)",
           doc="W3C trace id, lower-case hex, empty when absent"),
    Column("span_id", "String", ValueType.STRING, codec="ZSTD(1)",
           doc="span id, lower-case hex, empty when absent"),
    Column("attributes", "Map(LowCardinality(String), String)", ValueType.STRING, default=None,
           codec="ZSTD(1)",
           doc="bounded map of record attributes not mapped to a column (secrets redacted)"),
)

DECISION_COLUMNS: tuple[Column, ...] = (
    _enum("outcome", "policy.outcome", OUTCOMES, doc="decision outcome (required)"),
    Column("latency_seconds", "Nullable(Float64)", ValueType.FLOAT,
           ("policy.evaluation.duration",), None, codec="Gorilla, ZSTD(1)", non_negative=True,
           doc="evaluation latency in seconds, >= 0; for spans, the span duration when "
               "absent"),
)

EVENT_COLUMNS: tuple[Column, ...] = (
    Column("event_kind", "LowCardinality(String)", ValueType.STRING,
           doc="the event kind (event_name or event.name)"),
    _s("violation_id", "policy.violation.id", low_cardinality=False, doc="finding id"),
    _enum("violation_status", "policy.violation.status", VIOLATION_STATUSES,
          doc="finding lifecycle step"),
    _enum("remediation_kind", "policy.remediation.kind", REMEDIATION_KINDS,
          doc="how a finding was remediated"),
    _s("deploy_id", "deploy.id", low_cardinality=False, doc="deploy / pipeline run id"),
    _enum("gate_outcome", "deploy.gate.outcome", GATE_OUTCOMES, doc="deploy gate result"),
    _s("agent_id", "agent.id", low_cardinality=False, doc="enforcement agent id"),
    _enum("agent_status", "agent.status", AGENT_STATUSES, doc="agent self-reported health"),
    Column("heartbeat_interval_seconds", "Nullable(Float64)", ValueType.FLOAT,
           ("agent.heartbeat.interval",), None, non_negative=True,
           doc="agent heartbeat interval, seconds, >= 0"),
    Column("dropped_events", "Nullable(UInt64)", ValueType.UINT, ("agent.dropped_events",), None,
           doc="agent's own dropped-event counter"),
    _s("workload_id", "workload.id", low_cardinality=False, doc="workload identifier"),
    Column("workload_enforced", "Nullable(Bool)", ValueType.BOOL, ("workload.enforced",), None,
           doc="workload is under >=1 enforce-mode policy"),
    _s("image", "artifact.image", "container.image.name", low_cardinality=False,
       doc="container image / artifact reference"),
    _s("sbom_format", "sbom.format", doc="CycloneDX, SPDX, ..."),
    Column("sbom_components", "Nullable(UInt64)", ValueType.UINT, ("sbom.component.count", "sbom.component_count"),
           None, doc="number of components in the SBOM"),
    _s("secret_fingerprint", "secret.fingerprint", low_cardinality=False,
       doc="fingerprint (hash) of a detected secret, never the secret"),
    _s("secret_rule", "secret.rule", doc="detector / rule that found the secret"),
    _s("repository", "vcs.repository.url.full", low_cardinality=False, doc="repository URL"),
    _s("file_path", "code.file.path", low_cardinality=False, doc="file of a finding"),
    _s("vulnerability_id", "vulnerability.id", low_cardinality=False, doc="CVE / GHSA id"),
    _s("package_name", "package.name", low_cardinality=False, doc="vulnerable package"),
    _s("package_version", "package.version", low_cardinality=False, doc="installed version"),
    _s("package_fixed_version", "package.fixed_version", low_cardinality=False,
       doc="first fixed version"),
    _s("drift_field", "drift.field", low_cardinality=False,
       doc="what differs between declared and actual state"),
)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, arrow_type(c), nullable=True) for c in self.columns])


DECISIONS = Table("policy_decisions", COMMON_COLUMNS + DECISION_COLUMNS)
EVENTS = Table("policy_events", COMMON_COLUMNS + EVENT_COLUMNS)
TABLES = (DECISIONS, EVENTS)


@dataclass(frozen=True)
class EventKind:
    """An event kind of the wire contract, the table its rows go to and what it must carry."""

    name: str
    table: Table
    required: tuple[str, ...] = ()  # column names that must be non-empty
    doc: str = ""


EVENT_KINDS: dict[str, EventKind] = {k.name: k for k in (
    EventKind("policy.decision", DECISIONS, ("policy_id", "outcome"),
              "one evaluation by an engine (admission request, CI check, runtime check)"),
    EventKind("policy.violation", EVENTS, ("policy_id", "violation_id", "violation_status"),
              "a finding's lifecycle: opened, updated, remediated, suppressed"),
    EventKind("deploy.gate", EVENTS, ("deploy_id", "gate_outcome"),
              "a pipeline gate outcome for a deploy"),
    EventKind("drift.detected", EVENTS, (), "declared vs actual state differ"),
    EventKind("agent.heartbeat", EVENTS, ("agent_id",), "an enforcement agent's health"),
    EventKind("workload.inventory", EVENTS, ("workload_id",),
              "a workload/image that exists, with owner team and enforcement"),
    EventKind("sbom.generated", EVENTS, ("image",), "an SBOM exists for an image/artifact"),
    EventKind("secret.detected", EVENTS, ("secret_fingerprint",),
              "a secret found in a repository"),
    EventKind("vuln.detected", EVENTS, ("vulnerability_id",),
              "a known vulnerability in an image/artifact"),
)}

# The attribute that names the kind when the log record's `event_name` field is empty.
EVENT_NAME_ATTRIBUTE = "event.name"
# Unmapped attribute keys matching one of these are stored as [REDACTED] (config may replace;
# secrets inside values are found by the value patterns of collector/redaction.py). A key that
# names a session is redacted (`session`, `session_id`, `user.session`, `PHPSESSID`); one that
# names a property of sessions is not (`session_count`, `session.duration`, `sessions`).
DEFAULT_REDACT_PATTERNS = (
    r"(?i)(pass(word|wd)?|secret|token|api[_.-]?key|authorization|cookie|private[_.-]?key"
    r"|credential)",
    r"(?i)(access[_.-]?key|secret[_.-]?key|private|jwt|dsn|conn(ection)?[_.-]?str(ing)?|ssh)",
    r"(?i)(session([_.-]?(id|key))?|sessid)(?![a-z0-9]|[_.-][a-z0-9])",
)
# The attribute that carries a stable event id (else the normalizer hashes the record).
UID_ATTRIBUTE = "log.record.uid"


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type a column is carried in between the normalizer, the spool and ClickHouse."""
    ch = column.clickhouse_type
    if ch.startswith("DateTime64"):
        return pa.timestamp("ms", tz="UTC")
    if ch.startswith("Map("):
        return pa.map_(pa.string(), pa.string())
    return {
        ValueType.FLOAT: pa.float64(),
        ValueType.UINT: pa.uint64(),
        ValueType.BOOL: pa.bool_(),
    }.get(column.value_type, pa.string())
