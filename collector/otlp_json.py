"""OTLP/JSON -> protobuf messages, per the OTLP specification (v1.11), not protobuf's JSON mapping.

Differences from `google.protobuf.json_format` that matter here:
- `traceId`, `spanId`, `parentSpanId` are hex strings (json_format would read base64);
  other bytes fields (`bytesValue`) are base64.
- 64-bit integers come as decimal strings or numbers; enums as integers or names.
- keys are lowerCamelCase; the proto field names (snake_case) are accepted too.
- unknown fields are ignored (json_format rejects them).
Errors name the JSON path of the offending value.
"""

from __future__ import annotations

import base64
import binascii
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


def parse(body: bytes, message: Message) -> Message:
    """Fill `message` (an empty Export*ServiceRequest) from an OTLP/JSON body and return it."""
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    _fill(message, obj, "$")
    return message


@lru_cache(maxsize=None)
def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    fields = {}
    for fd in descriptor.fields:
        fields[fd.name] = fd
        fields[fd.json_name] = fd
    return fields


def _fill(message: Message, obj: Any, path: str) -> None:
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
                    _fill(target.add(), item, item_path)
                else:
                    target.append(_scalar(fd, item, item_path))
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            _fill(getattr(message, fd.name), value, field_path)
        else:
            setattr(message, fd.name, _scalar(fd, value, field_path))


def _scalar(fd: FieldDescriptor, value: Any, path: str) -> Any:
    t = fd.type
    if t == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise DecodeError(f"{path}: expected a string, got {value!r}")
        return value
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise DecodeError(f"{path}: expected true or false, got {value!r}")
        return value
    if t in _INT_TYPES:
        if isinstance(value, bool):
            raise DecodeError(f"{path}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise DecodeError(f"{path}: expected an integer (number or decimal string), "
                          f"got {value!r}")
    if t in _FLOAT_TYPES:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            if value in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[value]
            try:
                return float(value)
            except ValueError:
                pass
        raise DecodeError(f"{path}: expected a number, got {value!r}")
    if t == FieldDescriptor.TYPE_ENUM:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value in fd.enum_type.values_by_name:
            return fd.enum_type.values_by_name[value].number
        raise DecodeError(f"{path}: expected an enum number or one of "
                          f"{', '.join(fd.enum_type.values_by_name)}, got {value!r}")
    if t == FieldDescriptor.TYPE_BYTES:
        if not isinstance(value, str):
            raise DecodeError(f"{path}: expected a string, got {value!r}")
        size = _HEX_ID_FIELDS.get(fd.name)
        if size is not None:
            if value == "":
                return b""
            try:
                raw = bytes.fromhex(value)
            except ValueError as exc:
                raise DecodeError(f"{path}: expected {size * 2} hex digits, got {value!r}") from exc
            if len(raw) != size:
                raise DecodeError(f"{path}: expected {size} bytes ({size * 2} hex digits), "
                                  f"got {len(raw)}")
            return raw
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise DecodeError(f"{path}: expected base64, got {value!r}") from exc
    raise DecodeError(f"{path}: unsupported field type {t}")
