"""A CI scanner's run: the deploy it gates and the `deploy.gate` event its decisions add up to.

Checkov, conftest and SARIF tools run as a pipeline step; what they found is one gate of that
pipeline run plus one `policy.decision` per check. The run is named by `deploy_id`:

    the CI run id (--run-id, GITHUB_RUN_ID, CI_PIPELINE_ID)    -> "<run id>"
    else the commit (--commit, GITHUB_SHA, CI_COMMIT_SHA)      -> "commit:<sha>"
    else the input itself                                      -> "<kind>:<hash of the text>"

so importing the same file again names the same deploy, and every event id built from it
(`scan_id`) is the same: stored once. The gate is `blocked` when any decision denies,
`overridden` when none does but a policy exception let a failure through (conftest), else
`passed`; a blocked gate carries the blocking policy -- the most severe deny, the first of
equals -- as `policy.id` / `policy.severity` (the M6 breakdown by policy).
"""

from __future__ import annotations

from importers.documents import Document
from importers.facts import SourceFacts
from importers.records import Event, stable_id
from schemas.events import SEVERITIES

RANK = {s: i for i, s in enumerate(SEVERITIES)}  # critical first


def deploy_id(kind: str, document: Document, facts: SourceFacts) -> str:
    if facts.run_id:
        return facts.run_id
    if facts.commit:
        return f"commit:{facts.commit}"
    return f"{kind}:{stable_id(document.text)[:16]}"


def scan_id(kind: str, document: Document, facts: SourceFacts) -> str:
    """What identifies this scan in event ids: its deploy and its content (two steps of one
    pipeline run, or two scans of one commit with different results, are two scans)."""
    return stable_id(kind, deploy_id(kind, document, facts), document.text)


def gate(kind: str, engine: str, deploy: str, decisions: list[Event], time_ms: int, *,
         scan: str, exceptions: int = 0, part: str = "") -> Event:
    """The `deploy.gate` of `decisions` (this run's `policy.decision`s of one tool);
    `part` tells two gates of one input apart (the runs of a SARIF file)."""
    denied = [d.attributes for d in decisions if d.attributes.get("policy.outcome") == "deny"]
    outcome = "blocked" if denied else "overridden" if exceptions else "passed"
    attrs = {"deploy.id": deploy, "deploy.gate.outcome": outcome, "policy.engine": engine,
             "deploy.gate.checks": len(decisions), "deploy.gate.failed": len(denied)}
    if denied:
        worst = min(denied, key=lambda a: RANK.get(a.get("policy.severity", ""), len(RANK)))
        attrs["policy.id"] = worst.get("policy.id", "")
        attrs["policy.severity"] = worst.get("policy.severity", "")
        ids = sorted({a.get("policy.id", "") for a in denied})
        attrs["policy.reason"] = (f"{len(denied)} of {len(decisions)} checks failed: "
                                  + ", ".join(ids[:20]) + (" ..." if len(ids) > 20 else ""))
    elif exceptions:
        attrs["policy.reason"] = f"{exceptions} failures excepted by policy exceptions"
    return Event("deploy.gate", attrs, time_ms, stable_id(kind, "gate", scan, part))
