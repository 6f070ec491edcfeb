"""The job lifecycle on the job document (SPEC §4): status and its transitions table, the record
one task writes through (claim, heartbeat, finish), shards of a split run, the heartbeat thread,
and the task's own metadata."""

from __future__ import annotations

from feaas.jobs.heartbeat import Heartbeat, Progress
from feaas.jobs.record import JobRecord
from feaas.jobs.shards import ShardedJobRecord, ShardState
from feaas.jobs.status import (
    ALLOWED_TRANSITIONS,
    INITIAL_STATUSES,
    Guard,
    JobStatus,
    outcome_for_counts,
    status_of,
)
from feaas.jobs.task import ecs_task_arn, record_for

__all__ = [
    "ALLOWED_TRANSITIONS",
    "INITIAL_STATUSES",
    "Guard",
    "Heartbeat",
    "JobRecord",
    "JobStatus",
    "Progress",
    "ShardState",
    "ShardedJobRecord",
    "ecs_task_arn",
    "outcome_for_counts",
    "record_for",
    "status_of",
]
