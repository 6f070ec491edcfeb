"""This task's identity on the job: its Fargate task ARN from the ECS task metadata endpoint (v4),
or off ECS (an AWS Batch child has no metadata endpoint) its ``AWS_BATCH_JOB_ID``; and the record
it writes through (its own lease, or its share of a many-item run)."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from typing import Any

from feaas.dao import Documents, RunningIndex
from feaas.errors import StorageError
from feaas.jobs.chunks import ChunkedJobRecord
from feaas.jobs.document import check_identity_before_claim
from feaas.jobs.record import CLAIM_AFTER_STOP_S, CLAIM_TIMEOUT_S, JobRecord
from feaas.logs import event
from feaas.stopping import StopSignal, call_within

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
    many_items: bool = False,
    metadata_uri: str | None = None,
    index: RunningIndex | None = None,
    batch_receipts: bool = False,
    batch_job_id: str | None = None,
) -> JobRecord:
    """The job record this task writes through: its own lease, or (``many_items``) its share of a
    run any number of tasks work on together (SPEC §8.5; ``batch_receipts``: RECEIPT_MODE is batch,
    so a job without its own receipt_mode is not joined). ``batch_job_id``: ``AWS_BATCH_JOB_ID``,
    this task's name when it has no ECS task ARN (an AWS Batch child)."""
    task_arn = ecs_task_arn(metadata_uri)
    batch_id = batch_job_id if not task_arn else None
    if many_items:
        return ChunkedJobRecord(docs, job_id, lease_seconds=lease_seconds, task_arn=task_arn, index=index,
                                batch_receipts=batch_receipts, batch_job_id=batch_id)
    return JobRecord(docs, job_id, lease_seconds=lease_seconds, task_arn=task_arn, index=index,
                     batch_job_id=batch_id)


def read_job_in_time(docs: Documents, job_id: str, username: str, stop: StopSignal, *,
                     needed: bool) -> dict[str, Any] | None:
    """The identity check before the claim (:class:`JobNotClaimable` when the job is not this
    user's; it reads the job only when its id is outside the user's namespace), and the job as
    stored when ``needed`` (else None), within the claim's own budget (:data:`CLAIM_TIMEOUT_S`,
    less after SIGTERM); :class:`StorageError` on giving up."""

    def checked() -> dict[str, Any] | None:
        read: list[dict[str, Any] | None] = []

        def read_job() -> dict[str, Any] | None:
            if not read:
                read.append(docs.get(job_id))
            return read[0]

        check_identity_before_claim(read_job, job_id, username)
        return read_job() if needed else None

    try:
        return call_within(checked, end=time.monotonic() + CLAIM_TIMEOUT_S, stop=stop,
                           after_stop_s=CLAIM_AFTER_STOP_S)
    except TimeoutError:
        why = "after SIGTERM/SIGINT" if stop.stopped else f"within {CLAIM_TIMEOUT_S} s"
        raise StorageError(f"gave up reading job {job_id}: storage did not answer {why}") from None
