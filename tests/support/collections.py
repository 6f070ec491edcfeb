"""Seed collections, streams and files for many-item tests (real DynamoDB Local / SeaweedFS)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from feaas.dao import Dao
from feaas.dao.codec import to_dynamo
from tests.support.scripts import NAMESPACE, NT, action, node, script, static


def new_owner(namespace: str = NAMESPACE) -> str:
    return f"{namespace}collection-{uuid.uuid4().hex[:10]}"


def seed_collection(dao: Dao, owner: str, count: int,
                    make: Callable[[int], dict[str, Any]] = lambda i: {"n": i},
                    key_attribute: str = "object_id") -> list[str]:
    """``count`` documents of ``owner`` via BatchWriteItem; returns their ids."""
    ids = [f"{owner}.item-{i:06d}" for i in range(count)]
    client = dao.docs.client
    for start in range(0, count, 25):
        requests = [{"PutRequest": {"Item": to_dynamo({key_attribute: ids[i], "owner": owner, **make(i)})}}
                    for i in range(start, min(count, start + 25))]
        pending: dict[str, Any] = {dao.docs.table: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return ids


def receipts(dao: Dao, stream_id: str) -> list[dict[str, Any]]:
    return list(dao.streams.rows(stream_id))


def tag_script():
    """n → add(n, 1) → UPDATE_VALUES n_plus_one and status='processed'; sum → mainOutput."""
    return script([action("inc", "sys.math.add"), static("one", 1), static("tag", "processed"),
                   node("uv", NT.UPDATE_VALUES)],
                  ["mainInput:n -> inc:a", "one:value -> inc:b", "inc:sum -> uv:n_plus_one",
                   "tag:value -> uv:status",
                   "inc:sum -> mainOutput:sum"])


def nap_script(seconds: float) -> Any:
    return script([action("nap", "sys.debug.nap", seconds=seconds), action("echo", "sys.debug.echo")],
                  ["mainInput:object_id -> echo:id", "nap:message -> echo:m", "echo:id -> mainOutput:id"])


def all_ids(rows: Iterable[dict[str, Any]]) -> list[str]:
    return [r["object_id"] for r in rows]
