"""The DuckDB process of a query, started ahead of it when it can be (issue 16: the dataset's fixed cost).

Starting ``python -m src.actions.dataset.child`` and importing DuckDB costs about 0.1 s of CPU, which
a query over a small file would pay on its clock every time. So once a worker has run a query (and
delivered its result: the new process does not compete with the upload) it keeps one child started
ahead: idle on its stdin with DuckDB imported (about 45 MB), in the same
minimal environment, ready for the next query. That query takes it and sets its limits then (address
space, CPU time, ``oom_score_adj``: :func:`feaas.actions.childlimits.limit_process`); the child moves
its ``HOME`` and ``TMPDIR`` to the query's work directory when the query arrives. Every query still
gets a process of its own: a spare serves one query and ends with it.

One spare at most. A query finding none (the first of a worker, or one running beside another)
starts its own child, as before. An unused spare ends when the worker does (its stdin closes).
"""

from __future__ import annotations

import contextlib
import logging
import select
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from feaas.actions.childenv import child_env
from feaas.actions.childlimits import limit_process, start_limited

#: Where ``python -m src.actions.dataset.child`` is found: the project's root.
ROOT = Path(__file__).resolve().parents[3]
COMMAND = (sys.executable, "-E", "-s", "-m", "src.actions.dataset.child")

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_spare: subprocess.Popen[bytes] | None = None


def _launch(home: Path, stderr: IO[bytes] | int) -> dict[str, Any]:
    """How a child is started, working in ``home`` (its own: a spare's is the temp directory
    until its query arrives): the minimal environment, stdin and stdout to the worker, a session
    of its own."""
    return {"cwd": ROOT, "env": {**child_env(home), "MALLOC_ARENA_MAX": "2"}, "stdin": subprocess.PIPE,
            "stdout": subprocess.PIPE, "stderr": stderr, "start_new_session": True}


def start_child(work: Path, *, memory_mb: int, cpu_seconds: float,
                stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    """The process for one query working in ``work``, limited: the spare when one is waiting
    (its stderr stays where it was: nowhere), else a new one."""
    global _spare
    with _lock:
        spare, _spare = _spare, None
    if spare is not None:
        if spare.poll() is None:
            try:
                limit_process(spare.pid, memory_mb=memory_mb, cpu_seconds=cpu_seconds)
                return spare
            except OSError:  # it ended meanwhile
                pass
        end(spare)
    return start_limited(COMMAND, memory_mb=memory_mb, cpu_seconds=cpu_seconds, **_launch(work, stderr))


def keep_spare() -> None:
    """Start a process to wait for the next query, unless one is waiting already."""
    global _spare
    with _lock:
        if _spare is not None and _spare.poll() is None:
            return
        old, _spare = _spare, None
        spare: subprocess.Popen[bytes] | None
        try:
            spare = subprocess.Popen(COMMAND, **_launch(Path(tempfile.gettempdir()), subprocess.DEVNULL))
        except OSError as exc:  # only a head start: the next query starts its own
            logger.warning("could not start a DuckDB process ahead of the next query: %s", exc)
            spare = None
        _spare = spare
    if old is not None:
        end(old)
    if spare is None:
        return
    # an idle spare is the first thing to go when memory runs out
    with contextlib.suppress(OSError), open(f"/proc/{spare.pid}/oom_score_adj", "w") as fh:
        fh.write("1000")


def spare_started(timeout: float) -> bool:
    """Whether a spare has DuckDB imported, waiting up to ``timeout`` seconds for it (a benchmark
    waits so that the spare's start does not run into what it times next)."""
    with _lock:
        spare = _spare
    if spare is None or spare.stdout is None:
        return False
    try:
        readable, _, _ = select.select([spare.stdout], [], [], timeout)  # its "started" line
    except (OSError, ValueError):  # taken and closed meanwhile
        return False
    return bool(readable)


def spare_pid() -> int | None:
    """The waiting spare's process id, if one waits."""
    with _lock:
        return _spare.pid if _spare is not None else None


def discard_spare() -> None:
    """End the waiting spare, if any."""
    global _spare
    with _lock:
        spare, _spare = _spare, None
    if spare is not None:
        end(spare)


def end(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child that is still running, reap it and close the worker's ends of its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
