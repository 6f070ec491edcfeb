"""Output key rules of the media actions: where an output goes when the user names no ``dest_key``.

The default output sits next to the (first) input, as ``{base}_{suffix}{ext}``: ``clip.mkv`` →
``clip_resized.mkv``, ``clip_converted.mp4``. Also the class-path ids upstream scripts use.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from feaas.actions.base import ActionFailed

#: The default output key: ``{base}`` is the input key without its extension.
DEFAULT_PATTERN = "{base}_{suffix}{ext}"

_SAFE_EXT = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


def split_key(key: str) -> tuple[str, str]:
    """``"a/b/clip.final.mp4"`` → ``("a/b/clip.final", ".mp4")``; the extension is lower-cased."""
    path = PurePosixPath(key)
    suffix = path.suffix
    if suffix and _SAFE_EXT.match(suffix):
        return key[: -len(suffix)], suffix.lower()
    return key, ""


def output_key(src_key: str, suffix: str, ext: str | None = None, pattern: str = DEFAULT_PATTERN) -> str:
    """The default output key next to ``src_key``: ``pattern``, by default ``{base}_{suffix}{ext}``.

    ``ext`` defaults to the input's extension; pass ``".gif"`` etc. to change the container.
    """
    base, src_ext = split_key(src_key)
    if ext is None:
        ext = src_ext
    if ext and not ext.startswith("."):
        ext = "." + ext
    return pattern.format(base=base, suffix=suffix, ext=ext.lower())


def key_ext(key: str) -> str:
    """The lower-cased extension of a key (``""`` when it has none)."""
    return split_key(key)[1]


def format_ext(fmt: str) -> str:
    """Normalise a user-given format (``"MP4"``, ``".mp4"``) into an extension (``".mp4"``)."""
    fmt = fmt.strip().lower().lstrip(".")
    if not re.fullmatch(r"[a-z0-9]{1,8}", fmt):
        raise ActionFailed(f"invalid format {fmt!r}")
    return "." + fmt


def legacy_aliases(name: str, class_name: str) -> tuple[str, ...]:
    """The class-path ids upstream scripts use for ``vendor.ffmpeg.{name}`` (SPEC §5.2)."""
    return (f"vendor.ffmpeg.{name}.{class_name}", f"src.actions.vendor.ffmpeg.{name}.{class_name}")
