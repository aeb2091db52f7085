"""KIND `heartbeat`: enforcement agents' health as `agent.heartbeat` events (M8 agent health,
and telemetry loss through `agent.dropped_events`).

Input: one JSON object, an array of them, or JSON lines, each either
* an OPA status-API message (`labels.id` and `plugins`, what OPA POSTs to its status
  service): agent `labels.id`, engine opa; status healthy when every plugin's `state` is OK,
  unhealthy when one is ERROR, else degraded; dropped events = the sum of the decision-log
  drop counters -- every `decision_logs.metrics` counter and every `metrics.prometheus`
  counter whose name holds both `decision_logs` and `dropped` (OPA's
  `counter_decision_logs_dropped*`); or
* a plain heartbeat: `agent_id` (or `agent.id`), optional `status` (healthy, degraded,
  unhealthy), `interval` (seconds), `dropped_events`, `engine`, `time` / `timestamp`.

The event time is the heartbeat's own (`time`, `timestamp`), else the import's (`--at`,
default now; OPA status messages carry none); the id is the content and that time.
"""

from __future__ import annotations

from importers.documents import Document, Node
from importers.parsing import Options, Parsed
from importers.records import Event, stable_id
from schemas.events import AGENT_STATUSES


def parse(document: Document, options: Options) -> Parsed:
    out = Parsed()
    if document.looks_like_json_lines():
        nodes = [node for _, node in document.json_lines()]
    else:
        root = document.json()
        nodes = [Node(root.source, f"$[{i}]", v) for i, v in enumerate(root.value)] \
            if isinstance(root.value, list) else [root]
    for node in nodes:
        node.mapping()
        out.objects += 1
        attrs, time_ms = (_opa(node) if node.is_mapping() and "plugins" in node.value
                          and node.child("labels").is_mapping() else _plain(node))
        time_ms = options.at_ms if time_ms is None else time_ms
        uid = stable_id("heartbeat", options.facts.resource(), attrs, time_ms)
        out.events.append(Event("agent.heartbeat", attrs, time_ms, uid))
    return out


def _opa(node: Node) -> tuple[dict, int | None]:
    labels = node.child("labels")
    agent = labels.text("id", required=True)
    states = [p.child("state").value for p in _values(node.child("plugins"))]
    status = "healthy" if all(s == "OK" for s in states) else \
        "unhealthy" if "ERROR" in states else "degraded"
    dropped = 0
    logs = node.child("decision_logs")
    if logs.is_mapping():
        for name, value in (logs.child("metrics").value or {}).items():
            if "dropped" in name:
                dropped += _count(logs.child("metrics").child(name), value)
    prometheus = node.child("metrics").child("prometheus")
    if prometheus.is_mapping():
        for name, family in prometheus.value.items():
            if "decision_logs" in name and "dropped" in name and isinstance(family, dict):
                for sample in family.get("metric") or []:
                    dropped += int((sample.get("counter") or {}).get("value") or 0)
    return {"agent.id": agent, "policy.engine": "opa", "agent.status": status,
            "agent.dropped_events": dropped, "service.name": labels.text("app"),
            "policy.version": labels.text("version")}, None


def _plain(node: Node) -> tuple[dict, int | None]:
    agent = node.text("agent_id") or node.text("agent.id")
    if not agent:
        raise node.child("agent_id").fail("an agent id (agent_id), or an OPA status message "
                                          "(labels.id and plugins)")
    status = node.text("status")
    if status and status not in AGENT_STATUSES:
        raise node.child("status").fail("one of " + ", ".join(AGENT_STATUSES), status)
    dropped = node.integer("dropped_events")
    if dropped is not None and dropped < 0:
        raise node.child("dropped_events").fail("a count >= 0", dropped)
    interval = node.number("interval")
    if interval is not None and interval < 0:
        raise node.child("interval").fail("seconds >= 0", interval)
    attrs = {"agent.id": agent, "agent.status": status, "agent.dropped_events": dropped,
             "agent.heartbeat.interval": interval, "policy.engine": node.text("engine"),
             "team.name": node.text("team"), "k8s.cluster.name": node.text("cluster")}
    return ({k: v for k, v in attrs.items() if v not in (None, "")},
            node.time_ms("time") or node.time_ms("timestamp"))


def _values(node: Node) -> list[Node]:
    if not node.is_mapping():
        return []
    return [node.child(k) for k in node.value]


def _count(node: Node, value) -> int:
    if isinstance(value, dict):  # {"value": n}
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise node.fail("a count >= 0", value)
    return int(value)
