"""falcosidekick's webhook output: `POST /falco`, one Falco event (JSON object) per request.

falcosidekick is pointed at it with `webhook.address: http://HOST:4318/falco` (its
`webhook.customHeaders` carry the receiver token: `Authorization:Bearer <token>`). Falco
detects; it does not block. Each alert therefore becomes two rows:

* a runtime `policy.decision` -- engine `falco`, policy id `falco.<rule slug>` (the rule
  lower-cased, every run of other characters than a-z and 0-9 one `-`: "Write below binary
  dir" -> `falco.write-below-binary-dir`), rule = the rule's name, outcome `deny` for
  priorities warning and above, `warn` below (notice, informational, debug: rules that ask
  for attention, not findings), enforcement `audit` -- or what the webhook address's
  `?enforcement=` says, e.g. `enforce` when a response engine (Falco Talon, a falcosidekick
  function) acts on the same alerts;
* a `policy.violation` with status `opened`, violation id = the event's `uuid`.

Falco's 8 priorities -> the 5 severities: emergency, alert, critical -> critical; error ->
high; warning -> medium; notice -> low; informational (info), debug -> info.

`output` -> reason; `hostname` -> host.name; `source` -> falco.source; `tags` ->
falco.tags (comma-joined); `output_fields` -> attributes under their own names (numbers, even
above 2^53, and numbers sent as strings, kept as their exact text), except that
`k8s.ns.name` -> namespace, `k8s.pod.name` -> the subject (kind Pod), `container.id` ->
resource id, `user.name` -> actor, `container.image.repository[:tag]` -> image; a
falcosidekick custom field naming a context attribute of the event model (team.name,
service.name, k8s.cluster.name, deployment.environment.name) sets it; a field naming any other
attribute of the event model is kept as `falco.<name>`.

`source: internal` events are Falco's own health (the syscall event drop alert, rule "Falco
internal: syscall event drop"): one `agent.heartbeat` (agent = hostname, status degraded,
dropped events = output_fields n_drops), no finding.

falcosidekick sends one event per request and does not retry forever, so an event that is
not usable is refused whole: 400 naming the field and what was expected.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from aiohttp import web

from collector.coercion import canonical_json
from collector.config import CollectorConfig
from collector.errors import DecodeError
from collector.receivers.json_http import Converted, rfc3339_ms
from collector.rows import RowBuilder, SourceContext, row_settings
from schemas.events import (
    ENFORCEMENT_MODES,
    EVENT_NAME_ATTRIBUTE,
    TABLES,
    UID_ATTRIBUTE,
)

SEVERITY = {"emergency": "critical", "alert": "critical", "critical": "critical",
            "error": "high", "warning": "medium", "notice": "low",
            "informational": "info", "info": "info", "debug": "info"}
DENY_SEVERITIES = frozenset({"critical", "high", "medium"})  # warning and above
CONTEXT = frozenset({"team.name", "service.name", "k8s.cluster.name",
                     "deployment.environment.name", "deployment.environment"})
CONTRACT = frozenset(a for t in TABLES for c in t.columns for a in c.attributes) | {
    EVENT_NAME_ATTRIBUTE, UID_ATTRIBUTE}
FIELDS = {"k8s.ns.name": "k8s.namespace.name", "k8s.pod.name": "policy.resource.name",
          "container.id": "policy.resource.id", "user.name": "enduser.id"}


def slug(rule: str) -> str:
    """`Write below binary dir` -> `write-below-binary-dir`."""
    return re.sub(r"[^a-z0-9]+", "-", rule.lower()).strip("-") or "rule"


class FalcoWebhook:
    source = "falco"

    def __init__(self, config: CollectorConfig):
        self.rows = RowBuilder(**row_settings(config))
        self.context = SourceContext({"policy.engine": "falco"}, identity_prefix=b"falco\x00")

    def convert(self, data: Any, request: web.Request) -> Converted:
        enforcement = request.query.get("enforcement", "audit").lower()
        if enforcement not in ENFORCEMENT_MODES:
            raise DecodeError(f"query parameter enforcement={enforcement!r}; expected one of "
                              + ", ".join(ENFORCEMENT_MODES))
        return self.event(data, enforcement)

    def event(self, event: Any, enforcement: str = "audit") -> Converted:
        if not isinstance(event, dict):
            raise DecodeError("body is not a JSON object; falcosidekick's webhook sends one "
                              "Falco event (uuid, rule, priority, time, output, ...)")
        rule = _text(event, "rule", required=True)
        priority = _text(event, "priority", required=True)
        severity = SEVERITY.get(priority.strip().lower())
        if severity is None:
            raise DecodeError(f"'priority' is {priority!r}; expected one of Emergency, Alert, "
                              "Critical, Error, Warning, Notice, Informational, Debug")
        try:
            time_ms = rfc3339_ms(event["time"]) if event.get("time") is not None else None
        except ValueError as exc:
            raise DecodeError(f"'time': {exc}") from None
        fields = event.get("output_fields")
        if fields is None:
            fields = {}
        if not isinstance(fields, dict):
            raise DecodeError(f"'output_fields' is {canonical_json(fields)[:60]}; expected an "
                              "object of Falco fields")
        tags = event.get("tags") or []
        if not isinstance(tags, list):
            raise DecodeError(f"'tags' is {canonical_json(tags)[:60]}; expected a list")
        source = _text(event, "source")
        hostname = _text(event, "hostname")
        uid = _text(event, "uuid")
        attrs: dict[str, Any] = {"policy.reason": _text(event, "output"),
                                 "falco.priority": priority, "falco.source": source,
                                 "host.name": hostname,
                                 "falco.tags": ",".join(str(t) for t in tags)}
        attrs.update(_fields(fields))
        out = self.rows.batch()
        identity = canonical_json(event).encode("utf-8", "surrogatepass")
        if source == "internal":
            if not hostname:
                raise DecodeError("an internal (Falco health) event needs 'hostname' to name "
                                  "the agent it is about")
            dropped = fields.get("n_drops")
            if isinstance(dropped, str) and dropped.strip().isdigit():
                dropped = int(dropped)
            heartbeat = {**attrs, "agent.id": hostname, "agent.status": "degraded",
                         "policy.rule": rule, "agent.dropped_events": dropped
                         if isinstance(dropped, int) and not isinstance(dropped, bool) else None}
            out.add(self.context, "agent.heartbeat", _present(heartbeat), time_ms=time_ms,
                    event_id=uid or None, identity=identity)
        else:
            policy = f"falco.{slug(rule)}"
            decision = {**attrs, "policy.id": policy, "policy.rule": rule,
                        "policy.outcome": "deny" if severity in DENY_SEVERITIES else "warn",
                        "policy.severity": severity, "policy.enforcement": enforcement}
            image = _image(fields)
            out.add(self.context, "policy.decision", _present(decision), time_ms=time_ms,
                    event_id=uid or None, identity=identity)
            violation = {**decision, "policy.violation.id": uid or _digest(identity),
                         "policy.violation.status": "opened",
                         "artifact.image": image}
            violation.pop("policy.outcome")
            out.add(self.context, "policy.violation", _present(violation), time_ms=time_ms,
                    event_id=f"{uid}:opened" if uid else None, identity=identity + b"\x00v")
        batch = out.finish()
        if batch.rejected:
            raise DecodeError("event is not usable: " + "; ".join(batch.reject_examples))
        return Converted(batch)


def _fields(fields: dict) -> dict[str, Any]:
    """output_fields as attributes (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else canonical_json(value)
        if key in FIELDS:
            out[FIELDS[key]] = text
            if key == "k8s.pod.name":
                out["policy.resource.kind"] = "Pod"
        elif key in CONTEXT:
            out[key] = text
        elif key in CONTRACT or key.startswith("falco."):
            out[f"falco.{key}"] = text
        else:
            out[key] = text
    return out


def _image(fields: dict) -> str | None:
    repository = fields.get("container.image.repository")
    if not isinstance(repository, str) or not repository:
        return None
    tag = fields.get("container.image.tag")
    return f"{repository}:{tag}" if isinstance(tag, str) and tag else repository


def _digest(identity: bytes) -> str:
    return hashlib.blake2b(identity, digest_size=16).hexdigest()


def _present(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v not in (None, "")}


def _text(event: dict, key: str, required: bool = False) -> str:
    value = event.get(key)
    if value is None or value == "":
        if required:
            raise DecodeError(f"the event has no '{key}'; falcosidekick sends uuid, rule, "
                              "priority, time, output, output_fields, source, tags, hostname")
        return ""
    if not isinstance(value, str):
        raise DecodeError(f"'{key}' is {canonical_json(value)[:60]}; expected a string")
    return value
