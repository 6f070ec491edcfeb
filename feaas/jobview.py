"""A job document as a person reads it: status, output and receipts with plain values (issue 11).

Used by ``python -m feaas.launch show-job`` and the demo. Pure: it reads the stored document's
JSON form and does no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from google.protobuf.json_format import ParseDict, ParseError

from feaas.dao.codec import plain
from feaas.objects import AnyType
from feaas.psee.values import from_any

_COUNTS = ("percent", "action_count", "item_count", "success_count", "error_count", "attempt")


def job_summary(item: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a person looks at first, with AnyType values decoded and numbers tidied."""
    doc = plain(dict(item))
    view: dict[str, Any] = {"object_id": doc.get("object_id"), "label": doc.get("label") or None,
                            "status": doc.get("status") or "INITIALIZING"}
    for name in ("outcome", "error_message", "resumable", "paused", "last_control_change", "parent_job_id",
                 "redriven_by"):
        if doc.get(name) not in (None, ""):
            view[name] = doc[name]
    view.update({name: _number(doc[name]) for name in _COUNTS if name in doc})
    for name in ("created_at", "started_at", "completed_at"):
        if isinstance(doc.get(name), (int, float)):
            view[name] = _utc(doc[name])
    if isinstance(doc.get("started_at"), (int, float)) and isinstance(doc.get("completed_at"), (int, float)):
        view["duration_s"] = _number(doc["completed_at"] - doc["started_at"])
    view["output"] = {name: _value(v) for name, v in (doc.get("output") or {}).items()}
    view["receipts"] = {node: _receipt(r) for node, r in (doc.get("receipts") or {}).items()}
    if doc.get("offloaded"):
        view["stored_in_bucket"] = doc["offloaded"]
    return {k: v for k, v in view.items() if v is not None}


def _receipt(receipt: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"success": bool(receipt.get("success"))}
    if receipt.get("error_message"):
        out["error_message"] = receipt["error_message"]
    out["outputs"] = {name: _value(v) for name, v in (receipt.get("outputs") or {}).items()}
    return out


def _value(value: Any) -> Any:
    """An AnyType in its JSON form → the plain value; anything else as it is."""
    if not isinstance(value, Mapping):
        return value
    try:
        decoded = from_any(ParseDict(dict(value), AnyType(), ignore_unknown_fields=True))
    except (ParseError, ValueError, TypeError):
        return value
    if isinstance(decoded, bytes):
        return f"<{len(decoded)} bytes>"
    return (
        decoded
        if isinstance(decoded, (str, int, float, bool, list, dict)) or decoded is None
        else str(decoded)
    )


def _number(value: Any) -> Any:
    """100.0 → 100; other values unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _utc(epoch: float) -> str:
    seconds = epoch / 1000 if epoch > 10**11 else epoch  # plus-engine's own scripts write milliseconds
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
