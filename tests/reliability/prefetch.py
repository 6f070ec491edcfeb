"""Run the worker for many parametrized cases a few at a time, ahead of the tests that check them.

A catalogue of ~100 cases, one ``python -m src.worker`` each, takes minutes when run one after
another, mostly spent starting Python and waiting on the local servers. ``Prefetch`` starts the
runs of every *selected* case of a module on a small thread pool as soon as the first test asks;
each test then waits for its own run and asserts on it, so reports and ``-k`` work as usual.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from feaas.dao import Dao
from tests.conftest import OUTPUTS, ROOT, WorkerRun, worker_env

WORKERS = 3


def run_worker_now(stack: Any, dao: Dao, job_id: str, timeout: float = 120, **env: Any) -> WorkerRun:
    """What the ``run_worker`` fixture does, callable from any thread."""
    proc = subprocess.run([sys.executable, "-m", "src.worker"], check=False, cwd=ROOT,
                          env=worker_env(stack, job_id, **env),
                          capture_output=True, text=True, timeout=timeout)
    OUTPUTS.append(proc.stdout + proc.stderr)
    return WorkerRun(proc.returncode, proc.stdout, proc.stderr, dao.docs.get(job_id))


def selected(request: pytest.FixtureRequest, param: str) -> list[Any]:
    """The values of parameter ``param`` for this module's tests that the session will run."""
    values = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if item.module is request.module and callspec is not None and param in callspec.params:
            values.append(callspec.params[param])
    return values


class Prefetch:
    """``Prefetch(cases, key, run)``: ``run(case)`` for every case on a pool; ``get(case)`` waits."""

    def __init__(self, cases: list[Any], key: Callable[[Any], str], run: Callable[[Any], Any],
                 workers: int = WORKERS) -> None:
        self.key = key
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="prefetch")
        self.futures: dict[str, Future[Any]] = {key(c): self.pool.submit(run, c) for c in cases}

    def get(self, case: Any) -> Any:
        return self.futures[self.key(case)].result()

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()
        self.pool.shutdown(wait=True)
