"""Entrypoint: ``python -m src.worker``. Settings → logging → storage → claim → run → finish → exit code."""

from __future__ import annotations

import gc
import signal

# A SIGTERM can arrive while the imports below still load (~1 s): remember it instead of dying.
_EARLY_SIGNALS: list[int] = []
if __name__ == "__main__":
    for _sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(_sig, lambda signum, _frame: _EARLY_SIGNALS.append(signum))
    # Start-up (imports, botocore's models and clients) makes ~125k objects that nearly all stay alive:
    # collecting them while they are made is wasted time (~10% of the start, issue 14). Collection
    # resumes once the job is claimed (run), or before a run mode without a job (_without_job).
    gc.disable()

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from feaas import logs, metrics
from feaas.dao import Dao
from feaas.dao.errors import explain_storage_error
from feaas.errors import (
    ConfigError,
    Interrupted,
    JobFailed,
    JobNotClaimable,
    LeaseLost,
    NamespaceViolation,
    StorageError,
)
from feaas.exitcodes import ExitCode
from feaas.jobs import (
    ChunkedJobRecord,
    Heartbeat,
    JobRecord,
    JobStatus,
    Progress,
    read_job_in_time,
    record_for,
)
from feaas.jobs.controls import LiveControls
from feaas.jobs.document import job_identity, job_limits, parse_job
from feaas.logs import event
from feaas.settings import (
    RunMode,
    Settings,
    load_register_settings,
    load_settings,
    load_sweep_settings,
    runs_many_items,
)
from feaas.stopping import SIGTERM_BUDGET_S, StopSignal
from feaas.usage import worker_usage
from src.startup import storage_or_exit

if TYPE_CHECKING:
    from feaas.runners.context import Outcome

logger = logging.getLogger("src.worker")
S = TypeVar("S")  # the settings of a run mode without a job


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        if args[0] in ("-h", "--help"):
            sys.stdout.write(worker_usage())
            return ExitCode.SUCCEEDED
        sys.stderr.write(f"plus-worker: no arguments expected (got {args[0]!r}); see --help\n")
        return ExitCode.CONFIG
    if os.environ.get("RUN_MODE", "").strip().upper() == RunMode.SWEEP.value:
        return _sweep()
    if os.environ.get("RUN_MODE", "").strip().upper() == RunMode.REGISTER_ACTIONS.value:
        return _register_actions()
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"plus-worker: {exc}\n")
        return ExitCode.CONFIG
    logs.configure(settings.effective_log_format.value, settings.log_level)
    logs.bind(job_id=settings.job_id, run_mode=settings.run_mode.value)
    stop = StopSignal()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stop.stop(Interrupted(signal.Signals(signum).name)))
    for signum in _EARLY_SIGNALS:
        stop.stop(Interrupted(signal.Signals(signum).name))
    return run(settings, stop)


def _register_actions() -> int:
    """``RUN_MODE=REGISTER_ACTIONS``: no job of its own (LEGACY_ACTIONS.md §3)."""
    from src.register import configure_logging, run_register

    return _without_job(load_register_settings, configure_logging, run_register)


def _sweep() -> int:
    """``RUN_MODE=SWEEP``: no job of its own (SPEC §8.3)."""
    from src.sweep import configure_logging, run_sweep

    return _without_job(load_sweep_settings, configure_logging, run_sweep)


def _without_job(load: Callable[[], S], configure: Callable[[S], None], run_mode: Callable[[S], int]) -> int:
    """A run mode with settings of its own and no job: settings → logging → run → exit code."""
    gc.enable()
    try:
        settings = load()
    except ConfigError as exc:
        sys.stderr.write(f"plus-worker: {exc}\n")
        return ExitCode.CONFIG
    configure(settings)
    return run_mode(settings)


GIL_SWITCH_INTERVAL_S = 0.001


def run(settings: Settings, stop: StopSignal) -> int:
    """Claim the job, run it, record the outcome; returns the exit code."""
    started = time.monotonic()
    dao = storage_or_exit(lambda: Dao.connect(settings))
    if isinstance(dao, ExitCode):
        return dao
    if stop.stopped:  # interrupted before anything was claimed: leave the job as it is
        event(logger, "interrupted_before_claim", level=logging.WARNING)
        return ExitCode.INTERRUPTED
    try:  # bounded, SIGTERM's budget too, whatever storage does (the sweeper finds what landed)
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
    _after_start()
    # Imported after the claim: the runners, the engine and the action catalogue are not needed to
    # claim the job, so the job is RUNNING sooner (issue 14); the heavy action modules (DuckDB,
    # ffmpeg) load only when an action runs.
    from feaas.runners.context import Outcome
    try:
        timeout_s, tolerated = job_limits(job_doc)
    except JobFailed as exc:  # recorded like any failure after the claim
        return _finish(settings, record, Outcome.failed(str(exc)), Progress(), started)
    record.tolerated_percent = settings.tolerated_failure_percent if tolerated is None else tolerated
    timeout_s = timeout_s or settings.max_runtime_seconds
    progress = Progress()
    controls = LiveControls(concurrency=settings.concurrency, tolerated_failure_percent=tolerated,
                            publish=progress.update)
    heartbeat = Heartbeat(record, progress, stop, period_s=settings.heartbeat_seconds, timeout_s=timeout_s,
                          deadline_at=started + float(timeout_s) if timeout_s else None, controls=controls)
    heartbeat.check_job_doc(job_doc)
    heartbeat.start()
    try:
        outcome = _run_job(settings, dao, job_doc, progress, stop, controls, record)
    except (JobFailed, NamespaceViolation) as exc:  # NamespaceViolation: a run over another user's items
        outcome = Outcome.failed(str(exc))
    except StorageError as exc:  # retried by botocore already; a missing table or bucket ends here
        outcome = Outcome.failed(f"storage error: {explain_storage_error(exc, settings)}")
    except Exception as exc:  # a bug: still record it so the job never stays RUNNING
        logger.exception("job_crashed")
        outcome = Outcome.failed(f"internal error: {type(exc).__name__}: {exc}")
    finally:
        heartbeat.close()
    if controls.tolerated_failure_percent is not None:  # changed while it ran (a shared run judges with it)
        record.tolerated_percent = controls.tolerated_failure_percent
    return _finish(settings, record, outcome, progress, started, stop)


def _run_job(settings: Settings, dao: Dao, job_doc: dict[str, Any], progress: Progress,
             stop: StopSignal, controls: LiveControls, record: JobRecord) -> Outcome:
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
    # Items and nodes wait on the network from many threads: one woken by its reply gets the GIL
    # within 1 ms instead of Python's 5 ms (bench_items' I/O items, C=16 over C=1: 10.9x -> 13x).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        return runner(ctx)
    finally:
        shutil.rmtree(ctx.tmp_root, ignore_errors=True)


def _after_start() -> None:
    """Collection resumes when start-up turned it off (see the top of this module); what start-up
    made, modules and clients that live as long as the process, is left out of every later
    collection (``gc.freeze``)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _finish(settings: Settings, record: JobRecord, outcome: Outcome, progress: Progress,
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


if __name__ == "__main__":
    raise SystemExit(main())
