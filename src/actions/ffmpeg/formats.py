"""Which encoder settings each output container gets (by file extension).

The worker picks sane, widely playable defaults instead of leaving the choice to ffmpeg's build:
H.264/AAC in MP4-like containers, VP9/Opus in WebM, and the usual codec for each audio format.
"""

from __future__ import annotations

from feaas.actions.base import ActionFailed

VIDEO_EXTS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
AUDIO_EXTS = frozenset({".mp3", ".m4a", ".aac", ".wav", ".flac", ".ogg", ".opus"})
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
#: Single-picture outputs of a resize: the still images, and a one-frame GIF.
STILL_EXTS = IMAGE_EXTS | {".gif"}

_H264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
_VP9 = ["-c:v", "libvpx-vp9", "-crf", "32", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8",
        "-row-mt", "1", "-pix_fmt", "yuv420p"]
_AAC = ["-c:a", "aac", "-b:a", "160k"]
_OPUS = ["-c:a", "libopus", "-b:a", "128k"]

_VIDEO_ARGS: dict[str, list[str]] = {
    ".mp4": _H264, ".m4v": _H264, ".mov": _H264, ".mkv": _H264, ".avi": _H264, ".webm": _VP9,
}
_AUDIO_ARGS: dict[str, list[str]] = {
    ".mp4": _AAC, ".m4v": _AAC, ".mov": _AAC, ".mkv": _AAC, ".avi": ["-c:a", "libmp3lame", "-q:a", "2"],
    ".webm": _OPUS, ".m4a": _AAC, ".aac": _AAC, ".opus": _OPUS,
    ".mp3": ["-c:a", "libmp3lame", "-q:a", "2"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "5"],
    ".wav": ["-c:a", "pcm_s16le"],
    ".flac": ["-c:a", "flac"],
}
_IMAGE_ARGS: dict[str, list[str]] = {
    ".png": ["-c:v", "png"], ".jpg": ["-c:v", "mjpeg", "-q:v", "2"], ".jpeg": ["-c:v", "mjpeg", "-q:v", "2"],
    ".webp": ["-c:v", "libwebp", "-quality", "85"], ".bmp": ["-c:v", "bmp"], ".gif": ["-c:v", "gif"],
}
_CONTAINER_ARGS: dict[str, list[str]] = {
    ".mp4": ["-movflags", "+faststart"], ".m4v": ["-movflags", "+faststart"],
    ".mov": ["-movflags", "+faststart"], ".m4a": ["-movflags", "+faststart"],
}

SUPPORTED = sorted(VIDEO_EXTS | AUDIO_EXTS | IMAGE_EXTS)

#: The audio format inputs are brought to before they are mixed or joined.
STEREO_FLTP = "aformat=sample_fmts=fltp:channel_layouts=stereo"


def is_video_ext(ext: str) -> bool:
    return ext in VIDEO_EXTS


def is_audio_ext(ext: str) -> bool:
    return ext in AUDIO_EXTS


def is_image_ext(ext: str) -> bool:
    return ext in IMAGE_EXTS


def require_supported(ext: str, allowed: frozenset[str] | None = None) -> str:
    """Return ``ext`` when the worker can write it, else fail naming the supported formats."""
    pool = allowed if allowed is not None else frozenset(SUPPORTED)
    if ext not in pool:
        names = ", ".join(e.lstrip(".") for e in sorted(pool))
        shown = ext.lstrip(".") or "(none)"
        raise ActionFailed(f"unsupported output format {shown!r}; supported: {names}")
    return ext


def video_args(ext: str) -> list[str]:
    """Video encoder arguments for a container."""
    return list(_VIDEO_ARGS.get(ext, _H264))


def audio_args(ext: str) -> list[str]:
    """Audio encoder arguments for a container or audio format."""
    return list(_AUDIO_ARGS.get(ext, _AAC))


def image_args(ext: str) -> list[str]:
    """Encoder arguments for a still image."""
    return list(_IMAGE_ARGS.get(ext, ["-c:v", "png"]))


def container_args(ext: str) -> list[str]:
    """Muxer options (e.g. ``+faststart`` so MP4 plays while downloading)."""
    return list(_CONTAINER_ARGS.get(ext, []))


def encode_args(ext: str, *, video: bool, audio: bool) -> list[str]:
    """Everything after the filters for an output of ``ext`` with the given kinds of stream."""
    args: list[str] = []
    if ext in STILL_EXTS:
        return [*image_args(ext), "-frames:v", "1", "-update", "1"]
    if video and ext in VIDEO_EXTS:
        args += video_args(ext)
    else:
        args += ["-vn"]
    if audio:
        args += audio_args(ext)
    else:
        args += ["-an"]
    return args + container_args(ext)
