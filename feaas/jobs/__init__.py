"""The job lifecycle on the job document (SPEC §4): status and its transitions table, the record
one task writes through (claim, heartbeat, finish), chunks of a run shared by many tasks, the
heartbeat thread, and the task's own metadata."""

from __future__ import annotations

from feaas.jobs.chunks import Chunk, ChunkedJobRecord, NoChunk
from feaas.jobs.heartbeat import Heartbeat, Progress
from feaas.jobs.record import JobRecord
from feaas.jobs.status import (
    ALLOWED_TRANSITIONS,
    INITIAL_STATUSES,
    Guard,
    JobStatus,
    outcome_for_counts,
    status_of,
)
from feaas.jobs.task import ecs_task_arn, read_job_in_time, record_for

__all__ = [
    "ALLOWED_TRANSITIONS",
    "INITIAL_STATUSES",
    "Chunk",
    "ChunkedJobRecord",
    "Guard",
    "Heartbeat",
    "JobRecord",
    "JobStatus",
    "NoChunk",
    "Progress",
    "ecs_task_arn",
    "outcome_for_counts",
    "read_job_in_time",
    "record_for",
    "status_of",
]
