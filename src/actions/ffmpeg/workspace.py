"""A private work directory per action run: inputs downloaded in, finished outputs uploaded out.

Keys always go through ``ctx.storage``, so they stay inside the user's namespace. A partial output
is never uploaded: outputs are written to the work directory and uploaded only after ffmpeg exited 0
and the job was not cancelled; the work directory is removed in any case.
"""

from __future__ import annotations

import contextlib
import errno
import mimetypes
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from feaas.actions.base import ActionContext, ActionFailed
from feaas.errors import NamespaceViolation
from src.actions.ffmpeg.naming import key_ext


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
