"""The task's memory budget and the limits derived from it (issue 13 §2–3, SPEC §8.3).

``MEMORY_LIMIT_MB`` (default: the container's cgroup limit, else the machine's RAM) is the whole
task's budget, shared by the worker and the children its actions start (DuckDB, ffmpeg). The
worker keeps :data:`WORKER_RESERVE_MB` for itself (its final write must always fit); the rest is
split between at most :data:`CHILD_SLOTS` children running at once. This module is the only place
that reads the cgroup.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from feaas.objects import AnyType, Receipt

#: What the worker keeps for itself: its own objects and the final write of the job record.
WORKER_RESERVE_MB = 150
#: How many limited children (DuckDB queries, ffmpeg runs) share the budget at once.
CHILD_SLOTS = 2
#: The smallest limit a child gets, however small the budget.
MIN_CHILD_MB = 64
#: Default size limit of one value the engine produces (``MAX_VALUE_MB``).
DEFAULT_MAX_VALUE_MB = 16
_UNLIMITED = 1 << 60


def _read_limit(path: Path) -> int | None:
    try:
        raw = path.read_text().strip()
    except OSError:
        return None
    return int(raw) if raw.isdigit() and int(raw) < _UNLIMITED else None


def cgroup_limit_bytes(proc_cgroup: Path = Path("/proc/self/cgroup"),
                       root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The tightest memory limit of this process's cgroup and its ancestors (v2 ``memory.max``,
    v1 ``memory.limit_in_bytes``); ``None`` when there is none."""
    candidates: list[Path] = []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        own = Path(parts[2].lstrip("/"))
        chain = [own, *own.parents]
        if parts[0] == "0" and parts[1] == "":
            for base in (root, root / "unified"):
                candidates += [base / p / "memory.max" for p in chain]
        elif "memory" in parts[1].split(","):
            candidates += [root / "memory" / p / "memory.limit_in_bytes" for p in chain]
    candidates += [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    limits = [limit for path in dict.fromkeys(candidates) if (limit := _read_limit(path)) is not None]
    return min(limits) if limits else None


def ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def memory_budget_mb(configured_mb: int | None) -> int:
    """The task's budget: ``MEMORY_LIMIT_MB`` when set, else the cgroup limit, else the RAM."""
    if configured_mb:
        return int(configured_mb)
    total = _detected_bytes()
    return max(MIN_CHILD_MB, total // (1024 * 1024)) if total else 2048


@functools.cache
def _detected_bytes() -> int | None:
    return cgroup_limit_bytes() or ram_bytes()


def child_memory_mb(budget_mb: int) -> int:
    """The memory limit of one child: the budget minus the worker's reserve, split in slots."""
    return max(MIN_CHILD_MB, (budget_mb - WORKER_RESERVE_MB) // CHILD_SLOTS)


def human_size(size: int) -> str:
    """``1.2 GB``, ``16 MB``, ``512 bytes``."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) or value >= 100 else f"{value:.1f} {unit}"
    return f"{size} bytes"


def value_size(value: Any) -> int:
    """About how many bytes ``value`` takes as JSON (strings count their characters).

    Containers are counted once per object, so a value built by nesting the same object many times
    is measured in time linear in its distinct parts, however large it would become. Iterative, so
    values nested as deep as the engine allows (512 levels) never meet Python's recursion limit.
    """
    size = _scalar_size(value)
    if size is not None:
        return size
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = list(node.values()) if isinstance(node, Mapping) else list(node)
        if not children_done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if _scalar_size(c) is None and id(c) not in sizes)
            continue
        parts = sum(_part_size(c, sizes) + 1 for c in children)
        if isinstance(node, Mapping):
            parts += sum(len(str(k)) + 3 for k in node)
        sizes[id(node)] = 2 + parts
    return sizes[id(value)]


def _part_size(value: Any, sizes: dict[int, int]) -> int:
    size = _scalar_size(value)
    return size if size is not None else sizes.get(id(value), 0)  # 0: a cycle back to an open container


def _scalar_size(value: Any) -> int | None:
    """The size of anything that is not a container (None for a mapping, list, tuple or set)."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if value is None or isinstance(value, (bool, int, float)):
        return 8
    if isinstance(value, (Receipt, AnyType)):
        return int(value.ByteSize())
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return None
    return len(str(value))
