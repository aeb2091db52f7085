"""OPA's decision-log service API: `POST /opa/logs[/<partition>]`, a (gzip'd) JSON array of
decision-log events, each one `policy.decision` row.

OPA is pointed at it with `services: [{name: policyscope, url: http://HOST:4318/opa}]` and
`decision_logs: {service: policyscope}`; its bearer token (`credentials.bearer.token`) is one
of the collector's receiver tokens (collector/auth.py). OPA retries a batch forever on any
non-2xx and never reads the answer, so:

* the 2xx comes only once the rows are durable (collector/receivers/json_http.py);
* a re-sent batch adds nothing: the event id is the event's `decision_id` and the writer
  stores an event id once (an event without one gets a content hash);
* one bad event never refuses the batch: it is quarantined -- counted as a reject of source
  `opa` under its reason code (`policyscope_records_opa_rejected_total{reason=...}`, and
  `records_rejected` in collector_metrics) and parked in the dead-letter folder
  (`policyscope deadletters list`) -- while the rest lands. Only a body that is not gzip /
  JSON / an array is refused (400, naming what was wrong).

What maps to what (the outcome, reason and policy id: collector/opa_mappings.py):

    decision_id                -> event id            timestamp -> event time (RFC 3339)
    path | query               -> policy.id (dotted path, or the query), opa.path / opa.query
    bundles{name: {revision}}  -> policy.version (one bundle: its revision; several:
                                  name@revision, sorted); else the deprecated `revision`
    labels.id / labels.version -> agent.id / opa.version; labels environment, cluster, team,
                                  service -> the event model's; other labels -> opa.label.<k>
    metrics.timer_rego_query_eval_ns (else timer_server_handler_ns) -> latency seconds
    trace_id / span_id         -> trace / span id     req_id -> opa.req_id (exact)
    requested_by               -> opa.requested_by    partition -> opa.partition
    erased / masked            -> opa.erased / opa.masked (the pointers; their values are
                                  removed before anything is read)
    nd_builtin_cache           -> opa.nd_builtins (the builtins' names only, never values)

A field of the wrong type quarantines the event as `invalid_<field>`; an element that is not
an object as `not_an_object`; an event with neither path nor query as `missing_path`; a result
no mapping reads as `unmapped_result`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from collector.coercion import RecordRejected, canonical_json
from collector.config import CollectorConfig
from collector.errors import DecodeError
from collector.opa_mappings import DecisionMapper, scrub
from collector.receivers.json_http import Converted, rfc3339_ms
from collector.rows import BatchBuilder, RowBuilder, SourceContext, row_settings

LABELS = {"id": "agent.id", "version": "opa.version", "environment": "deployment.environment.name",
          "env": "deployment.environment.name", "cluster": "k8s.cluster.name",
          "team": "team.name", "service": "service.name"}
WHOLE = ("input", "result", "mapped_result", "nd_builtin_cache")  # dropped when unscrubbable
QUARANTINED_CHARS = 65536


class OpaDecisionLogs:
    source = "opa"

    def __init__(self, config: CollectorConfig):
        self.rows = RowBuilder(**row_settings(config))
        self.mapper = DecisionMapper(config.opa_decision_mappings)
        self.context = SourceContext({"policy.engine": "opa"}, identity_prefix=b"opa\x00")

    def convert(self, data: Any, request: web.Request) -> Converted:
        if not isinstance(data, list):
            raise DecodeError(f"body is a JSON {_kind(data)}; OPA's decision-log API sends a "
                              "JSON array of events")
        return self.events(data, request.match_info.get("partition", ""))

    def events(self, events: list, partition: str = "") -> Converted:
        out = self.rows.batch()
        converted = Converted(out.batch)
        for index, event in enumerate(events):
            before = out.batch.rejected
            try:
                self._add(out, event, partition)
            except RecordRejected as exc:
                message = f"event {index}: {exc}"
                out.reject(exc.code, message)
                converted.quarantine.append((exc.code, message, self._record_text(event)))
                continue
            if out.batch.rejected > before:  # the row builder refused it (a time, an id)
                code = _newest_code(out, converted)
                detail = out.batch.reject_examples[-1] if len(
                    out.batch.reject_examples) == out.batch.rejected else code
                converted.quarantine.append((code, f"event {index}: {detail}",
                                             self._record_text(event)))
        out.finish()
        return converted

    def _add(self, out: BatchBuilder, event: Any, partition: str) -> None:
        if not isinstance(event, dict):
            raise RecordRejected("not_an_object", f"is a JSON {_kind(event)}; expected an "
                                 "object (a decision-log event)")
        hidden = []
        for key in ("erased", "masked"):
            pointers = event.get(key)
            if pointers is not None and not (isinstance(pointers, list) and
                                             all(isinstance(p, str) for p in pointers)):
                raise RecordRejected(f"invalid_{key}", f"'{key}' is {_short(pointers)}; "
                                     "expected a list of JSON pointers")
            hidden += pointers or []
        scrub(event, hidden)
        path, query = _text(event, "path"), _text(event, "query")
        if not path and not query:
            raise RecordRejected("missing_path", "has neither 'path' nor 'query'")
        decision = self.mapper.decide(event, path or None, query or None)
        attrs: dict[str, Any] = dict(decision.attributes)
        attrs["policy.id"] = decision.policy_id
        attrs["policy.outcome"] = decision.outcome
        if decision.reason:
            attrs["policy.reason"] = decision.reason
        if decision.undefined:
            attrs["opa.decision.undefined"] = True
        attrs["opa.path" if path else "opa.query"] = path or query
        version = _version(event)
        if version:
            attrs["policy.version"] = version
        labels = _typed(event, "labels", dict) or {}
        for key, value in labels.items():
            attrs[LABELS.get(key, f"opa.label.{key}")] = value if isinstance(value, str) \
                else canonical_json(value)
        metrics = _typed(event, "metrics", dict) or {}
        for timer in ("timer_rego_query_eval_ns", "timer_server_handler_ns"):
            ns = metrics.get(timer)
            if ns is not None:
                if isinstance(ns, bool) or not isinstance(ns, (int, float)) or ns < 0:
                    raise RecordRejected("invalid_metrics", f"metrics.{timer} is "
                                         f"{_short(ns)}; expected nanoseconds")
                attrs["policy.evaluation.duration"] = ns / 1e9
                break
        req_id = event.get("req_id")
        if req_id is not None:
            if isinstance(req_id, bool) or not isinstance(req_id, int):
                raise RecordRejected("invalid_req_id", f"'req_id' is {_short(req_id)}; "
                                     "expected an integer")
            attrs["opa.req_id"] = str(req_id)
        if _text(event, "requested_by"):
            attrs["opa.requested_by"] = event["requested_by"]
        if partition:
            attrs["opa.partition"] = partition
        if hidden:
            attrs["opa.erased"] = ",".join(event.get("erased") or []) or None
            attrs["opa.masked"] = ",".join(event.get("masked") or []) or None
        cache = event.get("nd_builtin_cache")
        if isinstance(cache, dict) and cache:
            attrs["opa.nd_builtins"] = ",".join(sorted(cache))
        stamp = event.get("timestamp")
        try:
            time_ms = None if stamp is None else rfc3339_ms(stamp)
        except ValueError as exc:
            raise RecordRejected("invalid_timestamp", f"'timestamp': {exc}") from None
        decision_id = event.get("decision_id")
        if decision_id is not None and not isinstance(decision_id, str):
            raise RecordRejected("invalid_decision_id", f"'decision_id' is "
                                 f"{_short(decision_id)}; expected a string")
        out.add(self.context, "policy.decision", {k: v for k, v in attrs.items()
                                                  if v is not None},
                time_ms=time_ms, trace_id=_text(event, "trace_id"),
                span_id=_text(event, "span_id"), event_id=decision_id or None,
                identity=lambda: canonical_json(event).encode("utf-8", "surrogatepass"))

    def _record_text(self, event: Any) -> str:
        """The quarantined event as stored: erased / masked values removed (the payload
        fields dropped whole when those lists are unreadable), secret-looking keys and
        values redacted, cut to QUARANTINED_CHARS."""
        if isinstance(event, dict):
            lists = [event.get("erased"), event.get("masked")]
            if all(p is None or (isinstance(p, list) and all(isinstance(x, str) for x in p))
                   for p in lists):
                scrub(event, [x for p in lists if p for x in p])
            else:
                event = {k: v for k, v in event.items() if k not in WHOLE}
        text = canonical_json(_redact_keys(event, self.rows.redactor.key))
        return self.rows.redactor.value(text)[:QUARANTINED_CHARS]


def _newest_code(out: BatchBuilder, converted: Converted) -> str:
    """The reason code of the row builder's latest reject (the one not quarantined yet)."""
    quarantined: dict[str, int] = {}
    for code, _, _ in converted.quarantine:
        quarantined[code] = quarantined.get(code, 0) + 1
    for code, n in out.batch.reject_codes.items():
        if n > quarantined.get(code, 0):
            return code
    return "rejected"


def _redact_keys(value: Any, secret_key) -> Any:
    if isinstance(value, dict):
        return {k: "[REDACTED]" if isinstance(k, str) and secret_key(k)
                else _redact_keys(v, secret_key) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_keys(v, secret_key) for v in value]
    return value


def _version(event: dict) -> str:
    bundles = _typed(event, "bundles", dict)
    if bundles:
        revisions = {}
        for name, info in bundles.items():
            if not isinstance(info, dict):
                raise RecordRejected("invalid_bundles", f"bundles.{name} is {_short(info)}; "
                                     "expected an object with a revision")
            revisions[name] = info.get("revision")
            if revisions[name] is not None and not isinstance(revisions[name], str):
                raise RecordRejected("invalid_bundles", f"bundles.{name}.revision is "
                                     f"{_short(revisions[name])}; expected a string")
        if len(revisions) == 1:
            return next(iter(revisions.values())) or ""
        return ",".join(f"{name}@{rev or ''}" for name, rev in sorted(revisions.items()))
    return _text(event, "revision")


def _typed(event: dict, key: str, kind: type) -> Any:
    value = event.get(key)
    if value is not None and not isinstance(value, kind):
        raise RecordRejected(f"invalid_{key}", f"'{key}' is {_short(value)}; expected a JSON "
                             f"{'object' if kind is dict else kind.__name__}")
    return value


def _text(event: dict, key: str) -> str:
    value = event.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordRejected(f"invalid_{key}", f"'{key}' is {_short(value)}; expected a string")
    return value


def _short(value: Any) -> str:
    return canonical_json(value)[:60]


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            type(None): "null"}.get(type(value), "number")
