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


def status_of(item: Mapping[str, Any]) -> JobStatus:
    """The status as stored: a name, a number, or absent (= INITIALIZING)."""
    raw = item.get("status")
    if raw is None or raw == "":
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
            remove=["resumable", "completed_at", "cancelled_at"],
        )
        if self.task_arn:
            upd.set["fargate_task_arn"] = self.task_arn
        status, lease_owner, expires, resumable = (upd.name(n) for n in
                                                   ("status", "lease_owner", "lease_expires_at", "resumable"))
        init = " OR ".join(f"{status} = {upd.value(v)}" for v in ("INITIALIZING", 0, ""))
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
            raise JobNotClaimable(self._why_not(exc.old, now)) from None
        assert item is not None
        return item

    def _why_not(self, old: Mapping[str, Any] | None, now: int) -> str:
        if old is None:
            return f"job {self.job_id} not found"
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

    def finish(self, status: JobStatus, attrs: Mapping[str, Any], remove: tuple[str, ...] = ()) -> None:
        """RUNNING → ``status`` (SPEC §4.3), dropping the lease. Raises :class:`LeaseLost`."""
        now = self._now()
        upd = Update(set={**attrs, "status": status.value, "completed_at": now, "updated_at": now},
                     remove=[*LEASE_ATTRIBUTES, *remove])
        upd.condition = self._own_lease(upd)
        try:
            self.docs.update(self.job_id, upd)
        except ConditionFailed as exc:
            raise LeaseLost(f"could not finish job {self.job_id}: {self._why_not(exc.old, now)}") from None


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
