"""Where the items of a many-item run come from: a collection, a stream, or files. Page by page,
each page with a cursor from which the source continues (the plan writer's resume point, SPEC §8.5)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from feaas.dao import Blobs, Documents, Streams
from feaas.errors import JobFailed
from feaas.namespace import is_job_id, normalise_key

#: Items read per request (owner index, stream) and handed on per page; one page is one chunk.
PAGE_SIZE = 500
#: A page and where the source continues after it (None: the source is exhausted). JSON-like.
Page = tuple[list["WorkItem"], Any]


@dataclass(frozen=True)
class WorkItem:
    key: str  # identity in receipts: object id, stream row, or bucket key
    inputs: dict[str, Any] = field(default_factory=dict)  # overlaid onto the job's input_data
    write_back_id: str | None = None  # collection item that UPDATE_VALUES write to


class ItemSource(Protocol):
    description: str

    def pages(self, cursor: Any = None) -> Iterator[Page]:
        """Pages from ``cursor`` (None: the start), each with the cursor after it."""
        ...


def collection_item(doc: dict[str, Any], key_attribute: str) -> WorkItem:
    """A collection's document as an item: its id is its key, its attributes its inputs."""
    object_id = doc[key_attribute]
    return WorkItem(key=object_id, inputs={**doc, "object_id": object_id}, write_back_id=object_id)


def stream_item(stream_id: str, row: dict[str, Any]) -> WorkItem:
    """A stream's row as an item, keyed ``{stream_id}@{timestamp}``."""
    return WorkItem(key=f"{stream_id}@{row['timestamp']}",
                    inputs={**row, "stream_id": stream_id, "timestamp": row["timestamp"]})


class CollectionSource:
    """Every document of ``owner`` through the owner index; fetches whole items when the index
    projects only keys. Job documents are never items."""

    def __init__(self, docs: Documents, owner: str) -> None:
        self.docs = docs
        self.owner = owner
        self.description = f"collection {owner}"

    def pages(self, cursor: Any = None) -> Iterator[Page]:
        key_attr = self.docs.key_attribute
        index_keys = {key_attr, "owner"}
        for page, last_key in self.docs.owner_pages(self.owner, page_size=PAGE_SIZE, start_key=cursor):
            page = [i for i in page if not is_job_id(str(i.get(key_attr, "")))]
            if page and all(set(i) <= index_keys for i in page):  # keys-only projection
                fetched = {i[key_attr]: i for i in self.docs.batch_get([i[key_attr] for i in page])}
                page = [fetched[i[key_attr]] for i in page if i[key_attr] in fetched]
            yield [collection_item(i, key_attr) for i in page], last_key


class StreamSource:
    """Rows of a stream, oldest first."""

    def __init__(self, streams: Streams, stream_id: str) -> None:
        self.streams = streams
        self.stream_id = stream_id
        self.description = f"stream {stream_id}"

    def pages(self, cursor: Any = None) -> Iterator[Page]:
        for page, last_key in self.streams.pages(self.stream_id, page_size=PAGE_SIZE, start_key=cursor):
            yield [stream_item(self.stream_id, row) for row in page], last_key


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

    def _keys(self, cursor: Any) -> Iterator[tuple[str, Any]]:
        """Keys with the cursor after each: a position in ``file_keys``, else the last key listed."""
        if self.file_keys is not None:
            start = int(cursor or 0)
            for position, key in enumerate(self.file_keys[start:], start + 1):
                yield key, position
        else:
            assert self.prefix is not None
            for key in self.blobs.list_keys(self.prefix, start_after=cursor or None):
                if not key.endswith("/"):
                    yield key, key

    def pages(self, cursor: Any = None) -> Iterator[Page]:
        page: list[WorkItem] = []
        after: Any = cursor
        for key, after in self._keys(cursor):
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
                yield page, after
                page = []
        yield page, None
