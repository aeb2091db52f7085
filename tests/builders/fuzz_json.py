"""Hypothesis strategies for OTLP/JSON request bodies, shared by the fuzz tests and the fuzz
campaign: the valid messages of tests/builders/fuzz_protobuf.py written as OTLP/JSON (hex
ids, 64-bit integers as strings or numbers, camelCase or snake_case keys), then mutated in the
tree (a value replaced by an adversarial one: numbers past every range, 5000 digits, lone
surrogates, wrong types, deep nesting) and as text; and random JSON whose keys are OTLP field
names, so the decoder walks into it.

Adversarial numbers are spliced in as raw text (`Raw`), since `json.dumps` cannot write what
a hostile client can: a 5000-digit integer, `1e999`, `-0`, a lone surrogate as raw UTF-8."""

from __future__ import annotations

import base64
import copy
import json

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from tests.builders.fuzz_protobuf import (
    MAX_BODY,
    REQUESTS,
    TRICKY_STRINGS,
    mutate,
    mutation_lists,
)

_HEX_FIELDS = {"trace_id", "span_id", "parent_span_id"}
_64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
       FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64}
OTLP_KEYS = ["resourceLogs", "resourceSpans", "scopeLogs", "scopeSpans", "logRecords", "spans",
             "resource", "scope", "attributes", "key", "value", "stringValue", "intValue",
             "doubleValue", "boolValue", "bytesValue", "arrayValue", "kvlistValue", "values",
             "timeUnixNano", "observedTimeUnixNano", "startTimeUnixNano", "endTimeUnixNano",
             "eventName", "name", "events", "traceId", "spanId", "severityNumber", "body",
             "flags", "status", "code", "kind", "droppedAttributesCount", "resource_logs"]


class Raw(str):
    """JSON text written as it is, unquoted (`dumps` below)."""


def to_json(message: Message, snake: bool = False) -> dict:
    """An OTLP message as an OTLP/JSON object (the encoding collector/otlp_json.py reads)."""
    out = {}
    for fd, value in message.ListFields():
        name = fd.name if snake else fd.json_name
        if fd.is_repeated:
            out[name] = [_json_value(fd, v, snake) for v in value]
        else:
            out[name] = _json_value(fd, value, snake)
    return out


def _json_value(fd: FieldDescriptor, value, snake: bool):
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return to_json(value, snake)
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return value.hex() if fd.name in _HEX_FIELDS else base64.b64encode(value).decode()
    if fd.type in _64:
        return str(value)
    if isinstance(value, float) and (value != value or abs(value) == float("inf")):
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    return value


def dumps(obj, ascii_only: bool = True) -> bytes:
    """JSON bytes of `obj`, `Raw` parts verbatim; strings with lone surrogates go out as
    `\\ud800` escapes (ascii_only) or as the invalid UTF-8 bytes a careless encoder writes."""
    raws: list[str] = []

    def swap(value):  # Raw parts -> placeholders that json.dumps (in C) writes quickly
        if isinstance(value, Raw):
            raws.append(str(value))
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(obj), ensure_ascii=ascii_only)
    for i, raw in enumerate(raws):
        text = text.replace(f'"\\u0000raw{i}\\u0000"', raw, 1)
    return text.encode("utf-8", "surrogatepass")


def _digits(count: int, sign: str, tail: str) -> Raw:
    return Raw(sign + "1" + "0" * count + tail)


def _deep(depth: int, kvlists: bool) -> Raw:
    if kvlists:
        return Raw('{"kvlistValue": {"values": [{"key": "k", "value": ' * depth
                   + '{"stringValue": "x"}' + "}]}}" * depth)
    return Raw("[" * depth + "]" * depth)


ADVERSARIAL_NUMBERS = [2**64, 2**64 - 1, 2**63, 2**63 - 1, -2**63, -2**63 - 1, 2**32, 2**31,
                       -1, -0.0, 0.5, 1e300, -1e18, 1.0, float("nan"), float("inf")]
adversarial_numbers = st.one_of(
    st.sampled_from(ADVERSARIAL_NUMBERS),
    st.builds(_digits, st.integers(18, 5000), st.sampled_from(["", "-"]),
              st.sampled_from(["", ".5", "e999", "e-999", ".0"])),
    st.sampled_from([Raw("1e999"), Raw("-0"), Raw("NaN"), Raw("-Infinity"), Raw("0.0e0")]),
    st.integers(), st.floats(),
    st.sampled_from(ADVERSARIAL_NUMBERS).map(str),  # numbers as decimal strings, as int64s go
)
adversarial_json = st.one_of(
    adversarial_numbers, adversarial_numbers,
    st.sampled_from([*TRICKY_STRINGS, "\ud800", "x\udfffy", "\udbff\udbff", "Infinity",
                     "not base64!", "====", "zz"]),
    st.builds(lambda n: "a" * n, st.integers(1000, 100_000)),
    st.text(max_size=12).map(lambda s: s + "\ud800"),  # a lone surrogate after some text
    st.sampled_from([None, True, False, [], {}, [None], {"": None}, [[]], {"stringValue": 1}]),
    st.builds(_deep, st.integers(1, 1200), st.booleans()),
    st.text(max_size=16),
)


def _numeric(value) -> bool:
    if isinstance(value, str):
        return value.lstrip("-").replace(".", "", 1).isdigit()
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _slots(obj, out: list) -> list:
    """Every (container, key) in a JSON tree, for a mutation to pick from."""
    if isinstance(obj, dict):
        for key in list(obj):
            out.append((obj, key))
            _slots(obj[key], out)
    elif isinstance(obj, list):
        for i in range(len(obj)):
            out.append((obj, i))
            _slots(obj[i], out)
    return out


@st.composite
def mutated_json(draw, signal: str) -> bytes:
    """A valid OTLP/JSON request with some of its values replaced, deleted, copied or added.
    The value to change is drawn by field name first (then one of that name's places), so a
    field that occurs once -- `severityNumber`, `bytesValue` -- is as likely as `key`."""
    obj = to_json(draw(REQUESTS[signal]), snake=draw(st.booleans()))
    rng = draw(st.randoms(use_true_random=False))  # uniform picks (hypothesis's lean small)
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(obj, [])
        groups: dict[str, list] = {}
        for container, key in slots:
            groups.setdefault(key if isinstance(key, str) else "[]", []).append((container, key))
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "copy", "add"]))
        if action == "add" or not groups:
            target = rng.choice([obj] + [c[k] for c, k in slots if isinstance(c[k], dict)])
            target[draw(st.sampled_from(OTLP_KEYS))] = copy.deepcopy(draw(adversarial_json))
            continue
        container, key = rng.choice(groups[rng.choice(sorted(groups))])
        if action == "replace":  # a number (or a number as text) mostly by a wilder number
            wild = adversarial_numbers if _numeric(container[key]) and draw(st.booleans()) \
                else adversarial_json
            container[key] = copy.deepcopy(draw(wild))  # a copy: never a shared {}
        elif action == "delete":
            del container[key]
        else:
            donor = rng.choice(slots)[0]
            if len(_slots(donor, [])) <= 500:  # bounded: copies of copies grow exponentially
                container[key] = copy.deepcopy(donor)  # a copy: the tree must not hold itself
    body = dumps(obj, ascii_only=draw(st.booleans()))
    return body if len(body) <= MAX_BODY else body[:MAX_BODY]  # cut: bounded, and malformed


random_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
              adversarial_json),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(OTLP_KEYS),
                                                      st.text(max_size=6)), inner, max_size=4)),
    max_leaves=20)


def json_bodies(signal: str) -> st.SearchStrategy[bytes]:
    """Bodies for `/v1/<signal>` as application/json: valid, tree- and text-mutated, random."""
    valid = REQUESTS[signal].map(lambda m: dumps(to_json(m))).filter(
        lambda body: len(body) <= MAX_BODY)
    return st.one_of(
        valid,
        mutated_json(signal),
        st.builds(mutate, mutated_json(signal), mutation_lists),
        st.builds(dumps, random_json, st.booleans()),
        st.binary(max_size=300),
    )


# -- mutants derived from one body without hypothesis (the campaign's cheap extra inputs) ------

MUTANT_VALUES = [*ADVERSARIAL_NUMBERS, *map(str, ADVERSARIAL_NUMBERS), Raw("1e999"), Raw("-0"),
                 _digits(5000, "", ""), _digits(400, "-", ".5"), "\ud800", "x\udfffy", "é",
                 "not base64!", None, [], {}, True, "NaN", "a" * 5000, _deep(80, True),
                 _deep(2000, False), {"stringValue": 1}, [None]]


def json_mutants(body: bytes, count: int, rng) -> list[bytes]:
    """`count` variants of a JSON body, each with one value (chosen by field name, as in
    `mutated_json`) replaced by one of MUTANT_VALUES, drawn with `rng` (a random.Random)."""
    out: list[bytes] = []
    try:
        obj = json.loads(body)
        groups: dict[str, list] = {}
        for container, key in _slots(obj, []):
            groups.setdefault(key if isinstance(key, str) else "[]", []).append((container, key))
        names = sorted(groups)
        for _ in range(count if names else 0):
            container, key = rng.choice(groups[rng.choice(names)])
            original = container[key]
            container[key] = copy.deepcopy(rng.choice(MUTANT_VALUES))
            out.append(dumps(obj, ascii_only=rng.random() < 0.5))
            container[key] = original  # one change per mutant: put the value back
    except (ValueError, RecursionError):  # not JSON, or deeper than this walk follows
        pass
    return out
