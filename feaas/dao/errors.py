"""One readable error for a failed AWS call (after botocore's retries)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from feaas.errors import StorageError


def storage_error(exc: Exception, what: str) -> StorageError:
    """One readable message for a failed AWS call (after botocore's retries)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return StorageError(f"{what} failed: {err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": "))
    return StorageError(f"{what} failed: {exc}")
