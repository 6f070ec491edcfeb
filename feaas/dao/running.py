"""The index of running jobs (SPEC §8.3): rows in the streams table, under the fixed stream id
:data:`RUNNING_STREAM`, so the sweeper finds candidates with one query whose cost grows with the
number of running jobs, never with the documents table.

One row per claim attempt: a task writes its row *before* its conditional claim, so a task killed
between the two (or right after the claim) still leaves a row the sweeper finds. A row is keyed by
a number derived from the job id and the claimer's lease owner, so a claimer only ever writes or
deletes its own row, never another holder's, and the claim, its failure and the finish all address
that row without reading.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from feaas.dao.codec import to_dynamo
from feaas.dao.errors import storage_error
from feaas.dao.query import query_pages

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The stream id of the index; a ``sys/`` id no user namespace can name.
RUNNING_STREAM = "sys/plus-worker/running"


def row_key(job_id: str, lease_owner: str) -> int:
    """The sort key of ``lease_owner``'s row for ``job_id``: 52 bits of a SHA-256 of both (exact
    as a DynamoDB number)."""
    return int(hashlib.sha256(f"{job_id}\n{lease_owner}".encode()).hexdigest()[:13], 16)


class RunningIndex:
    """Rows ``{job_id, lease_owner, indexed_at, task_arn, run_mode, username, ...}``: one per claim
    attempt of a job that may be held now."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def add(self, job_id: str, lease_owner: str, row: Mapping[str, Any]) -> None:
        """Write ``lease_owner``'s row for ``job_id`` (a retry rewrites the same row)."""
        item = {**row, "job_id": job_id, "lease_owner": lease_owner, "stream_id": RUNNING_STREAM,
                "timestamp": row_key(job_id, lease_owner)}
        try:
            self.client.put_item(TableName=self.table, Item=to_dynamo(item))
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc, f"indexing running job {job_id}") from exc

    def remove(self, job_id: str, lease_owner: str) -> None:
        """Delete ``lease_owner``'s row for ``job_id`` (nothing when there is none)."""
        self._delete(row_key(job_id, lease_owner), job_id)

    def discard(self, row: Mapping[str, Any]) -> None:
        """Delete a row as read by :meth:`rows` (by its stored key, whoever wrote it)."""
        self._delete(int(row["timestamp"]), str(row.get("job_id")))

    def _delete(self, key: int, job_id: str) -> None:
        try:
            self.client.delete_item(TableName=self.table, Key={
                "stream_id": {"S": RUNNING_STREAM}, "timestamp": {"N": str(key)}})
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc, f"unindexing job {job_id}") from exc

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
