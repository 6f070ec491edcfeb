"""What a single-output media action declares, as data: its media inputs and its output key rule.

:class:`MediaInput` names an input, the demuxers that may read it and what it must contain;
:class:`OutputKey` says where the output goes without a ``dest_key`` and which extension (so which
file type) it gets. :class:`.template.MediaAction` acts on these declarations; nothing here runs
anything, so another table can restate them: an action's upstream interface (issue 12) swaps in
:class:`LegacyKey`, upstream's key rule, whose key's own extension picks the file type.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from feaas.actions.base import ActionFailed, Param
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg import demuxers, formats
from src.actions.ffmpeg.naming import DEFAULT_PATTERN, format_ext, key_ext, legacy_key, output_key
from src.actions.ffmpeg.probing import MediaInfo


class Needs(Enum):
    """What a media input must contain (:func:`.probing.probe` already refuses one with neither
    audio nor video)."""

    ANY = "audio or video"
    AUDIO = "an audio stream"
    PICTURE = "a video stream or a still image"
    VIDEO = "a moving video (not a still image)"

    def met_by(self, info: MediaInfo) -> bool:
        if self is Needs.AUDIO:
            return info.has_audio
        if self is Needs.PICTURE:
            return info.has_video
        if self is Needs.VIDEO:
            return info.has_video and not info.is_image
        return True


@dataclass(frozen=True)
class MediaInput:
    """A media input: one key, or with ``count`` a list of (fewest, most) keys. An ``optional``
    one (never the first) may be left out."""

    name: str
    #: The demuxers that may read it (:mod:`.demuxers`).
    accept: frozenset[str]
    needs: Needs = Needs.ANY
    #: The message when ``needs`` is not met; ``{key}`` stands for the user's key.
    refusal: str = ""
    count: tuple[int, int] | None = None
    optional: bool = False

    @property
    def param(self) -> Param:
        if self.optional:
            return Param(self.name, PT.KEY, optional=True, default="")
        return Param(self.name, PT.LIST if self.count else PT.KEY)

    def given(self, inputs: dict[str, Any]) -> list[Any]:
        """The keys as given (not yet checked against the namespace)."""
        if self.count is None:
            return [inputs.get(self.name, "")]
        keys = [str(k) for k in (inputs.get(self.name) or []) if str(k).strip()]
        fewest, most = self.count
        if not fewest <= len(keys) <= most:
            raise ActionFailed(f"{self.name} must list between {fewest} and {most} files, got {len(keys)}")
        return keys

    def require(self, key: str, info: MediaInfo) -> None:
        """Refuse the input ``key`` when what it holds (``info``) does not meet :attr:`needs`."""
        if not self.needs.met_by(info):
            raise ActionFailed(self.refusal.format(key=key))


class ExtRule:
    """How the output's extension is chosen; each step may keep the one before (the default)."""

    def given(self, _inputs: dict[str, Any]) -> str:
        """From the action's inputs, before any work."""
        return ""

    def of_source(self, _key: str, ext: str) -> str:
        """From the first input's key."""
        return ext

    def of_dest(self, _dest: str, ext: str) -> str:
        """From the output key."""
        return ext


@dataclass(frozen=True)
class SameExt(ExtRule):
    """The first input's extension, which must be one of ``allowed``; else ``otherwise`` when set.
    With ``dest_picks``, an output key with one of those extensions picks its own."""

    allowed: frozenset[str]
    otherwise: str = ""
    dest_picks: frozenset[str] = frozenset()

    def of_source(self, key: str, ext: str) -> str:
        if self.otherwise:
            return key_ext(key) if key_ext(key) in self.allowed else self.otherwise
        return formats.require_supported(key_ext(key), self.allowed)

    def of_dest(self, dest: str, ext: str) -> str:
        return key_ext(dest) if key_ext(dest) in self.dest_picks else ext


@dataclass(frozen=True)
class FormatInput(ExtRule):
    """The format an input names (``"MP4"`` → ``.mp4``), one of ``allowed`` (every supported one)."""

    name: str = "format"
    allowed: frozenset[str] | None = None
    default: str = ""

    def given(self, inputs: dict[str, Any]) -> str:
        return formats.require_supported(format_ext(str(inputs.get(self.name) or self.default)), self.allowed)


@dataclass(frozen=True)
class FixedExt(ExtRule):
    """Always ``ext``; with ``dest_picks``, an output key with one of those extensions picks its own."""

    ext: str
    dest_picks: frozenset[str] = frozenset()

    def given(self, _inputs: dict[str, Any]) -> str:
        return self.ext

    def of_dest(self, dest: str, ext: str) -> str:
        return key_ext(dest) if key_ext(dest) in self.dest_picks else ext


@dataclass(frozen=True)
class FormatOrSame(ExtRule):
    """The format an input names when given (one of ``allowed``), else the first input's extension."""

    allowed: frozenset[str]
    name: str = "format"

    def given(self, inputs: dict[str, Any]) -> str:
        value = str(inputs.get(self.name) or "").strip()
        return formats.require_supported(format_ext(value), self.allowed) if value else ""

    def of_source(self, key: str, ext: str) -> str:
        return ext or formats.require_supported(key_ext(key), self.allowed)


@dataclass(frozen=True)
class KeyExt(ExtRule):
    """The output key's own extension, lower-cased, which must be one of ``allowed``: upstream's
    keys say what the file is."""

    allowed: frozenset[str]

    def of_dest(self, dest: str, ext: str) -> str:
        return formats.require_supported(key_ext(dest), self.allowed)


class KeyRule(Protocol):
    """Where the output goes without a ``dest_key`` (``key``), and which extension, so which file
    type, it gets (``ext``)."""

    @property
    def ext(self) -> ExtRule: ...

    def key(self, src_key: str, ext: str) -> str: ...


@dataclass(frozen=True)
class OutputKey:
    """The default output key, next to the first input: ``pattern`` with ``{base}``, ``{suffix}`` and
    ``{ext}`` (the extension ``ext`` picks, which is also the output file's type)."""

    suffix: str
    ext: ExtRule
    pattern: str = DEFAULT_PATTERN

    def key(self, src_key: str, ext: str) -> str:
        return output_key(src_key, self.suffix, ext, self.pattern)


@dataclass(frozen=True)
class LegacyKey:
    """Upstream's output key (LEGACY_ACTIONS.md §1.4): ``{base}_{suffix}{ext}`` next to the first
    input, split the way Python's ``os.path.splitext`` splits (the extension kept as written);
    ``new_ext`` replaces the extension (a leading dot added). The key's extension, lower-cased, is
    the output's file type and must be one of ``allowed``. As upstream, an existing object at that
    key is replaced. Built per run from upstream's inputs by an interface's ``configure``."""

    suffix: str
    allowed: frozenset[str]
    new_ext: str = ""

    @property
    def ext(self) -> ExtRule:
        return KeyExt(self.allowed)

    def key(self, src_key: str, ext: str) -> str:
        return legacy_key(src_key, self.suffix, self.new_ext)


#: ``key``, an audio file or a video with sound (the actions that work on sound).
AUDIO_INPUT = MediaInput("key", demuxers.AUDIO_VIDEO, Needs.AUDIO, "the input has no audio stream")
#: ``key``, a video (not a still image).
VIDEO_INPUT = MediaInput("key", demuxers.VIDEO, Needs.VIDEO, "the input is not a video")
#: An audio or video input's own container: the output is a file of the same type.
SAME_AV_EXT = SameExt(formats.VIDEO_EXTS | formats.AUDIO_EXTS)
