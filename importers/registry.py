"""The KINDs of `policyscope import KIND FILE|-`: the one list, KIND -> its parser.

A KIND is an `Importer`: its name, what it reads (for `--help` and errors) and its `parse`
(`(Document, Options) -> Parsed`, see importers/parsing.py). Adding one is a module with a
`parse` function and one line here:

    # importers/trivy.py: def parse(document: Document, options: Options) -> Parsed: ...
    from importers import trivy
    Importer("trivy", "Trivy JSON (trivy image -f json)", trivy.parse),

A state-only KIND returns `Listing`s in its `Parsed` (one per source key, e.g.
`trivy:<artifact>`, marked `complete=False` when the tool capped its list); run.py diffs them
against the stored snapshots into opened / remediated violations and saves the new snapshots
once the events are durable -- nothing else to wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from importers import gatekeeper, heartbeat, inventory, policyreport
from importers import cyclonedx, grype, osv, pip_audit, trivy
from importers import checkov, conftest, sarif, secrets
from importers.documents import Document
from importers.parsing import Options, Parsed

Parse = Callable[[Document, Options], Parsed]


@dataclass(frozen=True)
class Importer:
    kind: str
    reads: str
    parse: Parse


IMPORTERS: dict[str, Importer] = {i.kind: i for i in (
    Importer("policyreport", "Kubernetes PolicyReport / ClusterPolicyReport (wgpolicyk8s.io) "
             "and OpenReports Report / ClusterReport (openreports.io): one object or a "
             "kubectl List", policyreport.parse),
    Importer("gatekeeper", "Gatekeeper constraints with status (kubectl get constraints "
             "-o json), audit log lines, export messages", gatekeeper.parse),
    Importer("inventory", "workloads: CSV, a JSON array, or kubectl get deploy,sts,ds -A "
             "-o json", inventory.parse),
    Importer("heartbeat", "agent heartbeats: JSON / JSON lines, OPA status-API messages",
             heartbeat.parse),
    Importer("cyclonedx", "CycloneDX JSON SBOM (1.2-1.7): one sbom.generated for its artifact",
             cyclonedx.parse),
    Importer("trivy", "Trivy JSON (trivy image -f json); diffed per artifact", trivy.parse),
    Importer("grype", "Grype JSON (grype -o json); diffed per artifact", grype.parse),
    Importer("osv", "OSV-Scanner JSON (osv-scanner --format json); diffed per artifact",
             osv.parse),
    Importer("pip-audit", "pip-audit JSON (pip-audit -f json); diffed per artifact",
             pip_audit.parse),
    Importer("checkov", "Checkov JSON (checkov -o json): a deploy.gate and a decision per "
             "check", checkov.parse),
    Importer("conftest", "conftest JSON (conftest test --output json): a deploy.gate and "
             "decisions", conftest.parse),
    Importer("sarif", "SARIF 2.1.0 (semgrep, bandit, checkov, trivy, kics, CodeQL...): a "
             "deploy.gate per run and a decision per result", sarif.parse),
    Importer("detect-secrets", "detect-secrets scan JSON or baseline: secret.detected",
             secrets.parse_detect_secrets),
    Importer("gitleaks", "gitleaks JSON (gitleaks detect --report-format json): "
             "secret.detected, never the secret", secrets.parse_gitleaks),
)}


def get(kind: str) -> Importer:
    """The importer of `kind`; KeyError naming the known kinds."""
    try:
        return IMPORTERS[kind]
    except KeyError:
        raise KeyError(f"unknown KIND {kind!r}; expected one of "
                       + ", ".join(sorted(IMPORTERS))) from None
