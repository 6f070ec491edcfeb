"""One job split over several tasks (SPEC §5.4): each shard holds its own lease and counts under
``shards.s{i}``; the job-level counts are the sums; the shard whose completion makes every shard
DONE writes the final status, so exactly one does."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Any

from feaas.dao import ConditionFailed, Documents, Update
from feaas.dao.expressions import Condition, all_of, below, equals, missing, one_of
from feaas.errors import JobNotClaimable, LeaseLost
from feaas.jobs.record import LEASE_EXPIRES_AT, LEASE_OWNER, JobRecord
from feaas.jobs.status import Guard, JobStatus, may_become, outcome_for_counts, status_of
from feaas.logs import event

logger = logging.getLogger(__name__)


class ShardState(str, enum.Enum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    INTERRUPTED = "INTERRUPTED"


ENDED = (ShardState.DONE.value, ShardState.INTERRUPTED.value)


class ShardedJobRecord(JobRecord):
    """The job document as one of ``shard_count`` tasks writes it: the lease lives in its shard."""

    def __init__(
        self, docs: Documents, job_id: str, *, shard_index: int, shard_count: int, **kwargs: Any
    ) -> None:
        super().__init__(docs, job_id, **kwargs)
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.key = f"s{shard_index}"
        self._others = (0, 0)  # success, error of the other shards as last seen

    def _path(self, *parts: str) -> tuple[str, ...]:
        return ("shards", self.key, *parts)

    def _claim_guards(self, now: int) -> dict[Guard, Condition]:
        # A shard is free when it never started or was interrupted; taken over when its task crashed.
        # Either makes it claimable while the job runs (other shards may hold their own leases).
        claimable = (
            missing(self._path())
            | equals(self._path("state"), ShardState.INTERRUPTED.value)
            | (
                equals(self._path("state"), ShardState.RUNNING.value)
                & below(self._path(LEASE_EXPIRES_AT), now)
            )
        )
        return {
            Guard.LEASE_FREE: claimable,
            Guard.LEASE_EXPIRED: claimable,
            Guard.RESUMABLE: equals("resumable", True) & claimable,
        }

    def _own_lease(self) -> dict[Guard, Condition]:
        return {Guard.OWN_LEASE: equals(self._path(LEASE_OWNER), self.lease_owner)}

    def _shard(self, item: Mapping[str, Any] | None) -> dict[str, Any]:
        shard = ((item or {}).get("shards") or {}).get(self.key) or {}
        return shard if isinstance(shard, dict) else {}

    def claim(self) -> dict[str, Any]:
        now = self._now()
        try:  # the map must exist before a path inside it can be set
            self.docs.update(self.job_id, Update(set_if_absent={"shards": {}}))
        except ConditionFailed:
            raise JobNotClaimable(f"job {self.job_id} not found") from None
        previous = self._shard(self.docs.get(self.job_id))
        shard: dict[str, Any] = {
            LEASE_OWNER: self.lease_owner,
            LEASE_EXPIRES_AT: now + int(self.lease_seconds),
            "state": ShardState.RUNNING.value,
            "attempt": int(previous.get("attempt", 0)) + 1,
            "success_count": 0,
            "error_count": 0,
        }
        if self.task_arn:
            shard["task_arn"] = self.task_arn
        upd = Update.setting(
            {"status": JobStatus.RUNNING.value, "updated_at": now},
            may_become(JobStatus.RUNNING, self._claim_guards(now)),
            remove=["resumable", "completed_at", "cancelled_at"],
        )
        upd.set[self._path()] = shard
        upd.set_if_absent["started_at"] = now
        upd.add["attempt"] = 1
        self.index_row.update(shard_index=self.shard_index, shard_count=self.shard_count)
        self._index_claim(now)  # before the claim, as JobRecord.claim does
        try:
            item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
        except ConditionFailed as exc:
            mine = self._shard(exc.old)
            if mine.get(LEASE_OWNER) != self.lease_owner:
                self._unindex()
                raise JobNotClaimable(self._why_not_shard(exc.old, now)) from None
            item = exc.old  # our claim landed; its reply was lost
        assert item is not None
        self.lease_until = now + int(self.lease_seconds)
        self._remember_others(item)
        return {**item, "attempt": self._shard(item).get("attempt")}

    def _why_not_shard(self, old: Mapping[str, Any] | None, now: int) -> str:
        shard = self._shard(old)
        if old is not None and shard.get("state") == ShardState.DONE.value:
            return f"shard {self.shard_index} of job {self.job_id} already finished"
        if (
            old is not None
            and shard.get("state") == ShardState.RUNNING.value
            and status_of(old) is JobStatus.RUNNING
        ):
            return (
                f"shard {self.shard_index} of job {self.job_id} is held by another live task "
                f"(lease until {shard.get(LEASE_EXPIRES_AT)}, now {now})"
            )
        return self._why_not(old, now)

    def _remember_others(self, item: Mapping[str, Any]) -> None:
        shards = item.get("shards") or {}
        others = [v for k, v in shards.items() if k != self.key and isinstance(v, dict)]
        self._others = (
            sum(int(v.get("success_count", 0)) for v in others),
            sum(int(v.get("error_count", 0)) for v in others),
        )

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
            update.set["percent"] = (
                round(min(100.0, 100.0 * (total_s + total_e) / item_count), 2) if item_count else 0
            )

    def heartbeat(self, progress: Mapping[str, Any]) -> dict[str, Any]:
        now = self._now()
        upd = Update(condition=may_become(JobStatus.RUNNING, self._own_lease()))
        upd.set["updated_at"] = now
        upd.set[self._path(LEASE_EXPIRES_AT)] = now + int(self.lease_seconds)
        self._counts(progress, upd)
        try:
            item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
        except ConditionFailed as exc:
            raise LeaseLost(
                f"lease on shard {self.shard_index} of job {self.job_id} lost: "
                f"{self._why_not_shard(exc.old, now)}"
            ) from None
        assert item is not None
        self.lease_until = now + int(self.lease_seconds)
        self._remember_others(item)
        return item

    def finish(
        self, status: JobStatus, attrs: Mapping[str, Any], remove: tuple[str, ...] = ()
    ) -> JobStatus | None:
        """End this shard. A shard that completed its items marks itself DONE (the last one writes
        the aggregated final status); a failure, cancel or deadline ends the whole job at once;
        an interruption marks the shard resumable. Returns the job status written, or None while
        other shards still run."""
        now = self._now()
        interrupted = bool(attrs.get("resumable"))
        completed = status is JobStatus.SUCCEEDED and not interrupted
        ends_job = not completed and not interrupted  # cancel, deadline or failure: the job fails now
        state = ShardState.DONE if (completed or not interrupted) else ShardState.INTERRUPTED
        upd = Update(
            condition=may_become(status if ends_job else JobStatus.RUNNING, self._own_lease()),
            remove=[self._path(LEASE_OWNER), self._path(LEASE_EXPIRES_AT)],
        )
        upd.set["updated_at"] = now
        upd.set[self._path("state")] = state.value
        upd.set[self._path("finished_by")] = self.lease_owner
        self._counts(attrs, upd)
        if ends_job:
            for name, value in attrs.items():
                if name not in ("success_count", "error_count", "percent"):
                    upd.set[name] = value
            upd.set["status"], upd.set["completed_at"] = status.value, now
            upd.remove += [k for k in remove if k not in attrs]
        try:
            item = self.docs.update(self.job_id, upd, returns="ALL_NEW")
        except ConditionFailed as exc:
            if self._shard(exc.old).get("finished_by") != self.lease_owner:
                raise LeaseLost(
                    f"could not finish shard {self.shard_index}: {self._why_not_shard(exc.old, now)}"
                ) from None
            item = exc.old  # our write landed and its reply was lost; botocore retried it
        assert item is not None
        if ends_job:
            self._unindex()  # this shard's row; the other shards remove theirs (or the sweeper does)
            return status
        shards = item.get("shards") or {}
        states = [str((shards.get(f"s{i}") or {}).get("state")) for i in range(self.shard_count)]
        if any(s not in ENDED for s in states):
            self._unindex()
            return None  # others still running
        # the row stays until the job is recorded: a task dying here leaves every shard ended and
        # the job RUNNING, which the sweeper finds through this row
        return self._finalise(item, ShardState.INTERRUPTED.value in states, attrs)

    def _finalise(
        self, item: Mapping[str, Any], any_interrupted: bool, attrs: Mapping[str, Any]
    ) -> JobStatus | None:
        """Every shard has ended: write the job's final status. Normally only this task gets here;
        when the reply of a shard's own end was lost, the item it then reads may already show the
        other shards' ends too, so two shards may both get here: the one whose write lands records
        the job, the other returns None as a shard whose share is done."""
        now = self._now()
        shards = item.get("shards") or {}
        success = sum(
            int((shards.get(f"s{i}") or {}).get("success_count", 0)) for i in range(self.shard_count)
        )
        error = sum(int((shards.get(f"s{i}") or {}).get("error_count", 0)) for i in range(self.shard_count))
        extra: dict[str, Any] = {}
        if any_interrupted:
            status, message = JobStatus.FAILED, "Job was interrupted; it can be resumed"
            extra["resumable"] = True
        else:
            status, message, extra = outcome_for_counts(success, error, self.tolerated_percent)
        all_ended = all_of(one_of(("shards", f"s{i}", "state"), ENDED) for i in range(self.shard_count))
        upd = Update.setting(
            {
                "status": status.value,
                "completed_at": now,
                "updated_at": now,
                "finished_by": self.lease_owner,
                "success_count": success,
                "error_count": error,
                **extra,
            },
            may_become(status, {Guard.SHARDS_ENDED: all_ended}),
            remove=[] if message else ["error_message"],
        )
        if message:
            upd.set["error_message"] = message
        if status is JobStatus.SUCCEEDED:
            upd.set["percent"] = 100
        if "receipts_stream_id" in attrs:
            upd.set["receipts_stream_id"] = attrs["receipts_stream_id"]
        if "outcome" not in extra:
            upd.remove.append("outcome")
        try:
            self.docs.update(self.job_id, upd)
        except ConditionFailed as exc:
            old = exc.old or {}
            if old.get("finished_by") != self.lease_owner or status_of(old) is not status:
                old_shards = old.get("shards") or {}
                ended = all(str((old_shards.get(f"s{i}") or {}).get("state")) in ENDED
                            for i in range(self.shard_count))
                if ended and status_of(old) in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                    event(logger, "job_finalised_by_other_shard", shard=self.shard_index,
                          status=status_of(old).value)
                    self._unindex()
                    return None  # another shard that saw every shard ended recorded the job
                raise LeaseLost(f"job {self.job_id} was finished by another task") from None
            # our final write landed and its reply was lost; botocore retried it
        self._unindex()
        event(
            logger,
            "job_finalised_by_shard",
            shard=self.shard_index,
            status=status.value,
            success_count=success,
            error_count=error,
        )
        return status
