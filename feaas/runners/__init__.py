"""Runners: one per kind of work (a script once, one action, many items). Each returns an Outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from feaas.errors import JobFailed
from feaas.runners.context import Outcome, RunContext
from feaas.runners.items import run_collection, run_files, run_stream
from feaas.runners.plusscript import run_plusscript
from feaas.runners.script import run_action, run_script
from feaas.settings import JobType, RunMode

Runner = Callable[[RunContext], Outcome]

RUNNERS: dict[RunMode, Runner] = {
    RunMode.RUN_SCRIPT: run_script,
    RunMode.RUN_ACTION: run_action,
    RunMode.RUN_COLLECTION: run_collection,
    RunMode.RUN_STREAM: run_stream,
    RunMode.RUN_FILES: run_files,
    RunMode.RUN_PLUSSCRIPT: run_plusscript,
}
ITEM_RUNNERS = (run_collection, run_stream, run_files)


def select_runner(run_mode: RunMode, job_doc: Mapping[str, Any], shard_count: int) -> Runner:
    """The runner for this task; an unknown ``job_type`` or a sharded single run is a JobFailed.

    ``RUN_JOB``: the job's ``job_type`` picks the run mode (absent means a single script run)."""
    if run_mode is RunMode.RUN_JOB:
        job_type = job_doc.get("job_type") or JobType.SINGLETON.value
        known = {t.value: t for t in JobType}
        if not isinstance(job_type, str) or job_type not in known:
            raise JobFailed(f"unknown job_type {job_type!r}; expected one of {', '.join(known)}")
        run_mode = known[job_type].run_mode
    runner = RUNNERS[run_mode]
    if shard_count > 1 and runner not in ITEM_RUNNERS:
        raise JobFailed("SHARD_COUNT > 1 applies only to collection, stream and files runs")
    return runner
