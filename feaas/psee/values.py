"""AnyType ⇄ Python, and conversion to a declared ptype (SPEC §3.2).

The engine keeps register values as plain Python; these functions are the only place that knows
which AnyType field holds which ptype.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from feaas.errors import InvalidValue
from feaas.objects import AnyType, ParameterType, Receipt

PT = ParameterType
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_BOOLEAN, _FLOAT = int(PT.BOOLEAN), int(PT.FLOAT)  # enum attribute lookups are slow on hot paths

INT_TYPES = frozenset({PT.INTEGER, PT.DATETIME})
LIST_TYPES = frozenset({PT.LIST, PT.FIXED_LIST_MULTI_SELECT})


class ConversionError(InvalidValue):
    """A value cannot be converted to the ptype an input declares."""


#: Deepest nesting of lists and maps a value may have: deeper JSON would exhaust Python's stack
#: in the encoders and decoders that handle it later (the default recursion limit is 1000).
MAX_DEPTH = 512


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``value`` nests lists/maps more than ``limit`` levels (iterative, stops early)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, (list, tuple, dict)):
            if depth >= limit:
                return True
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children if isinstance(child, (list, tuple, dict)))
    return False


def parse_json_text(text: str) -> Any:
    """``json.loads`` that raises ``ValueError`` (never ``RecursionError``) and refuses values
    nested deeper than :data:`MAX_DEPTH`."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested too deeply (more than {MAX_DEPTH} levels)") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and too_deep(value):  # cheap test first
        raise ValueError(f"nested too deeply (more than {MAX_DEPTH} levels)")
    return value


def from_any(value: AnyType) -> Any:
    """AnyType → Python by its ptype. Unknown ptypes read as text; an untyped value (ptype absent
    means STRING) whose text is empty falls back to whichever field is populated."""
    ptype = value.ptype
    if ptype == PT.BOOLEAN:
        return value.bval
    if ptype in INT_TYPES:
        return value.ival
    if ptype == PT.FLOAT:
        return value.dval
    if ptype in LIST_TYPES:
        return list(value.svals)
    if ptype == PT.STRING_MAP:
        return dict(value.smap)
    if ptype == PT.BYTES:
        return bytes(value.byval)
    if ptype == PT.JSON:
        if value.sval:
            try:
                return parse_json_text(value.sval)
            except ValueError:
                return value.sval
        return json_format.MessageToDict(value.json_data) if value.HasField("json_data") else None
    if ptype == PT.RECEIPT:
        receipt = Receipt()
        receipt.ParseFromString(value.byval)
        return receipt
    if ptype == PT.ANY_TYPE_MAP:
        return {k: from_any(v) for k, v in value.vmap.items()}
    if ptype == PT.STRING and not value.sval:
        return _populated(value)
    return value.sval


def _populated(value: AnyType) -> Any:
    for field, field_value in value.ListFields():
        name = field.name
        if name == "ptype":
            continue
        if name in ("svals", "dvals", "ivals"):
            return list(field_value)
        if name in ("smap", "imap"):
            return dict(field_value)
        if name == "json_data":
            return json_format.MessageToDict(field_value)
        if name == "vals":
            return [from_any(v) for v in field_value]
        if name == "vmap":
            return {k: from_any(v) for k, v in field_value.items()}
        if name == "byval":
            return bytes(field_value)
        return field_value
    return ""


def to_any(value: Any) -> AnyType:
    """Python → AnyType by the value's type (bool before int; dicts/lists of non-strings as JSON)."""
    if isinstance(value, AnyType):
        return value
    if isinstance(value, bool):
        return AnyType(ptype=PT.BOOLEAN, bval=value)
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return AnyType(ptype=PT.INTEGER, ival=value)
    if isinstance(value, float):
        return AnyType(ptype=PT.FLOAT, dval=value)
    if isinstance(value, str):
        return AnyType(ptype=PT.STRING, sval=value)
    if isinstance(value, (bytes, bytearray)):
        return AnyType(ptype=PT.BYTES, byval=bytes(value))
    if isinstance(value, Receipt):
        return AnyType(ptype=PT.RECEIPT, byval=value.SerializeToString())
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return AnyType(ptype=PT.LIST, svals=value)
    if isinstance(value, dict) and value and all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in value.items()):
        return AnyType(ptype=PT.STRING_MAP, smap=value)
    return AnyType(ptype=PT.JSON, sval=json.dumps(value, default=_json_default, ensure_ascii=False))


def to_any_map(values: Mapping[str, Any]) -> dict[str, AnyType]:
    """Each value of a Python map as an AnyType (:func:`to_any`)."""
    return {name: to_any(value) for name, value in values.items()}


def from_any_map(values: Mapping[str, AnyType]) -> dict[str, Any]:
    """Each AnyType of a map as a Python value (:func:`from_any`)."""
    return {name: from_any(value) for name, value in values.items()}


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Receipt):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def to_json_value(value: Any) -> Any:
    """Python value → something ``json.dumps`` accepts (receipts as their JSON form)."""
    return json.loads(json.dumps(value, default=_json_default))


def is_empty(value: Any) -> bool:
    """Empty for COALESCE and conditionals: None, "", empty collections."""
    return value is None or (isinstance(value, (str, bytes, list, dict, tuple)) and len(value) == 0)


def truthy(value: Any) -> bool:
    """Truth of a conditional register: also the strings "false", "0", "no", "off"."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "off", "null", "none")
    if isinstance(value, Receipt):
        return value.success
    return bool(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ConversionError("bytes that are not UTF-8 text") from None
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list, Receipt)):
        return json.dumps(to_json_value(value), ensure_ascii=False)
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ConversionError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise ConversionError("not a whole number")
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise ConversionError("not a number") from None
        return _integer(number)
    raise ConversionError(f"a {type(value).__name__} is not an integer")


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ConversionError("a boolean is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ConversionError("not a number") from None
        if not math.isfinite(number):
            raise ConversionError("not a finite number")
        return number
    raise ConversionError(f"a {type(value).__name__} is not a number")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off", ""):
            return False
    raise ConversionError("not a boolean (true/false)")


def _parsed_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_json_text(value)
        except ValueError as exc:
            detail = str(exc) if str(exc).startswith("nested") else ""
            raise ConversionError(f"not valid JSON: {detail}" if detail else "not valid JSON") from None
    return value


def _string_list(value: Any) -> list[str]:
    value = _parsed_json(value) if isinstance(value, str) and value.lstrip().startswith("[") else value
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value]
    raise ConversionError(f"a {type(value).__name__} is not a list")


def _string_map(value: Any) -> dict[str, str]:
    value = _parsed_json(value)
    if isinstance(value, dict):
        return {str(k): _text(v) for k, v in value.items()}
    raise ConversionError(f"a {type(value).__name__} is not a map")


def _json(value: Any) -> Any:
    parsed = _parsed_json(value)
    if (
        parsed is None
        or isinstance(parsed, (str, int, bool))
        or (isinstance(parsed, float) and math.isfinite(parsed))
    ):
        return parsed  # already a JSON value; skip the round trip (hot path: every numeric input)
    return to_json_value(parsed)


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ConversionError(f"a {type(value).__name__} is not bytes")


def _receipt(value: Any) -> Receipt:
    if isinstance(value, Receipt):
        return value
    if isinstance(value, (bytes, bytearray)):
        receipt = Receipt()
        try:
            receipt.ParseFromString(bytes(value))
        except DecodeError:
            raise ConversionError("not a serialised receipt") from None
        return receipt
    raise ConversionError(f"a {type(value).__name__} is not a receipt")


def _any_map(value: Any) -> dict[str, Any]:
    value = _parsed_json(value)
    if isinstance(value, dict):
        return value
    raise ConversionError(f"a {type(value).__name__} is not a map")


_CONVERTERS: dict[int, Callable[[Any], Any]] = {
    PT.BOOLEAN: _boolean,
    PT.INTEGER: _integer,
    PT.DATETIME: _integer,
    PT.FLOAT: _float,
    PT.LIST: _string_list,
    PT.FIXED_LIST_MULTI_SELECT: _string_list,
    PT.STRING_MAP: _string_map,
    PT.JSON: _json,
    PT.BYTES: _bytes,
    PT.RECEIPT: _receipt,
    PT.ANY_TYPE_MAP: _any_map,
}


def convert(value: Any, ptype: int) -> Any:
    """Convert ``value`` to what ``ptype`` holds; raises :class:`ConversionError` saying why not."""
    converter = _CONVERTERS.get(ptype)
    return _text(value) if converter is None else converter(value)


def parameter_default(param: Any) -> tuple[bool, Any]:
    """``(has_default, value)`` of a script ``Parameter``.

    proto3 cannot tell "0" from "unset", so a numeric default counts only when non-zero or given
    as text in ``sdefault``; a boolean always has one (false unless set).
    """
    ptype = param.ptype
    if ptype == _BOOLEAN:
        return True, param.bdefault or param.sdefault.strip().lower() == "true"
    if ptype in INT_TYPES and param.idefault:
        return True, param.idefault
    if ptype == _FLOAT and param.ddefault:
        return True, param.ddefault
    if param.sdefault:
        return True, param.sdefault
    return False, None

