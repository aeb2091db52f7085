"""The demo's policy catalog and a real Rego evaluator (regopy / rego-cpp).

Each policy in `policies/*.rego` defines a `deny` set of messages. All modules are
compiled once into one bundle; an evaluation sets the AdmissionReview as input and
queries the policy's `deny` entrypoint. Strict builtin errors are on, so a builtin
failing at runtime (e.g. `to_number("unlimited")`) is an 'error' outcome, as with
`opa eval --strict-builtin-errors`. Durations are wall-clock seconds of the query.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from regopy import Interpreter
from regopy.rego_shared import RegoError

from . import workloads as wl


@dataclass(frozen=True)
class PolicySpec:
    """Catalog metadata of one Rego policy."""

    id: str
    package: str
    rule: str
    severity: str
    kinds: tuple[str, ...]
    #: environment → enforcement mode (enforce, audit, dryrun, warn).
    enforcement: dict
    version: str
    #: bundle revision running in staging (staging gets new revisions first).
    staging_version: str

    @property
    def file(self) -> str:
        return self.package.rsplit(".", 1)[1] + ".rego"

    @property
    def entrypoint(self) -> str:
        return self.package.replace(".", "/") + "/deny"

    def mode_for(self, workload: wl.Workload) -> str:
        """Enforcement mode for a workload: audit in audit-only namespaces."""
        if not workload.enforced:
            return "audit"
        return self.enforcement.get(workload.environment, "enforce")

    def version_for(self, workload: wl.Workload) -> str:
        return self.staging_version if workload.environment == "staging" else self.version


_BOTH = ("Deployment", "Pod")
CATALOG: tuple[PolicySpec, ...] = (
    PolicySpec(wl.NON_ROOT, "k8s.require_non_root", "container-runs-as-non-root", "high", _BOTH,
               {"production": "enforce", "staging": "enforce"}, "1.4.0", "1.4.0"),
    PolicySpec(wl.LATEST_TAG, "k8s.disallow_latest_tag", "image-tag-pinned", "medium", _BOTH,
               {"production": "enforce", "staging": "warn"}, "2.1.0", "2.2.0"),
    PolicySpec(wl.LIMITS, "k8s.require_resource_limits", "container-has-limits", "medium", _BOTH,
               {"production": "enforce", "staging": "audit"}, "1.0.3", "1.0.3"),
    PolicySpec(wl.REGISTRY, "k8s.allowed_registries", "image-from-allowed-registry", "critical", _BOTH,
               {"production": "enforce", "staging": "enforce"}, "3.0.1", "3.0.1"),
    PolicySpec(wl.TEAM_LABEL, "k8s.require_team_label", "owner-labels-present", "low", _BOTH,
               {"production": "warn", "staging": "warn"}, "1.1.0", "1.2.0"),
    PolicySpec(wl.MAX_REPLICAS, "k8s.max_replicas", "replicas-under-ceiling", "medium", ("Deployment",),
               {"production": "enforce", "staging": "dryrun"}, "0.9.2", "0.9.2"),
)
CATALOG_BY_ID = {p.id: p for p in CATALOG}


@dataclass
class Evaluation:
    """Raw engine result: outcome is 'allow', 'deny' or 'error' (before enforcement)."""

    policy_id: str
    outcome: str
    reasons: list[str]
    duration: float  # seconds

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def policies_dir() -> Path:
    """Directory holding the packaged .rego files."""
    return Path(str(resources.files("policyscope.demo") / "policies"))


def load_sources(directory: Path | None = None) -> dict[str, str]:
    """file name → Rego source of every catalog policy."""
    directory = directory or policies_dir()
    return {p.file: (directory / p.file).read_text() for p in CATALOG}


class PolicyEngine:
    """Compiles the catalog once; evaluates AdmissionReviews. Not thread-safe.

    `sources` (file name -> Rego source) replaces the files read from `directory`: a
    rollout of a new policy version is an engine built with that version's spec in
    `catalog` and its source here (policyscope/demo/incident.py)."""

    def __init__(self, directory: Path | None = None, catalog: tuple[PolicySpec, ...] = CATALOG,
                 sources: dict[str, str] | None = None):
        self.catalog = catalog
        self._by_id = {p.id: p for p in catalog}
        builder = Interpreter()
        for name, source in (sources or load_sources(directory)).items():
            builder.add_module(name, source)
        self._bundle = builder.build(None, [p.entrypoint for p in catalog])
        if not self._bundle.ok():
            raise RegoError("demo policy bundle failed to compile")
        self._builder = builder  # keeps the bundle's owner alive
        self._rego = Interpreter()
        self._rego.strict_built_in_errors = True

    def spec(self, policy_id: str) -> PolicySpec:
        """The catalog entry (version included) this engine evaluates `policy_id` with."""
        return self._by_id[policy_id]

    def applicable(self, kind: str) -> list[PolicySpec]:
        """Policies that apply to a resource kind, in catalog order."""
        return [p for p in self.catalog if kind in p.kinds]

    def evaluate(self, policy: PolicySpec | str, review: dict, *, set_input: bool = True) -> Evaluation:
        """Evaluate one policy's `deny` set against an AdmissionReview."""
        spec = self._by_id[policy] if isinstance(policy, str) else policy
        if set_input:
            self._rego.set_input_term(json.dumps(review))
        start = time.perf_counter()
        try:
            out = self._rego.query_bundle_entrypoint(self._bundle, spec.entrypoint)
            ok = out.ok()
            results = out.results if ok else []
            detail = "" if ok else str(out)
        except (RegoError, ValueError) as exc:  # ValueError: unparsable output
            ok, results, detail = False, [], str(exc)
        duration = time.perf_counter() - start
        if not ok:
            msg = f"rego evaluation error in data.{spec.package}.deny (strict builtin errors)"
            if detail and detail != "<error>":
                msg += f": {detail}"
            return Evaluation(spec.id, "error", [msg], duration)
        denies = results[0].expressions[0] if results and results[0].expressions else []
        reasons = sorted(str(d) for d in denies)
        return Evaluation(spec.id, "deny" if reasons else "allow", reasons, duration)

    def evaluate_all(self, review: dict) -> list[Evaluation]:
        """Every applicable policy, the input set once."""
        self._rego.set_input_term(json.dumps(review))
        kind = review["request"]["kind"]["kind"]
        return [self.evaluate(p, review, set_input=False) for p in self.applicable(kind)]
