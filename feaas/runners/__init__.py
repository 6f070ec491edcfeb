"""Runners: one per kind of work (a script once, one action, many items). Each returns an Outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from feaas.errors import JobFailed
from feaas.runners.common import Outcome, RunContext
from feaas.runners.items import run_collection, run_files, run_stream
from feaas.runners.script import run_action, run_script
from feaas.settings import RunMode

Runner = Callable[[RunContext], Outcome]

RUNNERS: dict[RunMode, Runner] = {
    RunMode.RUN_SCRIPT: run_script,
    RunMode.RUN_ACTION: run_action,
    RunMode.RUN_COLLECTION: run_collection,
    RunMode.RUN_STREAM: run_stream,
    RunMode.RUN_FILES: run_files,
}
#: RUN_JOB: the job's ``job_type`` picks the runner (absent means a single script run).
JOB_TYPES: dict[str, Runner] = {
    "singleton": run_script,
    "run_on_collection": run_collection,
    "run_on_stream": run_stream,
    "run_on_files": run_files,
}
ITEM_RUNNERS = (run_collection, run_stream, run_files)


def select_runner(run_mode: RunMode, item: Mapping[str, Any], shard_count: int) -> Runner:
    """The runner for this task; an unknown ``job_type`` or a sharded single run is a JobFailed."""
    if run_mode is RunMode.RUN_JOB:
        job_type = item.get("job_type") or "singleton"
        runner = JOB_TYPES.get(job_type) if isinstance(job_type, str) else None
        if runner is None:
            raise JobFailed(f"unknown job_type {job_type!r}; expected one of {', '.join(JOB_TYPES)}")
    else:
        runner = RUNNERS[run_mode]
    if shard_count > 1 and runner not in ITEM_RUNNERS:
        raise JobFailed("SHARD_COUNT > 1 applies only to collection, stream and files runs")
    return runner
