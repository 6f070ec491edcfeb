"""Shared plumbing for the ``vendor.ffmpeg.*`` actions (issue 6).

Everything an ffmpeg action does outside its own argument list lives here:

* fetching inputs from the user's storage into a private work directory and publishing outputs
  back (always through ``ctx.storage``, so keys stay inside the user's namespace);
* running ``ffprobe``/``ffmpeg`` as argument lists (never a shell) with ``-nostdin``, a timeout,
  ``-progress pipe:1`` parsed into ``ctx.report_progress``, and a clean stop on cancellation
  (one SIGINT, then SIGKILL after a grace period);
* reading user files safely (issue 13 §5): every input is opened with ``-protocol_whitelist file``
  and the one demuxer the probe found on the action's allow-list (:mod:`.demuxers`), and ffmpeg
  runs with the minimal environment of :func:`feaas.actions.childenv.child_env`;
* turning ffmpeg's stderr into :class:`ActionFailed` messages a user can act on.

A partial output is never uploaded: outputs are written to the work directory, uploaded only after
ffmpeg exited 0 and the job was not cancelled, and the work directory is removed in any case.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import math
import mimetypes
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from feaas.actions.base import ActionCancelled, ActionContext, ActionFailed, Param
from feaas.actions.childenv import child_env, find_executable
from feaas.errors import NamespaceViolation
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

#: Seconds ffmpeg gets to exit after SIGINT before it is killed.
STOP_GRACE_S = 1.0
#: Timeout for ffprobe calls.
PROBE_TIMEOUT_S = 60.0
#: Automatic ffmpeg timeout: a floor plus a multiple of the media duration.
MIN_TIMEOUT_S = 300.0
TIMEOUT_PER_MEDIA_SECOND = 20.0
#: Used when the duration is unknown (images, broken headers).
UNKNOWN_DURATION_TIMEOUT_S = 1800.0
#: Progress is reported at most this often.
PROGRESS_INTERVAL_S = 0.5

#: Common optional inputs of every ffmpeg action.
DEST_KEY = Param("dest_key", PT.KEY, optional=True, default="", hint="output key; default next to the input")
TIMEOUT = Param(
    "timeout_s", PT.INTEGER, optional=True, default=0, hint="ffmpeg time limit in seconds; 0 = automatic"
)

_SAFE_EXT = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


# --------------------------------------------------------------------------------------------
# Pure helpers (unit-tested without ffmpeg)
# --------------------------------------------------------------------------------------------


def split_key(key: str) -> tuple[str, str]:
    """``"a/b/clip.final.mp4"`` → ``("a/b/clip.final", ".mp4")``; the extension is lower-cased."""
    path = PurePosixPath(key)
    suffix = path.suffix
    if suffix and _SAFE_EXT.match(suffix):
        return key[: -len(suffix)], suffix.lower()
    return key, ""


def output_key(src_key: str, suffix: str, ext: str | None = None) -> str:
    """The default output key next to ``src_key``: ``{base}_{suffix}{ext}``.

    ``ext`` defaults to the input's extension; pass ``".gif"`` etc. to change the container.
    """
    base, src_ext = split_key(src_key)
    if ext is None:
        ext = src_ext
    if ext and not ext.startswith("."):
        ext = "." + ext
    return f"{base}_{suffix}{ext.lower()}"


def key_ext(key: str) -> str:
    """The lower-cased extension of a key (``""`` when it has none)."""
    return split_key(key)[1]


def format_ext(fmt: str) -> str:
    """Normalise a user-given format (``"MP4"``, ``".mp4"``) into an extension (``".mp4"``)."""
    fmt = fmt.strip().lower().lstrip(".")
    if not re.fullmatch(r"[a-z0-9]{1,8}", fmt):
        raise ActionFailed(f"invalid format {fmt!r}")
    return "." + fmt


def parse_progress_line(line: str) -> tuple[str, str] | None:
    """Split one ``-progress`` line (``key=value``) into its parts."""
    line = line.strip()
    if "=" not in line:
        return None
    name, _, value = line.partition("=")
    return name.strip(), value.strip()


@dataclass
class ProgressParser:
    """Turns ffmpeg's ``-progress`` key=value stream into a 0..1 fraction of ``duration_s``.

    ``offset``/``scale`` map the fraction into a slice of the action's overall progress, for
    actions that run ffmpeg more than once (two-pass encodes).
    """

    duration_s: float | None
    offset: float = 0.0
    scale: float = 1.0
    fraction: float = 0.0
    done: bool = False

    def feed(self, line: str) -> float | None:
        """Feed one line; return the new overall fraction when it changed, else ``None``."""
        parsed = parse_progress_line(line)
        if parsed is None:
            return None
        name, value = parsed
        local: float | None = None
        if name in ("out_time_us", "out_time_ms"):  # ffmpeg prints microseconds under both names
            if self.duration_s and self.duration_s > 0 and value.lstrip("-").isdigit():
                local = int(value) / 1_000_000 / self.duration_s
        elif name == "progress" and value == "end":
            self.done = True
            local = 1.0
        if local is None:
            return None
        local = min(max(local, 0.0), 1.0)
        overall = self.offset + self.scale * local
        if overall <= self.fraction:
            return None
        self.fraction = overall
        return overall


def auto_timeout_s(duration_s: float | None, passes: int = 1) -> float:
    """A generous default time limit for processing media of ``duration_s`` seconds."""
    if duration_s is None or not math.isfinite(duration_s) or duration_s <= 0:
        return UNKNOWN_DURATION_TIMEOUT_S * passes
    return max(MIN_TIMEOUT_S, TIMEOUT_PER_MEDIA_SECOND * duration_s) * passes


_I = re.IGNORECASE
_ERROR_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"No space left on device", _I), "disk full: no space left on the worker's disk"),
    (
        re.compile(r"Invalid data found when processing input|moov atom not found|could not find codec param", _I),
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


# --------------------------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaInfo:
    """What the actions need to know about one local media file."""

    duration_s: float | None
    format_name: str
    bitrate: int | None
    width: int | None = None
    height: int | None = None
    video_codec: str = ""
    audio_codec: str = ""
    fps: float | None = None
    is_image: bool = False
    #: The demuxer that read the file (``mov`` for ``mov,mp4,…``); real runs force exactly this one.
    demuxer: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_video(self) -> bool:
        return bool(self.video_codec)

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_codec)


_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif_pipe")


def _rate(value: str | None) -> float | None:
    if not value or value in ("0/0", "N/A"):
        return None
    num, _, den = value.partition("/")
    try:
        rate = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None
    return round(rate, 3) if rate > 0 else None


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def parse_probe(data: dict[str, Any]) -> MediaInfo:
    """Build :class:`MediaInfo` from ``ffprobe -show_format -show_streams -of json`` output."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next(
        (s for s in streams if s.get("codec_type") == "video"
         and not (s.get("disposition") or {}).get("attached_pic")),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    format_name = str(fmt.get("format_name") or "")
    duration = _float(fmt.get("duration"))
    if duration is None:
        duration = _float((video or audio or {}).get("duration"))
    is_image = format_name in _IMAGE_FORMATS or (
        video is not None and audio is None and video.get("codec_name") in ("png", "mjpeg", "webp", "bmp", "tiff")
        and (duration is None or int(video.get("nb_frames") or 1) <= 1)
    )
    bitrate_raw = fmt.get("bit_rate")
    return MediaInfo(
        duration_s=None if is_image else duration,
        format_name=format_name,
        bitrate=int(bitrate_raw) if str(bitrate_raw or "").isdigit() else None,
        width=int(video["width"]) if video and video.get("width") else None,
        height=int(video["height"]) if video and video.get("height") else None,
        video_codec=str(video.get("codec_name", "")) if video else "",
        audio_codec=str(audio.get("codec_name", "")) if audio else "",
        fps=None if (video is None or is_image) else _rate(video.get("avg_frame_rate") or video.get("r_frame_rate")),
        is_image=is_image,
        demuxer=demuxers.demuxer_name(format_name),
        raw=data,
    )


#: ffmpeg's log line when the probed format is not on ``-format_whitelist``; the log context in
#: brackets is the demuxer the content asked for (``[hls @ 0x…] Format not on whitelist '…'``).
_NOT_ON_WHITELIST = re.compile(r"^\[([\w,]+) @ 0x[0-9a-f]+\] Format not on whitelist", re.MULTILINE)


def probe(path: Path, accept: frozenset[str], *, what: str = "the input",
          timeout_s: float = PROBE_TIMEOUT_S) -> MediaInfo:
    """Run ffprobe on a local file that only demuxers in ``accept`` may read.

    ``what`` (the user's key) names the file in messages. Raises :class:`ActionFailed` when the
    file is not media, or when its content is another format (a playlist or manifest, whatever
    its extension): ffprobe refuses such a format before it opens anything the file names.
    """
    exe = find_executable(FFPROBE)
    if exe is None:
        raise ActionFailed("ffprobe is not installed on this worker")
    cmd = [exe, "-v", "error", "-protocol_whitelist", demuxers.INPUT_PROTOCOLS,
           "-format_whitelist", demuxers.whitelist(accept),
           "-print_format", "json", "-show_format", "-show_streams", str(path)]
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False,
            cwd=path.parent, env=child_env(path.parent),
        )
    except subprocess.TimeoutExpired as exc:
        raise ActionFailed(f"ffprobe timed out after {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        refused = _NOT_ON_WHITELIST.search(proc.stderr.decode("utf-8", "replace"))
        if refused is not None:
            raise ActionFailed(demuxers.refusal(demuxers.demuxer_name(refused.group(1)), what, accept))
        raise ActionFailed("not a media file (or the file is damaged)")
    try:
        data = json.loads(proc.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise ActionFailed("ffprobe returned unreadable output") from exc
    info = parse_probe(data)
    if info.demuxer not in accept:
        raise ActionFailed(demuxers.refusal(info.demuxer, what, accept))
    if not info.has_video and not info.has_audio:
        raise ActionFailed("not a media file: no audio or video stream found")
    return info


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


# --------------------------------------------------------------------------------------------
# Running ffmpeg
# --------------------------------------------------------------------------------------------


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
    with open(stderr_path, "wb") as stderr_file:
        # A new session: a Ctrl-C at the terminal reaches the worker, which then stops
        # ffmpeg itself, instead of killing ffmpeg behind the worker's back.
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_file,
            cwd=work_dir, start_new_session=True, env=child_env(work_dir),
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
        raise ActionFailed(explain_failure(stderr, proc.returncode, (*scrub, str(work_dir))))
    return FfmpegResult(proc.returncode, stderr, elapsed)


def _tail(path: Path, limit: int = 256 * 1024) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------
# Storage: inputs in, outputs out
# --------------------------------------------------------------------------------------------


class Workspace:
    """A private work directory for one action run, with input fetch and output publishing."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        ctx.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="ffmpeg-", dir=ctx.tmp_dir))
        self._count = 0

    def path(self, name: str) -> Path:
        """A path inside the work directory (``name`` is chosen by the action, never the user)."""
        return self.dir / name

    def check_key(self, key: str, what: str = "key") -> str:
        """Validate a key against the user's namespace before doing any work."""
        if not isinstance(key, str) or not key.strip():
            raise ActionFailed(f"missing input: {what}")
        try:
            return self.ctx.storage.check_key(key)
        except NamespaceViolation as exc:
            raise ActionFailed(str(exc) or f"{what} {key!r} is outside your namespace") from exc

    def fetch(self, key: str, what: str = "key") -> Path:
        """Download ``key`` into the work directory; the local name is ours, only its extension
        comes from the key (ffmpeg uses it to pick a demuxer)."""
        self.ctx.check_cancelled()
        key = self.check_key(key, what)
        if not self.ctx.storage.exists(key):
            raise ActionFailed(f"input not found: {key}")
        self._count += 1
        local = self.dir / f"input{self._count}{key_ext(key)}"
        try:
            self.ctx.storage.download(key, local)
        except OSError as exc:
            raise _os_failure(exc, f"could not download {key}") from exc
        return local

    def publish(self, local: Path, key: str) -> str:
        """Upload a finished output. Refuses empty files and does nothing after cancellation."""
        self.ctx.check_cancelled()
        if not local.is_file() or local.stat().st_size == 0:
            raise ActionFailed("ffmpeg produced no output")
        content_type = mimetypes.guess_type(local.name)[0]
        try:
            self.ctx.storage.upload(local, key, content_type=content_type)
        except OSError as exc:
            raise _os_failure(exc, f"could not upload {key}") from exc
        return key

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _os_failure(exc: OSError, context: str) -> ActionFailed:
    if exc.errno == errno.ENOSPC:
        return ActionFailed("disk full: no space left on the worker's disk")
    return ActionFailed(f"{context}: {exc.strerror or exc}")


@contextlib.contextmanager
def workspace(ctx: ActionContext) -> Iterator[Workspace]:
    """A :class:`Workspace` that is always removed, and whose ENOSPC errors are explained."""
    ws = Workspace(ctx)
    try:
        yield ws
    except OSError as exc:
        raise _os_failure(exc, "file error") from exc
    finally:
        ws.close()


def resolve_dest(ws: Workspace, inputs: dict[str, Any], default_key: str, name: str = "dest_key") -> str:
    """The output key: the user's ``dest_key`` when given, else ``default_key``; both checked."""
    given = inputs.get(name) or ""
    return ws.check_key(str(given) if given else default_key, name)


def timeout_for(inputs: dict[str, Any], duration_s: float | None, passes: int = 1) -> float:
    """The ``timeout_s`` input when positive, else :func:`auto_timeout_s`."""
    given = inputs.get("timeout_s") or 0
    try:
        value = float(given)
    except (TypeError, ValueError) as exc:
        raise ActionFailed(f"timeout_s must be a number, got {given!r}") from exc
    return value if value > 0 else auto_timeout_s(duration_s, passes)


def legacy_aliases(name: str, class_name: str) -> tuple[str, ...]:
    """The class-path ids upstream scripts use for ``vendor.ffmpeg.{name}`` (SPEC §5.2)."""
    return (f"vendor.ffmpeg.{name}.{class_name}", f"src.actions.vendor.ffmpeg.{name}.{class_name}")


def optional_number(inputs: dict[str, Any], name: str, *, zero_is_unset: bool = True) -> float | None:
    """An optional non-negative number input. ``None``/``""`` (and 0 when ``zero_is_unset``,
    the default of INTEGER/FLOAT inputs) mean "not given"."""
    value = inputs.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ActionFailed(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number) or number < 0:
        raise ActionFailed(f"{name} must be zero or a positive number, got {value!r}")
    if number == 0 and zero_is_unset:
        return None
    return number
