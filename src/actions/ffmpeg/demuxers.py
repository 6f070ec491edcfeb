"""Which ffmpeg demuxers may read a user's file, per kind of input (issue 13 §5, SPEC §8.3).

A user's file is untrusted: its content, not its key's extension, decides which demuxer ffmpeg
picks. Playlists and manifests (``hls``, ``dash``, ``concat``, ``sdp``, ``imf``…) name other files
or network addresses, and ffmpeg follows them: an HLS playlist uploaded as ``clip.mp4`` would make
an action read ``file:///…`` outside its work directory and publish it. So every input is probed
with a demuxer allow-list and read with exactly the demuxer the probe found, and only
self-contained containers are on the lists.

Names are ffmpeg's demuxer names (the first of ``format_name``: ``mov`` for
``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska`` for ``matroska,webm``).
"""

from __future__ import annotations

#: Protocols an ffmpeg input may be opened with: the local file the action downloaded, nothing else.
INPUT_PROTOCOLS = "file"

#: Video containers: mp4/mov/m4v/3gp, mkv/webm, avi, flv, MPEG-TS, MPEG-PS, wmv, ogv, animated gif.
VIDEO = frozenset({"mov", "matroska", "avi", "flv", "mpegts", "mpeg", "asf", "ogg", "gif"})
#: Audio files: mp3, wav, flac, ogg/opus, raw AAC (ADTS), m4a (``mov``), mka (``matroska``), wma, aiff.
AUDIO = frozenset({"mp3", "wav", "flac", "ogg", "aac", "mov", "matroska", "asf", "aiff"})
#: Still images (``image2`` is what ffprobe names a single .jpg).
IMAGE = frozenset({"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe"})

AUDIO_VIDEO = VIDEO | AUDIO
VISUAL = VIDEO | IMAGE
ANY_MEDIA = VIDEO | AUDIO | IMAGE

#: Formats that point at other files or addresses; named in the refusal so the user knows why.
REFERENCING = frozenset({"hls", "dash", "webm_dash_manifest", "concat", "sdp", "rtsp", "imf"})

_KINDS = (("video", VIDEO), ("audio", AUDIO), ("image", IMAGE))


def demuxer_name(format_name: str) -> str:
    """``"mov,mp4,m4a,3gp,3g2,mj2"`` → ``"mov"``: the name ``-f`` and the allow-lists use."""
    return format_name.split(",", 1)[0].strip()


def whitelist(accept: frozenset[str]) -> str:
    """The ``-format_whitelist`` value for an allow-list."""
    return ",".join(sorted(accept))


def refusal(name: str, what: str, accept: frozenset[str]) -> str:
    """The user-facing message for an input read by demuxer ``name`` that ``accept`` lacks."""
    shown = name or "unknown"
    if name in REFERENCING:
        return (f"unsupported input format {shown!r} for {what}: playlists and manifests are not accepted, "
                f"upload the media file itself")
    kinds = " or ".join(kind for kind, names in _KINDS if names <= accept) or "media"
    return f"unsupported input format {shown!r} for {what}: this action reads {kinds} files"
