"""Where the items of a many-item run come from: a collection, a stream, or files. Page by page."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from feaas.dao import Blobs, Documents, Streams
from feaas.errors import JobFailed
from feaas.namespace import JOB_MARKER, is_job_id, normalise_key

#: Items read per request (owner index, stream) and handed on per page.
PAGE_SIZE = 500


@dataclass(frozen=True)
class WorkItem:
    key: str  # identity in receipts: object id, stream row, or bucket key
    inputs: dict[str, Any] = field(default_factory=dict)  # overlaid onto the job's input_data
    write_back_id: str | None = None  # collection item that UPDATE_VALUES write to


class ItemSource(Protocol):
    description: str

    def total(self) -> int: ...

    def pages(self) -> Iterator[list[WorkItem]]: ...


def collection_item(doc: dict[str, Any], key_attribute: str) -> WorkItem:
    """A collection's document as an item: its id is its key, its attributes its inputs."""
    object_id = doc[key_attribute]
    return WorkItem(key=object_id, inputs={**doc, "object_id": object_id}, write_back_id=object_id)


def stream_item(stream_id: str, row: dict[str, Any]) -> WorkItem:
    """A stream's row as an item, keyed ``{stream_id}@{timestamp}``."""
    return WorkItem(key=f"{stream_id}@{row['timestamp']}",
                    inputs={**row, "stream_id": stream_id, "timestamp": row["timestamp"]})


def shard_of(key: str, shard_count: int) -> int:
    """Stable shard of an item key (the same on every task and every Python)."""
    if shard_count <= 1:
        return 0
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shard_count


class CollectionSource:
    """Every document of ``owner`` through the owner index; fetches whole items when the index
    projects only keys. Job documents are never items."""

    def __init__(self, docs: Documents, owner: str) -> None:
        self.docs = docs
        self.owner = owner
        self.description = f"collection {owner}"

    def total(self) -> int:
        return self.docs.count_owner(self.owner, exclude_ids_containing=JOB_MARKER)

    def pages(self) -> Iterator[list[WorkItem]]:
        key_attr = self.docs.key_attribute
        index_keys = {key_attr, "owner"}
        for page, _ in self.docs.owner_pages(self.owner, page_size=PAGE_SIZE):
            page = [i for i in page if not is_job_id(str(i.get(key_attr, "")))]
            if page and all(set(i) <= index_keys for i in page):  # keys-only projection
                fetched = {i[key_attr]: i for i in self.docs.batch_get([i[key_attr] for i in page])}
                page = [fetched[i[key_attr]] for i in page if i[key_attr] in fetched]
            yield [collection_item(i, key_attr) for i in page]


class StreamSource:
    """Rows of a stream, oldest first."""

    def __init__(self, streams: Streams, stream_id: str) -> None:
        self.streams = streams
        self.stream_id = stream_id
        self.description = f"stream {stream_id}"

    def total(self) -> int:
        return self.streams.count(self.stream_id)

    def pages(self) -> Iterator[list[WorkItem]]:
        for page, _ in self.streams.pages(self.stream_id, page_size=PAGE_SIZE):
            yield [stream_item(self.stream_id, row) for row in page]


class FilesSource:
    """Explicit ``file_keys``, else every object under ``prefix`` (folder markers skipped)."""

    def __init__(self, blobs: Blobs, namespace: str, *, file_keys: Sequence[str] | None = None,
                 prefix: str | None = None) -> None:
        self.blobs = blobs
        self.namespace = namespace
        if file_keys:
            self.file_keys: list[str] | None = [normalise_key(k, namespace) for k in file_keys]
            self.prefix = None
            self.description = f"{len(self.file_keys)} files"
        elif prefix:
            self.file_keys = None
            self.prefix = normalise_key(prefix, namespace, prefix=True)
            self.description = f"files under {self.prefix}"
        else:
            raise JobFailed("a files run needs file_keys or a prefix")

    def _keys(self) -> Iterator[str]:
        if self.file_keys is not None:
            yield from self.file_keys
        else:
            assert self.prefix is not None
            yield from (k for k in self.blobs.list_keys(self.prefix) if not k.endswith("/"))

    def total(self) -> int:
        return sum(1 for _ in self._keys())

    def pages(self) -> Iterator[list[WorkItem]]:
        page: list[WorkItem] = []
        for key in self._keys():
            prefix = self.prefix or posixpath.dirname(key) + "/"
            page.append(
                WorkItem(
                    key=key,
                    inputs={
                        "key": key,
                        "src_key": key,
                        "filename": posixpath.basename(key),
                        "prefix": prefix,
                    },
                )
            )
            if len(page) >= PAGE_SIZE:
                yield page
                page = []
        if page:
            yield page
