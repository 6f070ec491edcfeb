"""Failed AWS calls: their error code, one readable error, and which setting to check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from feaas.errors import StorageError

if TYPE_CHECKING:
    from feaas.settings import Settings

CONDITION_FAILED = "ConditionalCheckFailedException"


def old_item(exc: ClientError) -> dict[str, Any] | None:
    """The item a failed conditional write returned (``ReturnValuesOnConditionCheckFailure``), in
    wire form."""
    item = cast(Mapping[str, Any], exc.response).get("Item")
    return dict(item) if isinstance(item, Mapping) else None


def error_code(exc: ClientError) -> str:
    """The AWS error code of a refused request (``""`` when the reply named none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def storage_error(exc: Exception, what: str) -> StorageError:
    """One readable message for a failed AWS call (after botocore's retries)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return StorageError(
            f"{what} failed: {err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
        )
    return StorageError(f"{what} failed: {exc}")


_STORAGE_HINTS = {
    "ResourceNotFoundException":
        "check that the tables DYNAMO_TABLE={table!r} and DYNAMO_STREAMS_TABLE={streams!r} exist",
    "NoSuchBucket": "check that the bucket PRIMARY_BUCKET={bucket!r} exists",
}


def explain_storage_error(exc: Exception, settings: Settings) -> str:
    """A storage error's message plus which setting to check when a table or the bucket is missing."""
    message = str(exc)
    for code, hint in _STORAGE_HINTS.items():
        if code in message:
            return (
                message
                + " — "
                + hint.format(
                    table=settings.dynamo_table,
                    streams=settings.dynamo_streams_table,
                    bucket=settings.primary_bucket,
                )
            )
    return message
