"""Job lifecycle on the job document (SPEC §4): claim, heartbeat, finish — each one conditional
``UpdateItem`` of named attributes, so attributes the worker does not own always survive.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from feaas.dao import ConditionFailed, Documents, Update
from feaas.errors import Cancelled, DeadlineExceeded, JobNotClaimable, LeaseLost, StorageError
from feaas.logs import event
from feaas.stopping import StopSignal

logger = logging.getLogger(__name__)


class JobStatus(str, enum.Enum):
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    SUCCEEDED = "SUCCEEDED"


#: Which status a claim or finish may move a job from (SPEC §4). FAILED → RUNNING only when resumable,
#: RUNNING → RUNNING only when the lease expired (a crashed task).
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.INITIALIZING: frozenset({JobStatus.RUNNING}),
    JobStatus.RUNNING: frozenset({JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED}),
    JobStatus.FAILED: frozenset({JobStatus.RUNNING}),
    JobStatus.SUCCEEDED: frozenset(),
}

_STATUS_NUMBERS = {JobStatus.INITIALIZING: 0, JobStatus.RUNNING: 1, JobStatus.FAILED: 2, JobStatus.SUCCEEDED: 3}
LEASE_ATTRIBUTES = ("lease_owner", "lease_expires_at")
#: How a job nobody has claimed yet stores its status (an absent status counts too): the name, its
#: number, empty, or "PENDING" as the upstream project's own launch scripts write it (SPEC §8.1).
INITIAL_STATUSES: tuple[str | int, ...] = ("INITIALIZING", 0, "", "PENDING")


def status_of(item: Mapping[str, Any]) -> JobStatus:
    """The status as stored: a name, a number, or absent (= INITIALIZING, like "PENDING")."""
    raw = item.get("status")
    if raw is None or (isinstance(raw, str) and raw in INITIAL_STATUSES):
        return JobStatus.INITIALIZING
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        for status, number in _STATUS_NUMBERS.items():
            if number == raw:
                return status
    try:
        return JobStatus(str(raw))
    except ValueError:
        return JobStatus.INITIALIZING if str(raw) == "0" else JobStatus.FAILED


def is_true(value: Any) -> bool:
    """``request_cancel`` and friends as written by others: bool, number or text."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def ecs_task_arn(timeout_s: float = 2.0) -> str | None:
    """The Fargate task ARN from the ECS task metadata endpoint v4, when running on ECS."""
    base = os.environ.get("ECS_CONTAINER_METADATA_URI_V4")
    if not base:
        return None
    try:
        with urllib.request.urlopen(f"{base}/task", timeout=timeout_s) as resp:  # noqa: S310 (fixed ECS URL)
            arn = json.load(resp).get("TaskARN")
            return str(arn) if arn else None
    except (OSError, ValueError) as exc:
        event(logger, "task_metadata_unavailable", level=logging.WARNING, error=str(exc))
        return None


class JobRecord:
    """Conditional writes to one job document on behalf of one task (its lease)."""

    def __init__(self, docs: Documents, job_id: str, *, lease_seconds: float, task_arn: str | None = None,
                 clock: Callable[[], float] = time.time, lease_owner: str | None = None) -> None:
        self.docs = docs
        self.job_id = job_id
        self.lease_seconds = lease_seconds
        self.task_arn = task_arn
        self.clock = clock
        self.lease_owner = lease_owner or f"{os.uname().nodename}:{os.getpid()}:{os.urandom(6).hex()}"
        #: failure share above which a many-item run FAILS; sharded records judge the whole job with it
        self.tolerated_percent = 100.0

    def _now(self) -> int:
        return int(self.clock())

    def claim(self) -> dict[str, Any]:
        """Take the job (SPEC §4.1) and return it as now stored. Raises :class:`JobNotClaimable`."""
        now = self._now()
        upd = Update(
            set={"status": JobStatus.RUNNING.value, "updated_at": now, "lease_owner": self.lease_owner,
                 "lease_expires_at": now + int(self.lease_seconds)},
            set_if_absent={"started_at": now},
            add={"attempt": 1},
            remove=["resumable", "completed_at", "cancelled_at", "finished_by"],
        )
        if self.task_arn:
            upd.set["fargate_task_arn"] = self.task_arn
        status, lease_owner, expires, resumable = (upd.name(n) for n in
                                                   ("status", "lease_owner", "lease_expires_at", "resumable"))
        init = " OR ".join(f"{status} = {upd.value(v)}" for v in INITIAL_STATUSES)
        running = " OR ".join(f"{status} = {upd.value(v)}" for v in ("RUNNING", 1))
        failed = " OR ".join(f"{status} = {upd.value(v)}" for v in ("FAILED", 2))
        upd.condition = (
            f"((attribute_not_exists({status}) OR {init}) AND attribute_not_exists({lease_owner}))"
            f" OR (({running}) AND {expires} < {upd.value(now)})"
            f" OR (({failed}) AND {resumable} = {upd.value(True)})"
        )
        try:
            item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
        except ConditionFailed as exc:
            if exc.old is not None and exc.old.get("lease_owner") == self.lease_owner:
                return exc.old  # our own claim landed and its reply was lost; botocore retried it
            raise JobNotClaimable(self._why_not(exc.old, now)) from None
        assert item is not None
        return item

    def _why_not(self, old: Mapping[str, Any] | None, now: int) -> str:
        if old is None:
            return f"job {self.job_id} not found"
        raw = old.get("status")
        if (raw is not None and raw not in INITIAL_STATUSES and str(raw) not in JobStatus.__members__
                and raw not in _STATUS_NUMBERS.values()):
            return f"job {self.job_id} has an unrecognised status {str(raw)[:80]!r}; it was left unchanged"
        status = status_of(old)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return f"job {self.job_id} already finished ({status.value})"
        expires = old.get("lease_expires_at")
        return f"job {self.job_id} is held by another live task (lease until {expires}, now {now})"

    def _own_lease(self, upd: Update) -> str:
        return (f"{upd.name('status')} = {upd.value(JobStatus.RUNNING.value)}"
                f" AND {upd.name('lease_owner')} = {upd.value(self.lease_owner)}")

    def heartbeat(self, progress: Mapping[str, Any]) -> dict[str, Any]:
        """Renew the lease and save progress in one write; returns the item (for ``request_cancel``).
        Raises :class:`LeaseLost` when another task holds the job now."""
        now = self._now()
        upd = Update(set={**progress, "updated_at": now, "lease_expires_at": now + int(self.lease_seconds)})
        upd.condition = self._own_lease(upd)
        try:
            item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
        except ConditionFailed as exc:
            raise LeaseLost(f"lease on job {self.job_id} lost: {self._why_not(exc.old, now)}") from None
        assert item is not None
        return item

    def save(self, attrs: Mapping[str, Any]) -> None:
        """Save attributes under this task's lease (no lease renewal)."""
        upd = Update(set=dict(attrs))
        upd.condition = self._own_lease(upd)
        try:
            self.docs.update(self.job_id, upd)
        except ConditionFailed as exc:
            raise LeaseLost(f"lease on job {self.job_id} lost: {self._why_not(exc.old, self._now())}") from None

    def finish(self, status: JobStatus, attrs: Mapping[str, Any], remove: tuple[str, ...] = ()) -> JobStatus | None:
        """RUNNING → ``status`` (SPEC §4.3), dropping the lease; returns the status written.
        Raises :class:`LeaseLost`."""
        now = self._now()
        upd = Update(set={**attrs, "status": status.value, "completed_at": now, "updated_at": now,
                          "finished_by": self.lease_owner},
                     remove=[*LEASE_ATTRIBUTES, *remove])
        upd.condition = self._own_lease(upd)
        try:
            self.docs.update(self.job_id, upd)
        except ConditionFailed as exc:
            if exc.old is not None and exc.old.get("finished_by") == self.lease_owner:
                return status  # our finish landed and its reply was lost; botocore retried it
            raise LeaseLost(f"could not finish job {self.job_id}: {self._why_not(exc.old, now)}") from None
        return status


@dataclass
class Progress:
    """Progress shared between the run and the heartbeat thread. ``version`` bumps on each change."""

    values: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, **values: Any) -> None:
        with self._lock:
            self.values.update(values)
            self.version += 1

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            return self.version, dict(self.values)


class Heartbeat(threading.Thread):
    """Renews the lease every ``period_s``, writes progress at most once a second when it changes,
    reads ``request_cancel`` from the same write, and enforces the deadline."""

    def __init__(self, record: JobRecord, progress: Progress, stop: StopSignal, *, period_s: float,
                 deadline_at: float | None = None, timeout_s: float | None = None,
                 min_interval_s: float = 1.0) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.record = record
        self.progress = progress
        self.stop_signal = stop
        self.period_s = period_s
        self.deadline_at = deadline_at
        self.timeout_s = timeout_s
        self.min_interval_s = min_interval_s
        self._done = threading.Event()
        self._written_version = -1
        self._last_write = time.monotonic()

    def check_item(self, item: Mapping[str, Any]) -> None:
        if is_true(item.get("request_cancel")):
            self.stop_signal.stop(Cancelled())

    def run(self) -> None:
        tick = min(self.min_interval_s, self.period_s)
        while not self._done.wait(tick):
            if self.deadline_at is not None and time.monotonic() >= self.deadline_at:
                self.stop_signal.stop(DeadlineExceeded(f"timed out after {self.timeout_s:g} s"))
            version, values = self.progress.snapshot()
            since = time.monotonic() - self._last_write
            changed = version != self._written_version
            if since < self.period_s and not (changed and since >= self.min_interval_s):
                continue
            try:
                item = self.record.heartbeat(values)
            except LeaseLost as exc:
                event(logger, "lease_lost", level=logging.ERROR, error=str(exc))
                self.stop_signal.stop(exc)
                return
            except StorageError as exc:  # retried next tick; the lease outlives a few missed beats
                event(logger, "heartbeat_failed", level=logging.WARNING, error=str(exc))
                continue
            self._written_version = version
            self._last_write = time.monotonic()
            self.check_item(item)

    def close(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join()


def outcome_for_counts(success: int, error: int, tolerated_percent: float) -> tuple[JobStatus, str, dict[str, Any]]:
    """Final status of a many-item run from its counts (SPEC §5.3): ``(status, error_message, attrs)``."""
    n = success + error
    if n == 0:
        return JobStatus.SUCCEEDED, "No items found", {}
    if error == 0:
        return JobStatus.SUCCEEDED, "", {}
    message = f"{error} of {n} items failed"
    if error == n or 100.0 * error / n > tolerated_percent:
        return JobStatus.FAILED, message, {}
    return JobStatus.SUCCEEDED, message, {"outcome": "PARTIAL"}


class ShardState(str, enum.Enum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    INTERRUPTED = "INTERRUPTED"


class ShardedJobRecord(JobRecord):
    """One of ``shard_count`` tasks sharing a job (SPEC §5.4). Each shard holds its own lease and
    counts under ``shards.s{i}``; the job-level counts are the sums; the shard whose completion
    makes every shard DONE writes the final status, so exactly one does."""

    def __init__(self, docs: Documents, job_id: str, *, shard_index: int, shard_count: int, **kwargs: Any) -> None:
        super().__init__(docs, job_id, **kwargs)
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.key = f"s{shard_index}"
        self._others = (0, 0)  # success, error of the other shards as last seen

    def _path(self, *parts: str) -> tuple[str, ...]:
        return ("shards", self.key, *parts)

    def _own_lease(self, upd: Update) -> str:
        return (f"{upd.name('status')} = {upd.value(JobStatus.RUNNING.value)}"
                f" AND {upd.name(self._path('lease_owner'))} = {upd.value(self.lease_owner)}")

    def claim(self) -> dict[str, Any]:
        now = self._now()
        try:  # the map must exist before a path inside it can be set
            self.docs.update(self.job_id, Update(set_if_absent={"shards": {}}))
        except ConditionFailed:
            raise JobNotClaimable(f"job {self.job_id} not found") from None
        before = self.docs.get(self.job_id) or {}
        previous = (before.get("shards") or {}).get(self.key) or {}
        upd = Update(
            set={"status": JobStatus.RUNNING.value, "updated_at": now,
                 self._path(): {"lease_owner": self.lease_owner, "lease_expires_at": now + int(self.lease_seconds),
                                "state": ShardState.RUNNING.value, "attempt": int(previous.get("attempt", 0)) + 1,
                                "success_count": 0, "error_count": 0}},
            set_if_absent={"started_at": now},
            add={"attempt": 1},
            remove=["resumable", "completed_at", "cancelled_at"],
        )
        if self.task_arn:
            upd.set[self._path()]["task_arn"] = self.task_arn
        status, resumable = upd.name("status"), upd.name("resumable")
        shard, state, expires = upd.name(self._path()), upd.name(self._path("state")), upd.name(self._path("lease_expires_at"))
        job_open = " OR ".join([f"attribute_not_exists({status})"] + [f"{status} = {upd.value(v)}"
                                                                     for v in (*INITIAL_STATUSES, "RUNNING", 1)])
        upd.condition = (
            f"(({job_open}) OR ({status} = {upd.value('FAILED')} AND {resumable} = {upd.value(True)}))"
            f" AND (attribute_not_exists({shard}) OR {state} = {upd.value(ShardState.INTERRUPTED.value)}"
            f" OR ({state} = {upd.value(ShardState.RUNNING.value)} AND {expires} < {upd.value(now)}))"
        )
        try:
            item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
        except ConditionFailed as exc:
            mine = ((exc.old or {}).get("shards") or {}).get(self.key) or {}
            if mine.get("lease_owner") == self.lease_owner:  # our claim landed; its reply was lost
                return {**(exc.old or {}), "attempt": mine.get("attempt")}
            raise JobNotClaimable(self._why_not_shard(exc.old, now)) from None
        assert item is not None
        self._remember_others(item)
        return {**item, "attempt": item["shards"][self.key]["attempt"]}

    def _why_not_shard(self, old: Mapping[str, Any] | None, now: int) -> str:
        shard = ((old or {}).get("shards") or {}).get(self.key) or {}
        if old is not None and shard.get("state") == ShardState.DONE.value:
            return f"shard {self.shard_index} of job {self.job_id} already finished"
        if old is not None and shard.get("state") == ShardState.RUNNING.value and status_of(old) is JobStatus.RUNNING:
            return (f"shard {self.shard_index} of job {self.job_id} is held by another live task "
                    f"(lease until {shard.get('lease_expires_at')}, now {now})")
        return self._why_not(old, now)

    def _remember_others(self, item: Mapping[str, Any]) -> None:
        shards = item.get("shards") or {}
        others = [v for k, v in shards.items() if k != self.key and isinstance(v, dict)]
        self._others = (sum(int(v.get("success_count", 0)) for v in others),
                        sum(int(v.get("error_count", 0)) for v in others))

    def _counts(self, progress: Mapping[str, Any], update: Update) -> None:
        """Own counts under the shard; job-level counts and percent as the sum over shards."""
        success, error = int(progress.get("success_count", 0)), int(progress.get("error_count", 0))
        update.set[self._path("success_count")] = success
        update.set[self._path("error_count")] = error
        total_s, total_e = success + self._others[0], error + self._others[1]
        update.set["success_count"], update.set["error_count"] = total_s, total_e
        item_count = progress.get("item_count")
        if item_count is not None:
            update.set["item_count"] = item_count
            update.set["percent"] = round(min(100.0, 100.0 * (total_s + total_e) / item_count), 2) if item_count else 0

    def heartbeat(self, progress: Mapping[str, Any]) -> dict[str, Any]:
        now = self._now()
        upd = Update(set={"updated_at": now, self._path("lease_expires_at"): now + int(self.lease_seconds)})
        self._counts(progress, upd)
        upd.condition = self._own_lease(upd)
        try:
            item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
        except ConditionFailed as exc:
            raise LeaseLost(f"lease on shard {self.shard_index} of job {self.job_id} lost: "
                            f"{self._why_not_shard(exc.old, now)}") from None
        assert item is not None
        self._remember_others(item)
        return item

    def save(self, attrs: Mapping[str, Any]) -> None:
        raise NotImplementedError("sharded runs keep no per-run registers")

    def finish(self, status: JobStatus, attrs: Mapping[str, Any], remove: tuple[str, ...] = ()) -> JobStatus | None:
        """End this shard. A shard that completed its items marks itself DONE (the last one writes
        the aggregated final status); a failure, cancel or deadline ends the whole job at once;
        an interruption marks the shard resumable. Returns the job status written, or None while
        other shards still run."""
        now = self._now()
        interrupted = bool(attrs.get("resumable"))
        completed = status is JobStatus.SUCCEEDED and not interrupted
        state = ShardState.DONE if (completed or not interrupted) else ShardState.INTERRUPTED
        upd = Update(set={"updated_at": now, self._path("state"): state.value,
                          self._path("finished_by"): self.lease_owner},
                     remove=[self._path("lease_owner"), self._path("lease_expires_at")])
        self._counts(attrs, upd)
        if not completed and not interrupted:  # cancel, deadline or failure: the job fails now
            upd.set.update({k: v for k, v in attrs.items() if k not in ("success_count", "error_count", "percent")})
            upd.set.update({"status": status.value, "completed_at": now})
            upd.remove += [k for k in remove if k not in attrs]
        upd.condition = self._own_lease(upd)
        try:
            item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
        except ConditionFailed as exc:
            mine = ((exc.old or {}).get("shards") or {}).get(self.key) or {}
            if mine.get("finished_by") != self.lease_owner:
                raise LeaseLost(f"could not finish shard {self.shard_index}: "
                                f"{self._why_not_shard(exc.old, now)}") from None
            item = exc.old  # our write landed and its reply was lost; botocore retried it
        assert item is not None
        if not completed and not interrupted:
            return status
        shards = item.get("shards") or {}
        states = [str((shards.get(f"s{i}") or {}).get("state")) for i in range(self.shard_count)]
        if any(s not in (ShardState.DONE.value, ShardState.INTERRUPTED.value) for s in states):
            return None  # others still running
        return self._finalise(item, ShardState.INTERRUPTED.value in states, attrs)

    def _finalise(self, item: Mapping[str, Any], any_interrupted: bool, attrs: Mapping[str, Any]) -> JobStatus:
        """Every shard has ended: write the job's final status (only this task can get here)."""
        now = self._now()
        shards = item.get("shards") or {}
        success = sum(int((shards.get(f"s{i}") or {}).get("success_count", 0)) for i in range(self.shard_count))
        error = sum(int((shards.get(f"s{i}") or {}).get("error_count", 0)) for i in range(self.shard_count))
        extra: dict[str, Any] = {}
        if any_interrupted:
            status, message = JobStatus.FAILED, "Job was interrupted; it can be resumed"
            extra["resumable"] = True
        else:
            status, message, extra = outcome_for_counts(success, error, self.tolerated_percent)
        upd = Update(set={"status": status.value, "completed_at": now, "updated_at": now, "success_count": success,
                          "error_count": error, **extra},
                     remove=[] if message else ["error_message"])
        if message:
            upd.set["error_message"] = message
        if status is JobStatus.SUCCEEDED:
            upd.set["percent"] = 100
        if "receipts_stream_id" in attrs:
            upd.set["receipts_stream_id"] = attrs["receipts_stream_id"]
        if "outcome" not in extra:
            upd.remove.append("outcome")
        upd.condition = f"{upd.name('status')} = {upd.value(JobStatus.RUNNING.value)}"
        for i in range(self.shard_count):
            upd.condition += f" AND {upd.name(('shards', f's{i}', 'state'))} IN ({upd.value('DONE')}, {upd.value('INTERRUPTED')})"
        try:
            self.docs.update(self.job_id, upd)
        except ConditionFailed:
            raise LeaseLost(f"job {self.job_id} was finished by another task") from None
        event(logger, "job_finalised_by_shard", shard=self.shard_index, status=status.value, success_count=success,
              error_count=error)
        return status


def record_for(docs: Documents, job_id: str, *, lease_seconds: float, shard_index: int = 0,
               shard_count: int = 1) -> JobRecord:
    """The job record this task writes through: its own lease, or its shard's."""
    task_arn = ecs_task_arn()
    if shard_count > 1:
        return ShardedJobRecord(docs, job_id, shard_index=shard_index, shard_count=shard_count,
                                lease_seconds=lease_seconds, task_arn=task_arn)
    return JobRecord(docs, job_id, lease_seconds=lease_seconds, task_arn=task_arn)
