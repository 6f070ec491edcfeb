"""The worker's steps around a job (``src/worker.py`` runs them in order): claim it, run it with
the runner its run mode picks, record the outcome and name the exit code.

The runners, the engine and the action catalogue are imported inside :func:`run_job`, after the
claim: they are not needed to claim the job, so it is RUNNING sooner (issue 14); the heavy action
modules (DuckDB, ffmpeg) load only when an action runs.
"""

from __future__ import annotations

import gc
import logging
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any

from feaas import logs, metrics
from feaas.dao import Dao
from feaas.dao.errors import explain_storage_error
from feaas.errors import Interrupted, JobNotClaimable, LeaseLost, StorageError
from feaas.exitcodes import ExitCode
from feaas.jobs import ChunkedJobRecord, JobRecord, JobStatus, Progress, read_job_in_time, record_for
from feaas.jobs.controls import LiveControls
from feaas.jobs.document import job_identity, parse_job
from feaas.logs import event
from feaas.settings import RunMode, Settings, runs_many_items
from feaas.stopping import SIGTERM_BUDGET_S, StopSignal

if TYPE_CHECKING:
    from feaas.runners.context import Outcome

logger = logging.getLogger("src.worker")
#: Items and nodes wait on the network from many threads: one woken by its reply gets the GIL
#: within 1 ms instead of Python's 5 ms (bench_items' I/O items, C=16 over C=1: 10.9x -> 13x).
GIL_SWITCH_INTERVAL_S = 0.001


def claim(settings: Settings, dao: Dao, stop: StopSignal) -> tuple[JobRecord, dict[str, Any]] | ExitCode:
    """The job's record and its document as claimed, or the exit code of why it was not.

    Bounded, SIGTERM's budget too, whatever storage does (the sweeper finds what landed)."""
    try:
        # RUN_JOB's job_type says whether the job is shared by many tasks: only then is it read first
        stored = read_job_in_time(dao.docs, settings.job_id, settings.username, stop,
                                  needed=settings.run_mode is RunMode.RUN_JOB)
        many_items = runs_many_items(settings.run_mode, (stored or {}).get("job_type"))
        record = record_for(dao.docs, settings.job_id, lease_seconds=settings.lease_seconds,
                            many_items=many_items, metadata_uri=settings.ecs_container_metadata_uri_v4,
                            index=dao.running, batch_receipts=settings.receipt_mode == "batch",
                            batch_job_id=settings.aws_batch_job_id)
        record.index_row.update(run_mode=settings.run_mode.value, username=settings.username)
        job_doc = record.claim_in_time(stop)
    except JobNotClaimable as exc:
        event(logger, "job_not_claimable", level=logging.ERROR, reason=str(exc))
        return ExitCode.NOT_CLAIMABLE
    except StorageError as exc:
        event(logger, "job_claim_failed", level=logging.ERROR, error=explain_storage_error(exc, settings))
        return ExitCode.INTERRUPTED if stop.stopped else ExitCode.INTERNAL
    logs.bind(attempt=job_doc.get("attempt"))
    event(logger, "job_claimed", status=job_doc.get("status"), task_arn=record.task_arn,
          batch_job_id=record.batch_job_id)
    after_start()
    return record, job_doc


def after_start() -> None:
    """Collection resumes when start-up turned it off (see the top of src/worker.py); what start-up
    made, modules and clients that live as long as the process, is left out of every later
    collection (``gc.freeze``)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def run_job(settings: Settings, dao: Dao, job_doc: dict[str, Any], progress: Progress,
            stop: StopSignal, controls: LiveControls, record: JobRecord) -> Outcome:
    """Run the claimed job with the runner of its run mode."""
    from feaas.actions.context import UserStorage
    from feaas.runners import select_runner
    from feaas.runners.context import RunContext, make_tmp_root
    from src.actions import default_registry

    job = parse_job(job_doc)
    hostname, namespace = job_identity(job_doc, job, settings.username, settings.job_id)
    runner = select_runner(settings.run_mode, job_doc, settings.shard_count)
    ctx = RunContext(settings=settings, dao=dao, registry=default_registry(), job_doc=job_doc, job=job,
                     hostname=hostname, namespace=namespace, progress=progress, stop=stop,
                     storage=UserStorage(dao.blobs, dao.docs, namespace, cancel=stop.event),
                     tmp_root=make_tmp_root(), controls=controls,
                     chunks=record if isinstance(record, ChunkedJobRecord) else None)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        return runner(ctx)
    finally:
        shutil.rmtree(ctx.tmp_root, ignore_errors=True)


def finish(settings: Settings, record: JobRecord, outcome: Outcome, progress: Progress,
           started: float, stop: StopSignal | None = None) -> int:
    """Write the terminal status; map it to the exit code."""
    if isinstance(outcome.stopped, LeaseLost):
        event(logger, "job_abandoned", level=logging.ERROR, reason=str(outcome.stopped))
        return ExitCode.NOT_CLAIMABLE
    attrs, remove, message = outcome.final(progress.snapshot()[1])
    interrupted = isinstance(outcome.stopped, Interrupted)
    # A storage outage is waited out until the lease would run out (the sweeper then records the
    # job), or, after SIGTERM, until the budget ECS leaves before killing the task.
    give_up_at = None
    if stop is not None and interrupted and stop.stopped_at is not None:
        give_up_at = stop.stopped_at + SIGTERM_BUDGET_S - 2.0
    try:
        written = record.finish_in_time(outcome.status, attrs, remove, give_up_at=give_up_at)
    except LeaseLost as exc:
        event(logger, "job_abandoned", level=logging.ERROR, reason=str(exc))
        return ExitCode.NOT_CLAIMABLE
    except StorageError as exc:
        event(logger, "job_finish_failed", level=logging.ERROR, error=str(exc))
        return ExitCode.INTERRUPTED if interrupted else ExitCode.INTERNAL
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    attrs.update(record.final_attrs)
    if written is None:  # a task of a many-item run left it; another task writes the final status
        event(logger, "task_finished", duration_ms=duration_ms, interrupted=interrupted)
        return ExitCode.INTERRUPTED if interrupted else ExitCode.SUCCEEDED
    if metrics.is_enabled(settings.metrics):
        metrics.job_finished(duration_ms, written.value, int(attrs.get("item_count") or 0),
                             run_mode=settings.run_mode.value)
    event(logger, "job_finished", status=written.value, error_message=message or None,
          duration_ms=duration_ms,
          **{k: attrs[k] for k in ("percent", "success_count", "error_count", "item_count", "action_count")
             if k in attrs})
    if interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.SUCCEEDED if written is JobStatus.SUCCEEDED else ExitCode.FAILED
