"""The documents table: get, conditional update of named attributes, owner-index pages.

This is the only code that sends requests to the documents table. Whole-item writes exist only
for creating new documents (``put_new``); state changes are always ``update``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from feaas.dao.codec import from_dynamo, storable, to_dynamo, to_dynamo_value
from feaas.dao.errors import CONDITION_FAILED, error_code, old_item, storage_error
from feaas.dao.expressions import Update, exists
from feaas.dao.query import query_count, query_pages
from feaas.errors import StorageError, WorkerError

if TYPE_CHECKING:  # the stubs are a dev dependency; at run time these are plain boto3 clients
    from mypy_boto3_dynamodb import DynamoDBClient


class ConditionFailed(WorkerError):
    """The condition of a write did not hold. ``old`` is the item as it was (None: no item)."""

    def __init__(self, old: dict[str, Any] | None) -> None:
        super().__init__("condition not met")
        self.old = old


def _only_new(key_attribute: str) -> dict[str, Any]:
    """The condition of a write that creates a document: no document has its key yet."""
    return {
        "ConditionExpression": "attribute_not_exists(#key)",
        "ExpressionAttributeNames": {"#key": key_attribute},
    }


class Documents:
    def __init__(self, client: DynamoDBClient, table: str, key_attribute: str, owner_index: str) -> None:
        self.client = client
        self.table = table
        self.key_attribute = key_attribute
        self.owner_index = owner_index

    def _key(self, object_id: str) -> dict[str, Any]:
        return {self.key_attribute: {"S": object_id}}

    def get(self, object_id: str, *, consistent: bool = True) -> dict[str, Any] | None:
        try:
            resp = self.client.get_item(
                TableName=self.table, Key=self._key(object_id), ConsistentRead=consistent
            )
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc, f"reading {object_id}") from exc
        item = resp.get("Item")
        return from_dynamo(item) if item else None

    def update(
        self, object_id: str, update: Update, *, returns: str = "NONE", must_exist: bool = True
    ) -> dict[str, Any] | None:
        """Apply ``update``; raise :class:`ConditionFailed` (with the old item) when its condition fails.

        ``must_exist`` adds ``attribute_exists(key)`` so an update never creates a document.
        """
        expression = update.expression()
        condition = update.condition_expression(*([exists(self.key_attribute)] if must_exist else []))
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(object_id),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": update.names,
            "ReturnValues": returns,
        }
        if update.values:
            kwargs["ExpressionAttributeValues"] = {k: to_dynamo_value(v) for k, v in update.values.items()}
        if condition is not None:
            kwargs["ConditionExpression"] = condition
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            resp = self.client.update_item(**kwargs)
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                old = old_item(exc)
                raise ConditionFailed(from_dynamo(old) if old else None) from None
            raise storage_error(exc, f"updating {object_id}") from exc
        except BotoCoreError as exc:
            raise storage_error(exc, f"updating {object_id}") from exc
        attrs = resp.get("Attributes")
        return from_dynamo(attrs) if attrs else None

    def put_new(self, item: Mapping[str, Any]) -> None:
        """Create a document that must not exist yet (used by launchers and tests)."""
        try:
            self.client.put_item(TableName=self.table, Item=to_dynamo(item), **_only_new(self.key_attribute))
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                raise ConditionFailed(None) from None
            raise storage_error(exc, f"creating {item.get(self.key_attribute)}") from exc

    def put(self, item: Mapping[str, Any]) -> None:
        """Save a whole document, replacing any earlier one (REGISTER_ACTIONS' catalogue pointers)."""
        try:
            self.client.put_item(TableName=self.table, Item=to_dynamo(item))
        except (ClientError, BotoCoreError) as exc:
            raise storage_error(exc, f"writing {item.get(self.key_attribute)}") from exc

    def _owner_query(self, owner: str) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "IndexName": self.owner_index,
            "KeyConditionExpression": "#o = :o",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": {"S": owner}},
        }

    def owner_pages(
        self, owner: str, *, page_size: int = 500, start_key: Mapping[str, Any] | None = None
    ) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
        """Query the owner index page by page: yields ``(items, last_evaluated_key)``.

        Items carry whatever the index projects (maybe only the keys).
        """
        request = {**self._owner_query(owner), "Limit": page_size}
        if start_key:
            request["ExclusiveStartKey"] = start_key
        return query_pages(self.client, request, f"listing the documents of {owner}")

    def count_owner(self, owner: str, *, exclude_ids_containing: str | None = None) -> int:
        """How many documents the owner index lists for ``owner`` (paged Select=COUNT)."""
        request = self._owner_query(owner)
        if exclude_ids_containing:
            request["FilterExpression"] = "NOT contains(#k, :x)"
            request["ExpressionAttributeNames"]["#k"] = self.key_attribute
            request["ExpressionAttributeValues"][":x"] = {"S": exclude_ids_containing}
        return query_count(self.client, request, f"counting the documents of {owner}")

    def batch_get(self, object_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Fetch whole documents (≤ 100 ids per request), retrying unprocessed keys. Order not kept."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(object_ids), 100):
            keys = [self._key(i) for i in dict.fromkeys(object_ids[start : start + 100])]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(20):
                try:
                    resp = self.client.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise storage_error(exc, "reading documents") from exc
                found += [from_dynamo(i) for i in resp.get("Responses", {}).get(self.table, [])]
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt))  # DynamoDB asks callers to back off here
            else:
                raise StorageError("reading documents failed: keys stayed unprocessed")
        return found


class TableResource(Protocol):
    """A boto3 DynamoDB ``Table`` resource (what plus-engine holds), or anything with its two writes."""

    def put_item(self, **kwargs: Any) -> Any: ...

    def update_item(self, **kwargs: Any) -> Any: ...


def put_new_in_table(table: TableResource, item: Mapping[str, Any], key_attribute: str) -> bool:
    """Create ``item`` through a ``Table`` resource unless a document with its key exists; returns
    whether it was written. Other errors propagate as boto3 raised them."""
    try:
        table.put_item(Item=storable(item), **_only_new(key_attribute))
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        return False
    return True


def update_in_table(table: TableResource, key_attribute: str, object_id: str, update: Update) -> None:
    """Apply ``update`` through a ``Table`` resource. Raises :class:`ConditionFailed` when its
    condition does not hold; other errors propagate as boto3 raised them."""
    kwargs: dict[str, Any] = {
        "Key": {key_attribute: object_id},
        "UpdateExpression": update.expression(),
        "ExpressionAttributeNames": update.names,
    }
    condition = update.condition_expression()
    if condition is not None:
        kwargs["ConditionExpression"] = condition
    kwargs["ExpressionAttributeValues"] = {k: storable(v) for k, v in update.values.items()}
    try:
        table.update_item(**kwargs)
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        raise ConditionFailed(None) from None
