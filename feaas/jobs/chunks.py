"""Runs over many items shared by any number of tasks (SPEC §8.5): the job document as one of them
writes it.

What the job document holds (every change one conditional ``UpdateItem``):

* ``tasks.{lease_owner}``: one entry per task working on the job: its lease (renewed by its
  heartbeat), its rate (items/s over the last minute) and the items it finished in chunks not yet
  done. A task removes its entry when it leaves.
* ``plan``: who writes the work plan (``by``, a lease ``exp``), how far (``cursor``: where the item
  source continues) and ``state`` WRITING → READY. The plan's chunks themselves are objects in the
  bucket (``{job prefix}plan/c{i}.json``, one page of items each); ``chunks_total`` counts those
  published, ``item_count`` their items.
* ``chunk_next``: the first chunk nobody claimed yet; ``chunks.c{i}``: the chunks claimed and not
  done (``st`` RUNNING with ``by`` and a lease ``exp``, or FREE when a leaving task gave it back),
  with ``since`` (ms) of their first claim; ``chunks_done``; ``success_count``/``error_count`` add
  up the counts of done chunks.

A chunk whose lease ran out is taken over; its items whose receipt since the first claim succeeded
are not run again. The task whose chunk completion or departure finds every chunk of a READY plan
done writes the final status; only one such write can land.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from feaas.dao import ConditionFailed, Documents, Update
from feaas.dao.expressions import Condition, below, equals, missing, one_of
from feaas.errors import JobNotClaimable, LeaseLost
from feaas.jobs.record import LEASE_EXPIRES_AT, LEASE_OWNER, JobRecord
from feaas.jobs.status import Guard, JobStatus, may_become, outcome_for_counts, status_of, stored_as
from feaas.logs import event

logger = logging.getLogger(__name__)

RECEIPT_MODE = "receipt_mode"  # the job's attribute (feaas.jobs.document.receipt_mode)

TASKS, CHUNKS, PLAN = "tasks", "chunks", "plan"
CHUNKS_TOTAL, CHUNKS_DONE, CHUNK_NEXT = "chunks_total", "chunks_done", "chunk_next"
RATE_WINDOW_S = 60.0
#: Attributes a failing task writes on the job besides its status (the rest of its progress is its own).
FAILURE_ATTRS = ("error_message", "cancelled_at", "receipts_stream_id", "outcome")
#: Progress values that are this task's own or the job's as the chunks count it; any other value the
#: run publishes (the live controls in effect, ``paused``, ``item_source``) is written on the job as is.
OWN_PROGRESS = frozenset(
    {
        "items_done",
        "inflight",
        "inflight_error",
        "success_count",
        "error_count",
        "item_count",
        "percent",
        "resumable",
        *FAILURE_ATTRS,
    }
)


def passed_on(values: Mapping[str, Any]) -> dict[str, Any]:
    """The run's published values that go onto the job as they are."""
    return {k: v for k, v in values.items() if k not in OWN_PROGRESS}


class PlanState(str, enum.Enum):
    WRITING = "WRITING"
    READY = "READY"


class ChunkState(str, enum.Enum):
    RUNNING = "RUNNING"
    FREE = "FREE"


class NoChunk(enum.Enum):
    """Why :meth:`ChunkedJobRecord.claim_chunk` found nothing to claim."""

    PLANNING = "the plan is still being written"
    HELD = "every chunk left is held by another live task"
    DONE = "every chunk is done (or only this task's own are left)"
    ENDED = "the job has ended"


@dataclass(frozen=True)
class Chunk:
    index: int
    since_ms: int  # the chunk's first claim: receipts of its items can only be newer
    taken_over: bool  # claimed before (by a task that died or left): some items may have receipts


@dataclass(frozen=True)
class PlanLease:
    """The plan writer's lease as taken: where the item source continues."""

    cursor: Any
    chunks_total: int
    item_count: int


def chunk_name(index: int) -> str:
    return f"c{index}"


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _claimable(chunk: Mapping[str, Any], now: int) -> bool:
    """Given back by a task that left, or held by one whose lease ran out."""
    state = chunk.get("st")
    if state == ChunkState.RUNNING.value:
        return _int(chunk.get("exp")) < now
    return state == ChunkState.FREE.value


class ChunkedJobRecord(JobRecord):
    """The job document as one of any number of tasks writes it (SPEC §8.5)."""

    def __init__(self, docs: Documents, job_id: str, *, batch_receipts: bool = False, **kwargs: Any) -> None:
        super().__init__(docs, job_id, **kwargs)
        self.key = self.lease_owner
        # Receipt mode batch (the job's receipt_mode, else RECEIPT_MODE, here batch_receipts) keys
        # receipts by one writer's timestamps (feaas.dao.batch): such a run is not shared, so a task
        # joins only a run in transaction mode (a start or resume is alone anyway).
        self.batch_receipts = batch_receipts
        self.transaction_mode: Condition = (
            equals(RECEIPT_MODE, "transaction") if batch_receipts
            else missing(RECEIPT_MODE) | one_of(RECEIPT_MODE, ("transaction", ""))
        )
        self.held: dict[int, Chunk] = {}
        #: the job document as last read or written by this task
        self.doc: dict[str, Any] = {}
        #: the final status when another task ended the job
        self.job_ended: JobStatus | None = None
        self._lock = threading.RLock()
        self._samples: deque[tuple[float, int]] = deque()

    # --- paths and conditions ---------------------------------------------------------------------

    def _task(self, *parts: str) -> tuple[str, ...]:
        return (TASKS, self.key, *parts)

    @staticmethod
    def _chunk(index: int, *parts: str) -> tuple[str, ...]:
        return (CHUNKS, chunk_name(index), *parts)

    def _own_task(self) -> Condition:
        return equals(self._task(LEASE_OWNER), self.lease_owner)

    def _running_own(self) -> Condition:
        return stored_as(JobStatus.RUNNING) & self._own_task()

    def _mine(self, item: Mapping[str, Any] | None) -> bool:
        entry = ((item or {}).get(TASKS) or {}).get(self.key)
        return isinstance(entry, dict) and entry.get(LEASE_OWNER) == self.lease_owner

    def _seen(self, item: Mapping[str, Any] | None) -> dict[str, Any]:
        with self._lock:
            if item is not None:
                self.doc = dict(item)
                status = status_of(item)
                if status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                    self.job_ended = status
            return self.doc

    # --- joining ------------------------------------------------------------------------------------

    def _task_entry(self, now: int) -> dict[str, Any]:
        entry: dict[str, Any] = {
            LEASE_OWNER: self.lease_owner,
            LEASE_EXPIRES_AT: now + int(self.lease_seconds),
            "joined_at": now,
            "items_per_s": 0,
            "inflight": 0,
        }
        entry.update(self.identity())
        return entry

    def claim(self) -> dict[str, Any]:
        """Start, resume or join the job. A start or resume counts an ``attempt``; a join does not."""
        now = self._now()
        guards: dict[Guard, Condition] = {
            Guard.LEASE_FREE: missing(LEASE_OWNER),
            Guard.RESUMABLE: equals("resumable", True),
            Guard.JOINABLE: missing(LEASE_OWNER) & self.transaction_mode,
        }
        self._index_claim(now)  # before the claim, as JobRecord.claim does
        try:  # the maps must exist before a path inside them can be set; only on a claimable job
            self.docs.update(
                self.job_id,
                Update(
                    set_if_absent={TASKS: {}, CHUNKS: {}}, condition=may_become(JobStatus.RUNNING, guards)
                ),
            )
        except ConditionFailed as exc:
            self._unindex()
            raise JobNotClaimable(self._why_not_joined(exc.old, now)) from None
        start = Update.setting(
            {"status": JobStatus.RUNNING.value, "updated_at": now},
            may_become(JobStatus.RUNNING, {g: guards[g] for g in (Guard.LEASE_FREE, Guard.RESUMABLE)}),
            remove=["resumable", "completed_at", "cancelled_at", "finished_by"],
        )
        start.set[self._task()] = self._task_entry(now)
        start.set_if_absent["started_at"] = now
        start.add["attempt"] = 1
        start.set.update(self.identity_on_job())
        join = Update.setting(
            {"updated_at": now}, may_become(JobStatus.RUNNING, {Guard.JOINABLE: guards[Guard.JOINABLE]})
        )
        join.set[self._task()] = self._task_entry(now)
        item: dict[str, Any] | None = None
        last: dict[str, Any] | None = None
        for upd in (start, join):
            try:
                item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
                break
            except ConditionFailed as exc:
                if self._mine(exc.old):
                    item = exc.old  # our claim landed and its reply was lost; botocore retried it
                    break
                last = exc.old
        if item is None:
            self._unindex()
            raise JobNotClaimable(self._why_not_joined(last, now))
        self.lease_until = now + int(self.lease_seconds)
        self._seen(item)
        event(
            logger,
            "chunked_job_joined",
            tasks=len(item.get(TASKS) or {}),
            plan=str((item.get(PLAN) or {}).get("state") or "none"),
        )
        return item

    def _why_not_joined(self, old: Mapping[str, Any] | None, now: int) -> str:
        mode = None if old is None else old.get(RECEIPT_MODE)
        batch = mode == "batch" or (mode in (None, "") and self.batch_receipts)
        if old is not None and batch and status_of(old) is JobStatus.RUNNING:
            return (f"job {self.job_id} is running on another task in receipt mode batch, whose receipts "
                    "are one writer's: such a run is not shared (receipt_mode transaction is)")
        return self._why_not(old, now)

    def refresh(self) -> dict[str, Any]:
        """Read the job document again (consistently)."""
        return self._seen(self.docs.get(self.job_id))

    # --- the plan -----------------------------------------------------------------------------------

    def plan_ready(self) -> bool:
        return (self.doc.get(PLAN) or {}).get("state") == PlanState.READY.value

    def take_plan(self) -> PlanLease | None:
        """Become the plan's writer when nobody writes it or its writer's lease ran out. None: the
        plan is READY or another live task writes it."""
        doc = self.doc
        plan = doc.get(PLAN)
        now = self._now()
        lease = now + int(self.lease_seconds)
        if isinstance(plan, dict) and (
            plan.get("state") == PlanState.READY.value or _int(plan.get("exp")) >= now
        ):
            return None
        upd = Update(condition=self._running_own())
        upd.set["updated_at"] = now
        if not isinstance(plan, dict):  # the first writer of the job's plan: counts start here
            upd.condition = self._running_own() & missing(PLAN)
            upd.set[PLAN] = {"state": PlanState.WRITING.value, "by": self.key, "exp": lease}
            for name in (CHUNKS_TOTAL, CHUNKS_DONE, CHUNK_NEXT, "item_count", "success_count", "error_count"):
                upd.set[name] = 0
            taken = PlanLease(None, 0, 0)
        else:  # a writer died: continue where its last published chunk left the source
            upd.condition = (
                self._running_own()
                & equals((PLAN, "by"), plan.get("by"))
                & equals((PLAN, "exp"), plan.get("exp"))
                & below((PLAN, "exp"), now)
            )
            upd.set[(PLAN, "by")], upd.set[(PLAN, "exp")] = self.key, lease
            taken = PlanLease(plan.get("cursor"), _int(doc.get(CHUNKS_TOTAL)), _int(doc.get("item_count")))
        try:
            self._seen(self.docs.update(self.job_id, upd, returns="ALL_NEW"))
        except ConditionFailed as exc:
            old = self._seen(exc.old)
            if (old.get(PLAN) or {}).get("by") == self.key and (old.get(PLAN) or {}).get(
                "state"
            ) == PlanState.WRITING.value:
                return taken  # landed, reply lost
            return None
        event(logger, "plan_writer", resumed_at_chunk=taken.chunks_total if plan else None)
        return taken

    def publish(self, index: int, items: int, item_count: int, cursor: Any, *, final: bool) -> None:
        """Publish chunk ``index`` (``items`` > 0: its object is written) and where the source
        continues; ``final``: the plan is READY. Raises :class:`LeaseLost` when another task took
        the plan over."""
        now = self._now()
        upd = Update(
            condition=stored_as(JobStatus.RUNNING)
            & equals((PLAN, "by"), self.key)
            & equals((PLAN, "state"), PlanState.WRITING.value)
            & equals(CHUNKS_TOTAL, index)
        )
        upd.set[(PLAN, "exp")] = now + int(self.lease_seconds)
        upd.set["updated_at"] = now
        upd.set[CHUNKS_TOTAL] = index + (1 if items else 0)
        upd.set["item_count"] = item_count
        if cursor is None:
            upd.remove.append((PLAN, "cursor"))
        else:
            upd.set[(PLAN, "cursor")] = cursor
        if final:
            upd.set[(PLAN, "state")] = PlanState.READY.value
        try:
            self._seen(self.docs.update(self.job_id, upd, returns="ALL_NEW"))
        except ConditionFailed as exc:
            old = self._seen(exc.old)
            landed = (
                (old.get(PLAN) or {}).get("by") == self.key
                and _int(old.get(CHUNKS_TOTAL)) == index + (1 if items else 0)
                and old.get("item_count") == item_count
            )
            if not landed:
                raise LeaseLost(f"the plan of job {self.job_id} was taken over by another task") from None

    # --- chunks -------------------------------------------------------------------------------------

    def claim_chunk(self) -> Chunk | NoChunk:
        """Claim a chunk: one given back or whose lease ran out first, else the next never claimed."""
        for _ in range(50):
            doc = self.doc
            now = self._now()
            if self.job_ended is not None or status_of(doc) is not JobStatus.RUNNING:
                return NoChunk.ENDED
            chunks = {k: v for k, v in (doc.get(CHUNKS) or {}).items() if isinstance(v, dict)}
            with self._lock:
                held = set(self.held)
            # never one this task holds (an old view of the job may show its lease run out)
            free = sorted(i for i, v in ((int(k[1:]), v) for k, v in chunks.items())
                          if i not in held and _claimable(v, now))
            upd = Update(condition=self._running_own())
            upd.set["updated_at"] = now
            was: dict[str, Any] = {}
            # This attempt's mark on the chunk: only it tells a claim of ours that landed (its reply
            # lost, botocore retried) from one this task made before (its view of the job may be
            # older than its own last write: replies of concurrent writes arrive in any order).
            claim_id = uuid.uuid4().hex[:12]
            if free:
                index = free[0]
                was = chunks[chunk_name(index)]
                upd.condition = self._running_own() & (
                    equals(self._chunk(index, "st"), ChunkState.FREE.value)
                    | (
                        equals(self._chunk(index, "st"), ChunkState.RUNNING.value)
                        & below(self._chunk(index, "exp"), now)
                    )
                )
                upd.set[self._chunk(index, "st")] = ChunkState.RUNNING.value
                upd.set[self._chunk(index, "by")] = self.key
                upd.set[self._chunk(index, "exp")] = now + int(self.lease_seconds)
                upd.set[self._chunk(index, "claim")] = claim_id
                chunk = Chunk(index, _int(was.get("since")), taken_over=True)
            else:
                index, total = _int(doc.get(CHUNK_NEXT)), _int(doc.get(CHUNKS_TOTAL))
                if index >= total:
                    if not self.plan_ready():
                        return NoChunk.PLANNING
                    others = [v for v in chunks.values() if v.get("by") != self.key]
                    return NoChunk.HELD if others else NoChunk.DONE
                upd.condition = self._running_own() & equals(CHUNK_NEXT, index)
                upd.set[CHUNK_NEXT] = index + 1
                since = int(time.time() * 1000)
                upd.set[self._chunk(index)] = {
                    "st": ChunkState.RUNNING.value,
                    "by": self.key,
                    "exp": now + int(self.lease_seconds),
                    "since": since,
                    "claim": claim_id,
                }
                chunk = Chunk(index, since, taken_over=False)
            try:
                self._seen(self.docs.update(self.job_id, upd, returns="ALL_NEW"))
            except ConditionFailed as exc:
                old = self._seen(exc.old)
                mine = (old.get(CHUNKS) or {}).get(chunk_name(index)) or {}
                if not (mine.get("by") == self.key and mine.get("claim") == claim_id):
                    if not self._mine(old) and self.job_ended is None:
                        raise LeaseLost(f"this task's lease on job {self.job_id} was lost") from None
                    continue  # another task was faster: read again and try the next one
            with self._lock:
                self.held[index] = chunk
            if chunk.taken_over:
                event(logger, "chunk_taken_over", chunk=index, previous_holder=str(was.get("by") or "")[:80])
            return chunk
        return NoChunk.HELD

    def complete_chunk(self, index: int, success: int, error: int, inflight: int = 0) -> None:
        """Chunk ``index`` is done: its counts join the job's in the same write that drops it and
        sets this task's ``inflight`` (items counted in its chunks not done) without them."""
        now = self._now()
        with self._lock:
            self.held.pop(index, None)
        upd = Update(
            condition=equals(self._chunk(index, "by"), self.key)
            & equals(self._chunk(index, "st"), ChunkState.RUNNING.value),
            remove=[self._chunk(index)],
        )
        upd.set[self._task("inflight")] = inflight
        upd.add[CHUNKS_DONE] = 1
        upd.add["success_count"] = success
        upd.add["error_count"] = error
        upd.set["updated_at"] = now
        try:
            self._seen(self.docs.update(self.job_id, upd, returns="ALL_NEW"))
        except ConditionFailed as exc:
            old = self._seen(exc.old)
            if chunk_name(index) in (old.get(CHUNKS) or {}):
                # taken over after this task's lease ran out: the taker counts it
                event(logger, "chunk_lost", level=logging.WARNING, chunk=index)
            # else: our write landed and its reply was lost (nobody can take a chunk whose lease holds)
            return
        event(
            logger,
            "chunk_done",
            chunk=index,
            success_count=success,
            error_count=error,
            chunks_done=self.doc.get(CHUNKS_DONE),
            chunks_total=self.doc.get(CHUNKS_TOTAL),
        )

    def release_held(self) -> None:
        """Give back the chunks this task holds (it is leaving before finishing them)."""
        with self._lock:
            held, self.held = sorted(self.held), {}
        for index in held:
            upd = Update(
                condition=equals(self._chunk(index, "by"), self.key),
                remove=[self._chunk(index, "by"), self._chunk(index, "exp")],
            )
            upd.set[self._chunk(index, "st")] = ChunkState.FREE.value
            try:
                self._seen(self.docs.update(self.job_id, upd, returns="ALL_NEW"))
                event(logger, "chunk_released", chunk=index)
            except ConditionFailed:
                pass  # taken over already

    def all_done(self, doc: Mapping[str, Any] | None = None) -> bool:
        doc = self.doc if doc is None else doc
        return (doc.get(PLAN) or {}).get("state") == PlanState.READY.value and _int(
            doc.get(CHUNKS_DONE)
        ) >= _int(doc.get(CHUNKS_TOTAL))

    # --- heartbeat and progress -----------------------------------------------------------------

    def _rate(self, items_done: int) -> float:
        """This task's items/s over the last minute."""
        now = time.monotonic()
        self._samples.append((now, items_done))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        t0, n0 = self._samples[0]
        return round((items_done - n0) / (now - t0), 2) if now - t0 >= 1.0 else 0.0

    def _live_tasks(self, doc: Mapping[str, Any], now: int) -> dict[str, dict[str, Any]]:
        """The job's task entries whose lease holds at ``now``, and this task's own entry."""
        return {k: v for k, v in (doc.get(TASKS) or {}).items()
                if isinstance(v, dict) and (k == self.key or _int(v.get(LEASE_EXPIRES_AT)) >= now)}

    def receipt_lane(self) -> tuple[int, int]:
        """``(modulus, residue)`` of this task's receipt timestamps: the live tasks of the job as last
        read, in the order of their keys, each take every n-th millisecond, so tasks writing one
        stream side by side rarely pick the same key (a put never overwrites: a collision is still
        refused and stamped again; this only keeps collisions rare)."""
        with self._lock:
            doc = self.doc
        live = sorted(self._live_tasks(doc, self._now()))
        if self.key not in live:
            return 1, 0
        return len(live), live.index(self.key)

    def progress_attrs(self, doc: Mapping[str, Any], rate: float, inflight: int, now: int) -> dict[str, Any]:
        """Job-level progress as this task sees it (SPEC §8.5): chunks, tasks, rate, ETA, percent."""
        live = self._live_tasks(doc, now)
        total_rate = rate + sum(float(v.get("items_per_s") or 0) for k, v in live.items() if k != self.key)
        inflight_all = inflight + sum(_int(v.get("inflight")) for k, v in live.items() if k != self.key)
        done = _int(doc.get("success_count")) + _int(doc.get("error_count")) + inflight_all
        attrs: dict[str, Any] = {
            "tasks_active": len(live),
            "items_per_s": round(total_rate, 2),
            "chunks_done": _int(doc.get(CHUNKS_DONE)),
        }
        if (doc.get(PLAN) or {}).get("state") == PlanState.READY.value:
            total = _int(doc.get("item_count"))
            attrs["percent"] = round(min(100.0, 100.0 * done / total), 2) if total else 0
            remaining = max(0, total - done)
            if total_rate > 0:
                attrs["eta_seconds"] = round(remaining / total_rate)
        return attrs

    def heartbeat(self, progress: Mapping[str, Any]) -> dict[str, Any]:
        """Renew this task's lease and its chunks' in one write, with its progress and the job's.
        A chunk done (or taken over) since the write was built makes it fail: built again without it."""
        now = self._now()
        rate = self._rate(_int(progress.get("items_done")))
        inflight = _int(progress.get("inflight"))
        for attempt in range(3):
            with self._lock:
                held = sorted(self.held)
                doc = self.doc
            beat = self._beat(held, doc, rate, inflight, now, percent_may_drop=attempt == 2)
            for name, value in passed_on(progress).items():
                beat.set[name] = value
            try:
                item = self.docs.update(self.job_id, beat, returns="ALL_NEW")
            except ConditionFailed as exc:
                old = self._seen(exc.old)
                if self.job_ended is not None and self._mine(old):
                    return old  # another task ended the job; this task's run stops on its own
                if not self._mine(old) or status_of(old) is not JobStatus.RUNNING:
                    raise LeaseLost(f"lease of this task on job {self.job_id} lost") from None
                self._drop_lost_chunks(old)
                continue
            assert item is not None
            self.lease_until = now + int(self.lease_seconds)
            return self._seen(item)
        raise LeaseLost(f"lease of this task on job {self.job_id} could not be renewed")

    def _beat(
        self,
        held: list[int],
        doc: Mapping[str, Any],
        rate: float,
        inflight: int,
        now: int,
        *,
        percent_may_drop: bool,
    ) -> Update:
        """The heartbeat's write. The job's percent, worked out from this task's view of the others,
        only ever grows: a lower one fails the write, which is built again from the job as it is."""
        condition = self._running_own()
        upd = Update()
        for index in held:
            condition = condition & equals(self._chunk(index, "by"), self.key)
            upd.set[self._chunk(index, "exp")] = now + int(self.lease_seconds)
        upd.set[self._task(LEASE_EXPIRES_AT)] = now + int(self.lease_seconds)
        upd.set[self._task("items_per_s")] = rate
        upd.set[self._task("inflight")] = inflight
        upd.set["updated_at"] = now
        for name, value in self.progress_attrs(doc, rate, inflight, now).items():
            if name == "percent" and percent_may_drop:
                continue
            if name == "percent":
                condition = condition & (missing("percent") | below("percent", value + 0.01))
            if name != CHUNKS_DONE:  # counted by the chunks' own writes
                upd.set[name] = value
        upd.condition = condition
        return upd

    def _drop_lost_chunks(self, doc: Mapping[str, Any]) -> None:
        """Forget held chunks the job no longer shows as this task's (done meanwhile, or taken over
        after this task's lease ran out: the taker counts those)."""
        chunks = doc.get(CHUNKS) or {}
        with self._lock:
            for index in list(self.held):
                entry = chunks.get(chunk_name(index))
                if not isinstance(entry, dict) or entry.get("by") != self.key:
                    self.held.pop(index)
                    if isinstance(entry, dict):
                        event(logger, "chunk_lost", level=logging.WARNING, chunk=index)

    # --- leaving ------------------------------------------------------------------------------------

    def finish(
        self, status: JobStatus, attrs: Mapping[str, Any], remove: tuple[str, ...] = ()
    ) -> JobStatus | None:
        """Leave the job. A task that ran out of chunks leaves (the one that finds every chunk done
        writes the final status); a failure, cancel or deadline ends the whole job at once; an
        interrupted task gives its chunks back, and the job becomes resumable when no other task
        is left on it. Returns the job status written, or None while the job goes on."""
        interrupted = bool(attrs.get("resumable"))
        completed = status is JobStatus.SUCCEEDED and not interrupted
        now = self._now()
        if not completed and not interrupted:
            return self._fail_job(status, attrs, remove, now)
        self.release_held()
        doc = self.refresh()
        others_live = [k for k in self._live_tasks(doc, now) if k != self.key]
        if interrupted and not others_live and status_of(doc) is JobStatus.RUNNING:
            return self._fail_job(JobStatus.FAILED, attrs, remove, now)
        upd = Update(condition=self._own_task(), remove=[self._task()])
        try:
            item = self._seen(self.docs.update(self.job_id, upd, returns="ALL_NEW"))
        except ConditionFailed as exc:
            item = self._seen(exc.old)  # gone already: our removal landed and its reply was lost
        if completed and status_of(item) is JobStatus.RUNNING and self.all_done(item):
            # this task's index row stays until the job is recorded: a task dying here leaves the
            # job RUNNING with nobody on it, which the sweeper finds through this row
            return self._finalise(item, attrs)
        self._unindex()  # the other tasks have rows of their own
        event(logger, "task_left_job", interrupted=interrupted, tasks_left=len(item.get(TASKS) or {}))
        return None

    def _fail_job(
        self, status: JobStatus, attrs: Mapping[str, Any], remove: tuple[str, ...], now: int
    ) -> JobStatus | None:
        upd = Update.setting(
            {"status": status.value, "completed_at": now, "updated_at": now, "finished_by": self.lease_owner},
            may_become(status, {Guard.OWN_LEASE: self._own_task()}),
            remove=[self._task(), *[k for k in remove if k not in attrs]],
        )
        for name in (*FAILURE_ATTRS, "resumable"):
            if name in attrs:
                upd.set[name] = attrs[name]
        if not attrs.get("resumable"):  # ends for good: this task's items in chunks not done count too
            error = _int(attrs.get("inflight_error"))
            upd.add["success_count"] = max(0, _int(attrs.get("inflight")) - error)
            upd.add["error_count"] = error
        for name, value in passed_on(attrs).items():
            upd.set.setdefault(name, value)
        try:
            self.docs.update(self.job_id, upd)
        except ConditionFailed as exc:
            old = exc.old or {}
            if old.get("finished_by") != self.lease_owner:
                ended = status_of(old)
                if ended in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                    event(logger, "job_ended_by_other_task", status=ended.value)
                    self._unindex()
                    return None
                raise LeaseLost(f"could not finish job {self.job_id}: this task's lease was lost") from None
        self._unindex()
        return status

    def _finalise(self, item: Mapping[str, Any], attrs: Mapping[str, Any]) -> JobStatus | None:
        """Every chunk is done: write the job's final status from the chunks' counts. Any task may
        get here; the write's condition lets exactly one land."""
        now = self._now()
        success, error = _int(item.get("success_count")), _int(item.get("error_count"))
        status, message, extra = outcome_for_counts(success, error, self.tolerated_percent)
        total = _int(item.get(CHUNKS_TOTAL))
        all_done = (
            equals((PLAN, "state"), PlanState.READY.value)
            & equals(CHUNKS_TOTAL, total)
            & equals(CHUNKS_DONE, total)
        )
        upd = Update.setting(
            {
                "status": status.value,
                "completed_at": now,
                "updated_at": now,
                "finished_by": self.lease_owner,
                "tasks_active": 0,
                "eta_seconds": 0,
                **extra,
            },
            may_become(status, {Guard.ALL_CHUNKS_DONE: all_done}),
            remove=[] if message else ["error_message"],
        )
        if message:
            upd.set["error_message"] = message
        if status is JobStatus.SUCCEEDED:
            upd.set["percent"] = 100
        if "receipts_stream_id" in attrs:
            upd.set["receipts_stream_id"] = attrs["receipts_stream_id"]
        for name, value in passed_on(attrs).items():
            if name not in upd.set:
                upd.set[name] = value
        if "outcome" not in extra:
            upd.remove.append("outcome")
        try:
            self.docs.update(self.job_id, upd)
        except ConditionFailed as exc:
            old = exc.old or {}
            if old.get("finished_by") != self.lease_owner:
                event(logger, "job_finalised_by_other_task", status=status_of(old).value)
                self._unindex()
                return None
        self._unindex()
        self.final_attrs = {
            "success_count": success,
            "error_count": error,
            "item_count": _int(item.get("item_count")),
            "percent": 100 if status is JobStatus.SUCCEEDED else _int(item.get("percent")),
        }
        event(
            logger,
            "job_finalised",
            status=status.value,
            success_count=success,
            error_count=error,
            chunks=total,
        )
        return status
