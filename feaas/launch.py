"""Create job documents and launch worker tasks the way plus-engine does.

plus-engine (a Lambda) writes a job document and starts one Fargate task per job. This module is
the small, documented version of that contract, for plus-engine and for the operators' scripts:

- :func:`new_job_item` builds the job document: the JSON form of a ``PlusScriptJob``
  (``MessageToDict(..., preserving_proto_field_name=True)``) plus the extra attributes of SPEC §3.
- :func:`run_task_request` / :func:`run_task_requests` build the keyword arguments of
  ``ecs_client.run_task`` (one request per shard: each shard's environment differs).
- :func:`launch_job` writes the document (only if it does not exist yet) and starts the task(s).
- :func:`redrive_job` writes a new job over only the failed items of a finished run (issue 17).
- :func:`submit_job_request` builds the keyword arguments of ``batch_client.submit_job``: an AWS
  Batch array job of N tasks on one many-item job (``run-task.sh --batch N``).
- ``python -m feaas.launch``: ``create-job`` / ``show-job`` / ``redrive`` for people,
  ``run-task-requests`` and ``submit-job-request`` for ``run-task.sh`` (the one place a RunTask or
  SubmitJob request and a client token are made).

Example::

    item = new_job_item(hostname="plus_example_com", username="ada@example.com", script=script,
                        input_data={"name": "Ada"})
    arns = launch_job(boto3.resource("dynamodb").Table("docs"), boto3.client("ecs"),
                      job_item=item, cluster="plus-worker", task_definition="plus-worker",
                      subnets=["subnet-1"], security_groups=["sg-1"])

Building dicts does no I/O; only :func:`launch_job` talks to AWS, through the objects it is given,
and every write goes through :mod:`feaas.dao`. No credentials are ever put in a task's environment:
the task uses its task role.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from google.protobuf.json_format import MessageToDict, ParseDict

from feaas.dao import ConditionFailed, Dao, Update
from feaas.dao.codec import storable
from feaas.dao.docs import TableResource, put_new_in_table, update_in_table
from feaas.dao.expressions import missing
from feaas.errors import StorageError, WorkerError
from feaas.jobs.redrive import (
    ITEM_KEYS_OBJECT,
    PARENT_JOB_ID,
    RedriveRefused,
    create_redrive,
    keys_object_for,
    plan_redrive,
)
from feaas.jobs.status import Guard, JobStatus, may_become
from feaas.namespace import namespace_for
from feaas.objects import PlusScript, PlusScriptJob
from feaas.settings import JobType, RunMode
from feaas.text import bounded

JOB_TYPES = frozenset(t.value for t in JobType)
RUN_MODES = frozenset(m.value for m in RunMode)
#: The run mode that has no job: it publishes the action catalogue (no JOB_ID, no USERNAME).
REGISTER_ACTIONS = RunMode.REGISTER_ACTIONS.value
#: Environment variables that must never reach a task (it uses the task role).
FORBIDDEN_ENV = frozenset(
    {"ACCESS_KEY", "SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
)
CLIENT_TOKEN_MAX_CHARS = 64

_NAME_SEGMENT = re.compile(r"^[^/\s]+$")
_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class LaunchError(WorkerError):
    """ECS did not start every task of a job; ``failures`` holds RunTask's failure entries."""

    def __init__(self, message: str, failures: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.failures = list(failures)


class _Ecs(Protocol):
    def run_task(self, **kwargs: Any) -> Any: ...


def job_owner(hostname: str, username: str) -> str:
    """Owner of a user's jobs: ``{hostname}/{username}/job``."""
    for name, value in (("hostname", hostname), ("username", username)):
        if not _NAME_SEGMENT.match(value):
            raise ValueError(f"{name} must be non-empty without '/' or spaces: {value!r}")
    return namespace_for(hostname, username) + "job"


def new_job_item(
    *,
    hostname: str,
    username: str,
    script: PlusScript | Mapping[str, Any] | None = None,
    label: str = "",
    job_type: str | None = None,
    input_data: Mapping[str, Any] | None = None,
    collection_owner: str | None = None,
    stream_id: str | None = None,
    file_keys: Sequence[str] | None = None,
    prefix: str | None = None,
    timeout_seconds: int | None = None,
    tolerated_failure_percent: float | None = None,
    job_uuid: str | None = None,
    created_at: int | None = None,
    key_attribute: str = "object_id",
) -> dict[str, Any]:
    """Return a new job document in plus-engine's format (status INITIALIZING).

    ``script`` is a ``PlusScript`` message or its JSON form. ``object_id`` is
    ``{hostname}/{username}/job.{uuid}``; ``created_at`` defaults to now (epoch seconds).
    ``key_attribute`` (the table's partition key, SPEC ``DYNAMO_KEY_ATTRIBUTE``) also gets the id
    when it is not ``object_id``. Floats stay floats: use :func:`to_dynamodb` before a boto3 write.

    Raises ValueError for an invalid hostname/username, job_type or timeout.
    """
    owner = job_owner(hostname, username)
    if job_type is not None and job_type not in JOB_TYPES:
        raise ValueError(f"unknown job_type {job_type!r}; expected one of {sorted(JOB_TYPES)}")
    if timeout_seconds is not None and timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds must be positive: {timeout_seconds}")
    object_id = f"{owner}.{job_uuid or uuid.uuid4()}"

    job = PlusScriptJob(
        object_id=object_id,
        owner=owner,
        label=label,
        username=username,
        created_at=int(time.time()) if created_at is None else created_at,
    )
    if isinstance(script, PlusScript):
        job.script.CopyFrom(script)
    elif script is not None:
        ParseDict(dict(script), job.script)

    item: dict[str, Any] = MessageToDict(job, preserving_proto_field_name=True)
    # INITIALIZING is the enum default and so absent from MessageToDict; the worker accepts
    # both, writing it makes the document readable at a glance.
    item["status"] = "INITIALIZING"
    item["hostname"] = hostname
    extras: dict[str, Any] = {
        "job_type": job_type,
        "input_data": dict(input_data) if input_data is not None else None,
        "collection_owner": collection_owner,
        "stream_id": stream_id,
        "file_keys": list(file_keys) if file_keys is not None else None,
        "prefix": prefix,
        "timeout_seconds": timeout_seconds,
        "tolerated_failure_percent": tolerated_failure_percent,
    }
    item.update({k: v for k, v in extras.items() if v is not None})
    if key_attribute != "object_id":
        item[key_attribute] = object_id
    return item


#: A copy of a value that boto3's DynamoDB resource accepts (floats become Decimals): the codec's
#: own conversion, kept under this name for plus-engine.
to_dynamodb = storable


def client_token(job_id: str, *, shard_index: int = 0, shard_count: int = 1, launch_attempt: int = 1,
                 task_index: int = 0) -> str:
    """RunTask idempotency token: the same job, shard (or added task) and attempt always give the
    same token.

    At most 64 characters of ``[A-Za-z0-9_-]``: a readable tail of the job id plus a hash of all
    inputs. Pass a higher ``launch_attempt`` to deliberately start a job again (e.g. a resume).
    """
    key = f"{job_id}\n{shard_index}/{shard_count}\n{launch_attempt}"
    if task_index:  # an added task (SPEC §8.5); 0 keeps the tokens launches always had
        key += f"\ntask {task_index}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    readable = _TOKEN_UNSAFE.sub("-", job_id.rsplit(".", 1)[-1]).strip("-")[:20]
    token = f"{readable}-{digest[:40]}" if readable else digest[:40]
    return token[:CLIENT_TOKEN_MAX_CHARS]


def run_task_request(
    *,
    cluster: str,
    task_definition: str,
    subnets: Sequence[str],
    security_groups: Sequence[str],
    job_id: str | None,
    username: str | None,
    run_mode: str = "RUN_JOB",
    collection_owner: str | None = None,
    stream_id: str | None = None,
    action_id: str | None = None,
    action_input_json: str | None = None,
    shard_index: int = 0,
    shard_count: int = 1,
    extra_env: Mapping[str, str] | None = None,
    assign_public_ip: bool = True,
    container_name: str = "worker",
    started_by: str = "plus-engine",
    launch_attempt: int = 1,
    task_index: int = 0,
) -> dict[str, Any]:
    """Keyword arguments for ``ecs_client.run_task`` starting one worker task (one shard).

    ``REGISTER_ACTIONS`` has no job: ``job_id`` and ``username`` are ``None`` (pass the frontend's
    host as ``PLUS_HOSTNAME`` in ``extra_env``), and each call gets a new client token.
    ``RUN_PLUSSCRIPT`` needs ``action_id`` (the stored script's document id).

    Raises ValueError for an unknown run mode, a bad shard, or credentials in ``extra_env``.
    """
    if run_mode not in RUN_MODES:
        raise ValueError(f"unknown run_mode {run_mode!r}; expected one of {sorted(RUN_MODES)}")
    if run_mode == REGISTER_ACTIONS:
        if job_id or username or shard_count > 1:
            raise ValueError("REGISTER_ACTIONS takes no job_id, username or shards")
    elif not job_id or not username:
        raise ValueError(f"{run_mode} needs a job_id and a username")
    if run_mode in ("RUN_ACTION", "RUN_PLUSSCRIPT") and not action_id:
        raise ValueError(f"{run_mode} needs an action_id")
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index must be in [0, {shard_count}): {shard_index}")
    if not subnets or not security_groups:
        raise ValueError("at least one subnet and one security group are required")
    env = worker_environment(job_id=job_id, username=username, run_mode=run_mode,
                             collection_owner=collection_owner, stream_id=stream_id, action_id=action_id,
                             action_input_json=action_input_json, extra_env=extra_env)
    if shard_count > 1:
        env.update(SHARD_INDEX=str(shard_index), SHARD_COUNT=str(shard_count))
    return {
        "cluster": cluster,
        "taskDefinition": task_definition,
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": started_by[:128],
        "clientToken": client_token(
            job_id or f"register-actions.{uuid.uuid4().hex}",
            shard_index=shard_index,
            shard_count=shard_count,
            launch_attempt=launch_attempt,
            task_index=task_index,
        ),
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(subnets),
                "securityGroups": list(security_groups),
                "assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED",
            }
        },
        "overrides": {
            "containerOverrides": [
                {"name": container_name, "environment": [{"name": k, "value": v} for k, v in env.items()]}
            ]
        },
    }


def worker_environment(
    *,
    job_id: str | None,
    username: str | None,
    run_mode: str,
    collection_owner: str | None = None,
    stream_id: str | None = None,
    action_id: str | None = None,
    action_input_json: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The worker's variables for one launch (RunTask or SubmitJob): run mode, job, user, source,
    then ``extra_env``. Raises ValueError for credentials in ``extra_env`` (tasks use their role)."""
    env: dict[str, str] = {"RUN_MODE": run_mode}
    if job_id and username:
        env.update(JOB_ID=job_id, USERNAME=username)
    optional = {
        "COLLECTION_OWNER": collection_owner,
        "STREAM_ID": stream_id,
        "ACTION_ID": action_id,
        "ACTION_INPUT_JSON": action_input_json,
    }
    env.update({k: v for k, v in optional.items() if v is not None})
    for name, value in (extra_env or {}).items():
        if name in FORBIDDEN_ENV:
            raise ValueError(f"{name} must not be passed to a task: it uses its task role")
        env[name] = value
    return env


#: AWS Batch's limits on an array job's size (SubmitJob ``arrayProperties.size``).
BATCH_ARRAY_MIN = 2
BATCH_ARRAY_MAX = 10000


def submit_job_request(
    *,
    job_queue: str,
    job_definition: str,
    size: int,
    job_id: str,
    username: str,
    run_mode: str = "RUN_JOB",
    collection_owner: str | None = None,
    stream_id: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``batch_client.submit_job`` starting ``size`` tasks on one many-item
    job (SPEC §8.5): an AWS Batch array job of that size (``size`` 1: a plain job), every child
    with the same environment. Batch gives each child ``AWS_BATCH_JOB_ARRAY_INDEX`` (read as
    ``SHARD_INDEX``, a hint only), so ``SHARD_COUNT`` is the array's size; the children share the
    job's chunks as added tasks do. SubmitJob has no client token: each call submits a new job.

    Raises ValueError for a run mode whose job cannot be shared, a size outside 1..10000, a
    missing job or user, or credentials in ``extra_env``."""
    if run_mode not in JOINABLE_RUN_MODES:
        raise ValueError(f"only runs over many items run as an AWS Batch array job "
                         f"({', '.join(JOINABLE_RUN_MODES)}), not {run_mode}")
    if not 1 <= size <= BATCH_ARRAY_MAX:
        raise ValueError(f"the number of Batch tasks must be 1..{BATCH_ARRAY_MAX}: {size}")
    if not job_id or not username:
        raise ValueError(f"{run_mode} needs a job_id and a username")
    if not job_queue or not job_definition:
        raise ValueError("a job queue and a job definition are required (run setup.sh)")
    env = worker_environment(job_id=job_id, username=username, run_mode=run_mode,
                             collection_owner=collection_owner, stream_id=stream_id, extra_env=extra_env)
    if size >= BATCH_ARRAY_MIN:
        env["SHARD_COUNT"] = str(size)  # AWS_BATCH_JOB_ARRAY_INDEX must stay below it
    readable = _TOKEN_UNSAFE.sub("-", job_id.rsplit(".", 1)[-1]).strip("-_")[:64]
    request: dict[str, Any] = {
        "jobName": f"plus-worker-{readable or 'job'}",
        "jobQueue": job_queue,
        "jobDefinition": job_definition,
        "containerOverrides": {"environment": [{"name": k, "value": v} for k, v in env.items()]},
    }
    if size >= BATCH_ARRAY_MIN:
        request["arrayProperties"] = {"size": size}
    return request


#: What a relaunch takes from the stopped task's environment as run_task_request's own arguments.
_RELAUNCH_ARGS = {"COLLECTION_OWNER": "collection_owner", "STREAM_ID": "stream_id", "ACTION_ID": "action_id",
                  "ACTION_INPUT_JSON": "action_input_json"}


def relaunch_request(
    *,
    job_id: str,
    attempt: int,
    environment: Mapping[str, str],
    task_definition: str,
    fallback: Mapping[str, Any],
    **network: Any,
) -> dict[str, Any]:
    """The RunTask request that starts a dead task's job again (the sweeper, SPEC §8.3): the same
    task definition and worker environment as the stopped task (as ECS describes it), or, when
    ECS no longer knows it, ``fallback``'s ``run_mode``/``username``/``shard_index``/``shard_count``.
    The client token is derived from the job id, its shard and ``attempt``, so two relaunches of
    the same attempt start one task. ``network``: ``cluster``, ``subnets``, ``security_groups``,
    ``assign_public_ip``, ``container_name``.
    """
    env = dict(environment)
    given: dict[str, Any] = {arg: env.pop(name) for name, arg in _RELAUNCH_ARGS.items() if name in env}
    for name in ("JOB_ID", *FORBIDDEN_ENV):
        env.pop(name, None)
    run_mode = env.pop("RUN_MODE", None) or str(fallback.get("run_mode") or RunMode.RUN_JOB.value)
    username = env.pop("USERNAME", None) or str(fallback.get("username") or "")
    shard_index = int(env.pop("SHARD_INDEX", None) or fallback.get("shard_index") or 0)
    shard_count = int(env.pop("SHARD_COUNT", None) or fallback.get("shard_count") or 1)
    if not username:
        raise ValueError(f"job {job_id}: no username to relaunch it with")
    return run_task_request(
        job_id=job_id, username=username, run_mode=run_mode, task_definition=task_definition,
        shard_index=shard_index, shard_count=shard_count, extra_env=env, started_by="plus-worker-sweeper",
        launch_attempt=attempt + 1, **given, **network,
    )


def run_task_requests(*, shards: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
    """One :func:`run_task_request` per shard (``SHARD_INDEX`` 0..shards-1, ``SHARD_COUNT`` shards).

    RunTask's own ``count`` starts identical tasks, so it cannot give each shard its index.
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1: {shards}")
    return [run_task_request(shard_index=i, shard_count=shards, **kwargs) for i in range(shards)]


#: The run modes whose jobs more tasks can join while they run (SPEC §8.5); RUN_JOB when its
#: job_type is one of them (the worker checks; a task on another job type ends with exit 3).
JOINABLE_RUN_MODES = ("RUN_COLLECTION", "RUN_STREAM", "RUN_FILES", "RUN_JOB")


def add_task_requests(*, count: int, launch_attempt: int, **kwargs: Any) -> list[dict[str, Any]]:
    """``count`` RunTask requests that start more tasks on a many-item job (SPEC §8.5): the same
    environment each (no shard), a client token per task and ``launch_attempt`` (pass a new one per
    deliberate addition, e.g. the time)."""
    if count < 1:
        raise ValueError(f"the number of tasks to add must be at least 1: {count}")
    run_mode = kwargs.get("run_mode", RunMode.RUN_JOB.value)
    if run_mode not in JOINABLE_RUN_MODES:
        raise ValueError(f"only runs over many items take more tasks ({', '.join(JOINABLE_RUN_MODES)}), "
                         f"not {run_mode}")
    return [run_task_request(task_index=i + 1, launch_attempt=launch_attempt, **kwargs) for i in range(count)]


def add_tasks(ecs_client: _Ecs, *, count: int, launch_attempt: int, **request_kwargs: Any) -> list[str]:
    """Start ``count`` more tasks on a running many-item job and return their ARNs; each joins the
    job and claims chunks no other task holds (one that finds none leaves at once, exit 0).
    ``request_kwargs`` as for :func:`run_task_request` (``job_id``, ``username``, ``cluster``, ...).
    Raises LaunchError when ECS starts none of them or refuses one; the job itself is left as it is."""
    arns: list[str] = []
    for request in add_task_requests(count=count, launch_attempt=launch_attempt, **request_kwargs):
        try:
            response = ecs_client.run_task(**request)
        except (ClientError, BotoCoreError) as exc:
            raise LaunchError(f"RunTask failed after starting {len(arns)} task(s): {exc}") from exc
        failures = response.get("failures") or []
        if failures or not response.get("tasks"):
            reasons = "; ".join(str(f.get("reason", "unknown")) for f in failures) or "no task started"
            raise LaunchError(f"ECS did not start a task (after {len(arns)}): {reasons}", failures)
        arns.extend(task["taskArn"] for task in response["tasks"])
    return arns


def launch_job(
    dynamodb_table: TableResource,
    ecs_client: _Ecs,
    *,
    job_item: Mapping[str, Any],
    shards: int = 1,
    key_attribute: str = "object_id",
    **request_kwargs: Any,
) -> list[str]:
    """Write ``job_item`` unless it exists, start its task(s) and return their ARNs.

    Safe to retry: the document is written with ``attribute_not_exists`` (an existing one is kept)
    and each RunTask carries a client token derived from the job id, so a retried launch starts no
    second task. ``request_kwargs`` go to :func:`run_task_request` (``cluster``,
    ``task_definition``, ``subnets``, ``security_groups``, ``run_mode``, ...).

    When ECS refuses to start a task, the job (if still INITIALIZING) is marked FAILED with the
    reason, and LaunchError is raised.
    """
    job_id = str(job_item[key_attribute])
    put_new_in_table(dynamodb_table, job_item, key_attribute)  # False: a retry, the document is already there
    requests = run_task_requests(
        shards=shards, job_id=job_id, username=str(job_item["username"]), **request_kwargs
    )
    arns: list[str] = []
    for request in requests:
        try:
            response = ecs_client.run_task(**request)
        except (ClientError, BotoCoreError) as exc:
            _mark_failed(dynamodb_table, job_id, key_attribute, f"Could not start the worker task: {exc}")
            raise LaunchError(f"RunTask failed for job {job_id}: {exc}") from exc
        failures = response.get("failures") or []
        tasks = response.get("tasks") or []
        if failures or not tasks:
            reasons = "; ".join(f"{f.get('arn', '')} {f.get('reason', 'unknown')}".strip() for f in failures)
            _mark_failed(dynamodb_table, job_id, key_attribute, f"Could not start the worker task: {reasons}")
            raise LaunchError(f"ECS did not start a task for job {job_id}: {reasons}", failures)
        arns.extend(task["taskArn"] for task in tasks)
    return arns


def _mark_failed(table: TableResource, job_id: str, key_attribute: str, message: str) -> None:
    """Record a launch failure on a job nobody has claimed yet (INITIALIZING → FAILED)."""
    now = int(time.time())
    update = Update.setting(
        {"status": JobStatus.FAILED.value, "error_message": bounded(message, 1000), "completed_at": now,
         "updated_at": now},
        may_become(JobStatus.FAILED, {Guard.LEASE_FREE: missing("lease_owner")}),
    )
    try:
        update_in_table(table, key_attribute, job_id, update)
    except ConditionFailed:
        return  # a worker claimed it meanwhile: its own record tells
    except (ClientError, BotoCoreError) as exc:
        raise LaunchError(f"could not record the launch failure on {job_id}: {exc}") from exc


#: Copied from the job a redrive repeats, as stored (the script, its inputs and limits, the controls).
REDRIVE_COPIES = ("script", "input_data", "registers", "timeout_seconds", "tolerated_failure_percent",
                  "concurrency")


def redrive_job(dao: Dao, job_id: str, username: str) -> str:
    """Create a redrive of the finished job ``job_id`` (:mod:`feaas.jobs.redrive`) for ``username``
    and return the new job's id (INITIALIZING: launch it with RUN_JOB). The new job has the same
    script and settings, ``job_type`` and source as the run it repeats, ``parent_job_id``, and an
    ``item_keys_object`` listing the items whose latest receipt failed; the old job gets
    ``redriven_by``. Raises :class:`RedriveRefused` (nothing written) or :class:`StorageError`."""
    plan = plan_redrive(dao, job_id, username)
    old = plan.job_doc
    label = old.get("label") if isinstance(old.get("label"), str) else ""
    item = new_job_item(hostname=plan.hostname, username=username, label=f"{label} (redrive)".strip(),
                        job_type=plan.source["job_type"], stream_id=plan.source.get("stream_id"),
                        collection_owner=plan.source.get("collection_owner"),
                        key_attribute=dao.docs.key_attribute)
    item.update({name: old[name] for name in REDRIVE_COPIES if name in old})
    offloaded = old.get("offloaded")  # where large register values went (SPEC §4), with the registers
    if isinstance(offloaded, dict) and "registers" in item:
        kept = {k: v for k, v in offloaded.items() if k == "registers" or k.startswith("registers.")}
        if kept:
            item["offloaded"] = kept
    item[PARENT_JOB_ID] = job_id
    item[ITEM_KEYS_OBJECT] = keys_object_for(plan.namespace, item["object_id"])
    return create_redrive(dao, plan, item, dao.docs.key_attribute)


#: ``run-task-requests`` refuses its command line with this exit code (run-task.sh's own EX_USAGE);
#: ``redrive`` refuses a job with it too.
EX_USAGE = 64
#: ``redrive`` could not read or write storage.
EX_STORAGE = 74


def main(argv: Sequence[str] | None = None) -> int:
    """Write a job document as plus-engine does, show one readably, or build RunTask requests.

    ``create-job`` prints the new job's id; ``show-job`` prints the record as indented JSON.
    Defaults come from the worker's own variables (DYNAMO_TABLE, REGION, USERNAME), so after
    ``set -a; . test_scripts/job.env; set +a`` no option but the script is needed. AWS settings
    (endpoints, keys) come from the usual boto3 chain. ``run-task-requests`` prints one RunTask
    request per shard, one JSON object a line, for ``aws ecs run-task --cli-input-json``
    (run-task.sh); with ``--check`` it only checks its options. It does no AWS call.
    """
    import argparse
    import json
    import os
    import sys

    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m feaas.launch", description=main.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-job", help="write a new INITIALIZING job document; print its id")
    show = sub.add_parser("show-job", help="print a job document readably (status, output, receipts)")
    redrive = sub.add_parser(
        "redrive", help="create a new job over the items whose latest receipt failed in a finished job "
        "(same script; parent_job_id / redriven_by link them); print its id. Refused (exit 64, nothing "
        "written): a job still running or interrupted, another user's job, a job already redriven or "
        "with no failed items")
    requests = sub.add_parser("run-task-requests",
                              help="print the RunTask request of each shard (run-task.sh)")
    submit = sub.add_parser(
        "submit-job-request",
        help="print the SubmitJob request of an AWS Batch array job (run-task.sh --batch)"
    )
    for p in (create, show, redrive):
        p.add_argument(
            "--table",
            default=env.get("DYNAMO_TABLE"),
            required="DYNAMO_TABLE" not in env,
            help="documents table (default: $DYNAMO_TABLE)",
        )
        region = env.get("REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        p.add_argument("--region", default=region, required=region is None, help="default: $REGION")
    for p in (create, redrive):
        p.add_argument(
            "--username",
            default=env.get("USERNAME"),
            required="USERNAME" not in env,
            help="the job's user (default: $USERNAME)",
        )
    redrive.add_argument("job_id", help="the finished job whose failed items run again")
    redrive.add_argument("--streams-table", default=env.get("DYNAMO_STREAMS_TABLE"),
                         required="DYNAMO_STREAMS_TABLE" not in env,
                         help="the table of item receipts (default: $DYNAMO_STREAMS_TABLE)")
    redrive.add_argument("--bucket", default=env.get("PRIMARY_BUCKET"), required="PRIMARY_BUCKET" not in env,
                         help="where the new job's item key list goes (default: $PRIMARY_BUCKET)")
    create.add_argument(
        "--hostname",
        default=env.get("PLUS_HOSTNAME", "plus_example_com"),
        help="the frontend's host name (default: $PLUS_HOSTNAME or plus_example_com)",
    )
    script = create.add_mutually_exclusive_group(required=True)
    script.add_argument("--script-json", help="the PlusScript as JSON text")
    script.add_argument("--script-file", help="a file holding the PlusScript as JSON ('-' for stdin)")
    create.add_argument("--input-json", default="{}", help="input_data as a JSON object")
    create.add_argument("--label", default="")
    show.add_argument("job_id")
    show.add_argument("--raw", action="store_true", help="the whole stored document instead of a summary")
    _request_options(requests)
    _request_options(submit)
    submit.add_argument("--batch", required=True, metavar="N",
                        help=f"tasks in the array job (1..{BATCH_ARRAY_MAX}; 1: a plain job)")
    submit.add_argument("--job-queue", default="")
    submit.add_argument("--job-definition", default="")
    args = parser.parse_args(argv)

    if args.command in ("run-task-requests", "submit-job-request"):
        try:
            built = _requests_from(args) if args.command == "run-task-requests" else [_submit_from(args)]
        except ValueError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return EX_USAGE
        sys.stdout.writelines(json.dumps(request) + "\n" for request in built)
        return 0
    if args.command == "redrive":
        try:
            new_id = redrive_job(_dao(args.table, args.streams_table, args.bucket, args.region), args.job_id,
                                 args.username)
        except RedriveRefused as exc:
            sys.stderr.write(f"error: redrive refused: {exc}\n")
            return EX_USAGE
        except StorageError as exc:
            sys.stderr.write(f"error: redrive failed: {exc}\n")
            return EX_STORAGE
        sys.stdout.write(f"{new_id}\n")
        return 0
    docs = _documents(args.table, args.region)
    if args.command == "show-job":
        from feaas.jobview import job_summary

        found = docs.get(args.job_id)
        if found is None:
            sys.stderr.write(f"job {args.job_id} not found in {args.table}\n")
            return 1
        view = found if args.raw else job_summary(found)
        sys.stdout.write(json.dumps(view, indent=2, default=str, ensure_ascii=False) + "\n")
        return 0
    if args.script_file is not None:
        with sys.stdin if args.script_file == "-" else open(args.script_file, encoding="utf-8") as f:
            script_json = f.read()
    else:
        script_json = args.script_json
    item = new_job_item(
        hostname=args.hostname,
        username=args.username,
        script=json.loads(script_json),
        input_data=json.loads(args.input_json),
        label=args.label,
    )
    docs.put_new(item)
    sys.stdout.write(f"{item['object_id']}\n")
    return 0


def _documents(table: str, region: str) -> Any:
    """The documents table through :mod:`feaas.dao` (endpoints and keys from the boto3 chain)."""
    from feaas.dao import Documents, make_clients

    return Documents(make_clients(region).dynamodb, table, "object_id", "ownerIndex")


def _dao(table: str, streams_table: str, bucket: str, region: str) -> Dao:
    """Documents, streams and bucket through :mod:`feaas.dao` (endpoints and keys from the boto3 chain)."""
    from feaas.dao import Blobs, Documents, Streams, make_clients

    clients = make_clients(region)
    return Dao(docs=Documents(clients.dynamodb, table, "object_id", "ownerIndex"),
               streams=Streams(clients.dynamodb, streams_table), blobs=Blobs(clients.s3, bucket))


def _request_options(parser: Any) -> None:
    """``run-task-requests``' options: run-task.sh's own, which it passes on as they are."""
    parser.add_argument("--check", action="store_true", help="only check the options; print nothing")
    parser.add_argument("--job-id", default=None, help="required except for REGISTER_ACTIONS")
    parser.add_argument("--username", default=None, help="required except for REGISTER_ACTIONS")
    parser.add_argument("--run-mode", default=RunMode.RUN_JOB.value)
    for name in ("--collection-owner", "--stream-id", "--action-id", "--action-input-json"):
        parser.add_argument(name, default=None)
    parser.add_argument("--shards", default="1")
    parser.add_argument("--add-tasks", default=None, metavar="N",
                        help="N more tasks on a running many-item job (they share its chunks)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--launch-attempt", default="1", help="a new number starts the job again on purpose")
    parser.add_argument("--cluster", default="")
    parser.add_argument("--task-definition", default="")
    parser.add_argument("--subnets", default="", help="comma-separated")
    parser.add_argument("--security-groups", default="", help="comma-separated")
    parser.add_argument("--assign-public-ip", default="ENABLED", choices=("ENABLED", "DISABLED"))
    parser.add_argument("--container-name", default="worker")
    parser.add_argument("--started-by", default="plus-engine")


def _positive(option: str, text: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]*", text):
        raise ValueError(f"{option} must be a positive integer")
    return int(text)


def _submit_from(args: Any) -> dict[str, Any]:
    """The request ``submit-job-request`` prints (``run-task.sh --batch``); ValueError names the
    option at fault."""
    size = _positive("--batch", args.batch)
    if args.add_tasks is not None or _positive("--shards", args.shards) > 1:
        raise ValueError("--batch starts the tasks itself: it takes no --add-tasks or --shards")
    if args.run_mode not in JOINABLE_RUN_MODES:
        raise ValueError(f"--batch is for runs over many items ({', '.join(JOINABLE_RUN_MODES)}), "
                         f"not {args.run_mode}")
    if size > BATCH_ARRAY_MAX:
        raise ValueError(f"--batch must be 1..{BATCH_ARRAY_MAX} (AWS Batch's largest array job)")
    if not args.job_id or not args.username:
        raise ValueError("--job-id and --username are required")
    return submit_job_request(
        job_queue=args.job_queue or ("-" if args.check else ""),
        job_definition=args.job_definition or ("-" if args.check else ""),
        size=size, job_id=args.job_id, username=args.username, run_mode=args.run_mode,
        collection_owner=args.collection_owner, stream_id=args.stream_id, extra_env=_extra_env(args.env),
    )


def _extra_env(pairs: Sequence[str]) -> dict[str, str]:
    """``--env NAME=VALUE`` options as a dict; ValueError for a bad pair or a credential."""
    extra_env: dict[str, str] = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
            raise ValueError(f"--env wants NAME=VALUE, got: {pair}")
        if name in FORBIDDEN_ENV:
            raise ValueError(f"{name} is not passed to tasks: they use the task role")
        extra_env[name] = value
    return extra_env


def _requests_from(args: Any) -> list[dict[str, Any]]:
    """The requests ``run-task-requests`` prints; ValueError names the option at fault."""
    if args.run_mode not in RUN_MODES:
        raise ValueError(
            f"unknown --run-mode: {args.run_mode} (expected one of {', '.join(m.value for m in RunMode)})"
        )
    shards = _positive("--shards", args.shards)
    if args.add_tasks is not None and shards > 1:
        raise ValueError("--add-tasks and --shards exclude each other")
    if args.run_mode == REGISTER_ACTIONS:
        if args.job_id or args.username or shards > 1:
            raise ValueError("REGISTER_ACTIONS takes no --job-id, --username or --shards")
    elif not args.job_id or not args.username:
        raise ValueError("--job-id and --username are required")
    if args.run_mode in (RunMode.RUN_ACTION.value, RunMode.RUN_PLUSSCRIPT.value) and not args.action_id:
        raise ValueError(f"{args.run_mode} needs --action-id")
    extra_env = _extra_env(args.env)
    network = {
        "subnets": [s for s in args.subnets.split(",") if s],
        "security_groups": [g for g in args.security_groups.split(",") if g],
    }
    if args.check:  # the job's part only: the network comes from the settings read later
        network = {"subnets": ["-"], "security_groups": ["-"]}
    common: dict[str, Any] = dict(
        cluster=args.cluster, task_definition=args.task_definition, **network,
        job_id=args.job_id or None, username=args.username or None, run_mode=args.run_mode,
        collection_owner=args.collection_owner, stream_id=args.stream_id, action_id=args.action_id,
        action_input_json=args.action_input_json, extra_env=extra_env,
        assign_public_ip=args.assign_public_ip == "ENABLED", container_name=args.container_name,
        started_by=args.started_by, launch_attempt=_positive("--launch-attempt", args.launch_attempt),
    )
    if args.add_tasks is not None:
        return add_task_requests(count=_positive("--add-tasks", args.add_tasks), **common)
    return run_task_requests(shards=shards, **common)


if __name__ == "__main__":
    raise SystemExit(main())
