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
    # resumes once the job is claimed (src/jobsteps.py), or before a run mode without a job (_without_job).
    gc.disable()

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from feaas import logs
from feaas.dao import Dao
from feaas.dao.errors import explain_storage_error
from feaas.errors import ConfigError, Interrupted, JobFailed, NamespaceViolation, StorageError
from feaas.exitcodes import ExitCode
from feaas.jobs import Heartbeat, Progress
from feaas.jobs.controls import LiveControls
from feaas.jobs.document import job_limits
from feaas.logs import event
from feaas.settings import RunMode, Settings, load_register_settings, load_settings, load_sweep_settings
from feaas.stopping import StopSignal
from feaas.usage import worker_usage
from src.jobsteps import claim, finish, run_job
from src.startup import storage_or_exit

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


def run(settings: Settings, stop: StopSignal) -> int:
    """Claim the job, run it, record the outcome; returns the exit code."""
    started = time.monotonic()
    dao = storage_or_exit(lambda: Dao.connect(settings))
    if isinstance(dao, ExitCode):
        return dao
    if stop.stopped:  # interrupted before anything was claimed: leave the job as it is
        event(logger, "interrupted_before_claim", level=logging.WARNING)
        return ExitCode.INTERRUPTED
    claimed = claim(settings, dao, stop)
    if isinstance(claimed, ExitCode):
        return claimed
    record, job_doc = claimed
    from feaas.runners.context import Outcome  # after the claim (src/jobsteps.py)
    try:
        timeout_s, tolerated = job_limits(job_doc)
    except JobFailed as exc:  # recorded like any failure after the claim
        return finish(settings, record, Outcome.failed(str(exc)), Progress(), started)
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
        outcome = run_job(settings, dao, job_doc, progress, stop, controls, record)
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
    return finish(settings, record, outcome, progress, started, stop)


if __name__ == "__main__":
    raise SystemExit(main())
