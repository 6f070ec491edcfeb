"""The index of running jobs (SPEC §8.3): one row per held job in the streams table, under the fixed
stream id :data:`RUNNING_STREAM`, so the sweeper finds candidates with one query whose cost grows
with the number of running jobs, never with the documents table.

A row is keyed by a number derived from the job id (the streams table's sort key is a number), so
the claim that writes it and the finish that removes it address the same row without reading.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from feaas.dao.codec import to_dynamo
from feaas.dao.errors import CONDITION_FAILED, error_code, storage_error
from feaas.dao.query import query_pages

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The stream id of the index; a ``sys/`` id no user namespace can name.
RUNNING_STREAM = "sys/plus-worker/running"


def row_key(job_id: str) -> int:
    """The index row's sort key for ``job_id``: 52 bits of its SHA-256 (exact as a DynamoDB number)."""
    return int(hashlib.sha256(job_id.encode()).hexdigest()[:13], 16)


class RunningIndex:
    """Rows ``{job_id, lease_owner, lease_expires_at, task_arn, run_mode, ...}`` of the jobs held now."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def _key(self, job_id: str) -> dict[str, Any]:
        return {"stream_id": {"S": RUNNING_STREAM}, "timestamp": {"N": str(row_key(job_id))}}

    def add(self, job_id: str, row: Mapping[str, Any]) -> None:
        """Write (or overwrite) the row of ``job_id``: the newest claim's row wins."""
        item = {**row, "job_id": job_id, "stream_id": RUNNING_STREAM, "timestamp": row_key(job_id)}
        try:
            self.client.put_item(TableName=self.table, Item=to_dynamo(item))
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc, f"indexing running job {job_id}") from exc

    def remove(self, job_id: str, *, lease_owner: str | None = None) -> bool:
        """Delete the row of ``job_id``; with ``lease_owner``, only while the row is that holder's
        (a later claim's row stays). Returns whether a row was deleted or absent."""
        kwargs: dict[str, Any] = {"TableName": self.table, "Key": self._key(job_id)}
        if lease_owner is not None:
            kwargs.update(ConditionExpression="attribute_not_exists(#o) OR #o = :o",
                          ExpressionAttributeNames={"#o": "lease_owner"},
                          ExpressionAttributeValues={":o": {"S": lease_owner}})
        try:
            self.client.delete_item(**kwargs)
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise storage_error(exc, f"unindexing job {job_id}") from exc
        except BotoCoreError as exc:
            raise storage_error(exc, f"unindexing job {job_id}") from exc
        return True

    def rows(self, *, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Every row of the index (a Query on one partition, page by page)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "stream_id = :s",
            "ExpressionAttributeValues": {":s": {"S": RUNNING_STREAM}},
            "ConsistentRead": True,
            "Limit": page_size,
        }
        for page, _ in query_pages(self.client, request, "reading the running-jobs index"):
            yield from page
