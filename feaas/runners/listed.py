"""Items named by an explicit key list (a redrive, :mod:`feaas.jobs.redrive`): the job's
``item_keys_object`` is a JSON object under the user's namespace whose ``keys`` are item keys as
the receipts name them: collection document ids, ``{stream_id}@{timestamp}`` stream rows, or
bucket keys (files runs read them as ``file_keys``). Keys that name nothing any more (a document
deleted since) are skipped and logged; keys outside the run's own source are a recorded FAILED."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from feaas.dao import Documents, Streams
from feaas.errors import JobFailed, NamespaceViolation, NotFound, StorageError
from feaas.jobs.redrive import ITEM_KEYS_OBJECT
from feaas.logs import event
from feaas.namespace import is_job_id
from feaas.runners.context import RunContext
from feaas.runners.sources import PAGE_SIZE, Page, WorkItem, collection_item, stream_item

logger = logging.getLogger(__name__)


def listed_keys(ctx: RunContext) -> list[str] | None:
    """The job's item key list, or None when the job has none (a run over its whole source)."""
    reference = ctx.job_doc.get(ITEM_KEYS_OBJECT)
    if reference is None:
        return None
    try:
        data = json.loads(ctx.storage.get_bytes(reference))
    except NamespaceViolation as exc:
        raise JobFailed(f"the job's {ITEM_KEYS_OBJECT}: {exc}") from None
    except (StorageError, NotFound) as exc:
        raise JobFailed(f"could not read the job's item keys {reference!r}: {exc}") from None
    except ValueError as exc:
        raise JobFailed(f"the job's item keys {reference!r} are not JSON: {exc}") from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise JobFailed(f"the job's item keys {reference!r} must be an object with a list of text as keys")
    return keys


def _pages(keys: list[str], cursor: Any) -> Iterator[tuple[list[str], int | None]]:
    """Pages of keys from position ``cursor``, each with the position after it (None at the end)."""
    start = int(cursor or 0)
    while True:
        end = start + PAGE_SIZE
        yield keys[start:end], end if end < len(keys) else None
        if end >= len(keys):
            return
        start = end


class ListedDocuments:
    """The listed documents of one collection (owner), fetched by id."""

    def __init__(self, docs: Documents, owner: str, keys: list[str]) -> None:
        outside = [k for k in keys if not k.startswith(owner + ".") or is_job_id(k)]
        if outside:
            raise JobFailed(f"{len(outside)} listed items are not documents of {owner}, e.g. {outside[0]!r}")
        self.docs, self.owner, self.keys = docs, owner, keys
        self.description = f"{len(keys)} listed documents of {owner}"

    def pages(self, cursor: Any = None) -> Iterator[Page]:
        key_attr = self.docs.key_attribute
        for page, after in _pages(self.keys, cursor):
            found = {d[key_attr]: d for d in self.docs.batch_get(page) if d.get("owner") == self.owner}
            for key in page:
                if key not in found:
                    event(logger, "listed_item_missing", level=logging.WARNING, item=key)
            yield [collection_item(found[key], key_attr) for key in page if key in found], after


class ListedRows:
    """The listed rows of one stream, read by key."""

    def __init__(self, streams: Streams, stream_id: str, keys: list[str]) -> None:
        self.timestamps: list[int] = []
        for key in keys:
            stream, at, timestamp = key.rpartition("@")
            if stream != stream_id or not at or not timestamp.isdigit():
                raise JobFailed(f"listed item {key!r} is not a row of stream {stream_id}")
            self.timestamps.append(int(timestamp))
        self.streams, self.stream_id = streams, stream_id
        self.description = f"{len(keys)} listed rows of stream {stream_id}"

    def pages(self, cursor: Any = None) -> Iterator[Page]:
        keys = [str(t) for t in self.timestamps]
        for page, after in _pages(keys, cursor):
            items: list[WorkItem] = []
            for timestamp in page:
                row: dict[str, Any] | None = self.streams.get(self.stream_id, int(timestamp))
                if row is None:
                    key = f"{self.stream_id}@{timestamp}"
                    event(logger, "listed_item_missing", level=logging.WARNING, item=key)
                    continue
                items.append(stream_item(self.stream_id, row))
            yield items, after
