"""What a local media file holds, read with ffprobe under a demuxer allow-list (issue 13 §5).

:func:`probe` is the only way an action learns about an input: it refuses a file whose content is
not one of the formats the action accepts (a playlist named ``clip.mp4`` included) and records the
demuxer that read it, which every later ffmpeg run is forced to use (:func:`.process.input_args`).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feaas.actions.base import ActionFailed
from feaas.actions.childenv import child_env, find_executable
from feaas.actions.childlimits import OUT_OF_MEMORY_WORDS, died_of, out_of_memory, start_limited
from feaas.resources import child_memory_mb, memory_budget_mb
from src.actions.ffmpeg import demuxers

FFPROBE = "ffprobe"
#: Timeout for ffprobe calls.
PROBE_TIMEOUT_S = 60.0


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
_STILL_CODECS = ("png", "mjpeg", "webp", "bmp", "tiff")


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
    fmt: dict[str, Any] = data.get("format") or {}
    streams: list[dict[str, Any]] = data.get("streams") or []
    video: dict[str, Any] | None = next(
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
        video is not None and audio is None and video.get("codec_name") in _STILL_CODECS
        and (duration is None or int(video.get("nb_frames") or 1) <= 1)
    )
    bitrate_raw: Any = fmt.get("bit_rate")
    return MediaInfo(
        duration_s=None if is_image else duration,
        format_name=format_name,
        bitrate=int(bitrate_raw) if str(bitrate_raw or "").isdigit() else None,
        width=int(video["width"]) if video and video.get("width") else None,
        height=int(video["height"]) if video and video.get("height") else None,
        video_codec=str(video.get("codec_name", "")) if video else "",
        audio_codec=str(audio.get("codec_name", "")) if audio else "",
        fps=None if (video is None or is_image)
        else _rate(video.get("avg_frame_rate") or video.get("r_frame_rate")),
        is_image=is_image,
        demuxer=demuxers.demuxer_name(format_name),
        raw=data,
    )


#: ffmpeg's log line when the probed format is not on ``-format_whitelist``; the log context in
#: brackets is the demuxer the content asked for (``[hls @ 0x…] Format not on whitelist '…'``).
_NOT_ON_WHITELIST = re.compile(r"^\[([\w,]+) @ 0x[0-9a-f]+\] Format not on whitelist", re.MULTILINE)


def probe(path: Path, accept: frozenset[str], *, what: str = "the input",
          timeout_s: float = PROBE_TIMEOUT_S, memory_limit_mb: int | None = None) -> MediaInfo:
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
    # ffprobe may decode a frame to learn a stream's parameters: it runs under the same memory
    # limit as ffmpeg (feaas.actions.childlimits), so a huge picture cannot take the worker down.
    memory_mb = child_memory_mb(memory_budget_mb(None)) if memory_limit_mb is None else memory_limit_mb
    child = start_limited(cmd, memory_mb=memory_mb, cpu_seconds=timeout_s, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=path.parent,
                         env=child_env(path.parent))
    try:
        stdout, stderr = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        child.kill()
        child.communicate()
        raise ActionFailed(f"ffprobe timed out after {timeout_s:.0f} s") from exc
    if died_of(child.returncode) == "memory" or OUT_OF_MEMORY_WORDS.search(stderr.decode("utf-8", "replace")):
        raise ActionFailed(out_of_memory("ffprobe", memory_mb))
    proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
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
