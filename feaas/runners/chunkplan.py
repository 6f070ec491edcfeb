"""The work plan of a many-item run shared by any number of tasks (SPEC §8.5), the runner's side:
writing it once (one chunk object per source page, published on the job as it goes), reading a
chunk back, and keeping count of each claimed chunk's items until its receipts are all written.

Chunk objects are JSON lines under ``{job prefix}plan/``: ``{"k": key, "i": inputs, "w": write-back
id}``, bytes as ``{"$b64": ...}``. The plan writer continues from the cursor of the last published
chunk, so a writer that died is followed by one that rewrites at most the chunk it was writing.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from feaas.dao import Blobs, Streams
from feaas.errors import LeaseLost
from feaas.jobs import ChunkedJobRecord
from feaas.logs import event
from feaas.runners.sources import ItemSource, WorkItem
from feaas.stopping import StopSignal

logger = logging.getLogger(__name__)
#: Receipts of a taken-over chunk are looked for from this long before its first claim (clock skew).
CLOCK_SKEW_MS = 120_000


def _encode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"cannot store {type(value).__name__} in a chunk")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$b64" in obj:
        return base64.b64decode(obj["$b64"])
    return obj


def chunk_key(plan_prefix: str, index: int) -> str:
    return f"{plan_prefix}c{index:06d}.jsonl"


def dump_chunk(items: Iterable[WorkItem]) -> bytes:
    lines = [
        json.dumps({"k": i.key, "i": i.inputs, "w": i.write_back_id}, default=_encode, ensure_ascii=False)
        for i in items
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def load_chunk(data: bytes) -> list[WorkItem]:
    out = []
    for line in data.decode("utf-8").splitlines():
        if line:
            row = json.loads(line, object_hook=_decode)
            out.append(WorkItem(key=row["k"], inputs=row["i"], write_back_id=row.get("w")))
    return out


@dataclass
class PlanWriter:
    """Writes the plan when this task holds the plan writer's lease (any task may take it over)."""

    record: ChunkedJobRecord
    source: ItemSource
    blobs: Blobs
    plan_prefix: str
    stop: StopSignal
    #: called after each chunk is published (this task's feeder need not wait for its next poll)
    published: Callable[[], None] = lambda: None

    def write(self) -> bool:
        """Take the plan writer's lease and write the rest of the plan; False: not this task's to
        write (READY, or another live task writes it)."""
        lease = self.record.take_plan()
        if lease is None:
            return False
        index, item_count, cursor = lease.chunks_total, lease.item_count, lease.cursor
        started = time.monotonic()
        for page, after in self.source.pages(cursor):
            if self.stop.stopped:
                return True  # the lease runs out; another task (or a resume) continues
            if page:
                self.blobs.put_bytes(
                    chunk_key(self.plan_prefix, index), dump_chunk(page), "application/x-ndjson"
                )
            item_count += len(page)
            self.record.publish(index, len(page), item_count, after, final=after is None)
            self.published()
            index += 1 if page else 0
            if after is None:
                break
        event(
            logger,
            "plan_written",
            chunks=index,
            item_count=item_count,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return True

    def run(self, poll_s: float, on_error: Callable[[BaseException], None]) -> None:
        """Until the plan is READY: write it when its writer's lease is free or ran out."""
        try:
            while not self.stop.stopped and not self.record.plan_ready() and self.record.job_ended is None:
                if not self.write():
                    self.stop.event.wait(poll_s)
                    self.record.refresh()
        except LeaseLost as exc:
            event(logger, "plan_writer_replaced", level=logging.WARNING, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - handed to the run, which fails the job with it
            on_error(exc)


def successes_since(streams: Streams, stream_id: str, since_ms: int, keys: set[str]) -> set[str]:
    """Of ``keys``, those whose latest receipt since ``since_ms`` (less the clock skew) succeeded."""
    latest: dict[str, bool] = {}
    for row in streams.rows_since(stream_id, since_ms - CLOCK_SKEW_MS):
        key = str(row.get("object_id"))
        if key in keys:
            latest[key] = bool(row.get("success"))
    return {key for key, ok in latest.items() if ok}


@dataclass
class _Count:
    outstanding: int = 0
    success: int = 0
    error: int = 0
    fed: bool = False


class ChunkTally:
    """Per claimed chunk: items handed on and not yet recorded, and the counts of those recorded.
    A chunk is complete once all its items were handed on and every one of them recorded."""

    def __init__(self) -> None:
        self._chunks: dict[int, _Count] = {}
        self._lock = threading.Lock()

    def open(self, index: int, already_succeeded: int) -> None:
        with self._lock:
            self._chunks[index] = _Count(success=already_succeeded)

    def handed_on(self, index: int) -> None:
        with self._lock:
            self._chunks[index].outstanding += 1

    def fed(self, index: int) -> tuple[int, int] | None:
        """Every item of chunk ``index`` is handed on; its counts when it is complete already."""
        with self._lock:
            self._chunks[index].fed = True
            return self._complete(index)

    def recorded(self, index: int, success: bool) -> tuple[int, int] | None:
        """One item's receipt is written; the chunk's counts when that completes it."""
        with self._lock:
            count = self._chunks[index]
            count.outstanding -= 1
            if success:
                count.success += 1
            else:
                count.error += 1
            return self._complete(index)

    def _complete(self, index: int) -> tuple[int, int] | None:
        count = self._chunks[index]
        if count.fed and count.outstanding == 0:
            del self._chunks[index]
            return count.success, count.error
        return None

    def open_counts(self) -> tuple[int, int]:
        """Successes and failures recorded in chunks not complete yet."""
        with self._lock:
            return sum(c.success for c in self._chunks.values()), sum(c.error for c in self._chunks.values())

    def inflight(self) -> int:
        """Items recorded in chunks not complete yet."""
        with self._lock:
            return sum(c.success + c.error for c in self._chunks.values())
