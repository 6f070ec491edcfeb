"""The sweeper (SPEC §8.3): jobs whose task died (out of memory, host loss, kill -9) still end recorded.

It reads the index of held jobs (:class:`feaas.dao.RunningIndex`: one row per claim attempt,
written before the claim, removed at finish or when the claim is refused) — never the documents
table as a whole — and for each job whose lease ran out with no task holding a live one, asks ECS
why its task stopped, then either relaunches the job (while ``attempt`` < ``max_attempts``) or
records it FAILED, ``resumable = true``, with that reason. A row whose owner holds no lease on its
job (a claim refused, never landed, or taken over since) is removed once it is older than any
claim can take (:data:`UNCLAIMED_ROW_S`); a row of a job finished for good at once.

Every write is conditional on the lease still being the expired one that was read (its owner and
expiry unchanged), so a live task is never touched and of two sweepers only one acts: the other's
write fails and it moves on. A task known by its AWS Batch job id (an array child, no task ARN)
is not looked up in ECS; its job is relaunched (as an ECS task) or recorded like any other. A
relaunch first indexes and then hands the lease to a sweeper marker
(still expired, so the new task's claim takes it over as after any crash), then calls RunTask with
a client token derived from the job id and attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from feaas.dao import ConditionFailed, Documents, RunningIndex, Update
from feaas.dao.expressions import Condition, all_of, below, equals, missing
from feaas.errors import StorageError
from feaas.jobs.chunks import TASKS
from feaas.jobs.record import LEASE_EXPIRES_AT, LEASE_OWNER
from feaas.jobs.status import Guard, JobStatus, is_true, may_become, status_of
from feaas.logs import event
from feaas.text import bounded

logger = logging.getLogger(__name__)

#: The lease owner a relaunch writes: no task has that name, so only a new claim moves on from it.
SWEEPER_OWNER_PREFIX = "sweeper:"
#: How long a relaunched task may take to claim its job before the sweeper gives up on it.
RELAUNCH_GRACE_S = 600
#: How old an index row whose owner holds no lease must be before the sweeper removes it: well
#: beyond :data:`feaas.jobs.record.CLAIM_TIMEOUT_S` (a claim still under way keeps its row).
UNCLAIMED_ROW_S = 600
#: The row attributes that are its key, not its content.
ROW_KEYS = ("job_id", "stream_id", "timestamp")


class Ecs(Protocol):
    def describe_tasks(self, **kwargs: Any) -> Any: ...

    def run_task(self, **kwargs: Any) -> Any: ...


@dataclass
class SweepCounts:
    checked: int = 0
    relaunched: int = 0
    recorded_failed: int = 0
    skipped_live: int = 0
    claiming: int = 0  # rows of claims that may still land
    unindexed: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Lease:
    """One lease on a job as read: the job's own (``task`` None) or that of one of the tasks
    sharing a many-item run (SPEC §8.5)."""

    owner: str
    expires_at: int
    task: str | None = None
    task_arn: str | None = None
    batch_job_id: str | None = None  # an AWS Batch child's name (it has no task ARN)

    def path(self, name: str) -> str | tuple[str, ...]:
        return name if self.task is None else (TASKS, self.task, name)

    def unchanged(self) -> Condition:
        return (equals(self.path(LEASE_OWNER), self.owner)
                & equals(self.path(LEASE_EXPIRES_AT), self.expires_at))


@dataclass
class StoppedTask:
    """What ECS says about a task: why it stopped, and how it was started (for a relaunch)."""

    reason: str
    task_definition: str | None = None
    environment: dict[str, str] = field(default_factory=dict)


#: Builds the RunTask request of a relaunch: (job id, job document, index row, the stopped task, attempt).
RequestBuilder = Callable[[str, Mapping[str, Any], Mapping[str, Any], StoppedTask, int], dict[str, Any]]


def leases_of(doc: Mapping[str, Any]) -> list[Lease]:
    """Every lease held on the job: its own, or each of its tasks' (a many-item run)."""
    if doc.get(LEASE_OWNER) is not None:
        return [Lease(str(doc[LEASE_OWNER]), int(doc.get(LEASE_EXPIRES_AT) or 0),
                      task_arn=_text(doc.get("fargate_task_arn")),
                      batch_job_id=_text(doc.get("batch_job_id")))]
    tasks = doc.get(TASKS) or {}
    return [Lease(str(t[LEASE_OWNER]), int(t.get(LEASE_EXPIRES_AT) or 0), task=key,
                  task_arn=_text(t.get("task_arn")), batch_job_id=_text(t.get("batch_job_id")))
            for key, t in sorted(tasks.items()) if isinstance(t, dict) and t.get(LEASE_OWNER) is not None]


def attempt_of(doc: Mapping[str, Any]) -> int:
    """How many times the job was started, resumed or relaunched (joins do not count)."""
    return int(doc.get("attempt") or 0)


def _text(value: Any) -> str | None:
    return str(value) if value else None


def describe_stop(ecs: Ecs, cluster: str, task_arn: str | None,
                  batch_job_id: str | None = None) -> StoppedTask:
    """Why ECS stopped the task: stop code, reason, and the container's exit code and reason. An
    AWS Batch child (a ``batch_job_id``, no task ARN) is not asked about: ECS does not know it by
    that name; the reason names it (its end is in Batch's DescribeJobs)."""
    if not task_arn and batch_job_id:
        return StoppedTask(f"the AWS Batch job {batch_job_id} stopped renewing its lease "
                           "(AWS Batch DescribeJobs tells why)")
    if not task_arn:
        return StoppedTask("the task stopped; no task ARN was recorded to ask ECS why")
    try:
        resp = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])
    except (ClientError, BotoCoreError) as exc:  # the reason is then unknown; the job still ends
        return StoppedTask(f"the task stopped; ECS could not describe it: {exc}")
    tasks = resp.get("tasks") or []
    if not tasks:
        return StoppedTask("the task stopped; ECS no longer knows it")
    task = tasks[0]
    parts = [p for p in (task.get("stopCode"), task.get("stoppedReason")) if p]
    container = (task.get("containers") or [{}])[0]
    exit_code = container.get("exitCode")
    if container.get("reason") and container.get("reason") not in parts:
        parts.append(container["reason"])
    reason = "the task was stopped: " + (": ".join(str(p) for p in parts) or "no reason given")
    if exit_code is not None:
        reason += f" (exit code {exit_code})"
    if task.get("lastStatus") not in (None, "STOPPED", "DEPROVISIONING"):
        reason = f"the task stopped renewing its lease (ECS says it is {task.get('lastStatus')})"
    env: dict[str, str] = {}
    for override in (task.get("overrides") or {}).get("containerOverrides") or []:
        env.update({e["name"]: e["value"] for e in override.get("environment") or []})
    return StoppedTask(bounded(reason, 1000), _text(task.get("taskDefinitionArn")), env)


@dataclass(kw_only=True)
class Sweeper:
    """Looks at every job in the index of held jobs once (:meth:`sweep`)."""

    docs: Documents
    index: RunningIndex
    ecs: Ecs
    cluster: str
    build_request: RequestBuilder
    max_attempts: int = 3
    clock: Callable[[], float] = time.time
    name: str = "sweeper"

    def sweep(self) -> SweepCounts:
        counts = SweepCounts()
        for row in list(self.index.rows()):
            counts.checked += 1
            try:
                self._sweep_row(row, counts)
            except StorageError as exc:  # the next sweep tries again
                counts.errors += 1
                event(logger, "sweep_job_failed", level=logging.WARNING, job_id=row.get("job_id"),
                      error=str(exc))
        return counts

    def _sweep_row(self, row: Mapping[str, Any], counts: SweepCounts) -> None:
        """One claim attempt's row: the job it names is swept when this row's owner holds a lease on
        it (or nobody does, in a shared run whose finaliser died); a row left by a claim that failed,
        never landed, or was taken over since is removed once it is older than any claim lasts."""
        job_id = str(row["job_id"])
        doc = self.docs.get(job_id)
        now = int(self.clock())
        if doc is None or not may_run_again(doc):  # finished for good; its unindex was lost
            self._discard(row, counts)
            return
        leases = leases_of(doc) if status_of(doc) is JobStatus.RUNNING else []
        if status_of(doc) is JobStatus.RUNNING and (
                not leases or any(lease.owner == row.get(LEASE_OWNER) for lease in leases)):
            self._sweep_job(job_id, doc, row, leases, now, counts)
        elif now - indexed_at(row) > UNCLAIMED_ROW_S:
            self._discard(row, counts)
        else:
            counts.claiming += 1  # its claim may still land

    def _discard(self, row: Mapping[str, Any], counts: SweepCounts) -> None:
        self.index.discard(row)
        counts.unindexed += 1

    def _sweep_job(self, job_id: str, doc: Mapping[str, Any], row: Mapping[str, Any], leases: list[Lease],
                   now: int, counts: SweepCounts) -> None:
        if any(lease.expires_at >= now for lease in leases):
            counts.skipped_live += 1
            return
        dead = leases[0] if leases else None
        relaunching = dead is not None and dead.owner.startswith(SWEEPER_OWNER_PREFIX)
        if relaunching and now - int(doc.get("relaunched_at") or 0) < RELAUNCH_GRACE_S:
            counts.skipped_live += 1  # a relaunched task is on its way to claim the job
            return
        own = Lease("", 0, task_arn=_text(doc.get("fargate_task_arn")),
                    batch_job_id=_text(doc.get("batch_job_id")))
        stops = [describe_stop(self.ecs, self.cluster, lease.task_arn, lease.batch_job_id)
                 for lease in leases or [own]]
        reason = stops[0].reason
        attempt = attempt_of(doc)
        if relaunching:
            reason = f"the relaunched task never claimed the job: {reason}"
        elif attempt < self.max_attempts and leases:
            if self._relaunch(job_id, doc, row, leases, stops, attempt, now):
                counts.relaunched += 1
            return
        if self._record_failed(job_id, row, leases, reason, now, attempt):
            counts.recorded_failed += 1

    def _unchanged(self, leases: list[Lease], now: int) -> Condition:
        """The job's leases are the ones read, and every one has run out."""
        parts: list[Condition] = [lease.unchanged() & below(lease.path(LEASE_EXPIRES_AT), now)
                                  for lease in leases]
        if not leases:  # a shared run whose tasks all left, and the task that would finalise it died
            parts.append(missing(LEASE_OWNER))
        return all_of(parts) if len(parts) > 1 else parts[0]

    def _relaunch(self, job_id: str, doc: Mapping[str, Any], row: Mapping[str, Any], leases: list[Lease],
                  stops: list[StoppedTask], attempt: int, now: int) -> bool:
        """Hand the dead leases to a sweeper marker (one sweeper wins), then start one task per lease."""
        stopped = stops[0]
        marker = f"{SWEEPER_OWNER_PREFIX}{self.name}:{attempt}"
        guard = {Guard.LEASE_EXPIRED: self._unchanged(leases, now)}
        upd = Update.setting({"relaunched_at": now, "updated_at": now, "last_stop_reason": stopped.reason},
                             may_become(JobStatus.RUNNING, guard))
        for lease in leases:  # still expired: the relaunched task's claim takes it over
            upd.set[lease.path(LEASE_OWNER)] = marker
        if any(lease.task for lease in leases):  # the relaunched tasks join: the relaunch is the attempt
            upd.add["attempt"] = 1
        # The marker's own row first, as a task's claim does: it keeps the job found until the
        # relaunched task claims it (or the sweeper records that it never did).
        kept = {k: v for k, v in row.items() if k not in (*ROW_KEYS, LEASE_OWNER, "task_arn", "batch_job_id")}
        self.index.add(job_id, marker, {**kept, "indexed_at": now})
        try:
            self.docs.update(job_id, upd)
        except ConditionFailed:
            event(logger, "sweep_lost_race", job_id=job_id)
            self.index.remove(job_id, marker)
            return False
        self._unindex(job_id, row, leases)
        failures: list[Mapping[str, Any]] = []
        arns: list[str] = []
        for stop in stops:
            try:
                resp = self.ecs.run_task(**self.build_request(job_id, doc, row, stop, attempt))
                failures += resp.get("failures") or []
                arns += [t["taskArn"] for t in resp.get("tasks") or []]
            except (ClientError, BotoCoreError, ValueError) as exc:  # ValueError: no request can be built
                failures.append({"reason": f"{type(exc).__name__}: {exc}"})
        if failures or len(arns) < len(leases):
            why = "; ".join(str(f.get("reason", "unknown")) for f in failures) or "no task started"
            relaunched = [Lease(marker, lease.expires_at, lease.task) for lease in leases]
            why = f"{stopped.reason}; the relaunch failed: {why}"
            self._record_failed(job_id, None, relaunched, why, now, attempt)
            return False
        event(logger, "job_relaunched", job_id=job_id, attempt=attempt, reason=stopped.reason,
              task_arns=arns)
        return True

    def _record_failed(self, job_id: str, row: Mapping[str, Any] | None, leases: list[Lease], reason: str,
                       now: int, attempt: int) -> bool:
        upd = Update.setting(
            {"status": JobStatus.FAILED.value, "resumable": True, "error_message": bounded(reason, 1000),
             "completed_at": now, "updated_at": now, "finished_by": self.name},
            may_become(JobStatus.FAILED, {Guard.LEASE_EXPIRED: self._unchanged(leases, now)}),
            remove=[LEASE_OWNER, LEASE_EXPIRES_AT],
        )
        try:
            self.docs.update(job_id, upd)
        except ConditionFailed:
            event(logger, "sweep_lost_race", job_id=job_id)
            return False
        event(logger, "job_recorded_failed", job_id=job_id, attempt=attempt, reason=reason)
        self._unindex(job_id, row, leases)
        return True

    def _unindex(self, job_id: str, row: Mapping[str, Any] | None, leases: list[Lease]) -> None:
        """Remove the rows of the leases just taken over (and the row that led here); a failure
        leaves stale rows that a later sweep removes."""
        try:
            own = None
            if row is not None:
                self.index.discard(row)
                own = row.get(LEASE_OWNER)
            for owner in sorted({lease.owner for lease in leases} - {own}):
                self.index.remove(job_id, owner)
        except StorageError as exc:
            event(logger, "sweep_unindex_failed", level=logging.WARNING, job_id=job_id, error=str(exc))


def may_run_again(doc: Mapping[str, Any]) -> bool:
    """Whether a claim can still take the job: it is not yet finished, or may be resumed."""
    status = status_of(doc)
    return status in (JobStatus.INITIALIZING, JobStatus.RUNNING) or (
        status is JobStatus.FAILED and is_true(doc.get("resumable")))


def indexed_at(row: Mapping[str, Any]) -> int:
    """When a row was written (``claimed_at``: a row written by a worker older than ``indexed_at``)."""
    return int(row.get("indexed_at") or row.get("claimed_at") or 0)
