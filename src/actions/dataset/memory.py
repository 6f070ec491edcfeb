"""How much memory and how many threads a query gets: DuckDB spills to disk beyond the limit."""

from __future__ import annotations

import os
from pathlib import Path


def memory_limit_mb(ctx_limit_mb: int | None) -> int:
    """DuckDB's memory limit: the action's limit, else half of the cgroup limit or of the RAM."""
    if ctx_limit_mb:
        return max(16, int(ctx_limit_mb))
    total = _cgroup_limit_bytes() or _ram_bytes()
    return max(64, total // 2 // (1024 * 1024)) if total else 1024


def _cgroup_limit_bytes() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:  # "max" or a huge number means no limit
            return min(int(raw), _ram_bytes() or int(raw))
    return None


def _ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


#: Each DuckDB thread keeps its own hash tables; below this much memory per thread a tight limit
#: runs out of memory instead of spilling (a 400 MB CSV under 100 MB failed with 2 threads).
MIN_MB_PER_THREAD = 128


def threads(limit_mb: int) -> int:
    try:
        cpus = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        cpus = max(1, os.cpu_count() or 1)
    return max(1, min(cpus, limit_mb // MIN_MB_PER_THREAD))

