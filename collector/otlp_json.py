"""OTLP/JSON -> protobuf messages, per the OTLP specification (v1.11), not protobuf's JSON mapping.

Differences from `google.protobuf.json_format` that matter here:
- `traceId`, `spanId`, `parentSpanId` are hex strings (json_format would read base64);
  other bytes fields (`bytesValue`) are base64.
- 64-bit integers come as decimal strings or numbers; enums as integers or names.
- keys are lowerCamelCase; the proto field names (snake_case) are accepted too.
- unknown fields are ignored (json_format rejects them).
Errors name the JSON path of the offending value. Bad data of any shape is a DecodeError (a
400), never another exception: integers are range-checked for their field's type, doubles must
be finite-convertible, strings must be valid UTF-8 (no lone surrogates), and nesting is capped
(`MAX_DEPTH` messages deep; JSON deeper than the parser can follow is refused too).
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from collector.errors import DecodeError

_HEX_ID_FIELDS = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}
_INT_TYPES = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64,
              FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_FIXED64,
              FieldDescriptor.TYPE_SFIXED64, FieldDescriptor.TYPE_INT32,
              FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_SINT32,
              FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}
_SPECIAL_FLOATS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_INT_RANGES = {
    **dict.fromkeys((FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64,
                     FieldDescriptor.TYPE_SFIXED64), ("an int64", -2**63, 2**63 - 1)),
    **dict.fromkeys((FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64),
                    ("a uint64", 0, 2**64 - 1)),
    **dict.fromkeys((FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32,
                     FieldDescriptor.TYPE_SFIXED32), ("an int32", -2**31, 2**31 - 1)),
    **dict.fromkeys((FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32),
                    ("a uint32", 0, 2**32 - 1)),
}
MAX_DEPTH = 64  # messages inside messages; OTLP's deepest real shape (AnyValue in kvlists) is far less


def parse(body: bytes, message: Message) -> Message:
    """Fill `message` (an empty Export*ServiceRequest) from an OTLP/JSON body and return it."""
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError; digits past the limit
        raise DecodeError(f"body is not valid JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise DecodeError("body is not valid OTLP/JSON: nested deeper than the parser "
                          "follows") from None
    _fill(message, obj, "$", 0)
    return message


@lru_cache(maxsize=None)
def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    fields = {}
    for fd in descriptor.fields:
        fields[fd.name] = fd
        fields[fd.json_name] = fd
    return fields


def _fill(message: Message, obj: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError(f"{path}: nested more than {MAX_DEPTH} messages deep")
    if not isinstance(obj, dict):
        raise DecodeError(f"{path}: expected a JSON object for {message.DESCRIPTOR.name}, "
                          f"got {type(obj).__name__}")
    message.SetInParent()
    fields = _fields(message.DESCRIPTOR)
    for key, value in obj.items():
        fd = fields.get(key)
        if fd is None or value is None:
            continue  # unknown fields are ignored, null means absent
        field_path = f"{path}.{key}"
        if fd.is_repeated:
            if not isinstance(value, list):
                raise DecodeError(f"{field_path}: expected a JSON array, got "
                                  f"{type(value).__name__}")
            target = getattr(message, fd.name)
            for i, item in enumerate(value):
                item_path = f"{field_path}[{i}]"
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill(target.add(), item, item_path, depth + 1)
                else:
                    target.append(_scalar(fd, item, item_path))
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            _fill(getattr(message, fd.name), value, field_path, depth + 1)
        else:
            setattr(message, fd.name, _scalar(fd, value, field_path))


def _scalar(fd: FieldDescriptor, value: Any, path: str) -> Any:
    t = fd.type
    if t == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise DecodeError(f"{path}: expected a string, got {_show(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DecodeError(f"{path}: not valid UTF-8 (a lone surrogate at character "
                              f"{exc.start})") from None
        return value
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise DecodeError(f"{path}: expected true or false, got {_show(value)}")
        return value
    if t in _INT_TYPES:
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and len(value) <= 40:
            try:
                number = int(value)
            except ValueError:
                pass
        if number is None:
            raise DecodeError(f"{path}: expected an integer (number or decimal string), "
                              f"got {_show(value)}")
        kind, low, high = _INT_RANGES[t]
        if not low <= number <= high:
            raise DecodeError(f"{path}: {_show(value)} is out of range for {kind} "
                              f"({low}..{high})")
        return number
    if t in _FLOAT_TYPES:
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):
                if value in _SPECIAL_FLOATS:
                    return _SPECIAL_FLOATS[value]
                return float(value)
        except (ValueError, OverflowError):
            pass
        raise DecodeError(f"{path}: expected a number a double can hold, got {_show(value)}")
    if t == FieldDescriptor.TYPE_ENUM:
        if isinstance(value, int) and not isinstance(value, bool):
            if not -2**31 <= value <= 2**31 - 1:  # enums are int32 on the wire
                raise DecodeError(f"{path}: {_show(value)} is out of range for an enum "
                                  f"(-2147483648..2147483647)")
            return value
        # Names are ASCII; the lookup would encode the text (a lone surrogate cannot be).
        if isinstance(value, str) and value.isascii() and value in fd.enum_type.values_by_name:
            return fd.enum_type.values_by_name[value].number
        raise DecodeError(f"{path}: expected an enum number or one of "
                          f"{', '.join(fd.enum_type.values_by_name)}, got {_show(value)}")
    if t == FieldDescriptor.TYPE_BYTES:
        if not isinstance(value, str):
            raise DecodeError(f"{path}: expected a string, got {_show(value)}")
        size = _HEX_ID_FIELDS.get(fd.name)
        if size is not None:
            if value == "":
                return b""
            try:
                raw = bytes.fromhex(value)
            except ValueError as exc:
                raise DecodeError(f"{path}: expected {size * 2} hex digits, "
                                  f"got {_show(value)}") from exc
            if len(raw) != size:
                raise DecodeError(f"{path}: expected {size} bytes ({size * 2} hex digits), "
                                  f"got {len(raw)}")
            return raw
        try:
            return base64.b64decode(value, validate=True)
        except ValueError as exc:  # binascii.Error; a non-ASCII string is a plain ValueError
            raise DecodeError(f"{path}: expected base64, got {_show(value)}") from exc
    raise DecodeError(f"{path}: unsupported field type {t}")


def _show(value: Any) -> str:
    """A value for an error message, cut short (a 5,000-digit number is named, not echoed)."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 4000 else \
        f"a {len(str(value)) if value.bit_length() < 10000 else 'many'}-digit number"
    return text if len(text) <= 80 else text[:77] + "..."
