"""Per-item results written in batches: receipt rows (never overwriting another) plus the item's
write-back. Two receipt modes (``RECEIPT_MODE`` or the job's ``receipt_mode``):

``transaction`` (default): many items per ``TransactWriteItems`` request. A transaction makes every
receipt put conditional (``attribute_not_exists``) — which a ``BatchWriteItem`` cannot — while
costing one request per up to 50 items, and twice the write units of plain writes. Tasks sharing a
run take turns at the milliseconds (``lane``), and a transaction refused only because another writer
took one of its receipts' timestamps is stamped again and resent. When a transaction is refused
otherwise (an item was deleted, a value is too large), the batch is written again item by item so
one bad item never costs the others their receipts.

``batch``: half the write units. Each write-back is one conditional ``UpdateItem`` (the document
must still exist), then the receipts go 25 to a ``BatchWriteItem``, unconditionally, under
*deterministic* keys: a receipt's ``timestamp`` (epoch ms) is chosen once, before its first write,
and kept for every later try. The writer's timestamps all leave one remainder modulo
``2 × SHARD_COUNT``: ``shard + SHARD_COUNT × (attempt mod 2)``, shard and attempt as the conditional
claim gave them. So the tasks that may write a stream at the same time — the shards of one attempt,
and an attempt with the one before it (whose task may still be finishing a write when its lease
has run out) — never share a key, and a put can only replace the same receipt from its own
earlier try (a retried request, unprocessed items sent again, a batch written again): exactly one
row per item per attempt, and no row overwrites another. Not covered: a task two attempts out of
date still writing (it stops at its first heartbeat after losing its lease).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from feaas.dao.codec import to_dynamo, to_dynamo_value
from feaas.dao.docs import ConditionFailed, Documents
from feaas.dao.errors import error_code, storage_error
from feaas.dao.expressions import Update, exists
from feaas.dao.streams import Streams
from feaas.errors import StorageError
from feaas.logs import event

if TYPE_CHECKING:  # the stubs are a dev dependency
    from mypy_boto3_dynamodb.type_defs import PutTypeDef, TransactWriteItemTypeDef, UpdateTypeDef

logger = logging.getLogger(__name__)
#: times a transaction refused only for taken receipt timestamps is stamped again and resent
RESTAMPS = 3
MAX_TRANSACTION_ACTIONS = 100  # DynamoDB's limit of actions per transaction
MAX_BYTES = 3_500_000  # below the 4 MB transaction limit
WRITE_BACK_THREADS = 8  # batch mode: UpdateItem requests in flight per writer
MAX_BATCH_PUTS = 25  # DynamoDB's limit of requests per BatchWriteItem
ReceiptMode = Literal["transaction", "batch"]
RECEIPT_MODES: tuple[ReceiptMode, ...] = ("transaction", "batch")


@dataclass
class ItemWrite:
    stream_id: str
    row: dict[str, Any]  # receipt row without stream_id/timestamp
    object_id: str | None = None  # collection item to write back to
    values: Mapping[str, Any] | None = None  # attributes to set on it
    timestamp: int | None = None  # batch mode: the receipt's key, fixed at its first write


class BatchWriter:
    def __init__(self, streams: Streams, docs: Documents, *, mode: ReceiptMode = "transaction",
                 shard: int = 0, shard_count: int = 1, attempt: int = 1,
                 lane: Callable[[], tuple[int, int]] | None = None) -> None:
        self.streams = streams
        #: transaction mode: ``(modulus, residue)`` of this writer's timestamps now (tasks sharing a
        #: run take turns at the milliseconds, so their conditional puts seldom collide)
        self.lane = lane or (lambda: (1, 0))
        self.docs = docs
        self.mode = mode
        self.modulus = 2 * shard_count  # batch mode: this writer's keys (see the module's docstring)
        self.residue = shard + shard_count * (attempt % 2)
        self._pool: ThreadPoolExecutor | None = None  # batch mode: write-backs run side by side
        self._lock = threading.Lock()

    def close(self) -> None:
        """Let the write-back threads (batch mode) end."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def write(self, writes: Sequence[ItemWrite]) -> list[str | None]:
        """Write every item's receipt (and write-back). Returns, per item, None or the reason its
        write-back failed (its receipt then records the failure instead)."""
        if self.mode == "batch":
            return self._write_batch(writes)
        results: list[str | None] = [None] * len(writes)
        chunk: list[int] = []
        actions = size = 0
        for index, write in enumerate(writes):
            need = 2 if write.values else 1
            est = _estimate(write)
            if chunk and (actions + need > MAX_TRANSACTION_ACTIONS or size + est > MAX_BYTES):
                self._write_chunk(writes, chunk, results)
                chunk, actions, size = [], 0, 0
            chunk.append(index)
            actions += need
            size += est
        if chunk:
            self._write_chunk(writes, chunk, results)
        return results

    def _write_chunk(self, writes: Sequence[ItemWrite], chunk: list[int], results: list[str | None]) -> None:
        if len(chunk) == 1:
            results[chunk[0]] = self._write_one(writes[chunk[0]])
            return
        updates = {index: self._update_request(writes[index]) for index in chunk if writes[index].values}
        for _ in range(RESTAMPS + 1):
            items: list[TransactWriteItemTypeDef] = []
            puts: set[int] = set()  # positions of the receipts' puts in the transaction
            modulus, residue = self.lane()
            for index in chunk:
                if index in updates:
                    items.append({"Update": updates[index]})
                puts.add(len(items))
                items.append({"Put": self._put_request(writes[index], modulus, residue)})
            try:
                # The token makes a retry of a transaction that already landed (reply lost) a no-op.
                token = uuid.uuid4().hex
                self.docs.client.transact_write_items(TransactItems=items, ClientRequestToken=token)
                return
            except ClientError as exc:
                code = error_code(exc)
                if code not in ("TransactionCanceledException", "ValidationException"):
                    raise storage_error(exc, "writing item receipts") from exc
                if not _only_collisions(exc, puts):
                    event(logger, "batch_write_fallback", level=logging.DEBUG, reason=code, items=len(chunk))
                    break
                # another writer of the stream took one of these milliseconds: nothing was written
            except BotoCoreError as exc:
                raise storage_error(exc, "writing item receipts") from exc
        for index in chunk:  # one by one, so only the bad item is affected
            results[index] = self._write_one(writes[index])

    def _put_request(self, write: ItemWrite, modulus: int, residue: int) -> PutTypeDef:
        timestamp = self.streams.next_timestamp(modulus, residue)
        item = {**write.row, "stream_id": write.stream_id, "timestamp": timestamp}
        return {
            "TableName": self.streams.table,
            "Item": to_dynamo(item),
            "ConditionExpression": "attribute_not_exists(#ts)",
            "ExpressionAttributeNames": {"#ts": "timestamp"},
        }

    def _update_request(self, write: ItemWrite) -> UpdateTypeDef:
        assert write.object_id is not None and write.values
        upd = Update.setting(write.values, exists(self.docs.key_attribute))
        expression, condition = upd.expression(), upd.condition_expression()
        assert condition is not None
        return {
            "TableName": self.docs.table,
            "Key": {self.docs.key_attribute: {"S": write.object_id}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": upd.names,
            "ExpressionAttributeValues": {k: to_dynamo_value(v) for k, v in upd.values.items()},
        }

    def _write_one(self, write: ItemWrite) -> str | None:
        problem = None
        if write.values and write.object_id:
            try:
                self.docs.update(write.object_id, Update.setting(write.values))
            except ConditionFailed:
                problem = f"write-back failed: item {write.object_id} no longer exists"
            except (StorageError, TypeError, ValueError, ArithmeticError) as exc:  # refused, or not storable
                problem = f"write-back failed: {exc}"
        row = write.row
        if problem:
            row = {**row, "success": False, "error_message": problem}
        self.streams.append(write.stream_id, row)
        return problem


    # --- batch mode --------------------------------------------------------------------------

    def _write_batch(self, writes: Sequence[ItemWrite]) -> list[str | None]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WRITE_BACK_THREADS, thread_name_prefix="write-back")
        results = list(self._pool.map(self._write_back, writes))
        puts = []
        for write, problem in zip(writes, results, strict=True):
            if write.timestamp is None:  # chosen once: a second write of this receipt reuses its key
                write.timestamp = self.streams.next_timestamp(self.modulus, self.residue)
            row = write.row if problem is None else {**write.row, "success": False, "error_message": problem}
            item = to_dynamo({**row, "stream_id": write.stream_id, "timestamp": write.timestamp})
            puts.append({"PutRequest": {"Item": item}})
        for start in range(0, len(puts), MAX_BATCH_PUTS):
            self._batch_put(puts[start:start + MAX_BATCH_PUTS])
        return results

    def _write_back(self, write: ItemWrite) -> str | None:
        if not (write.values and write.object_id):
            return None
        try:
            self.docs.update(write.object_id, Update.setting(write.values))
        except ConditionFailed:
            return f"write-back failed: item {write.object_id} no longer exists"
        except (StorageError, TypeError, ValueError, ArithmeticError) as exc:  # refused, or not storable
            return f"write-back failed: {exc}"
        return None

    def _batch_put(self, puts: list[dict[str, Any]]) -> None:
        """One BatchWriteItem; unprocessed puts (throttling) are sent again with a growing pause."""
        pending: Any = {self.streams.table: puts}
        for attempt in range(12):
            try:
                pending = self.docs.client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
            except (ClientError, BotoCoreError) as exc:
                raise storage_error(exc, "writing item receipts") from exc
            if not pending:
                return
            time.sleep(min(2.0, 0.05 * 2 ** attempt))
        raise StorageError("writing item receipts: DynamoDB left receipts unprocessed 12 times")


def _estimate(write: ItemWrite) -> int:
    return len(repr(write.row)) + (len(repr(write.values)) if write.values else 0) + 200


def _only_collisions(exc: ClientError, puts: set[int]) -> bool:
    """A cancelled transaction whose only refused actions are receipt puts whose key was taken."""
    reasons = exc.response.get("CancellationReasons") or []
    refused = {i: r.get("Code") for i, r in enumerate(reasons) if r.get("Code") not in (None, "None")}
    return bool(refused) and all(i in puts and c == "ConditionalCheckFailed" for i, c in refused.items())
