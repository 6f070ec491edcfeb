"""Handlers for the non-action node types (SPEC §5.1). Each returns the registers it sets."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from feaas.objects import DestinationType, PlusScriptNode, PlusScriptNodeType, Receipt
from feaas.psee.values import from_any, is_empty, to_json_value

NT = PlusScriptNodeType


@dataclass
class WriterTarget:
    """Where WRITER nodes write; both callables check the user's namespace."""

    namespace: str
    put_file: Callable[[str, bytes, str], str]  # key, data, content type → normalised key
    append_stream: Callable[[str, Mapping[str, Any]], int]  # stream id, row → timestamp


def _ordered(node: PlusScriptNode, inputs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    declared = [p.var_name for p in node.inputs if p.var_name]
    names = list(dict.fromkeys([*declared, *inputs]))
    return [(n, inputs[n]) for n in names if n in inputs]


def static(node: PlusScriptNode, inputs: Mapping[str, Any], _: WriterTarget) -> dict[str, Any]:
    name = node.outputs[0].var_name if node.outputs and node.outputs[0].var_name else "value"
    return {name: from_any(node.value)}


def coalesce(node: PlusScriptNode, inputs: Mapping[str, Any], _: WriterTarget) -> dict[str, Any]:
    for _name, value in _ordered(node, inputs):
        if not is_empty(value):
            return {"value": value}
    return {"value": None}


def bundler(node: PlusScriptNode, inputs: Mapping[str, Any], _: WriterTarget) -> dict[str, Any]:
    return {"json": {name: to_json_value(value) for name, value in _ordered(node, inputs)}}


def receipt_meta(node: PlusScriptNode, inputs: Mapping[str, Any], _: WriterTarget) -> dict[str, Any]:
    receipt = inputs.get("receipt")
    if not isinstance(receipt, Receipt):
        return {"success": False, "error_message": "no receipt", "outputs": {}}
    return {"success": receipt.success, "error_message": receipt.error_message,
            "outputs": {k: to_json_value(from_any(v)) for k, v in receipt.outputs.items()}}


def update_values(node: PlusScriptNode, inputs: Mapping[str, Any], _: WriterTarget) -> dict[str, Any]:
    return {f"update_value:{name}": value for name, value in inputs.items()}


def ui_feedback(node: PlusScriptNode, inputs: Mapping[str, Any], _: WriterTarget) -> dict[str, Any]:
    return dict(inputs)


def no_op(node: PlusScriptNode, inputs: Mapping[str, Any], _: WriterTarget) -> dict[str, Any]:
    return {}


def _payload(value: Any) -> tuple[bytes, str, str]:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value), "application/octet-stream", "bin"
    if isinstance(value, str):
        return value.encode("utf-8"), "text/plain; charset=utf-8", "txt"
    return json.dumps(to_json_value(value), ensure_ascii=False).encode("utf-8"), "application/json", "json"


def writer(node: PlusScriptNode, inputs: Mapping[str, Any], target: WriterTarget) -> dict[str, Any]:
    pairs = _ordered(node, inputs)
    value = pairs[0][1] if len(pairs) == 1 else dict(pairs)
    if node.dest_destination == DestinationType.STREAM:
        stream_id = node.dest_stream_id or f"{target.namespace}stream-{node.unique_id}"
        row = {"node": node.unique_id, "data": to_json_value(value)}
        timestamp = target.append_stream(stream_id, row)
        return {"key": stream_id, "timestamp": timestamp}
    data, content_type, default_ext = _payload(value)
    prefix = node.dest_prefix or f"{target.namespace}writer/"
    if not prefix.endswith("/"):
        prefix += "/"
    extension = (node.dest_extension or default_ext).lstrip(".")
    key = target.put_file(f"{prefix}{node.unique_id}-{uuid.uuid4().hex[:12]}.{extension}", data, content_type)
    return {"key": key}


HANDLERS: dict[int, Callable[[PlusScriptNode, Mapping[str, Any], WriterTarget], dict[str, Any]]] = {
    NT.STATIC: static,
    NT.COALESCE: coalesce,
    NT.BUNDLER: bundler,
    NT.RECEIPT_META: receipt_meta,
    NT.UPDATE_VALUES: update_values,
    NT.UI_FEEDBACK: ui_feedback,
    NT.WRITER: writer,
    NT.TEST: no_op,
    NT.INPUT: no_op,
    NT.OUTPUT: no_op,
}
