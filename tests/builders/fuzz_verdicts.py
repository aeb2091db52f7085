"""The properties the fuzzing checks, once, for the fuzz tests (which assert a verdict is not a
crash) and the fuzz campaign (which counts verdicts): what an OTLP body does to the decoder +
normalizer and to a running collector. The SQL guard's property is in
tests/builders/fuzz_sql.py. Also the hypothesis settings profiles both use.

A *crash* is any of: an exception other than DecodeError escaping `normalize_body`; a
DecodeError that is `normalize_body`'s fallback for a failure no check foresaw (it answers 400,
but the decoder missed a case, and the operator's log gets a traceback); an accepted batch that
breaks an invariant (a time outside what storage keeps, text that is not UTF-8, a non-finite
number, an attributes map over its bounds, a record not accounted for); an HTTP status other
than 200/400/413/415."""

from __future__ import annotations

import math
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from collector import normalize_pool
from collector.errors import DecodeError
from collector.normalize import Normalizer, attributes
from collector.rows import MAX_EXTRA_VALUE_CHARS, MAX_TIME_MS, MIN_TIME_MS, REDACTED, NormalizedBatch
from collector.signals import BY_NAME, decode
from schemas.events import EVENT_KINDS

ACCEPTED, REFUSED, CRASH = "accepted", "refused", "crash"
HTTP_OK = frozenset({200, 400, 413, 415})
UNFORESEEN = "the request could not be read: "  # normalize_body's fallback message
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
         HealthCheck.filter_too_much]

# CI (CI=true): derandomized, so a run is reproducible, and no example database. Elsewhere a
# database under .hypothesis/ (git-ignored) replays what failed before. The campaign generates
# only (a crash is counted and kept, not shrunk).
settings.register_profile("fuzz-ci", deadline=None, derandomize=True, database=None,
                          suppress_health_check=_SLOW, print_blob=True)
settings.register_profile("fuzz-dev", deadline=None, suppress_health_check=_SLOW,
                          database=DirectoryBasedExampleDatabase(
                              Path(__file__).resolve().parents[2] / ".hypothesis" / "fuzz"))
settings.register_profile("fuzz-campaign", deadline=None, database=None,
                          suppress_health_check=list(HealthCheck), phases=[Phase.generate])


def fuzz_settings(max_examples: int) -> settings:
    """The settings of one bounded fuzz test (CI profile when CI=true)."""
    profile = "fuzz-ci" if os.environ.get("CI") == "true" else "fuzz-dev"
    return settings(settings.get_profile(profile), max_examples=max_examples)


@dataclass
class Verdict:
    kind: str  # ACCEPTED, REFUSED or CRASH (the SQL sandbox adds two kinds of its own)
    detail: str = ""
    escapes: list[str] = field(default_factory=list)  # what a SQL statement did outside


def body_verdict(normalizer: Normalizer, signal: str, body: bytes, content_type: str) -> Verdict:
    """What `normalize_body` makes of one body: an accepted batch that keeps every invariant,
    a DecodeError of a check that foresaw the case, or a crash (see the module docstring)."""
    try:
        batch = normalize_pool.normalize_body(normalizer, signal, body, content_type)
    except DecodeError as exc:
        message = str(exc)
        if message.startswith(UNFORESEEN):
            cause = exc.__context__
            return Verdict(CRASH, "unforeseen failure answered 400: " + "".join(
                traceback.format_exception(cause)) if cause else message)
        if not message:
            return Verdict(CRASH, "a DecodeError without a message")
        return Verdict(REFUSED, message[:200])
    except BaseException as exc:  # noqa: BLE001 - that is the crash being looked for
        return Verdict(CRASH, "escaped: " + "".join(traceback.format_exception(exc)))
    if not isinstance(batch, NormalizedBatch):
        return Verdict(CRASH, f"returned {type(batch).__name__}, not a NormalizedBatch")
    try:
        broken = batch_breaks(batch, normalizer, expected_records(signal, body, content_type))
    except UnicodeEncodeError as exc:
        broken = f"text that is not UTF-8: {exc}"
    return Verdict(CRASH, "accepted batch breaks an invariant: " + broken) if broken else \
        Verdict(ACCEPTED, f"{batch.accepted} rows, {batch.rejected} rejects")


def expected_records(signal: str, body: bytes, content_type: str) -> int:
    """How many records the normalizer must account for (accepted + rejected + ignored)."""
    message = decode(BY_NAME[signal], body, content_type)
    if signal == "logs":
        return sum(len(sl.log_records) for rl in message.resource_logs for sl in rl.scope_logs)
    if signal == "traces":
        count = 0
        for span in (s for rs in message.resource_spans for ss in rs.scope_spans
                     for s in ss.spans):
            known = sum(e.name in EVENT_KINDS for e in span.events)
            carries = bool(_span_kind(span))
            count += known + carries if known or carries else 1
        return count
    return 0


def _span_kind(span):
    """The normalizer's rule: the span's `event.name` attribute (the last one, as in a dict),
    else its name if that is a known kind; a record when truthy, whatever its type."""
    return attributes(span.attributes).get("event.name") or (
        span.name if span.name in EVENT_KINDS else None)


def batch_breaks(batch: NormalizedBatch, normalizer: Normalizer, records: int) -> str:
    """The first invariant `batch` breaks, or ''."""
    if batch.accepted + batch.rejected + batch.ignored != records:
        return (f"{batch.accepted} accepted + {batch.rejected} rejected + {batch.ignored} "
                f"ignored != {records} records")
    rows = sum(t.num_rows for t in batch.tables.values())
    if rows != batch.accepted:
        return f"{rows} rows for {batch.accepted} accepted records"
    for name, table in batch.tables.items():
        for column_field in table.schema:
            column = table.column(column_field.name)
            if pa.types.is_timestamp(column_field.type):
                for ms in column.cast(pa.int64()).to_pylist():
                    if ms is None or not MIN_TIME_MS <= ms <= MAX_TIME_MS:
                        return f"{name}.{column_field.name} = {ms} ms, outside storage's range"
            elif pa.types.is_floating(column_field.type):
                for x in column.to_pylist():
                    if x is not None and not math.isfinite(x):
                        return f"{name}.{column_field.name} = {x}"
            elif pa.types.is_string(column_field.type):
                for text in column.to_pylist():
                    if text is not None:
                        text.encode("utf-8")  # raises for a lone surrogate
            elif pa.types.is_map(column_field.type):
                for pairs in column.to_pylist():
                    broken = _extras_break(pairs or [], normalizer)
                    if broken:
                        return f"{name}.{column_field.name}: {broken}"
    return ""


def _extras_break(pairs: list[tuple[str, str]], normalizer: Normalizer) -> str:
    if len(pairs) > normalizer.rows.max_extra:
        return f"{len(pairs)} extra attributes, over the bound of {normalizer.rows.max_extra}"
    for key, value in pairs:
        key.encode("utf-8")
        value.encode("utf-8")
        if len(value) > MAX_EXTRA_VALUE_CHARS:
            return f"attribute {key[:40]!r} holds {len(value)} characters"
        if value != REDACTED and normalizer.rows.redactor.key(key):
            return f"attribute {key[:40]!r} matches a redaction pattern but is stored"
    return ""


def http_verdict(status: int, reply: bytes) -> Verdict:
    """A collector's answer to one body: 200 accepted; 400/413/415 refused; else a crash."""
    if status == 200:
        return Verdict(ACCEPTED)
    if status in HTTP_OK:
        return Verdict(REFUSED, f"{status}")
    return Verdict(CRASH, f"HTTP {status}: {reply[:300]!r}")


def http_requests():
    """(body, content type, content encoding) for a POST to /v1/logs: the fuzz bodies under
    their own content type or another, sometimes gzipped, garbage called gzip, or brotli."""
    from hypothesis import strategies as st

    from collector.signals import JSON, PROTOBUF
    from tests.builders.fuzz_json import json_bodies
    from tests.builders.fuzz_protobuf import protobuf_bodies

    bodies = st.one_of(
        st.tuples(protobuf_bodies("logs"), st.just(PROTOBUF)),
        st.tuples(json_bodies("logs"), st.just(JSON)),
        st.tuples(st.one_of(protobuf_bodies("logs"), json_bodies("logs")),
                  st.sampled_from([PROTOBUF, JSON, "text/plain", "application/json; charset=utf-8",
                                   "application/x-protobuf; proto=x", ""])))
    return st.builds(lambda b, e: (b[0], b[1], e), bodies,
                     st.sampled_from(["", "", "", "gzip", "gzip", "garbage-gzip", "br"]))


def http_send(port: int, body: bytes, content_type: str, encoding: str,
              path: str = "/v1/logs") -> tuple[int, bytes]:
    """POST one fuzzed request; (status, reply body)."""
    import gzip

    from tests.builders.otlp import post

    headers = {}
    if encoding:
        headers["Content-Encoding"] = "gzip" if encoding.endswith("gzip") else encoding
        body = gzip.compress(body) if encoding == "gzip" else body
    status, _, reply = post(port, path, body, content_type, headers=headers)
    return status, reply
