"""Children with limits: memory, CPU time, and a share of the task's budget (issue 13 §2, SPEC §8.3).

Work that can take unbounded memory (a DuckDB query, an ffmpeg decode) runs in a child process
whose address space is capped with ``RLIMIT_AS`` and whose CPU time is capped with
``RLIMIT_CPU``. The limits are set with ``prlimit`` on the child's pid right after it starts (a
``preexec_fn`` is unsafe in a threaded worker); each child reads its first instructions or input
only after that, so nothing it does runs unlimited. Its ``oom_score_adj`` is raised so that when
the container's cgroup runs out the kernel kills the child, not the worker. At most
:data:`feaas.resources.CHILD_SLOTS` limited children run at once: they share the budget.
"""

from __future__ import annotations

import contextlib
import re
import resource
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from feaas.actions.base import ActionCancelled
from feaas.resources import CHILD_SLOTS

#: Address space is not resident memory: a child's code, libraries and thread stacks count in it
#: (python + DuckDB: ~290 MB before any query; a 400 MB CSV under a 100 MB limit peaked at 542 MB).
#: This much is added to a child's memory limit to form its ``RLIMIT_AS``.
ADDRESS_SPACE_SLACK_MB = 512
#: Default CPU-time limit of a child when the job has no wall-clock limit.
DEFAULT_CPU_SECONDS = 6 * 3600

_slots = threading.BoundedSemaphore(CHILD_SLOTS)


@contextlib.contextmanager
def child_slot(cancel: threading.Event) -> Iterator[None]:
    """Hold one of the :data:`CHILD_SLOTS` slots; raises :class:`ActionCancelled` while waiting."""
    while not _slots.acquire(timeout=0.1):
        if cancel.is_set():
            raise ActionCancelled("action stopped: the job was cancelled or interrupted")
    try:
        yield
    finally:
        _slots.release()


def address_space_bytes(memory_mb: int) -> int:
    return (memory_mb + ADDRESS_SPACE_SLACK_MB) << 20


def start_limited(cmd: Sequence[str], *, memory_mb: int, cpu_seconds: float | None,
                  **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``cmd`` and cap its address space (``memory_mb`` + slack) and CPU time."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(cmd, **popen_kwargs)
    try:
        limit_process(proc.pid, memory_mb=memory_mb, cpu_seconds=cpu_seconds)
    except OSError:
        proc.kill()
        proc.wait()
        raise
    return proc


def limit_process(pid: int, *, memory_mb: int, cpu_seconds: float | None) -> None:
    space = address_space_bytes(memory_mb)
    resource.prlimit(pid, resource.RLIMIT_AS, (space, space))
    cpu = int(cpu_seconds or DEFAULT_CPU_SECONDS) + 1
    resource.prlimit(pid, resource.RLIMIT_CPU, (cpu, cpu + 5))
    # best effort: when the cgroup runs out, the kernel should pick the child, not the worker
    with contextlib.suppress(OSError), open(f"/proc/{pid}/oom_score_adj", "w") as fh:
        fh.write("1000")


#: How a child killed for memory ends: SIGKILL (the kernel's OOM killer or the cgroup), SIGABRT
#: or SIGSEGV (an allocation that failed where the program could not handle it).
MEMORY_SIGNALS = frozenset({signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS})


def died_of(returncode: int | None) -> str | None:
    """``"memory"`` or ``"cpu"`` when a child's exit code says it was killed for that."""
    if returncode is None or returncode >= 0:
        return None
    sig = -returncode
    if sig == signal.SIGXCPU:
        return "cpu"
    return "memory" if sig in MEMORY_SIGNALS else None


#: How a tool (ffmpeg, ffprobe) says an allocation its address-space limit refused.
OUT_OF_MEMORY_WORDS = re.compile(r"Cannot allocate memory|Out of memory|ENOMEM|bad_alloc", re.IGNORECASE)


def out_of_memory(action_id: str, memory_mb: int) -> str:
    return f"out of memory while running {action_id} (limit {memory_mb} MB)"
