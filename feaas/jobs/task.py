"""This task's identity on the job: its Fargate task ARN from the ECS task metadata endpoint (v4),
and the record it writes through (its own lease, or its shard's)."""

from __future__ import annotations

import json
import logging
import urllib.request

from feaas.dao import Documents, RunningIndex
from feaas.jobs.record import JobRecord
from feaas.jobs.shards import ShardedJobRecord
from feaas.logs import event

logger = logging.getLogger(__name__)


def ecs_task_arn(metadata_uri: str | None, timeout_s: float = 2.0) -> str | None:
    """The task ARN read from ``ECS_CONTAINER_METADATA_URI_V4`` (``None`` off ECS or when it fails)."""
    if not metadata_uri:
        return None
    try:
        with urllib.request.urlopen(f"{metadata_uri}/task", timeout=timeout_s) as resp:  # fixed ECS URL
            arn = json.load(resp).get("TaskARN")
            return str(arn) if arn else None
    except (OSError, ValueError) as exc:
        event(logger, "task_metadata_unavailable", level=logging.WARNING, error=str(exc))
        return None


def record_for(
    docs: Documents,
    job_id: str,
    *,
    lease_seconds: float,
    shard_index: int = 0,
    shard_count: int = 1,
    metadata_uri: str | None = None,
    index: RunningIndex | None = None,
) -> JobRecord:
    """The job record this task writes through: its own lease, or its shard's."""
    task_arn = ecs_task_arn(metadata_uri)
    if shard_count > 1:
        return ShardedJobRecord(
            docs,
            job_id,
            shard_index=shard_index,
            shard_count=shard_count,
            lease_seconds=lease_seconds,
            task_arn=task_arn,
            index=index,
        )
    return JobRecord(docs, job_id, lease_seconds=lease_seconds, task_arn=task_arn, index=index)
