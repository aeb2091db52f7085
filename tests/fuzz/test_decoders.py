"""Fuzzing the OTLP decoders and the normalizer (issue 11, "property-based fuzzing"): whatever
body arrives -- valid requests full of adversarial values, the same mutated byte by byte or in
their JSON tree, bodies nested past every limit, random bytes or JSON -- `normalize_body`
returns a batch that keeps every invariant (times storage keeps, UTF-8 text, finite numbers,
bounded extras, every record accounted for) or raises the DecodeError of a check that foresaw
the case (a 400 naming it); never another exception, never its catch-all for failures nobody
foresaw. Bounded here; `python -m bench.fuzz` runs the same properties 100,000+ times."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given

from collector.normalize import Normalizer
from collector.signals import JSON, PROTOBUF
from tests.builders.fuzz_json import json_bodies
from tests.builders.fuzz_protobuf import protobuf_bodies
from tests.builders.fuzz_verdicts import ACCEPTED, CRASH, REFUSED, body_verdict, fuzz_settings

# A failing example's report can be a large repr; hypothesis warns about its size while
# writing it, and that warning (an error here) would hide the failure it reports.
pytestmark = [pytest.mark.unit, pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")]

NORMALIZER = Normalizer()


def _logs_json(record: dict) -> bytes:
    return json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}).encode()


# Found by fuzzing: each answered 400 only through normalize_body's catch-all (a traceback in
# the operator's log per kind), because the decoder's own checks missed it.
ENUM_PAST_INT32 = _logs_json({"severityNumber": 2**40})
BASE64_NOT_ASCII = _logs_json({"body": {"bytesValue": "é"}})
ENUM_NAME_LONE_SURROGATE = _logs_json({"severityNumber": "\ud800"})  # the campaign's find


def _assert_no_crash(signal: str, body: bytes, content_type: str) -> None:
    verdict = body_verdict(NORMALIZER, signal, body, content_type)
    assert verdict.kind in (ACCEPTED, REFUSED), verdict.detail


@fuzz_settings(max_examples=120)
@given(body=protobuf_bodies("logs"))
def test_no_protobuf_logs_body_crashes_the_decoder_or_the_normalizer(body):
    _assert_no_crash("logs", body, PROTOBUF)


@fuzz_settings(max_examples=120)
@given(body=protobuf_bodies("traces"))
def test_no_protobuf_traces_body_crashes_the_decoder_or_the_normalizer(body):
    _assert_no_crash("traces", body, PROTOBUF)


@fuzz_settings(max_examples=80)
@given(body=json_bodies("logs"))
@example(body=ENUM_PAST_INT32)
@example(body=BASE64_NOT_ASCII)
@example(body=ENUM_NAME_LONE_SURROGATE)
def test_no_otlp_json_logs_body_crashes_the_decoder_or_the_normalizer(body):
    _assert_no_crash("logs", body, JSON)


@fuzz_settings(max_examples=80)
@given(body=json_bodies("traces"))
def test_no_otlp_json_traces_body_crashes_the_decoder_or_the_normalizer(body):
    _assert_no_crash("traces", body, JSON)


@pytest.mark.parametrize("body,fragment", [
    pytest.param(ENUM_PAST_INT32, "out of range for an enum",
                 id="an enum number past int32 is refused by the decoder, naming the range"),
    pytest.param(BASE64_NOT_ASCII, "expected base64",
                 id="bytesValue with a non-ASCII character is refused as not base64"),
    pytest.param(ENUM_NAME_LONE_SURROGATE, "expected an enum number or one of",
                 id="an enum name with a lone surrogate is refused as no enum name"),
])
def test_what_fuzzing_found_is_refused_by_the_decoders_own_checks(body, fragment):
    verdict = body_verdict(NORMALIZER, "logs", body, JSON)
    assert verdict.kind == REFUSED and fragment in verdict.detail, verdict.detail


def test_the_verdict_calls_a_failure_behind_the_catch_all_a_crash(monkeypatch):
    """The property could not fail if the oracle could not tell a foreseen 400 from one
    normalize_body's catch-all made of an exception nobody foresaw."""
    def broken(request):
        raise KeyError("nobody planned for this")

    normalizer = Normalizer()
    monkeypatch.setattr(normalizer, "logs", broken)
    verdict = body_verdict(normalizer, "logs", _logs_json({"eventName": "policy.decision"}), JSON)
    assert verdict.kind == CRASH and "KeyError" in verdict.detail


def test_the_verdict_calls_a_batch_with_a_time_storage_cannot_keep_a_crash(monkeypatch):
    from collector import rows

    monkeypatch.setattr(rows, "MAX_TIME_MS", 2**62)  # as if the normalizer's range check broke
    body = _logs_json({"eventName": "policy.decision", "timeUnixNano": str(2**63),
                       "attributes": [{"key": "policy.id", "value": {"stringValue": "p"}},
                                      {"key": "policy.outcome", "value": {"stringValue": "deny"}}]})
    verdict = body_verdict(Normalizer(), "logs", body, JSON)
    assert verdict.kind == CRASH and "outside storage's range" in verdict.detail
