"""How much memory and how many threads a query gets: DuckDB spills to disk beyond the limit."""

from __future__ import annotations

import os

from feaas.resources import child_memory_mb, memory_budget_mb


def memory_limit_mb(ctx_limit_mb: int | None) -> int:
    """DuckDB's memory limit: the action's child limit, else a child's share of the task's budget
    (:mod:`feaas.resources`). The child process's address space is capped a little above it."""
    if ctx_limit_mb:
        return max(16, int(ctx_limit_mb))
    return child_memory_mb(memory_budget_mb(None))


#: Each DuckDB thread keeps its own hash tables; below this much memory per thread a tight limit
#: runs out of memory instead of spilling (a 400 MB CSV under 100 MB failed with 2 threads).
MIN_MB_PER_THREAD = 128


def threads(limit_mb: int) -> int:
    try:
        cpus = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        cpus = max(1, os.cpu_count() or 1)
    return max(1, min(cpus, limit_mb // MIN_MB_PER_THREAD))
