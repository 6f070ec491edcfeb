"""Pieces the media actions' upstream interfaces share (issue 12, LEGACY_ACTIONS.md §2).

Each action declares its interface beside itself (``legacy = LegacyInterface(...)``); these are the
recurring parts: upstream's file input, its file output, its key rule and its extension lists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from feaas.actions.base import ActionFailed
from feaas.actions.legacy import LegacyInput, LegacyOutput, Values
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import formats
from src.actions.ffmpeg.spec import LegacyKey

#: Upstream's module path of the media actions, relative to ``src.actions``.
VENDOR_FFMPEG = "vendor.ffmpeg."

#: The extensions upstream declared (never enforced) for audio and video keys; enforced here.
AUDIO_KEY_EXTS = (".aif", ".cda", ".mid", ".mp3", ".mpa", ".ogg", ".wav", ".wma", ".wpl")
VIDEO_KEY_EXTS = (".3gp", ".avi", ".flv", ".h264", ".m4v", ".mkv", ".mov", ".mp4", ".mpg", ".mpeg", ".rm",
                  ".swf", ".vob", ".webm", ".wmv")

#: Audio or video outputs an upstream key may name.
AV_EXTS = formats.VIDEO_EXTS | formats.AUDIO_EXTS


def file_input(name: str = "file", ours: str | None = "key", ptype: int = PT.STRING,
               **extra: Any) -> LegacyInput:
    """Upstream's required media key input, feeding ``ours``."""
    return LegacyInput(name, ptype, ours, required=True, **extra)


def file_output(name: str = "file", ptype: int = PT.STRING) -> LegacyOutput:
    """Upstream's output naming the written key (our ``dest_key``)."""
    return LegacyOutput(name, ptype, "dest_key")


def keyed(suffix: str | Callable[[Values], str], allowed: frozenset[str],
          new_ext: str | Callable[[Values], str] = "") -> Callable[[Values], Values]:
    """A ``configure`` that runs the action with upstream's key rule, ``{base}_{suffix}{ext}``
    (:class:`.spec.LegacyKey`); ``suffix`` and ``new_ext`` may be computed from upstream's inputs."""

    def configure(inputs: Values) -> Values:
        text = suffix(inputs) if callable(suffix) else suffix
        ext = new_ext(inputs) if callable(new_ext) else new_ext
        return {"output": LegacyKey(text, allowed, ext)}

    return configure


def format_text(value: Any) -> str:
    """A format as upstream read it: lower-cased, surrounding dots and spaces stripped."""
    return str(value or "").strip().lower().lstrip(".")


def choice(inputs: Values, name: str, mapping: dict[str, str], *, otherwise: str | None = None) -> str:
    """Upstream's word for a mode → ours; an unknown word is ``otherwise``, or refused."""
    word = str(inputs.get(name) or "").strip().lower()
    if word in mapping:
        return mapping[word]
    if otherwise is not None:
        return otherwise
    raise ActionFailed(f"{name} must be one of {', '.join(mapping)}, got {word!r}")
