"""Paged DynamoDB Query: pages of plain items, or a count — the one loop over LastEvaluatedKey."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from feaas.dao.codec import from_dynamo
from feaas.dao.errors import storage_error

if TYPE_CHECKING:  # the stubs are a dev dependency; at run time these are plain boto3 clients
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryOutputTypeDef

Page = tuple[list[dict[str, Any]], dict[str, Any] | None]


def _responses(client: DynamoDBClient, request: Mapping[str, Any], what: str) -> Iterator[QueryOutputTypeDef]:
    kwargs = dict(request)
    while True:
        try:
            resp = client.query(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc, what) from exc
        yield resp
        if not resp.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def query_pages(client: DynamoDBClient, request: Mapping[str, Any], what: str) -> Iterator[Page]:
    """``(items, last_evaluated_key)`` page by page; ``what`` names the request in errors."""
    for resp in _responses(client, request, what):
        yield [from_dynamo(i) for i in resp.get("Items", [])], resp.get("LastEvaluatedKey")


def query_count(client: DynamoDBClient, request: Mapping[str, Any], what: str) -> int:
    """How many items the query matches (``Select=COUNT``, paged)."""
    return sum(int(resp.get("Count", 0)) for resp in _responses(client, {**request, "Select": "COUNT"}, what))
