"""The user's namespace-scoped storage: every key and document id is checked before any request."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

from feaas.actions.base import ActionCancelled
from feaas.dao import Blobs, ConditionFailed, Documents, Update
from feaas.dao.blobs import BlobStat, TransferCancelled
from feaas.errors import NamespaceViolation, WorkerError
from feaas.namespace import check_object_id, check_writable_document, normalise_key, protected_attributes


class DocumentNotFound(WorkerError):
    """:meth:`UserStorage.update_document` found no document with that id."""


class UserStorage:
    """Implements :class:`feaas.actions.base.Storage` over the shared bucket and documents table."""

    def __init__(
        self, blobs: Blobs, docs: Documents, namespace: str, cancel: threading.Event | None = None
    ) -> None:
        if not namespace.endswith("/") or namespace.count("/") < 2:
            raise ValueError(f"namespace {namespace!r} must look like 'hostname/username/'")
        self.blobs = blobs
        self.docs = docs
        self.namespace = namespace
        self.cancel = cancel  # the job's stop event: a large download ends soon after it is set

    def check_key(self, key: str) -> str:
        return normalise_key(key, self.namespace)

    def check_prefix(self, prefix: str) -> str:
        return normalise_key(prefix, self.namespace, prefix=True)

    def get_bytes(self, key: str) -> bytes:
        return self.blobs.get_bytes(self.check_key(key))

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None, *,
                  metadata: Mapping[str, str] | None = None) -> None:
        self.blobs.put_bytes(self.check_key(key), data, content_type, metadata=metadata)

    def download(self, key: str, path: Path) -> None:
        try:
            self.blobs.download(self.check_key(key), path, cancel=self.cancel)
        except TransferCancelled:
            raise ActionCancelled(
                f"download of {key!r} stopped: the job was cancelled or interrupted"
            ) from None

    def upload(self, path: Path, key: str, content_type: str | None = None) -> None:
        self.blobs.upload(path, self.check_key(key), content_type)

    def copy(self, src_key: str, dest_key: str) -> None:
        self.blobs.copy(self.check_key(src_key), self.check_key(dest_key))

    def exists(self, key: str) -> bool:
        return self.blobs.exists(self.check_key(key))

    def size(self, key: str) -> int:
        return self.blobs.size(self.check_key(key))

    def stat(self, key: str) -> BlobStat:
        return self.blobs.stat(self.check_key(key))

    def read_range(self, key: str, start: int, end: int, *, etag: str | None = None) -> Generator[bytes]:
        return self.blobs.read_range(self.check_key(key), start, end, etag=etag)

    def delete(self, key: str) -> None:
        self.blobs.delete(self.check_key(key))

    def list_keys(self, prefix: str) -> Iterator[str]:
        return self.blobs.list_keys(self.check_prefix(prefix))

    def get_document(self, object_id: str) -> dict[str, Any] | None:
        return self.docs.get(check_object_id(object_id, self.namespace))

    def update_document(self, object_id: str, values: Mapping[str, Any]) -> None:
        """Set the named attributes of an existing document (never its key, owner, or a job)."""
        check_writable_document(object_id, self.namespace)
        bad = protected_attributes(values, self.docs.key_attribute)
        if bad:
            raise NamespaceViolation(f"attributes {bad} cannot be changed")
        if not values:
            return
        try:
            self.docs.update(object_id, Update.setting(values))
        except ConditionFailed:
            raise DocumentNotFound(f"document {object_id!r} does not exist") from None
