"""One template for the media actions that write one output file (issue 15 §6).

Such an action checks its parameters, downloads its inputs, probes them, runs ffmpeg once or a few
times and uploads one file, which it returns as ``dest_key``. :meth:`MediaAction.run` does all of
that; a subclass declares as data what differs (:mod:`.spec`):

* ``sources``: its media inputs (:class:`.spec.MediaInput`; a list of keys comes first);
* ``params``: its own parameters (its inputs are ``sources``, ``params``, ``dest_key``, ``timeout_s``);
* ``output``: where the output goes without a ``dest_key``, and its type (:class:`.spec.OutputKey`).
  It is an instance attribute, so that the action's upstream interface (issue 12) runs the same
  action with upstream's key rule (:class:`.spec.LegacyKey`);

and implements :meth:`~MediaAction.parse` (its parameters, checked before anything is downloaded)
and :meth:`~MediaAction.encode` (the ffmpeg arguments, run through :meth:`MediaJob.run`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from feaas.actions.base import Action, ActionContext, Param
from feaas.objects import ParameterType as PT
from src.actions.ffmpeg.args import DEST_KEY, TIMEOUT, timeout_for
from src.actions.ffmpeg.probing import MediaInfo, probe
from src.actions.ffmpeg.process import FfmpegResult, input_args, run_ffmpeg
from src.actions.ffmpeg.progress import ProgressParser
from src.actions.ffmpeg.spec import KeyRule, MediaInput
from src.actions.ffmpeg.workspace import Workspace, resolve_dest, workspace


class FfmpegAction(Action):
    """A ``vendor.ffmpeg.*`` action. Upstream's class-path ids reach its upstream interface
    (``legacy``, :mod:`feaas.actions.legacy`), not the action itself."""


@dataclass(frozen=True)
class Media:
    """A downloaded and probed input; ``name`` is the input (:class:`.spec.MediaInput`) it came from."""

    key: str
    path: Path
    info: MediaInfo
    name: str = ""

    def open(self) -> list[str]:
        """The ffmpeg options reading this input (:func:`.process.input_args`)."""
        return input_args(self.path, self.info)


def opened(media: Sequence[Media]) -> list[str]:
    """The ffmpeg options reading each of ``media``, in order (input ``n`` is ``media[n]``)."""
    return [arg for item in media for arg in item.open()]


@dataclass
class Passes:
    """The ffmpeg runs of a multi-pass action: they share one time limit and split the progress."""

    total_s: float
    count: int
    _started: float = field(init=False, default_factory=time.monotonic)
    _done: int = field(init=False, default=0)

    def next(self, duration_s: float | None) -> tuple[float, ProgressParser]:
        """The time limit and progress parser of the next pass."""
        elapsed = time.monotonic() - self._started
        timeout_s = self.total_s if self._done == 0 else max(1.0, self.total_s - elapsed)
        parser = ProgressParser(duration_s, offset=self._done / self.count, scale=1 / self.count)
        self._done += 1
        return timeout_s, parser


@dataclass
class MediaJob:
    """What :meth:`MediaAction.encode` works with: the inputs, the probed media, the output file."""

    ctx: ActionContext
    inputs: dict[str, Any]
    work_dir: Path
    media: list[Media]
    #: The output's extension, and the file ffmpeg writes (uploaded after ``encode`` returns).
    ext: str
    out: Path

    @property
    def source(self) -> Media:
        return self.media[0]

    def named(self, name: str) -> Media | None:
        """The input ``name`` (an optional one may be absent)."""
        return next((m for m in self.media if m.name == name), None)

    def timeout_s(self, duration_s: float | None, passes: int = 1) -> float:
        """The ``timeout_s`` input, else the automatic limit for ``duration_s`` of media."""
        return timeout_for(self.inputs, duration_s, passes)

    def passes(self, duration_s: float | None, count: int = 2) -> Passes:
        return Passes(self.timeout_s(duration_s, count), count)

    def run(self, args: Sequence[str], *, duration_s: float | None, timeout_s: float | None = None,
            passes: Passes | None = None, loglevel: str = "error") -> FfmpegResult:
        """Run ffmpeg; ``duration_s`` is the media it writes (for progress). The time limit is
        ``timeout_s``, the next of ``passes``, or else :meth:`timeout_s` of ``duration_s``."""
        progress = None
        if passes is not None:
            timeout_s, progress = passes.next(duration_s)
        elif timeout_s is None:
            timeout_s = self.timeout_s(duration_s)
        return run_ffmpeg(self.ctx, args, work_dir=self.work_dir, duration_s=duration_s, timeout_s=timeout_s,
                          progress=progress, loglevel=loglevel)


class MediaAction(FfmpegAction):
    """A media action writing one file. Subclasses declare ``sources``, ``params`` and ``output``
    and implement :meth:`encode` (and :meth:`parse` when they have parameters)."""

    sources: tuple[MediaInput, ...]
    params: ClassVar[tuple[Param, ...]] = ()
    output: KeyRule
    outputs = (Param("dest_key", PT.KEY),)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if ("sources" in cls.__dict__ or "params" in cls.__dict__) and "inputs" not in cls.__dict__:
            cls.inputs = (*(source.param for source in cls.sources), *cls.params, DEST_KEY, TIMEOUT)

    def parse(self, inputs: dict[str, Any]) -> Any:
        """Check the action's own parameters before any work; the result goes to :meth:`encode`."""
        return None

    def encode(self, job: MediaJob, options: Any) -> None:
        """Write ``job.out`` with ffmpeg (:meth:`MediaJob.run`)."""
        raise NotImplementedError

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        ext = self.output.ext.given(inputs)
        first, *others = self.sources
        given = first.given(inputs)
        options = self.parse({**inputs, first.name: given} if first.count else inputs)
        with workspace(ctx) as ws:
            keys = [ws.check_key(key, first.name) for key in given]
            ext = self.output.ext.of_source(keys[0], ext)
            dest = resolve_dest(ws, inputs, self.output.key(keys[0], ext))
            ext = self.output.ext.of_dest(dest, ext)
            fetched = [(first, key, ws.fetch(key, first.name)) for key in keys]
            fetched += [_fetch(ws, source, inputs.get(source.name, "")) for source in others
                        if not source.optional or str(inputs.get(source.name) or "").strip()]
            media = [Media(key, path, probe(path, source.accept, what=key), source.name)
                     for source, key, path in fetched]
            for (source, _, _), item in zip(fetched, media, strict=True):
                source.require(item.key, item.info)
            job = MediaJob(ctx, inputs, ws.dir, media, ext, ws.path("output" + ext))
            self.encode(job, options)
            ws.publish(job.out, dest)
        ctx.report_progress(1.0)
        return {"dest_key": dest}


def _fetch(ws: Workspace, source: MediaInput, key: Any) -> tuple[MediaInput, str, Path]:
    key = ws.check_key(key, source.name)
    return source, key, ws.fetch(key, source.name)
