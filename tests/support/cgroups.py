"""Memory cgroups for the out-of-memory trials (tests/reliability/test_out_of_memory.py), v1 and v2.

A trial's cgroup is created under this process's own memory cgroup: v1, the ``memory``
controller's hierarchy (``memory.limit_in_bytes``, ``memory.memsw.limit_in_bytes``, kills counted in
``memory.oom_control``, the peak in ``memory.max_usage_in_bytes``); v2, the unified hierarchy at
``/sys/fs/cgroup`` or, on a hybrid host, ``/sys/fs/cgroup/unified`` (``memory.max``,
``memory.swap.max``, kills counted in ``memory.events``, the peak in ``memory.peak``). Under v2 a
group may give its children a controller only while it holds no process itself, so when enabling
``memory`` for the children is refused (EBUSY), the processes of the own group are first moved
into a leaf child of it, ``plus-tests``, as container runtimes do.

Every path is relative to ``root`` and ``proc_cgroup``, so tests/unit/test_cgroups.py runs all of
this over fake trees.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
#: The leaf a v2 group's own processes move to, so that the group may enable controllers for children.
LEAF = "plus-tests"


class NoMemoryCgroup(Exception):
    """No memory cgroup can be made here; the message says why."""


def own_memory_cgroup(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> tuple[Path, str]:
    """(directory of this process's memory cgroup, ``"v1"`` or ``"v2"``): the v1 ``memory``
    controller when it is mounted, else a v2 group whose ``cgroup.controllers`` offers ``memory``."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError as exc:
        raise NoMemoryCgroup(f"{proc_cgroup} unreadable ({exc})") from exc
    entries = [line.split(":", 2) for line in lines if line.count(":") >= 2]
    for _, controllers, path in entries:
        if "memory" in controllers.split(","):
            directory = root / "memory" / path.lstrip("/")
            if (directory / "memory.limit_in_bytes").exists():
                return directory, "v1"
    offered: list[str] = []
    for hierarchy, controllers, path in entries:
        if hierarchy == "0" and controllers == "":
            for base in (root, root / "unified"):
                directory = base / path.lstrip("/")
                if directory.name == LEAF:  # moved there by an earlier trial: its parent is ours
                    directory = directory.parent
                with contextlib.suppress(OSError):
                    available = (directory / "cgroup.controllers").read_text().split()
                    if "memory" in available:
                        return directory, "v2"
                    offered.append(f"{directory}/cgroup.controllers: {' '.join(available) or '(none)'}")
    found = "; ".join([*lines, *(offered or ["no v2 group"])])
    raise NoMemoryCgroup("neither a v1 memory controller nor a v2 group with the memory controller was "
                         f"found for this process ({found})")


def _enable_memory_for_children(parent: Path) -> None:
    """v2: ``+memory`` in ``parent``'s ``cgroup.subtree_control``, moving ``parent``'s own processes
    into :data:`LEAF` first when the kernel refuses because of them."""
    control = parent / "cgroup.subtree_control"
    if "memory" in control.read_text().split():
        return
    try:
        control.write_text("+memory")
        return
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
    leaf = parent / LEAF
    leaf.mkdir(exist_ok=True)
    for pid in (parent / "cgroup.procs").read_text().split():
        with contextlib.suppress(OSError):  # a process that ended meanwhile, or a kernel thread
            (leaf / "cgroup.procs").write_text(pid)
    control.write_text("+memory")


def create_memory_cgroup(parent: Path, version: str, limit_bytes: int, prefix: str = "plus-oom") -> Path:
    """A new cgroup under ``parent`` whose memory (and swap) is limited to ``limit_bytes``."""
    group = parent / f"{prefix}-{uuid.uuid4().hex[:8]}"
    try:
        if version == "v2":
            _enable_memory_for_children(parent)
        group.mkdir()
        if version == "v1":
            (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
            with contextlib.suppress(OSError):  # swap would let the trial page out instead of failing
                (group / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
        else:
            if not (group / "memory.max").exists():
                raise NoMemoryCgroup(f"{group} has no memory.max: the memory controller is not enabled "
                                     f"for the children of {parent}")
            (group / "memory.max").write_text(str(limit_bytes))
            with contextlib.suppress(OSError):
                (group / "memory.swap.max").write_text("0")
    except (OSError, NoMemoryCgroup) as exc:
        with contextlib.suppress(OSError):
            group.rmdir()
        raise NoMemoryCgroup(f"cannot create a memory cgroup under {parent} ({version}): {exc}") from exc
    return group


def oom_kills(group: Path, version: str) -> int:
    """How many processes the kernel killed for memory in ``group`` (``oom_kill`` of v2's
    ``memory.events`` or v1's ``memory.oom_control``; 0 when the kernel does not say)."""
    name = "memory.events" if version == "v2" else "memory.oom_control"
    try:
        lines = (group / name).read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return 0


def peak_bytes(group: Path, version: str) -> int | None:
    """The group's peak memory use (v2 ``memory.peak``, kernel 5.19+; v1
    ``memory.max_usage_in_bytes``); None when the kernel does not say."""
    try:
        raw = (group / ("memory.peak" if version == "v2" else "memory.max_usage_in_bytes")).read_text()
    except OSError:
        return None
    return int(raw) if raw.strip().isdigit() else None


def remove_cgroup(group: Path, attempts: int = 50) -> None:
    """Kill what is left in ``group`` (a leftover child), then remove it."""
    with contextlib.suppress(OSError):
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
    for _ in range(attempts):
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.1)
