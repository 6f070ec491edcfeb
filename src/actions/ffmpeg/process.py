"""Running ffmpeg on a user's files: the command line, the process, its stop, its failure message.

* Every input is opened with :func:`input_args` (``-protocol_whitelist file`` and the demuxer the
  probe found), and :func:`ffmpeg_command` refuses any ``-i`` that is not (issue 13 §5).
* ffmpeg runs as an argument list (never a shell) with ``-nostdin``, the minimal environment of
  :func:`feaas.actions.childenv.child_env`, a memory limit (:mod:`feaas.actions.childlimits`:
  "out of memory while running ffmpeg (limit N MB)" when it is hit), a timeout, and
  ``-progress pipe:1`` parsed into ``ctx.report_progress``; on cancellation it gets one SIGINT,
  then SIGKILL after a grace period.
* Its stderr becomes an :class:`ActionFailed` message a user can act on, without local paths.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from feaas.actions.base import ActionCancelled, ActionContext, ActionFailed
from feaas.actions.childenv import child_env, find_executable
from feaas.actions.childlimits import OUT_OF_MEMORY_WORDS, child_slot, died_of, out_of_memory, start_limited
from feaas.resources import child_memory_mb, memory_budget_mb
from src.actions.ffmpeg import demuxers
from src.actions.ffmpeg.probing import MediaInfo
from src.actions.ffmpeg.progress import ProgressParser

FFMPEG = "ffmpeg"
#: Seconds ffmpeg gets to exit after SIGINT before it is killed.
STOP_GRACE_S = 1.0
#: Progress is reported at most this often.
PROGRESS_INTERVAL_S = 0.5

_I = re.IGNORECASE
_ERROR_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"No space left on device", _I), "disk full: no space left on the worker's disk"),
    (
        re.compile(r"Invalid data found when processing input|moov atom not found|"
                   r"could not find codec param", _I),
        "not a media file (or the file is damaged)",
    ),
    (
        re.compile(r"Unknown encoder|Encoder not found|Decoder .* not found|codec not currently supported|"
                   r"Could not find tag for codec|not supported by this muxer|Unsupported codec", _I),
        "unsupported codec for this output format",
    ),
    (
        re.compile(r"Unable to find a suitable output format|Unable to choose an output format|"
                   r"Requested output format .* is not a suitable", _I),
        "unsupported output format",
    ),
    (
        re.compile(r"matches no streams|does not contain any stream|Output file is empty", _I),
        "the input has no stream of the kind this action needs",
    ),
)


def explain_failure(stderr_tail: str, returncode: int, scrub: Sequence[str] = ()) -> str:
    """A user-facing message for a failed ffmpeg run, without local paths."""
    for pattern, message in _ERROR_PATTERNS:
        if pattern.search(stderr_tail):
            return message
    lines = [ln.strip() for ln in stderr_tail.splitlines() if ln.strip()]
    detail = lines[-1] if lines else f"exit code {returncode}"
    for text in scrub:
        if text:
            detail = detail.replace(text, "")
    return f"ffmpeg failed: {detail[:300]}"


def input_args(path: Path, info: MediaInfo) -> list[str]:
    """The ffmpeg options that open ``path``: local file only, with the demuxer the probe found.

    Forcing ``-f`` means ffmpeg never guesses again, so no other demuxer can read the file.
    """
    if not info.demuxer:
        raise ActionFailed("the input's format is unknown")
    # image2 would read a name holding %d or * as a pattern of several files; ours is one file.
    literal = ["-pattern_type", "none"] if info.demuxer == "image2" else []
    return ["-protocol_whitelist", demuxers.INPUT_PROTOCOLS, *literal, "-format_whitelist", info.demuxer,
            "-f", info.demuxer, "-i", str(path)]


@dataclass
class FfmpegResult:
    """What a finished ffmpeg run left behind (stderr is kept for passes that print analysis)."""

    returncode: int
    stderr: str
    elapsed_s: float


def check_inputs(args: Sequence[str]) -> None:
    """Refuse an argument list with an input not opened by :func:`input_args`.

    A guard against a future action writing a bare ``-i``: each input must carry the protocol
    whitelist and a forced demuxer among its own options. Raises :class:`ValueError`.
    """
    start = 0
    for index, arg in enumerate(args):
        if arg != "-i":
            continue
        options = list(args[start:index])
        pairs = set(itertools.pairwise(options))
        demuxer = options[-1] if len(options) >= 2 and options[-2] == "-f" else ""
        if ("-protocol_whitelist", demuxers.INPUT_PROTOCOLS) not in pairs or not demuxer \
                or ("-format_whitelist", demuxer) not in pairs:
            raise ValueError(f"ffmpeg input {args[index + 1:index + 2]} is not opened with input_args()")
        start = index + 2


def ffmpeg_command(args: Sequence[str], loglevel: str = "error", executable: str = FFMPEG) -> list[str]:
    """The full ffmpeg command line around action-specific ``args``.

    ``-nostdin`` keeps ffmpeg from reading (or waiting on) the worker's stdin; ``-progress
    pipe:1`` writes machine-readable progress to stdout; ``-y`` is safe because every output path
    is inside the action's private work directory. Raises :class:`ValueError` when an input is
    not opened with :func:`input_args`.
    """
    check_inputs(args)
    return [executable, "-hide_banner", "-nostdin", "-loglevel", loglevel, "-nostats",
            "-progress", "pipe:1", "-y", *args]


def _stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """Ask ffmpeg to stop with one SIGINT; kill it when it has not exited after ``grace_s``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


def run_ffmpeg(
    ctx: ActionContext,
    args: Sequence[str],
    *,
    work_dir: Path,
    duration_s: float | None,
    timeout_s: float,
    progress: ProgressParser | None = None,
    loglevel: str = "error",
    scrub: Sequence[str] = (),
    on_progress: Callable[[float], None] | None = None,
) -> FfmpegResult:
    """Run ffmpeg with ``args``; return when it succeeded, raise otherwise.

    Raises :class:`ActionCancelled` when ``ctx.cancel`` is set while it runs (ffmpeg is stopped
    first), :class:`ActionFailed` on timeout or a non-zero exit (with an explained message).
    """
    ctx.check_cancelled()
    exe = find_executable(FFMPEG)
    if exe is None:
        raise ActionFailed("ffmpeg is not installed on this worker")
    cmd = ffmpeg_command(args, loglevel, exe)
    parser = progress or ProgressParser(duration_s)
    report = on_progress or ctx.report_progress
    stderr_path = work_dir / f"ffmpeg-{time.monotonic_ns()}.log"
    started = time.monotonic()
    deadline = started + timeout_s
    ctx.log.debug("ffmpeg %s", cmd)
    memory_mb = memory_limit_mb(ctx.memory_limit_mb)
    with child_slot(ctx.cancel), open(stderr_path, "wb") as stderr_file:
        # A new session: a Ctrl-C at the terminal reaches the worker, which then stops
        # ffmpeg itself, instead of killing ffmpeg behind the worker's back.
        # Under a memory limit (RLIMIT_AS set on its pid before it has read anything) and one of
        # the children's slots of the task's budget: a huge decode fails ffmpeg, not the worker.
        proc = start_limited(
            cmd, memory_mb=memory_mb, cpu_seconds=None, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=stderr_file, cwd=work_dir, start_new_session=True, env=child_env(work_dir),
        )
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buffer = b""
        last_report = 0.0
        outcome: str | None = None
        try:
            while True:
                if ctx.cancel.is_set():
                    outcome = "cancelled"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    outcome = "timeout"
                    break
                ready, _, _ = select.select([fd], [], [], min(0.1, remaining))
                if not ready:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break  # EOF: ffmpeg closed stdout, it is exiting
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    fraction = parser.feed(raw.decode("utf-8", "replace"))
                    now = time.monotonic()
                    if fraction is not None and (now - last_report >= PROGRESS_INTERVAL_S or parser.done):
                        last_report = now
                        report(fraction)
            if outcome is None:
                while proc.poll() is None:
                    if ctx.cancel.is_set():
                        outcome = "cancelled"
                        break
                    if time.monotonic() >= deadline:
                        outcome = "timeout"
                        break
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=0.1)
        finally:
            if proc.poll() is None:
                _stop(proc, STOP_GRACE_S)
            proc.stdout.close()
    stderr = _tail(stderr_path)
    with contextlib.suppress(OSError):
        stderr_path.unlink()
    elapsed = time.monotonic() - started
    if outcome == "cancelled":
        raise ActionCancelled("action stopped: the job was cancelled or interrupted")
    if outcome == "timeout":
        raise ActionFailed(f"ffmpeg timed out after {timeout_s:.0f} s")
    if proc.returncode != 0:
        if proc.returncode < 0 and ctx.cancel.is_set():
            raise ActionCancelled("action stopped: the job was cancelled or interrupted")
        if died_of(proc.returncode) == "memory" or OUT_OF_MEMORY_WORDS.search(stderr):
            raise ActionFailed(out_of_memory("ffmpeg", memory_mb))
        raise ActionFailed(explain_failure(stderr, proc.returncode, (*scrub, str(work_dir))))
    return FfmpegResult(proc.returncode, stderr, elapsed)


def memory_limit_mb(ctx_limit_mb: int | None) -> int:
    """ffmpeg's memory limit: the action's child limit, else a child's share of the task's budget."""
    return int(ctx_limit_mb) if ctx_limit_mb else child_memory_mb(memory_budget_mb(None))


def _tail(path: Path, limit: int = 256 * 1024) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
