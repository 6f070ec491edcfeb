"""Conditional writes to one job document on behalf of one task and its lease (SPEC §4): claim,
heartbeat, finish. Each is one ``UpdateItem`` of named attributes under a condition built from
:data:`feaas.jobs.status.ALLOWED_TRANSITIONS`, so attributes the worker does not own always survive.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from feaas.dao import ConditionFailed, Documents, RunningIndex, Update
from feaas.dao.expressions import Condition, below, equals, missing
from feaas.errors import JobNotClaimable, LeaseLost, StorageError
from feaas.jobs.status import Guard, JobStatus, is_recognised, may_become, status_of
from feaas.logs import event
from feaas.stopping import SIGTERM_BUDGET_S, StopSignal, call_within

logger = logging.getLogger(__name__)

LEASE_OWNER, LEASE_EXPIRES_AT = "lease_owner", "lease_expires_at"
#: How long a claim (with the reads before it) may take at most; the sweeper keeps an index row
#: whose owner holds no lease for longer than that (:data:`feaas.jobs.sweep.UNCLAIMED_ROW_S`).
CLAIM_TIMEOUT_S = 120
#: How long a claim under way may still take once SIGTERM came: half the budget, the rest is
#: for recording the interruption.
CLAIM_AFTER_STOP_S = SIGTERM_BUDGET_S / 2


class JobRecord:
    """The job document as one task writes it: every write holds, or takes, this task's lease."""

    def __init__(self, docs: Documents, job_id: str, *, lease_seconds: float, task_arn: str | None = None,
                 clock: Callable[[], float] = time.time, lease_owner: str | None = None,
                 index: RunningIndex | None = None, batch_job_id: str | None = None) -> None:
        self.docs = docs
        self.job_id = job_id
        self.lease_seconds = lease_seconds
        #: who this task is: its ECS task ARN, or off ECS its AWS Batch job id (``<id>:<index>`` for
        #: an array child); written with its lease so the logs and the sweeper can name it
        self.task_arn = task_arn
        self.batch_job_id = batch_job_id
        self.clock = clock
        self.lease_owner = lease_owner or f"{os.uname().nodename}:{os.getpid()}:{os.urandom(6).hex()}"
        #: failure share above which a many-item run FAILS; sharded records judge the whole job with it
        self.tolerated_percent = 100.0
        #: the index of held jobs the sweeper reads (SPEC §8.3), and what this task adds to its row
        #: (run mode, user: what a relaunch needs when ECS no longer describes the task)
        self.index = index
        self.index_row: dict[str, Any] = {}
        #: when this task's lease runs out as last written (epoch seconds)
        self.lease_until = 0.0
        #: counts the final write recorded when they differ from this task's own (a shared run's)
        self.final_attrs: dict[str, Any] = {}

    def _now(self) -> int:
        return int(self.clock())

    def identity(self) -> dict[str, str]:
        """``task_arn`` and/or ``batch_job_id``, those known: what an index row and a task entry name."""
        found = {"task_arn": self.task_arn, "batch_job_id": self.batch_job_id}
        return {k: v for k, v in found.items() if v}

    def identity_on_job(self) -> dict[str, str]:
        """What the task that starts a job writes on it about itself (SPEC §4.1's
        ``fargate_task_arn``, or an AWS Batch child's ``batch_job_id``)."""
        found = {"fargate_task_arn": self.task_arn, "batch_job_id": self.batch_job_id}
        return {k: v for k, v in found.items() if v}

    # What the guards of the transitions table mean for this record's lease.

    def _claim_guards(self, now: int) -> dict[Guard, Condition]:
        return {Guard.LEASE_FREE: missing(LEASE_OWNER), Guard.LEASE_EXPIRED: below(LEASE_EXPIRES_AT, now),
                Guard.RESUMABLE: equals("resumable", True)}

    def _own_lease(self) -> dict[Guard, Condition]:
        return {Guard.OWN_LEASE: equals(LEASE_OWNER, self.lease_owner)}

    def claim(self) -> dict[str, Any]:
        """Take the job (SPEC §4.1) and return it as now stored. Raises :class:`JobNotClaimable`.

        This claim's row in the index of held jobs is written first (a failed index write leaves
        the job untouched: :class:`StorageError`), so a task killed at any point after the claim
        leaves a job the sweeper finds; a claim that is refused removes its row again."""
        now = self._now()
        self._index_claim(now)
        upd = Update.setting(
            {"status": JobStatus.RUNNING.value, "updated_at": now, LEASE_OWNER: self.lease_owner,
             LEASE_EXPIRES_AT: now + int(self.lease_seconds)},
            may_become(JobStatus.RUNNING, self._claim_guards(now)),
            remove=["resumable", "completed_at", "cancelled_at", "finished_by"],
        )
        upd.set_if_absent["started_at"] = now
        upd.add["attempt"] = 1
        upd.set.update(self.identity_on_job())
        try:
            item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
        except ConditionFailed as exc:
            if exc.old is not None and exc.old.get(LEASE_OWNER) == self.lease_owner:
                item = exc.old  # our own claim landed and its reply was lost; botocore retried it
            else:
                self._unindex()
                raise JobNotClaimable(self._why_not(exc.old, now)) from None
        assert item is not None
        self.lease_until = now + int(self.lease_seconds)
        return item

    def claim_in_time(self, stop: StopSignal, before: Callable[[], None] = lambda: None) -> dict[str, Any]:
        """``before()`` (checks that read the job) then :meth:`claim`, given at most
        :data:`CLAIM_TIMEOUT_S`, and at most :data:`CLAIM_AFTER_STOP_S` once ``stop`` came (the
        SIGTERM budget must still cover the final write). Raises :class:`StorageError` on giving
        up: whatever landed stays (this claim's index row, maybe its lease, left to expire), so
        the sweeper finds the job."""

        def checked_claim() -> dict[str, Any]:
            before()
            return self.claim()

        try:
            return call_within(checked_claim, end=time.monotonic() + CLAIM_TIMEOUT_S, stop=stop,
                               after_stop_s=CLAIM_AFTER_STOP_S)
        except TimeoutError:
            why = "after SIGTERM/SIGINT" if stop.stopped else f"within {CLAIM_TIMEOUT_S} s"
            raise StorageError(f"gave up claiming job {self.job_id}: storage did not answer {why}; "
                               "anything written is left for the sweeper") from None

    def _index_claim(self, now: int) -> None:
        """Add this claim attempt's row to the index of held jobs (before the claim itself)."""
        if self.index is None:
            return
        row = {**self.index_row, "indexed_at": now, **self.identity()}
        self.index.add(self.job_id, self.lease_owner, row)

    def _unindex(self) -> None:
        """Remove this claim's row from the index of held jobs (its final status written, or its
        claim refused); a failure leaves a stale row the sweeper removes."""
        if self.index is None:
            return
        try:
            self.index.remove(self.job_id, self.lease_owner)
        except StorageError as exc:
            event(logger, "running_unindex_failed", level=logging.WARNING, error=str(exc))

    def _why_not(self, old: Mapping[str, Any] | None, now: int) -> str:
        if old is None:
            return f"job {self.job_id} not found"
        raw = old.get("status")
        if not is_recognised(raw):
            return f"job {self.job_id} has an unrecognised status {str(raw)[:80]!r}; it was left unchanged"
        status = status_of(old)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return f"job {self.job_id} already finished ({status.value})"
        expires = old.get(LEASE_EXPIRES_AT)
        return f"job {self.job_id} is held by another live task (lease until {expires}, now {now})"

    def heartbeat(self, progress: Mapping[str, Any]) -> dict[str, Any]:
        """Renew the lease and save progress in one write; returns the item (for ``request_cancel``).
        Raises :class:`LeaseLost` when another task holds the job now."""
        now = self._now()
        upd = Update.setting({**progress, "updated_at": now, LEASE_EXPIRES_AT: now + int(self.lease_seconds)},
                             may_become(JobStatus.RUNNING, self._own_lease()))
        try:
            item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
        except ConditionFailed as exc:
            raise LeaseLost(f"lease on job {self.job_id} lost: {self._why_not(exc.old, now)}") from None
        assert item is not None
        self.lease_until = now + int(self.lease_seconds)
        return item

    def finish(
        self, status: JobStatus, attrs: Mapping[str, Any], remove: tuple[str, ...] = ()
    ) -> JobStatus | None:
        """RUNNING → ``status`` (SPEC §4.3), dropping the lease; returns the status written.
        Raises :class:`LeaseLost`."""
        now = self._now()
        upd = Update.setting(
            {
                **attrs,
                "status": status.value,
                "completed_at": now,
                "updated_at": now,
                "finished_by": self.lease_owner,
            },
            may_become(status, self._own_lease()),
            remove=[LEASE_OWNER, LEASE_EXPIRES_AT, *remove],
        )
        try:
            self.docs.update(self.job_id, upd)
        except ConditionFailed as exc:
            if exc.old is None or exc.old.get("finished_by") != self.lease_owner:
                why = self._why_not(exc.old, now)
                raise LeaseLost(f"could not finish job {self.job_id}: {why}") from None
            # our finish landed and its reply was lost; botocore retried it
        self._unindex()
        return status

    def finish_in_time(self, status: JobStatus, attrs: Mapping[str, Any], remove: tuple[str, ...] = (), *,
                       give_up_at: float | None = None, retry_s: float = 1.0) -> JobStatus | None:
        """:meth:`finish`, retried through a storage outage until this task's lease would run out
        (after that the sweeper records the job) or ``give_up_at`` (``time.monotonic()``: the
        SIGTERM budget), whichever comes first. Raises :class:`StorageError` on giving up, with the
        lease left to expire; :class:`LeaseLost` as :meth:`finish` does."""
        end = time.monotonic() + max(0.0, self.lease_until - self.clock() - 1.0)
        if give_up_at is not None:
            end = min(end, give_up_at)

        def attempts() -> JobStatus | None:
            while True:
                try:
                    return self.finish(status, attrs, remove)
                except StorageError as exc:
                    if time.monotonic() + retry_s >= end:
                        raise
                    event(logger, "job_finish_retry", level=logging.WARNING, error=str(exc))
                    time.sleep(retry_s)

        try:
            return call_within(attempts, end=end)
        except TimeoutError:
            raise StorageError(f"gave up writing the final status of job {self.job_id}: storage did not "
                               "answer in time; the lease is left to expire") from None
