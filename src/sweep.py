"""``RUN_MODE=SWEEP``: one pass of the sweeper (SPEC §8.3), run every minute by EventBridge Scheduler.

Reads the index of held jobs, records or relaunches the jobs of dead tasks, logs ``sweep_finished``
with the counts and exits 0 (2 on bad configuration, 69 when storage cannot be reached).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from botocore.config import Config

from feaas import logs
from feaas.dao import Documents, RunningIndex, checked_clients
from feaas.errors import StorageError
from feaas.exitcodes import ExitCode
from feaas.jobs.sweep import StoppedTask, Sweeper
from feaas.launch import relaunch_request
from feaas.logs import event
from feaas.settings import SweepSettings, log_format_for
from src.startup import storage_or_exit

logger = logging.getLogger("src.sweep")


def request_builder(settings: SweepSettings) -> Any:
    """RunTask requests of relaunches, through feaas.launch with the settings' network."""
    network = {
        "cluster": settings.cluster,
        "subnets": [s for s in settings.subnets.split(",") if s],
        "security_groups": [g for g in settings.security_groups.split(",") if g],
        "assign_public_ip": settings.assign_public_ip == "ENABLED",
        "container_name": settings.container_name,
    }

    def build(job_id: str, doc: Mapping[str, Any], row: Mapping[str, Any], stopped: StoppedTask,
              attempt: int) -> dict[str, Any]:
        task_definition = stopped.task_definition or settings.task_family
        if not task_definition:
            raise ValueError("no task definition: ECS no longer describes the task and TASK_FAMILY is unset")
        fallback = {**row, "username": row.get("username") or doc.get("username")}
        return relaunch_request(job_id=job_id, attempt=attempt, environment=stopped.environment,
                                task_definition=task_definition, fallback=fallback, **network)

    return build


def run_sweep(settings: SweepSettings) -> int:
    clients = storage_or_exit(lambda: checked_clients(
        settings.region, settings.access_key, settings.secret_key, table=settings.dynamo_table,
        streams_table=settings.dynamo_streams_table, bucket=None))
    if isinstance(clients, ExitCode):
        return clients
    ecs: Any = clients.session.client("ecs", config=Config(retries={"mode": "standard", "max_attempts": 5},
                                                      connect_timeout=5, read_timeout=30))
    sweeper = Sweeper(
        docs=Documents(clients.dynamodb, settings.dynamo_table, settings.dynamo_key_attribute,
                       settings.dynamo_owner_index),
        index=RunningIndex(clients.dynamodb, settings.dynamo_streams_table),
        ecs=ecs, cluster=settings.cluster, build_request=request_builder(settings),
        max_attempts=settings.max_attempts, name=f"sweeper:{os.uname().nodename}:{os.getpid()}",
    )
    try:
        counts = sweeper.sweep()
    except StorageError as exc:  # the index could not be read; the next run tries again
        event(logger, "sweep_failed", level=logging.ERROR, error=str(exc))
        return ExitCode.INTERNAL
    event(logger, "sweep_finished", **counts.as_dict())
    return ExitCode.SUCCEEDED


def configure_logging(settings: SweepSettings) -> None:
    logs.configure(log_format_for(settings.log_format).value, settings.log_level)
    logs.bind(run_mode=settings.run_mode.value)
