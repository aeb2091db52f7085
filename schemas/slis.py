"""The SLI catalogue: every SLI id the batch layer writes to `sli_values`, once, with what it
is and how it may be broken down. The families in `metrics/sli/` compute them (one module per
`family`, its docstring holding the formula); everything else that needs to know which SLIs
exist, which are ratios, which dimensions they have or which count bad events reads it here
(`schemas.frames`, `slo.spec`, `slo.counts`, `metrics.sources.rollups`, the families' own
`DIMENSIONS`). An integration test runs every family and checks that the (SLI, dimension)
pairs they emit are exactly the catalogue's.

Fields of an `Sli`:
- `kind`: `ratio` (good / total in [0, 1]), `rate` (events per week), `duration` (seconds),
  `latency` (seconds, from the decision-latency histogram) or `count`;
- `bad_numerator`: its numerator (`good` in `sli_values`) counts bad events (a false positive,
  a blocked deploy, a page), so an SLO names it under `ratioMetric.bad`;
- `dimensions`: dimension name -> the event-table column it groups by, in the order the
  family breaks values down (every SLI also has the overall value, dimension '');
- `sources`: what its family reads: tables, or rollup families by name (`schemas.tables`);
- `instant`: a point-in-time value (window `instant`) rather than one per window;
- `counts`: for SLIs whose SLOs are counted straight from a rollup (any `where` and `by`
  combination): the rollup family and the numerator and total as formulas over its
  measures (`a - b`; `under` is the decisions at or under the latency threshold).
Only ratio SLIs may carry an SLO; of those, only ones with `counts` may combine dimensions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from schemas.events import EVENTS
from schemas.tables import ALERT_EVENTS, DECISION_ROLLUPS, GATE_ROLLUPS, TRIAGE_VERDICTS

KINDS = ("ratio", "rate", "duration", "latency", "count")
FAMILIES = ("decisions", "deploys", "coverage", "remediation", "false_positives", "rates",
            "agents", "alerting")  # the modules of metrics/sli/


@dataclass(frozen=True)
class RollupCounts:
    """How an SLO's (numerator, total) come from a rollup family's window sums."""

    rollup: str
    numerator: str
    total: str


@dataclass(frozen=True)
class Sli:
    id: str
    name: str
    family: str
    kind: str
    unit: str
    dimensions: Mapping[str, str]
    sources: tuple[str, ...]
    bad_numerator: bool = False
    instant: bool = False
    counts: RollupCounts | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.family not in FAMILIES:
            raise ValueError(f"{self.id}: kind must be one of {KINDS}, family one of {FAMILIES}")
        if (self.bad_numerator or self.counts) and self.kind != "ratio":
            raise ValueError(f"{self.id}: only a ratio has a numerator or SLO counts")

    @property
    def group(self) -> str:
        """The SLI's group in the docs' table (M3 for M3_p90, L for L_p95): the id's prefix."""
        return self.id.split("_")[0]

    @property
    def slo_usable(self) -> bool:
        """An SLO may be set on it: a ratio (an error budget is a share of events)."""
        return self.kind == "ratio"

    @property
    def multi_dimension(self) -> bool:
        """Its SLOs may filter and group by several dimensions at once."""
        return self.counts is not None


def _dims(*pairs: str) -> Mapping[str, str]:
    """Dimensions from 'name' (grouping by the column of that name) or 'name=column'."""
    return MappingProxyType(dict(p.split("=") if "=" in p else (p, p) for p in pairs))


# the breakdowns, by the event columns each family reads
DECISION = _dims("team", "service", "policy=policy_id", "engine", "environment", "cluster")
GATE = _dims("team", "service", "policy=policy_id", "environment", "cluster")
INVENTORY = _dims("team", "service", "environment", "cluster")
REMEDIATION = _dims("team", "service", "policy=policy_id", "environment", "cluster",
                    "remediation=remediation_kind")
OPEN_VIOLATION = _dims("team", "service", "policy=policy_id", "environment", "cluster")
AGENT = _dims("engine", "team", "environment", "cluster")
ALERT = _dims("team", "service", "slo")

_DECISIONS, _GATES, _EVENTS = DECISION_ROLLUPS.name, GATE_ROLLUPS.name, EVENTS.name
_CATALOGUE = (
    Sli("M1", "policy evaluation success rate", "decisions", "ratio", "ratio", DECISION,
        (_DECISIONS,), counts=RollupCounts(_DECISIONS, "total - errors", "total")),
    Sli("M2", "enforcement coverage", "coverage", "ratio", "ratio", INVENTORY, (_EVENTS,)),
    Sli("M3_mean", "mean time to remediate", "remediation", "duration", "s", REMEDIATION,
        (_EVENTS,)),
    Sli("M3_p50", "median time to remediate", "remediation", "duration", "s", REMEDIATION,
        (_EVENTS,)),
    Sli("M3_p90", "90th percentile time to remediate", "remediation", "duration", "s",
        REMEDIATION, (_EVENTS,)),
    Sli("M3_open", "open violations", "remediation", "count", "violations", OPEN_VIOLATION,
        (_EVENTS,), instant=True),
    Sli("M3_open_age_mean", "mean age of open violations", "remediation", "duration", "s",
        OPEN_VIOLATION, (_EVENTS,), instant=True),
    Sli("M4", "false-positive rate", "false_positives", "ratio", "ratio", DECISION,
        (TRIAGE_VERDICTS,), bad_numerator=True),
    Sli("M4_propagated", "triage verdicts given by sticky rules", "false_positives", "count",
        "verdicts", DECISION, (TRIAGE_VERDICTS,)),
    Sli("M4_untriaged", "untriaged denies and warns", "false_positives", "count", "decisions",
        DECISION, (_DECISIONS, TRIAGE_VERDICTS)),
    Sli("M5", "drift detection rate", "rates", "rate", "events/week", INVENTORY, (_EVENTS,)),
    Sli("M5_trend", "drift rate change against the window before", "rates", "rate",
        "events/week", INVENTORY, (_EVENTS,)),
    Sli("M6", "deploy block rate", "deploys", "ratio", "ratio", GATE, (_GATES,),
        bad_numerator=True, counts=RollupCounts(_GATES, "blocked", "total")),
    Sli("M7", "alert-to-page ratio", "alerting", "ratio", "ratio", ALERT, (ALERT_EVENTS,),
        bad_numerator=True),
    Sli("M8", "agent health", "agents", "ratio", "ratio", AGENT, (_EVENTS,)),
    Sli("M9", "SBOM coverage", "coverage", "ratio", "ratio", INVENTORY, (_EVENTS,)),
    Sli("M10", "secrets in repos", "rates", "rate", "fingerprints/week", INVENTORY,
        (_EVENTS,)),
    Sli("L_p50", "median decision latency", "decisions", "latency", "s", DECISION,
        (_DECISIONS,)),
    Sli("L_p95", "95th percentile decision latency", "decisions", "latency", "s", DECISION,
        (_DECISIONS,)),
    Sli("L_p99", "99th percentile decision latency", "decisions", "latency", "s", DECISION,
        (_DECISIONS,)),
    Sli("L_under", "share of decisions at or under the latency threshold", "decisions",
        "ratio", "ratio", DECISION, (_DECISIONS,),
        counts=RollupCounts(_DECISIONS, "under", "latency_count")),
)
SLIS: Mapping[str, Sli] = MappingProxyType({s.id: s for s in _CATALOGUE})
if len(SLIS) != len(_CATALOGUE):
    raise ValueError("an SLI id is listed twice in the catalogue")

# SLIs an SLO may be set on, in catalogue order
SLO_SLIS: tuple[str, ...] = tuple(s.id for s in _CATALOGUE if s.slo_usable)


def family_dimensions(family: str) -> dict[str, str]:
    """Every dimension (name -> column) some SLI of a family is broken down by, in catalogue
    order: a family module's `DIMENSIONS`, or a rollup's dimension columns."""
    return {d: c for s in _CATALOGUE if s.family == family for d, c in s.dimensions.items()}


def of_family(family: str) -> tuple[str, ...]:
    """The SLI ids a family module computes, in catalogue order."""
    return tuple(s.id for s in _CATALOGUE if s.family == family)


def dimension_names(slis: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Every dimension name some SLI of `slis` (default: all) is broken down by, in catalogue
    order (what `--by` and an SLO's `where` / `by` may name)."""
    chosen = _CATALOGUE if slis is None else [SLIS[s] for s in slis]
    return tuple(dict.fromkeys(d for s in chosen for d in s.dimensions))
