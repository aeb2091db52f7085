"""Events of the wire contract and the OTLP requests that carry them.

An `Event` is one log record to be: its kind (`event_name`), its attributes (the contract's
names, DESIGN section 3), its event time in epoch milliseconds and its `log.record.uid`. The
uid is derived from the content that identifies the fact (`stable_id`), never from the time of
the import, so importing the same file twice stores every event once: the collector's writer
refuses ids it holds.

`requests()` packs events into `ExportLogsServiceRequest`s (the official opentelemetry-proto
messages) of at most `chunk` records, the import's source facts on every record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

UID = "log.record.uid"
SCOPE = "policyscope.importers"
CHUNK = 5000  # records per request: ~2-3 MB, far under the collector's 20 MiB default


@dataclass(frozen=True)
class Event:
    kind: str
    attributes: dict[str, Any]
    time_ms: int
    uid: str = field(default="")


def stable_id(*parts: Any) -> str:
    """BLAKE2b-128 hex of the canonical JSON of `parts`: the same content, the same id."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def any_value(value: Any) -> AnyValue:
    """A Python value as an OTLP AnyValue (None is the empty value)."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        if -2**63 <= value < 2**63:
            return AnyValue(int_value=value)
        return AnyValue(string_value=str(value))  # beyond int64: exact as text
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(KeyValue(key=str(k), value=any_value(v))
                                       for k, v in value.items())
        return out
    return AnyValue(string_value=str(value))


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()
            if v is not None and v != ""]


def log_record(event: Event, observed_ns: int, facts: dict[str, Any]) -> LogRecord:
    attrs = {**facts, **event.attributes}  # the record's own values win
    if event.uid:
        attrs[UID] = event.uid
    return LogRecord(time_unix_nano=event.time_ms * 1_000_000, observed_time_unix_nano=observed_ns,
                     event_name=event.kind, attributes=key_values(attrs))


def requests(events: Iterable[Event], facts: dict[str, Any], *, observed_ms: int,
             chunk: int = CHUNK, scope_version: str = "") -> Iterator[ExportLogsServiceRequest]:
    """The events as requests of at most `chunk` records each, carrying `facts` (the source
    facts) on every record under its own attributes: the collector keeps a record's unmapped
    attributes (CI run id, commit) in the row's attributes map, not its resource's."""
    resource_message = Resource()
    scope = InstrumentationScope(name=SCOPE, version=scope_version)
    observed_ns = observed_ms * 1_000_000
    batch: list[LogRecord] = []
    for event in events:
        batch.append(log_record(event, observed_ns, facts))
        if len(batch) >= chunk:
            yield _request(resource_message, scope, batch)
            batch = []
    if batch:
        yield _request(resource_message, scope, batch)


def _request(resource: Resource, scope: InstrumentationScope, records: list[LogRecord]
             ) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=resource, scope_logs=[ScopeLogs(scope=scope, log_records=records)])])
