"""Conversions at the storage boundary, once each way (SPEC §3).

* DynamoDB wire form ⇄ plain Python (``Decimal`` → ``int``/``float``, ``Binary`` → ``bytes``).
* Plain Python (the JSON form plus-engine writes) ⇄ protobuf messages: int64 as strings or numbers,
  enums as names or numbers, absent defaults, base64 bytes; unknown fields ignored on read.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from feaas.errors import InvalidValue

if TYPE_CHECKING:
    from google.protobuf.message import Message

# protobuf is imported by the functions that use it: the storage layer loads with every start, and
# claiming a job needs no message (issue 14).
M = TypeVar("M", bound="Message")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class CodecError(InvalidValue):
    """A stored value does not fit the message it should parse into."""


def from_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB wire item (``{"S": ...}``) → plain Python values."""
    return {k: plain(_deserializer.deserialize(v)) for k, v in item.items()}


def to_dynamo(values: Mapping[str, Any]) -> dict[str, Any]:
    """Plain Python mapping → DynamoDB wire attributes."""
    return {k: to_dynamo_value(v) for k, v in values.items()}


def to_dynamo_value(value: Any) -> Any:
    """One plain Python value → its DynamoDB wire form: what ``TypeSerializer`` makes of
    ``storable(value)``, with text, booleans, integers, maps and lists written directly (the
    serializer costs most of a receipt's CPU in a busy run)."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int) and -(10**38) < value < 10**38:
        return {"N": str(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_dynamo_value(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [to_dynamo_value(v) for v in value]}
    return _serializer.serialize(storable(value))


def plain(value: Any) -> Any:
    """Strip DynamoDB types: ``Decimal`` → int or float, ``Binary`` → bytes, sets → sorted lists."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Binary):
        return bytes(value.value)  # type: ignore[attr-defined]  # boto3-stubs leave out Binary.value
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    return value


def storable(value: Any) -> Any:
    """Python → something TypeSerializer accepts (floats become ``Decimal``, tuples lists)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**38:
        return str(value)  # beyond DynamoDB's 38 digits
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, Decimal)):
        return value
    if isinstance(value, float):
        # DynamoDB numbers span 1E-130..9.9E+125; others are kept as text (the JSON form accepts both)
        if not math.isfinite(value) or (value != 0 and not 1e-130 <= abs(value) < 9.9e125):
            return repr(value)
        if value == 0 and math.copysign(1.0, value) < 0:
            return "-0.0"  # a DynamoDB number has no negative zero
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(k): storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return Binary(bytes(value))
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def _json_ready(value: Any) -> Any:
    """Plain Python → what ``json_format.ParseDict`` accepts (bytes become base64 text)."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def parse_message(data: Mapping[str, Any], message: M) -> M:
    """Parse the JSON form (plain Python) into ``message``; unknown fields are ignored.

    Raises :class:`CodecError` with the offending field when a value has the wrong shape.
    """
    from google.protobuf import json_format

    data = _upstream_forms(data, message.DESCRIPTOR)
    _check_shapes(data, message.DESCRIPTOR, message.DESCRIPTOR.name)
    try:
        json_format.ParseDict(_json_ready(dict(data)), message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise CodecError(str(exc)) from exc
    return message


#: Repeated text fields that plus-engine writes as objects: a Parameter's ``validations`` are
#: ``{vtype, ival | svals}`` there (LEGACY_ACTIONS.md §3) and text here. Such an entry is kept as its
#: compact JSON text; the worker never reads declared validations of a script's parameters.
_OBJECTS_AS_TEXT = frozenset({"feaas.Parameter.validations"})


def _upstream_forms(data: Any, descriptor: Any) -> Any:
    """``data`` with plus-engine's object-valued text fields (``_OBJECTS_AS_TEXT``) turned into text;
    everything else as it is (the same object when nothing changes)."""
    if not isinstance(data, Mapping):
        return data
    changed: dict[str, Any] = {}
    for name, value in data.items():
        field = descriptor.fields_by_name.get(name) or descriptor.fields_by_camelcase_name.get(name)
        if field is None or value is None:
            continue
        if field.full_name in _OBJECTS_AS_TEXT and isinstance(value, list):
            changed[name] = [json.dumps(plain(v), sort_keys=True, separators=(",", ":"))
                             if isinstance(v, Mapping) else v for v in value]
            continue
        if field.message_type is None or field.message_type.full_name.startswith("google.protobuf."):
            continue
        if field.message_type.GetOptions().map_entry:
            value_type = field.message_type.fields_by_name["value"].message_type
            if value_type is not None and isinstance(value, Mapping):
                new = {k: _upstream_forms(v, value_type) for k, v in value.items()}
                if any(new[k] is not value[k] for k in value):
                    changed[name] = new
        elif field.is_repeated and isinstance(value, list):
            items = [_upstream_forms(v, field.message_type) for v in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changed[name] = items
        else:
            new_value = _upstream_forms(value, field.message_type)
            if new_value is not value:
                changed[name] = new_value
    return {**data, **changed} if changed else data


#: Enum fields whose unknown names are tolerated (read as the default); others are errors.
_LENIENT_ENUMS = frozenset({"ptype"})


def _check_shapes(data: Any, descriptor: Any, path: str) -> None:
    """Refuse what ``ParseDict(ignore_unknown_fields=True)`` would silently drop: a message given as
    text, or an unknown enum name where guessing would change behaviour (``ntype``)."""
    if not isinstance(data, Mapping):
        raise CodecError(f"{path} must be a map, got {type(data).__name__}")
    for name, value in data.items():
        field = descriptor.fields_by_name.get(name) or descriptor.fields_by_camelcase_name.get(name)
        if field is None or value is None:
            continue
        where = f"{path}.{name}"
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if is_map:
            if not isinstance(value, Mapping):
                raise CodecError(f"{where} must be a map, got {type(value).__name__}")
            value_field = field.message_type.fields_by_name["value"]
            for key, entry in value.items():
                _check_value(entry, value_field, f"{where}[{key!r}]")
        elif field.is_repeated:
            if not isinstance(value, list):
                raise CodecError(f"{where} must be a list, got {type(value).__name__}")
            for index, entry in enumerate(value):
                _check_value(entry, field, f"{where}[{index}]")
        else:
            _check_value(value, field, where)


def _check_value(value: Any, field: Any, where: str) -> None:
    if field.message_type is not None:
        if field.message_type.full_name.startswith("google.protobuf."):
            return
        _check_shapes(value, field.message_type, where)
    elif (field.enum_type is not None and isinstance(value, str) and field.name not in _LENIENT_ENUMS
          and value not in field.enum_type.values_by_name):
        raise CodecError(f"{where}: unknown value {value!r} (expected one of "
                             f"{', '.join(field.enum_type.values_by_name)})")


def message_to_plain(message: Message) -> dict[str, Any]:
    """A message in plus-engine's JSON form (snake_case, enum names, int64 as strings)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True)
