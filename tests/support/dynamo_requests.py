"""What a DynamoDB request body (as the fault proxy sees it) is: the worker's claim, its index row,
a final write. Used to aim a fault at one exact write (tests/support/faultproxy.py)."""

from __future__ import annotations

import json
import re
from typing import Any

from feaas.dao.running import RUNNING_STREAM


def _request(body: bytes) -> dict[str, Any] | None:
    try:
        request = json.loads(body)
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def _placeholder_in(expression: str, placeholder: str) -> bool:
    return re.search(re.escape(placeholder) + r"(?![0-9A-Za-z_])", expression) is not None


def _sets(request: dict[str, Any], attribute: str) -> bool:
    """Whether an UpdateItem's SET clause writes ``attribute`` (by its ``#`` name)."""
    if "UpdateExpression" not in request:
        return False
    marks = [k for k, v in (request.get("ExpressionAttributeNames") or {}).items() if v == attribute]
    sets = str(request["UpdateExpression"]).split(" REMOVE ", 1)[0]
    return sets.startswith("SET ") and any(_placeholder_in(sets, m) for m in marks)


def is_final_write(body: bytes) -> bool:
    """An UpdateItem that sets ``finished_by``: a job's, a shard's or a split run's final write
    (a claim only removes it)."""
    request = _request(body)
    return request is not None and _sets(request, "finished_by")


def is_claim(body: bytes) -> bool:
    """A whole job's claim: the UpdateItem that sets ``lease_owner`` (a heartbeat only renews
    ``lease_expires_at``; a finish removes it)."""
    request = _request(body)
    return request is not None and _sets(request, "lease_owner")


def is_index_write(body: bytes) -> bool:
    """The PutItem of a row of the index of held jobs (written before the claim)."""
    request = _request(body)
    item = (request or {}).get("Item") or {}
    return "UpdateExpression" not in (request or {}) and item.get("stream_id") == {"S": RUNNING_STREAM}
