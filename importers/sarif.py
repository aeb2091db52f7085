"""KIND `sarif`: SARIF 2.1.0 (OASIS), the log format most scanners share -- semgrep, bandit,
checkov, trivy, gitleaks, kics, CodeQL. The shape is checked as read: `version` "2.1.0",
`runs` an array, each run's `tool.driver.name`; a wrong value fails with its JSON path
(`$.runs[0].results[3].level`).

Each run is one tool (engine = `tool.driver.name` lower-cased, spaces as `-`: `bandit`,
`checkov`, `semgrep-oss`). Its `rules[]` are the policies: a result's rule (`ruleId`, else
`rule.id`, else `ruleIndex` / `rule.index` into the rules) gives the decision its policy id,
`policy.rule` (the rule's `name`), `policy.title` (`shortDescription.text`), `policy.tags`
and `policy.help_uri`. Each result is a `policy.decision`:

    kind (default fail)     level (default: the rule's defaultConfiguration.level, else
                            warning)                       outcome
    fail                    error, warning                 deny
    fail                    note, none                     warn
    open, review            any                            warn
    pass                    any                            allow
    informational, notApplicable                           not imported (counted)
    any, with an accepted suppression                      allow, policy.exception = true

Severity: `properties.security-severity` of the result, else of its rule (GitHub's
convention, a CVSS-like score): >= 9 critical, >= 7 high, >= 4 medium, > 0 low, 0 info; else
the level: error high, warning medium, note low, none info. Resource: the first location's
`artifactLocation.uri` and `region.startLine` (`app.py:9`); reason: `message.text` (or the
rule's `messageStrings` entry a `message.id` names, with its arguments); snippets are never
read -- gitleaks puts the secret there. The event id comes from `partialFingerprints` (else
`fingerprints`, else rule, location and message), so the same finding of the same scan is
stored once. Results with `baselineState: absent` (gone since the baseline) are counted,
not imported. Each run is one `deploy.gate` (importers/ci_runs.py), at the run's
`invocations[0].endTimeUtc` when given.
"""

from __future__ import annotations

import re

from importers import ci_runs
from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.records import Event, stable_id

VERSION = "2.1.0"
KINDS = ("fail", "pass", "open", "review", "informational", "notApplicable")
LEVELS = ("error", "warning", "note", "none")
LEVEL_SEVERITY = {"error": "high", "warning": "medium", "note": "low", "none": "info"}
SKIPPED_KINDS = {"informational": "informational results", "notApplicable":
                 "notApplicable results"}


def parse(document: Document, options: Options) -> Parsed:
    root = document.json()
    root.mapping()
    version = root.child("version")
    if version.value != VERSION:
        raise version.fail(f'"{VERSION}" (SARIF 2.1.0)', version.value)
    runs = root.items("runs", required=True)
    deploy = ci_runs.deploy_id("sarif", document, options.facts)
    scan = ci_runs.scan_id("sarif", document, options.facts)
    out = Parsed()
    for index, run in enumerate(runs):
        _run(run, index, deploy, scan, options, out)
    return out


def _run(run: Node, index: int, deploy: str, scan: str, options: Options, out: Parsed
         ) -> None:
    run.mapping()
    driver = run.child("tool").child("driver")
    driver.mapping()
    engine = re.sub(r"\s+", "-", driver.text("name", required=True).strip().lower())
    rules = [_rule(rule) for rule in driver.items("rules")]
    by_id = {rule["id"]: rule for rule in rules}
    invocations = run.items("invocations")
    at = (invocations[0].time_ms("endTimeUtc") or invocations[0].time_ms("startTimeUtc")
          if invocations else None) or options.at_ms
    out.objects += 1
    decisions: list[Event] = []
    exceptions = 0
    for result in run.items("results"):
        event = _result(result, rules, by_id, engine, index, deploy, scan, at, out)
        if event is not None:
            decisions.append(event)
            exceptions += bool(event.attributes.get("policy.exception"))
    out.events += decisions
    out.events.append(ci_runs.gate("sarif", engine, deploy, decisions, at, scan=scan,
                                   exceptions=exceptions, part=str(index)))


def _rule(rule: Node) -> dict:
    rule.mapping()
    props = rule.child("properties")
    tags = props.items("tags") if props.is_mapping() else []
    strings = rule.child("messageStrings")
    return {"id": rule.text("id", required=True), "name": rule.text("name"),
            "title": _text(rule.child("shortDescription")),
            "level": rule.child("defaultConfiguration").one_of(
                "level", LEVELS, required=False, default="")
            if rule.child("defaultConfiguration").is_mapping() else "",
            "score": props.number("security-severity") if props.is_mapping() else None,
            "tags": ",".join(str(t.value) for t in tags),
            "help_uri": rule.text("helpUri"),
            "strings": {k: v.get("text", "") for k, v in strings.value.items()
                        if isinstance(v, dict)} if strings.is_mapping() else {}}


def _result(result: Node, rules: list[dict], by_id: dict, engine: str, run: int, deploy: str,
            scan: str, at: int, out: Parsed) -> Event | None:
    result.mapping()
    rule = _rule_of(result, rules, by_id)
    kind = result.one_of("kind", KINDS, required=False, default="fail")
    level = result.one_of("level", LEVELS, required=False, default="")
    if kind in SKIPPED_KINDS:
        out.skipped[SKIPPED_KINDS[kind]] += 1
        return None
    if result.text("baselineState") == "absent":
        out.skipped["results absent since the baseline"] += 1
        return None
    if not level:  # SARIF 3.27.10: a failure takes its rule's level, anything else none
        level = (rule.get("level") or "warning") if kind == "fail" else "none"
    suppressed = any(s.is_mapping() and s.value.get("status") not in ("rejected",
                                                                        "underReview")
                     for s in result.items("suppressions"))
    outcome = ("allow" if suppressed or kind == "pass" else
               "deny" if kind == "fail" and level in ("error", "warning") else "warn")
    props = result.child("properties")
    score = props.number("security-severity") if props.is_mapping() else None
    severity = _severity(rule.get("score") if score is None else score, level)
    uri, line = _location(result)
    reason = _message(result.child("message"), rule)
    attrs = {"policy.engine": engine, "policy.id": rule["id"], "policy.rule": rule.get("name"),
             "policy.title": rule.get("title"), "policy.tags": rule.get("tags"),
             "policy.help_uri": rule.get("help_uri"), "policy.enforcement": "enforce",
             "policy.outcome": outcome, "policy.severity": severity, "policy.reason": reason,
             "policy.resource.kind": "file" if uri else "", "policy.resource.name": uri,
             "policy.resource.id": f"{uri}:{line}" if uri and line else uri,
             "code.file.path": uri, "code.line.number": line, "sarif.level": level,
             "deploy.id": deploy}
    if suppressed:
        attrs["policy.exception"] = True
    identity = _fingerprint(result) or [uri, line, reason]
    uid = stable_id("sarif", scan, run, engine, rule["id"], identity, kind)
    return Event("policy.decision", attrs, at, uid)


def _rule_of(result: Node, rules: list[dict], by_id: dict) -> dict:
    ref = result.child("rule")
    rule_id = result.text("ruleId") or (ref.text("id") if ref.is_mapping() else "")
    index = result.integer("ruleIndex")
    if index is None and ref.is_mapping():
        index = ref.integer("index")
    if index is not None and index >= 0:
        if index >= len(rules):
            raise result.child("ruleIndex").fail(
                f"an index into tool.driver.rules (0..{len(rules) - 1})", index)
        if not rule_id:
            return rules[index]
    if not rule_id:
        raise result.fail("ruleId, or rule.id / ruleIndex naming one of tool.driver.rules")
    return by_id.get(rule_id) or by_id.get(rule_id.split("/")[0]) or {"id": rule_id}


def _severity(score: float | None, level: str) -> str:
    if score is not None:
        return ("critical" if score >= 9 else "high" if score >= 7 else "medium"
                if score >= 4 else "low" if score > 0 else "info")
    return LEVEL_SEVERITY[level]


def _location(result: Node) -> tuple[str, int | None]:
    for location in result.items("locations"):
        physical = location.child("physicalLocation")
        if not physical.is_mapping():
            continue
        artifact = physical.child("artifactLocation")
        uri = artifact.text("uri") if artifact.is_mapping() else ""
        region = physical.child("region")
        line = region.integer("startLine") if region.is_mapping() else None
        return uri, line
    return "", None


def _message(message: Node, rule: dict) -> str:
    if not message.is_mapping():
        return rule.get("title") or rule.get("name") or ""
    if text := message.text("text"):
        return text
    template = rule.get("strings", {}).get(message.text("id"), "")
    for i, arg in enumerate(message.items("arguments")):
        template = template.replace("{" + str(i) + "}", str(arg.value))
    return template or rule.get("title") or rule.get("name") or ""


def _fingerprint(result: Node) -> list | None:
    for key in ("partialFingerprints", "fingerprints"):
        prints = result.child(key)
        if prints.value is None:
            continue
        if not isinstance(prints.value, dict) or not all(
                isinstance(v, str) for v in prints.value.values()):
            raise prints.fail("an object of strings", prints.value)
        if prints.value:
            return sorted(prints.value.items())
    return None


def _text(node: Node) -> str:
    return node.text("text") if node.is_mapping() else ""
