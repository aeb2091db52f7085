"""Native JSON sources on the OTLP/HTTP port: the request handling OPA's decision-log API
(collector/receivers/opa.py) and falcosidekick's webhook (collector/receivers/falco.py) share.

A `JsonSource` turns a parsed body into a `Converted`: the NormalizedBatch (built with the
shared RowBuilder) and the records it quarantines. The handler: POST only (405); Content-Length
over `max_request_size` (413); admission (429 / 503 + Retry-After); the body within
`body_timeout` (408); Content-Encoding undone (gzip, deflate, identity; a gzip body sent without
the header is recognised by its magic bytes), the size limit applied after it; JSON parsed with
integers kept exact (Python's ints; above 4,000 digits kept as their digits' text); the source's
conversion in a thread (the loop keeps serving); quarantined records parked in the dead-letter
folder (collector/deadletters.py) and the rows made durable through `Pipeline.consume`, both
before the 2xx. The token check is the receiver's middleware (collector/auth.py).

Answers are JSON: 200 `{"accepted", "rejected", "message"}`; 4xx / 5xx `{"error": ...}` (400
names what was wrong with the body: not gzip, not JSON and where, not what the source expects).
"""

from __future__ import annotations

import asyncio
import calendar
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from collector.admission import Overloaded
from collector.config import CollectorConfig
from collector.deadletters import DeadLetterFolder, folder_of, quarantined
from collector.errors import (
    CollectorError,
    DecodeError,
    RequestTimeout,
    RequestTooLarge,
    RetryableError,
    UnsupportedMediaType,
)
from collector.pipeline import Pipeline
from collector.receivers.otlp_http import decompress
from collector.rows import NormalizedBatch

log = logging.getLogger(__name__)

MAX_INT_DIGITS = 4000  # under Python's int-from-text limit (4,300 digits)
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
                      r"(?:([Zz])|([+-])(\d\d):(\d\d))")


@dataclass
class Converted:
    """A body's rows, and the records no row could be made of: (reason code, message,
    record text) each, parked before the acknowledgement."""

    batch: NormalizedBatch
    quarantine: list[tuple[str, str, str]] = field(default_factory=list)


class JsonSource(Protocol):
    source: str  # names the counters in /metrics and the quarantine's source

    def convert(self, data: Any, request: web.Request) -> Converted:
        """Rows of a parsed body; raises DecodeError for a body the source cannot take."""


def _exact_int(text: str) -> int | str:
    return int(text) if len(text) <= MAX_INT_DIGITS else text


def parse_json(body: bytes) -> Any:
    """JSON with integers exact; DecodeError naming the position otherwise."""
    try:
        return json.loads(body.decode("utf-8"), parse_int=_exact_int)  # RFC 8259: UTF-8
    except UnicodeDecodeError as exc:
        raise DecodeError(f"body is not UTF-8 JSON: byte {exc.start}: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise DecodeError(f"body is not JSON: {exc.msg} at line {exc.lineno} column "
                          f"{exc.colno} (byte {exc.pos})") from None
    except RecursionError:
        raise DecodeError("body is not JSON this collector reads: nested too deeply") from None


def rfc3339_ms(text: Any) -> int:
    """Milliseconds since the epoch of an RFC 3339 time (any fraction digits: Go and Falco
    send nanoseconds); ValueError otherwise."""
    match = _RFC3339.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time (2024-05-17T15:31:56.746Z)")
    groups = match.groups()
    year, month, day, hour, minute, second = map(int, groups[:6])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]
            and hour < 24 and minute < 60 and second <= 60):
        raise ValueError(f"{text!r} is not a valid date and time")
    offset = 0 if groups[7] else (int(groups[9]) * 60 + int(groups[10])) * \
        (1 if groups[8] == "+" else -1)
    seconds = calendar.timegm((year, month, day, hour, minute, min(second, 59))) - offset * 60
    return seconds * 1000 + int((groups[6] or "0")[:3].ljust(3, "0"))


def answer(status: int, payload: dict, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(payload, status=status, headers=headers)


def handler(pipeline: Pipeline, config: CollectorConfig, source: JsonSource):
    """The aiohttp handler of one native JSON source."""
    limit = config.max_request_size
    parking = DeadLetterFolder(folder_of(config.spool_dir))

    async def handle(request: web.Request) -> web.Response:
        if request.method != "POST":
            return answer(405, {"error": f"{request.method} is not allowed on {request.path}; "
                                         "use POST"}, {"Allow": "POST"})
        ticket = None
        try:
            if request.content_type != "application/json":
                # OPA and falcosidekick send JSON as such; a web page in the operator's
                # browser can post a "simple" body (text/plain, a form) to loopback without a
                # CORS preflight, but not application/json, which this never grants
                raise UnsupportedMediaType(
                    f"Content-Type {request.content_type or '(none)'!r} is not supported on "
                    f"{request.path}; send application/json")
            declared = request.content_length
            if declared is not None and declared > limit:
                raise RequestTooLarge(f"Content-Length {declared} is over the limit of "
                                      f"{limit} bytes")
            ticket = pipeline.admit()
            raw = await _read(request, config.body_timeout, limit)
            encoding = request.headers.get("Content-Encoding", "")
            if not encoding and raw[:2] == b"\x1f\x8b":
                encoding = "gzip"
            body = decompress(raw, encoding, limit)
            ticket.charge(len(raw) + (len(body) if body is not raw else 0))
            data = parse_json(body)
            converted = await asyncio.to_thread(source.convert, data, request)
            batch = converted.batch
            if converted.quarantine:
                await asyncio.to_thread(parking.park,
                                        quarantined(source.source, converted.quarantine))
            submission = pipeline.consume(source.source, batch)
            await asyncio.wrap_future(submission.durable)
        except RetryableError as exc:
            status = 429 if isinstance(exc, Overloaded) else 503
            return answer(status, {"error": str(exc)},
                          {"Retry-After": str(max(1, round(exc.retry_after)))})
        except CollectorError as exc:
            response = answer(exc.http_status, {"error": str(exc)})
            if exc.http_status in (408, 413):
                response.force_close()
            return response
        except OSError as exc:  # the quarantine could not be parked: nothing acknowledged
            log.error("%s: cannot park quarantined records: %s", source.source, exc)
            return answer(503, {"error": "the collector cannot park this batch's malformed "
                                         "records durably; retry"},
                          {"Retry-After": str(max(1, round(config.retry_after)))})
        finally:
            if ticket is not None:
                ticket.release()
        return answer(200, {"accepted": batch.accepted, "rejected": batch.rejected,
                            "message": batch.reject_message()})

    return handle


async def _read(request: web.Request, timeout: float, limit: int) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout:g} s "
                             "(body_timeout)") from None
    except web.HTTPRequestEntityTooLarge as exc:
        raise RequestTooLarge(f"request body exceeds the limit of {limit} bytes") from exc


def add_native_routes(app: web.Application, pipeline: Pipeline,
                      config: CollectorConfig) -> None:
    """POST /opa/logs, /opa/logs/<partition> (OPA's decision-log service API under the
    service URL http://HOST:4318/opa) and POST /falco (falcosidekick's webhook output)."""
    from collector.receivers.falco import FalcoWebhook
    from collector.receivers.opa import OpaDecisionLogs

    opa = handler(pipeline, config, OpaDecisionLogs(config))
    app.router.add_route("*", "/opa/logs", opa)
    app.router.add_route("*", "/opa/logs/{partition:.+}", opa)
    app.router.add_route("*", "/falco", handler(pipeline, config, FalcoWebhook(config)))
