"""Entrypoint: ``python -m src.worker``. Settings → logging → storage → claim → run → finish → exit code."""

from __future__ import annotations

import signal

# A SIGTERM can arrive while the imports below still load (~1 s): remember it instead of dying.
_EARLY_SIGNALS: list[int] = []
if __name__ == "__main__":
    for _sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(_sig, lambda signum, _frame: _EARLY_SIGNALS.append(signum))

import logging
import shutil
import sys
import time
from collections.abc import Callable
from types import FrameType

from feaas import logs, metrics
from feaas.actions.context import UserStorage
from feaas.dao import Dao, Documents, Streams, Blobs, make_clients
from feaas.errors import Cancelled, ConfigError, Interrupted, JobFailed, JobNotClaimable
from feaas.errors import LeaseLost, NamespaceViolation, StorageError
from feaas.jobs import Heartbeat, JobRecord, JobStatus, Progress, ShardedJobRecord, ecs_task_arn
from feaas.logs import event
from feaas.runners.common import Outcome, RunContext, bounded, explain_storage_error, job_identity, job_limits
from feaas.runners.common import make_tmp_root, parse_job
from feaas.runners.items import run_collection, run_files, run_stream
from feaas.runners.script import run_action, run_script
from feaas.settings import RunMode, Settings, load_settings
from feaas.stopping import StopSignal
from src.actions import default_registry

EXIT_SUCCEEDED = 0  # job SUCCEEDED
EXIT_FAILED = 1  # job FAILED and recorded as such
EXIT_CONFIG = 2  # configuration invalid; nothing written
EXIT_NOT_CLAIMABLE = 3  # not found, finished, or held by another live task; nothing changed
EXIT_INTERNAL = 70  # internal error that could not be recorded on the job
EXIT_INTERRUPTED = 75  # SIGTERM/SIGINT: progress saved, job left resumable

logger = logging.getLogger("src.worker")

RUNNERS: dict[RunMode, Callable[[RunContext], Outcome]] = {
    RunMode.RUN_SCRIPT: run_script,
    RunMode.RUN_ACTION: run_action,
    RunMode.RUN_COLLECTION: run_collection,
    RunMode.RUN_STREAM: run_stream,
    RunMode.RUN_FILES: run_files,
}
ITEM_RUNNERS = (run_collection, run_stream, run_files)
#: RUN_JOB: the job's ``job_type`` picks the runner (absent means a single script run).
JOB_TYPES: dict[str, Callable[[RunContext], Outcome]] = {
    "singleton": run_script,
    "run_on_collection": run_collection,
    "run_on_stream": run_stream,
    "run_on_files": run_files,
}


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"plus-worker: {exc}\n")
        return EXIT_CONFIG
    logs.configure(settings.effective_log_format.value, settings.log_level)
    logs.bind(job_id=settings.job_id, run_mode=settings.run_mode.value)
    stop = StopSignal()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: _interrupt(stop, signum))
    for signum in _EARLY_SIGNALS:
        _interrupt(stop, signum)
    return run(settings, stop)


def _interrupt(stop: StopSignal, signum: int, _frame: FrameType | None = None) -> None:
    stop.stop(Interrupted(signal.Signals(signum).name))


def connect(settings: Settings) -> Dao:
    key, secret = settings.access_key, settings.secret_key
    clients = make_clients(settings.region, access_key=key.get_secret_value() if key else None,
                           secret_key=secret.get_secret_value() if secret else None,
                           max_pool=settings.concurrency * 2 + 8)
    docs = Documents(clients.dynamodb, settings.dynamo_table, settings.dynamo_key_attribute,
                     settings.dynamo_owner_index)
    return Dao(docs=docs, streams=Streams(clients.dynamodb, settings.dynamo_streams_table),
               blobs=Blobs(clients.s3, settings.primary_bucket))


def job_record(settings: Settings, dao: Dao) -> JobRecord:
    common = dict(lease_seconds=settings.lease_seconds, task_arn=ecs_task_arn())
    if settings.shard_count > 1:
        return ShardedJobRecord(dao.docs, settings.job_id, shard_index=settings.shard_index,
                                shard_count=settings.shard_count, **common)  # type: ignore[arg-type]
    return JobRecord(dao.docs, settings.job_id, **common)  # type: ignore[arg-type]


def run(settings: Settings, stop: StopSignal) -> int:
    """Claim the job, run it, record the outcome; returns the exit code."""
    started = time.monotonic()
    dao = connect(settings)
    record = job_record(settings, dao)
    if stop.stopped:  # interrupted before anything was claimed: leave the job as it is
        event(logger, "interrupted_before_claim", level=logging.WARNING)
        return EXIT_INTERRUPTED
    try:
        item = record.claim()
    except JobNotClaimable as exc:
        event(logger, "job_not_claimable", level=logging.ERROR, reason=str(exc))
        return EXIT_NOT_CLAIMABLE
    except StorageError as exc:
        event(logger, "job_claim_failed", level=logging.ERROR, error=explain_storage_error(exc, settings))
        return EXIT_INTERNAL
    try:
        timeout_s, tolerated = job_limits(item)
    except JobFailed as exc:  # recorded like any failure after the claim
        return _finish(settings, record, Outcome.failed(str(exc)), Progress(), started)
    logs.bind(attempt=item.get("attempt"), shard=settings.shard_index if settings.shard_count > 1 else None)
    if isinstance(record, ShardedJobRecord) and tolerated is not None:
        record.tolerated_percent = tolerated
    elif isinstance(record, ShardedJobRecord):
        record.tolerated_percent = settings.tolerated_failure_percent
    event(logger, "job_claimed", status=item.get("status"), task_arn=record.task_arn)
    progress = Progress()
    timeout_s = timeout_s or settings.max_runtime_seconds
    heartbeat = Heartbeat(record, progress, stop, period_s=settings.heartbeat_seconds, timeout_s=timeout_s,
                          deadline_at=started + float(timeout_s) if timeout_s else None)
    heartbeat.check_item(item)
    heartbeat.start()
    try:
        outcome = _run_job(settings, dao, item, progress, stop)
    except (JobFailed, NamespaceViolation) as exc:  # NamespaceViolation: a run over another user's items
        outcome = Outcome.failed(str(exc))
    except StorageError as exc:  # retried by botocore already; a missing table or bucket ends here
        outcome = Outcome.failed(f"storage error: {explain_storage_error(exc, settings)}")
    except Exception as exc:  # a bug: still record it so the job never stays RUNNING
        logger.exception("job_crashed")
        outcome = Outcome.failed(f"internal error: {type(exc).__name__}: {exc}")
    finally:
        heartbeat.close()
    return _finish(settings, record, outcome, progress, started)


def _run_job(settings: Settings, dao: Dao, item: dict, progress: Progress, stop: StopSignal) -> Outcome:
    job = parse_job(item)
    hostname, namespace = job_identity(item, job, settings.username)
    ctx = RunContext(settings=settings, dao=dao, registry=default_registry(), item=item, job=job,
                     hostname=hostname, namespace=namespace,
                     storage=UserStorage(dao.blobs, dao.docs, namespace, cancel=stop.event), progress=progress, stop=stop,
                     tmp_root=make_tmp_root())
    if settings.run_mode is RunMode.RUN_JOB:
        job_type = item.get("job_type") or "singleton"
        runner = JOB_TYPES.get(job_type) if isinstance(job_type, str) else None
        if runner is None:
            raise JobFailed(f"unknown job_type {job_type!r}; expected one of {', '.join(JOB_TYPES)}")
    else:
        runner = RUNNERS[settings.run_mode]
    if settings.shard_count > 1 and runner not in ITEM_RUNNERS:
        raise JobFailed("SHARD_COUNT > 1 applies only to collection, stream and files runs")
    try:
        return runner(ctx)
    finally:
        shutil.rmtree(ctx.tmp_root, ignore_errors=True)


def _finish(settings: Settings, record: JobRecord, outcome: Outcome, progress: Progress, started: float) -> int:
    """Write the terminal status; map the outcome to the exit code."""
    stopped = outcome.stopped
    if isinstance(stopped, LeaseLost):
        event(logger, "job_abandoned", level=logging.ERROR, reason=str(stopped))
        return EXIT_NOT_CLAIMABLE
    _, latest = progress.snapshot()
    attrs = {**latest, **outcome.attrs}
    remove: tuple[str, ...] = outcome.remove
    code = EXIT_SUCCEEDED if outcome.status is JobStatus.SUCCEEDED else EXIT_FAILED
    message = outcome.error_message
    if isinstance(stopped, Interrupted):
        message, code = f"Job was interrupted ({stopped.signal_name}); it can be resumed", EXIT_INTERRUPTED
        attrs["resumable"] = True
    elif isinstance(stopped, JobFailed):  # cancelled, deadline, or a failure that stopped the run
        message = str(stopped)
        if isinstance(stopped, Cancelled):
            attrs["cancelled_at"] = int(time.time())
    if message:
        attrs["error_message"] = message = bounded(message)
    else:
        remove = (*remove, "error_message")
    try:
        written = record.finish(outcome.status, attrs, remove)
    except LeaseLost as exc:
        event(logger, "job_abandoned", level=logging.ERROR, reason=str(exc))
        return EXIT_NOT_CLAIMABLE
    except StorageError as exc:
        event(logger, "job_finish_failed", level=logging.ERROR, error=str(exc))
        return EXIT_INTERNAL
    if written is None:  # a shard finished its share; another shard writes the final status
        event(logger, "shard_finished", duration_ms=round((time.monotonic() - started) * 1000, 1),
              interrupted=code == EXIT_INTERRUPTED)
        return code if code == EXIT_INTERRUPTED else EXIT_SUCCEEDED
    if code != EXIT_INTERRUPTED:
        code = EXIT_SUCCEEDED if written is JobStatus.SUCCEEDED else EXIT_FAILED
    if metrics.is_enabled(settings.metrics):
        metrics.job_finished((time.monotonic() - started) * 1000, written.value, int(attrs.get("item_count") or 0),
                             run_mode=settings.run_mode.value)
    event(logger, "job_finished", status=written.value, error_message=message or None,
          duration_ms=round((time.monotonic() - started) * 1000, 1),
          **{k: attrs[k] for k in ("percent", "success_count", "error_count", "item_count", "action_count")
             if k in attrs})
    return code


if __name__ == "__main__":
    raise SystemExit(main())
