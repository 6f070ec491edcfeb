"""The streams table: append rows that never overwrite another, read a stream page by page."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from feaas.dao.codec import from_dynamo, to_dynamo
from feaas.dao.errors import CONDITION_FAILED, error_code, old_item, storage_error
from feaas.dao.query import query_count, query_pages

if TYPE_CHECKING:  # the stubs are a dev dependency; at run time these are plain boto3 clients
    from mypy_boto3_dynamodb import DynamoDBClient


class Streams:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table
        self._lock = threading.Lock()
        self._last_ms = 0

    def next_timestamp(self, modulus: int = 1, residue: int = 0) -> int:
        """Epoch milliseconds, strictly increasing within this process; with a ``modulus``, the next
        one that leaves ``residue`` (a writer's own keys, disjoint from other writers')."""
        with self._lock:
            ts = max(int(time.time() * 1000), self._last_ms + 1)
            self._last_ms = ts + (residue - ts) % modulus
            return self._last_ms

    def append(self, stream_id: str, row: Mapping[str, Any]) -> int:
        """Add one row and return its timestamp. A row is never overwritten: on a timestamp
        collision (another process wrote the same millisecond) the next free one is taken."""
        row_id = uuid.uuid4().hex  # tells our own retried write apart from another writer's row
        while True:
            ts = self.next_timestamp()
            item = {**row, "stream_id": stream_id, "timestamp": ts, "row_id": row_id}
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=to_dynamo(item),
                    ConditionExpression="attribute_not_exists(#ts)",
                    ExpressionAttributeNames={"#ts": "timestamp"},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return ts
            except ClientError as exc:
                if error_code(exc) != CONDITION_FAILED:
                    raise storage_error(exc, f"writing to stream {stream_id}") from exc
                old = old_item(exc) or {}
                if old.get("row_id", {}).get("S") == row_id:
                    return ts  # botocore retried a put that had landed
            except BotoCoreError as exc:
                raise storage_error(exc, f"writing to stream {stream_id}") from exc

    def pages(
        self, stream_id: str, *, page_size: int = 500, start_key: Mapping[str, Any] | None = None,
        newest_first: bool = False,
    ) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
        """Rows of a stream, oldest first (or newest first), as ``(rows, last_evaluated_key)`` pages."""
        request: dict[str, Any] = {
            **self._query(stream_id),
            "ScanIndexForward": not newest_first,
            "Limit": page_size,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        return query_pages(self.client, request, f"reading stream {stream_id}")

    def rows_since(self, stream_id: str, since_ms: int, *, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Rows of a stream whose timestamp is at least ``since_ms``, oldest first."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "stream_id = :s AND #ts >= :t",
            "ExpressionAttributeNames": {"#ts": "timestamp"},
            "ExpressionAttributeValues": {":s": {"S": stream_id}, ":t": {"N": str(int(since_ms))}},
            "ConsistentRead": True,
            "Limit": page_size,
        }
        for page, _ in query_pages(self.client, request, f"reading stream {stream_id}"):
            yield from page

    def get(self, stream_id: str, timestamp: int) -> dict[str, Any] | None:
        """One row by its key (a redrive names stream items ``{stream_id}@{timestamp}``)."""
        try:
            resp = self.client.get_item(
                TableName=self.table, ConsistentRead=True,
                Key={"stream_id": {"S": stream_id}, "timestamp": {"N": str(timestamp)}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc, f"reading stream {stream_id}") from exc
        item = resp.get("Item")
        return from_dynamo(item) if item else None

    def count(self, stream_id: str) -> int:
        return query_count(self.client, self._query(stream_id), f"counting stream {stream_id}")

    def _query(self, stream_id: str) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "KeyConditionExpression": "stream_id = :s",
            "ExpressionAttributeValues": {":s": {"S": stream_id}},
        }

    def start_after_newest(self, stream_id: str) -> None:
        """Make this process's timestamps start above the newest row already in ``stream_id``
        (a relaunched task may follow one whose clock ran ahead)."""
        for page, _ in self.pages(stream_id, page_size=1, newest_first=True):
            if page:
                with self._lock:
                    self._last_ms = max(self._last_ms, int(page[0]["timestamp"]))
            return

    def rows(self, stream_id: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for page, _ in self.pages(stream_id, **kwargs):
            yield from page
