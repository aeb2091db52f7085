"""Where an OPA decision's outcome lives: decision mappings, their defaults, JSON pointers.

OPA's results are arbitrary JSON, so a decision-log event says *what* was asked (`path` or an
ad-hoc `query`) and *what came back* (`result`, or `error`, or nothing), never whether that
meant allow or deny. A `DecisionMapping` (config: `collector.opa_decision_mappings`) says it
for the decisions of one path, with RFC 6901 JSON pointers into the event (`/result/allowed`,
`/input/request/name`). Without a mapping, or where a mapping leaves a field unsaid, the
defaults read the common shapes, first match wins:

    error present                     -> error, the error's message as the reason
    no result (undefined)             -> the mapping's `undefined` (default deny)
    result true / false               -> allow / deny
    result.deny / result.violation    -> deny when non-empty, its messages as the reason
    result.response.allowed           -> allow / deny, result.response.status.message as reason
                                         (a Kubernetes AdmissionReview answer)
    result.allowed / result.allow     -> allow / deny (result.reason / .message as reason)
    result.deny present but empty     -> allow
    result a list (a deny set)        -> deny when non-empty, else allow
    result.warn non-empty on an allow -> warn
    anything else                     -> not mappable: the event is quarantined
                                         (reason `unmapped_result`) until a mapping says

An ad-hoc query's result is a list of binding sets: empty means undefined, `[{}]` means the
query held (allow), one binding of one variable is read as that variable's value.

The policy id is the mapping's `policy_id` (a literal, or a pointer when it starts with `/`),
else the path dotted (`data.kubernetes.admission` or `kubernetes/admission` ->
`kubernetes.admission`), else the query. For an AdmissionReview input the subject is read by
default too: `input.request.kind.kind`, `.name`, `.namespace`, `.userInfo.username` and
`dryRun` (enforcement `dryrun`).

Erased and masked fields are honoured before anything is read: `scrub` removes every value
the event's `erased` / `masked` pointers name (OPA has already erased or replaced them; a
sender that did not gets them removed here), so no mapping can store one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator

from collector.coercion import RecordRejected, canonical_json
from core.config import Section
from schemas.events import ENFORCEMENT_MODES, SEVERITIES

MISSING: Any = object()  # a pointer that names nothing in the event
Enforcement = Literal[ENFORCEMENT_MODES]  # type: ignore[valid-type]
Severity = Literal[SEVERITIES]  # type: ignore[valid-type]
ADMISSION_SUBJECT = (  # attribute, pointer: read by default when present
    ("policy.resource.kind", "/input/request/kind/kind"),
    ("policy.resource.name", "/input/request/name"),
    ("k8s.namespace.name", "/input/request/namespace"),
    ("enduser.id", "/input/request/userInfo/username"),
)


def tokens(pointer: str) -> tuple[str, ...]:
    """The reference tokens of an RFC 6901 JSON pointer ("" is the whole event)."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer {pointer!r} must start with '/' (e.g. /result/allow)")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def resolve(document: Any, path: tuple[str, ...]) -> Any:
    """The value `path` names in `document`, or MISSING."""
    for token in path:
        if isinstance(document, dict):
            document = document.get(token, MISSING)
            if document is MISSING:
                return MISSING
        elif isinstance(document, list) and token.isdigit() and int(token) < len(document):
            document = document[int(token)]
        else:
            return MISSING
    return document


_ADMISSION_TOKENS = tuple((attribute, tokens(pointer)) for attribute, pointer in
                          ADMISSION_SUBJECT)


def scrub(event: dict, pointers: list[str]) -> None:
    """Remove, in place, every value the pointers name (object members are deleted, list
    items become null); a pointer naming nothing is skipped."""
    for pointer in pointers:
        try:
            path = tokens(pointer)
        except ValueError:
            continue
        if not path:
            continue
        parent = resolve(event, path[:-1])
        last = path[-1]
        if isinstance(parent, dict):
            parent.pop(last, None)
        elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
            parent[int(last)] = None


def dotted(path: str) -> str:
    """`data.a.b`, `data/a/b`, `/a/b`, `a/b` -> `a.b`."""
    text = path.strip().strip("/")
    for prefix in ("data.", "data/"):
        text = text.removeprefix(prefix)
    return "" if text == "data" else text.replace("/", ".")


def present(value: Any) -> bool:
    """Non-empty: a deny set with members, true, a non-empty text."""
    return value is not MISSING and value not in (None, False, "", [], {})


def messages(value: Any) -> str:
    """Deny / warn messages as one reason: strings as they are, objects by their msg /
    message / reason, joined with '; '."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("msg", "message", "reason"):
            if isinstance(value.get(key), str):
                return value[key]
        return canonical_json(value)
    if isinstance(value, list):
        return "; ".join(m for m in (messages(v) for v in value) if m)
    return "" if value is True else canonical_json(value)


def parse_mappings(value: Any) -> Any:
    """The setting's value: a list from the file, or YAML / JSON text from the environment
    (`POLICYSCOPE_OPA_DECISION_MAPPINGS='[{path: authz/allow, allowed: /result}]'`)."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"not a YAML list of mappings: {str(exc).splitlines()[0]}") \
                from None
        return [] if value is None else value
    return value


class DecisionMapping(Section):
    """Where one path's decisions keep their verdict (pointers into the decision-log event)."""

    path: str = Field(description=(
        "decision path (kubernetes/admission, data.kubernetes.admission) or ad-hoc query "
        "text; `prefix.*` matches every path under the prefix"))
    allowed: str | None = Field(None, description="pointer to a boolean: true = allow")
    deny: str | None = Field(None, description=(
        "pointer to deny messages (set, list, object, text, true): non-empty = deny"))
    warn: str | None = Field(None, description="pointer to warnings: non-empty = warn")
    reason: str | None = Field(None, description="pointer to the reason text")
    policy_id: str | None = Field(None, description=(
        "the policy id, or a pointer to it (starting with /) [default: the path]"))
    enforcement: Enforcement | None = Field(None, description="enforcement mode [enforce]")
    severity: Severity | None = Field(None, description="severity of a deny")
    undefined: Literal["allow", "deny", "error"] = Field("deny", description=(
        "outcome of an undefined decision (no result)"))
    attributes: dict[str, str] = Field(default_factory=dict, description=(
        "event attribute (policy.resource.name, team.name, ...) -> pointer to its value"))

    @field_validator("allowed", "deny", "warn", "reason")
    @classmethod
    def _pointer(cls, value: str | None) -> str | None:
        if value is not None:
            tokens(value)
        return value

    @field_validator("attributes")
    @classmethod
    def _pointers(cls, value: dict[str, str]) -> dict[str, str]:
        for pointer in value.values():
            tokens(pointer)
        return value


@dataclass
class Decision:
    """What a decision-log event meant: its outcome, reason, policy id and the attributes of
    the event model read from it (subject, actor, enforcement, ...)."""

    outcome: str
    policy_id: str
    reason: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    undefined: bool = False


class DecisionMapper:
    """The configured mappings, most specific first; `decide` reads one event."""

    def __init__(self, mappings: list[DecisionMapping] = ()):
        self.exact = {dotted(m.path): m for m in mappings if not m.path.endswith("*")}
        self.queries = {m.path.strip(): m for m in mappings}
        self.prefixes = sorted(((dotted(m.path.rstrip("*")), m) for m in mappings
                                if m.path.endswith("*")), key=lambda p: -len(p[0]))

    def mapping(self, path: str | None, query: str | None) -> DecisionMapping | None:
        if path:
            name = dotted(path)
            if name in self.exact:
                return self.exact[name]
            for prefix, mapping in self.prefixes:
                if name == prefix.rstrip(".") or name.startswith(prefix):
                    return mapping
            return None
        return self.queries.get((query or "").strip())

    def decide(self, event: dict, path: str | None, query: str | None) -> Decision:
        """The decision of a scrubbed event; raises RecordRejected when it has no verdict."""
        mapping = self.mapping(path, query)
        policy_id = dotted(path) if path else (query or "").strip()
        attributes: dict[str, Any] = {}
        for attribute, path_tokens in _ADMISSION_TOKENS:
            value = resolve(event, path_tokens)
            if value is not MISSING and value not in (None, ""):
                attributes[attribute] = value
        if resolve(event, ("input", "request", "dryRun")) is True:
            attributes["policy.enforcement"] = "dryrun"
        if mapping is not None:
            if mapping.policy_id:
                policy_id = mapping.policy_id if not mapping.policy_id.startswith("/") else \
                    str(_get(event, mapping.policy_id, policy_id))
            for attribute, pointer in mapping.attributes.items():
                value = resolve(event, tokens(pointer))
                if value is not MISSING and value is not None:
                    attributes[attribute] = value
            if mapping.enforcement:
                attributes["policy.enforcement"] = mapping.enforcement
            if mapping.severity:
                attributes["policy.severity"] = mapping.severity
        decision = Decision("", policy_id or "", attributes=attributes)
        error = event.get("error", MISSING)
        if error is not MISSING and error is not None:
            decision.outcome = "error"
            decision.reason = _error_text(error)
            if isinstance(error, dict) and isinstance(error.get("code"), str):
                attributes["opa.error.code"] = error["code"]
            return decision
        if mapping is not None and (mapping.allowed or mapping.deny):
            self._mapped(event, mapping, decision)
        else:
            result = event.get("result", MISSING)
            if query and not path:
                result = _binding(result)
            if result is MISSING or result is None:
                decision.undefined = True
            else:
                _default(result, decision, policy_id)
        if decision.undefined:
            decision.outcome = mapping.undefined if mapping is not None else "deny"
            decision.reason = decision.reason or "decision undefined (no result)"
        if mapping is not None and mapping.reason:
            reason = _get(event, mapping.reason, "")
            decision.reason = messages(reason) if present(reason) else decision.reason
        if mapping is not None and mapping.warn and decision.outcome == "allow":
            warnings = _get(event, mapping.warn, MISSING)
            if present(warnings):
                decision.outcome, decision.reason = "warn", messages(warnings)
        return decision

    @staticmethod
    def _mapped(event: dict, mapping: DecisionMapping, decision: Decision) -> None:
        if mapping.deny:
            denies = _get(event, mapping.deny, MISSING)
            if present(denies):
                decision.outcome, decision.reason = "deny", messages(denies)
                return
            if not mapping.allowed:
                decision.undefined = denies is MISSING and "result" not in event
                decision.outcome = "allow"
                return
        allowed = _get(event, mapping.allowed, MISSING)
        if allowed is MISSING or allowed is None:
            decision.undefined = True
        elif isinstance(allowed, bool):
            decision.outcome = "allow" if allowed else "deny"
        else:
            raise RecordRejected("invalid_allowed", f"{mapping.allowed} is "
                                 f"{canonical_json(allowed)[:80]}; expected true or false "
                                 f"(decision mapping for {mapping.path!r})")


def _get(event: dict, pointer: str, default: Any) -> Any:
    value = resolve(event, tokens(pointer))
    return default if value is MISSING else value


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        text = error.get("message")
        if isinstance(text, str):
            return text
    return error if isinstance(error, str) else canonical_json(error)


def _binding(result: Any) -> Any:
    """An ad-hoc query's result sets -> the value to read (MISSING when undefined)."""
    if not isinstance(result, list):
        return result
    if not result:
        return MISSING
    first = result[0]
    if isinstance(first, dict) and not first:
        return True  # the query held, binding nothing
    if isinstance(first, dict) and len(first) == 1:
        return next(iter(first.values()))
    return result


def _default(result: Any, decision: Decision, policy_id: str) -> None:
    if isinstance(result, bool):
        decision.outcome = "allow" if result else "deny"
        return
    if isinstance(result, list):
        decision.outcome = "deny" if result else "allow"
        decision.reason = messages(result)
        return
    if isinstance(result, dict):
        for key in ("deny", "violation", "violations"):
            if present(result.get(key, MISSING)):
                decision.outcome, decision.reason = "deny", messages(result[key])
                return
        response = result.get("response")
        verdict = MISSING
        if isinstance(response, dict) and isinstance(response.get("allowed"), bool):
            verdict = response["allowed"]
            status = response.get("status")
            if isinstance(status, dict) and isinstance(status.get("message"), str):
                decision.reason = status["message"]
        else:
            for key in ("allowed", "allow"):
                if isinstance(result.get(key), bool):
                    verdict = result[key]
                    break
            for key in ("reason", "message", "msg"):
                if isinstance(result.get(key), str):
                    decision.reason = result[key]
                    break
        if verdict is MISSING and any(k in result for k in ("deny", "violation", "violations")):
            verdict = True
        if verdict is not MISSING:
            decision.outcome = "allow" if verdict else "deny"
            if decision.outcome == "allow" and present(result.get("warn", MISSING)):
                decision.outcome, decision.reason = "warn", messages(result["warn"])
            return
    raise RecordRejected("unmapped_result", f"the result of {policy_id or 'the query'!r} "
                         f"({canonical_json(result)[:80]}) holds no verdict this collector "
                         "knows (true/false, allow(ed), deny, response.allowed): add a "
                         "decision mapping for it (collector.opa_decision_mappings)")
