"""Bad data gets a 400 naming what was wrong, never a 500 (issue 11, "no 5xx for bad data"):
each body below answered 500 with a traceback before; and times storage or its TTL cannot
keep are rejected before the acknowledgement instead of being acknowledged and dropped."""

from __future__ import annotations

import json
import time

import pytest
from google.rpc import status_pb2

from collector import normalize_pool
from collector.errors import DecodeError
from collector.normalize import Normalizer
from tests.builders.otlp import post, wait_rows

pytestmark = pytest.mark.integration

JSON = "application/json"


def body(record: dict | None = None, value: str | None = None) -> bytes:
    """An OTLP/JSON logs request of one decision; `value` (raw JSON text) is the value of one
    more attribute, spliced in so that it can be what `json.dumps` would never write."""
    r = {"eventName": "policy.decision", "timeUnixNano": str(time.time_ns()),
         "attributes": [{"key": "policy.id", "value": {"stringValue": "p"}},
                        {"key": "policy.outcome", "value": {"stringValue": "deny"}},
                        {"key": "x", "value": "VALUE"}]}
    r.update(record or {})
    text = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [r]}]}]})
    return text.replace('"VALUE"', value or '{"stringValue": "ok"}').encode()


DEEP = '{"kvlistValue": {"values": [{"key": "k", "value": ' * 1000 + '{"stringValue": "x"}' \
    + "}]}}" * 1000

BAD = [
    pytest.param(body({"timeUnixNano": "99999999999999999999999"}), "out of range for a uint64",
                 id="a time past uint64 is a 400 naming the range"),
    pytest.param(body({"timeUnixNano": "-5"}), "out of range for a uint64",
                 id="a negative time is a 400"),
    pytest.param(body({"timeUnixNano": "-1e18"}), "expected an integer",
                 id="a time in exponent notation is a 400"),
    pytest.param(body({"timeUnixNano": -1e18}), "out of range for a uint64",
                 id="a negative time as a JSON number is a 400"),
    pytest.param(body({"timeUnixNano": "NOW"}).replace(b'"NOW"', b"1" + b"0" * 4999),
                 "not valid JSON",
                 id="a 5000-digit integer is a 400"),
    pytest.param(body(value='{"doubleValue": 1' + "0" * 400 + "}"), "a double can hold",
                 id="a 401-digit doubleValue is a 400 naming its path"),
    pytest.param(body(value='{"stringValue": "\\ud800"}'), "lone surrogate",
                 id="a lone surrogate is a 400 naming its path"),
    pytest.param(b"[" * 100000, "nested deeper", id="a hundred thousand [ is a 400"),
    pytest.param(body(value=DEEP), "nested", id="an AnyValue nested 1000 deep is a 400"),
    pytest.param(body(value='{"kvlistValue": {"values": [{"key": "k", "value": ' * 70
                      + '{"stringValue": "x"}' + "}]}}" * 70), "nested more than 64",
                 id="an AnyValue nested 70 deep is a 400 naming the depth"),
]


@pytest.mark.parametrize("payload,fragment", BAD)
def test_bad_json_gets_a_400_naming_what_is_wrong(collector, payload, fragment):
    status, _, reply = post(collector.http_port, "/v1/logs", payload, JSON)
    assert status == 400, reply[:300]
    assert fragment in json.loads(reply)["message"]


def test_bad_data_in_a_worker_process_is_a_400_too(chdb_client, database, config_factory):
    from collector.service import CollectorService

    service = CollectorService(config_factory(normalize_workers=1), client=chdb_client,
                               database=database)
    service.start()
    try:
        status, _, reply = post(service.http_port, "/v1/logs", body(value=DEEP), JSON)
        assert status == 400 and "nested" in json.loads(reply)["message"]
        status, _, reply = post(service.http_port, "/v1/logs", body(), JSON)
        assert status == 200, reply
    finally:
        service.shutdown()


@pytest.mark.parametrize("nanos", [str(2**63), str(2**64 - 1), "4102444800000000000"],
                         ids=["2^63 (year 2262)", "the largest uint64", "2100-01-01"])
def test_a_time_storage_cannot_keep_is_rejected_before_the_ack(collector, nanos):
    status, _, reply = post(collector.http_port, "/v1/logs",
                            body({"timeUnixNano": nanos}), JSON)
    assert status == 200
    partial = json.loads(reply)["partialSuccess"]
    assert partial["rejectedLogRecords"] in ("1", 1) and "invalid_time" in partial["errorMessage"]
    status, _, reply = post(collector.http_port, "/v1/logs", body(), JSON)
    assert status == 200
    assert wait_rows(collector, "SELECT count() FROM policy_decisions", 1) == 1


def test_a_failure_no_check_foresaw_is_a_decode_error_not_a_crash(monkeypatch):
    normalizer = Normalizer()

    def broken(message):
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr(normalizer, "logs", broken)
    with pytest.raises(DecodeError, match="RuntimeError: something nobody planned for"):
        normalize_pool.normalize_body(normalizer, "logs", body(), JSON)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, encoded by hand (the SDK refuses to build a message
    this deep, so a client that does not care must be played by hand)."""
    tag, size, out = (number << 3) | 2, len(payload), bytearray()
    out.append(tag)
    while True:
        out.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            return bytes(out) + payload


def test_a_protobuf_body_nested_too_deep_is_a_400(collector):
    value = _field(1, b"x")  # AnyValue.string_value
    for _ in range(200):  # AnyValue.kvlist_value -> KeyValueList.values -> KeyValue(key, value)
        value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))
    record = _field(12, b"policy.decision") + _field(6, _field(1, b"x") + _field(2, value))
    request = _field(1, _field(2, _field(2, record)))  # resource_logs.scope_logs.log_records
    status, _, reply = post(collector.http_port, "/v1/logs", request)
    assert status == 400
    assert status_pb2.Status.FromString(reply).message
