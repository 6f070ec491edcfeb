"""Output key rules of the media actions: where an output goes when the user names no ``dest_key``.

The default output sits next to the (first) input, as ``{base}_{suffix}{ext}``: ``clip.mkv`` →
``clip_resized.mkv``, ``clip_converted.mp4``. Upstream's rule (:func:`legacy_key`) is kept for the
upstream interfaces (issue 12).
"""

from __future__ import annotations

import posixpath
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


def legacy_key(src_key: str, suffix: str, new_ext: str = "") -> str:
    """Upstream's output key (LEGACY_ACTIONS.md §1.4): ``src_key`` split as ``os.path.splitext``
    does (the extension is the last dot-suffix of the last path segment, as written; a name that only
    starts with a dot has none), then ``{base}_{suffix}{ext}``; ``new_ext`` replaces the extension,
    with a leading dot added when missing."""
    base, ext = posixpath.splitext(src_key)
    if new_ext:
        ext = new_ext if new_ext.startswith(".") else "." + new_ext
    return f"{base}_{suffix}{ext}"
