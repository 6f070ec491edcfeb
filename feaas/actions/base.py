"""What an action is: declared parameters, a context, and a ``run`` that returns its outputs.

Actions are plain objects registered by id in :mod:`feaas.actions.registry`. The engine converts
inputs to the declared ptypes (applying defaults) before ``run`` and turns the returned outputs, or
the raised :class:`ActionFailed`, into a ``Receipt``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from feaas.errors import WorkerError
from feaas.netpolicy import NetworkPolicy
from feaas.objects import ParameterType as PT
from feaas.resources import DEFAULT_MAX_VALUE_MB

if TYPE_CHECKING:
    from feaas.dao.blobs import BlobStat


@dataclass(frozen=True)
class Param:
    """One declared input or output of an action."""

    name: str
    ptype: int = PT.STRING
    optional: bool = False
    default: Any = None
    label: str = ""
    hint: str = ""


class ActionFailed(WorkerError):
    """Raised by an action to fail with a message meant for the user."""


class ActionCancelled(ActionFailed):
    """Raised when an action stops because the job was cancelled or interrupted."""


class Storage(Protocol):
    """The user's namespace-scoped view of the bucket and the documents table.

    Every key and object id is checked after normalisation; anything outside
    ``{hostname}/{username}/`` raises :class:`feaas.errors.NamespaceViolation`. A missing object
    raises ``feaas.dao.blobs.BlobNotFound``; ``update_document`` on a missing document raises
    ``feaas.actions.context.DocumentNotFound``.
    """

    namespace: str

    def check_key(self, key: str) -> str: ...
    def get_bytes(self, key: str) -> bytes: ...
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None, *,
                  metadata: Mapping[str, str] | None = None) -> None: ...
    def download(self, key: str, path: Path) -> None: ...
    def upload(self, path: Path, key: str, content_type: str | None = None) -> None: ...
    def copy(self, src_key: str, dest_key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def stat(self, key: str) -> BlobStat: ...
    def read_range(self, key: str, start: int, end: int, *, etag: str | None = None) -> Generator[bytes]: ...
    def delete(self, key: str) -> None: ...
    def list_keys(self, prefix: str) -> Iterator[str]: ...
    def get_document(self, object_id: str) -> dict[str, Any] | None: ...
    def update_document(self, object_id: str, values: Mapping[str, Any]) -> None: ...


def _ignore_progress(_fraction: float) -> None:
    return None


@dataclass
class ActionContext:
    """Everything an action may touch. Nothing else: no settings, no raw clients."""

    storage: Storage
    tmp_dir: Path
    cancel: threading.Event
    log: logging.Logger | logging.LoggerAdapter[logging.Logger]
    report_progress: Callable[[float], None] = _ignore_progress
    #: the memory limit (MB) of a child process the action starts (DuckDB, ffmpeg)
    memory_limit_mb: int | None = None
    #: the largest value (bytes) the action may produce (``MAX_VALUE_MB``)
    max_value_bytes: int = DEFAULT_MAX_VALUE_MB << 20
    #: the job's wall-clock limit in seconds (``MAX_RUNTIME_SECONDS``), ``None`` when it has none
    time_limit_s: float | None = None
    #: where an action's outbound requests may go: public addresses only, unless a test allows a
    #: loopback server (``SCREENSHOT_ALLOW_HOSTS``)
    network: NetworkPolicy = field(default_factory=NetworkPolicy)
    extra: dict[str, Any] = field(default_factory=dict)

    def check_cancelled(self) -> None:
        """Raise :class:`ActionCancelled` when the job was asked to stop."""
        if self.cancel.is_set():
            raise ActionCancelled("action stopped: the job was cancelled or interrupted")


class Action:
    """Base class for actions. Subclasses set the class attributes and implement ``run``.

    The declarations are class attributes; an instance may replace them (the upstream interface of
    :class:`feaas.actions.legacy.LegacyAction` does).
    """

    id: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    inputs: tuple[Param, ...] = ()
    outputs: tuple[Param, ...] = ()
    #: The receipt's ``primary_output``: ``None`` means the first output, ``""`` none.
    primary_output: str | None = None
    #: True for actions such as ``sys.debug.echo`` that take any input names.
    accepts_any_inputs: bool = False
    #: The upstream worker's interface of this action, reached by its class path (issue 12): a
    #: :class:`feaas.actions.legacy.LegacyInterface` (typed loosely here: that module builds on this one).
    legacy: ClassVar[object | None] = None

    def renamed_input(self, name: str) -> str | None:
        """The name this action gives an input that the caller named ``name`` under another
        interface (the upstream name of a renamed input), or ``None``."""
        return None

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        """Do the work; return output name → Python value. Raise :class:`ActionFailed` to fail."""
        raise NotImplementedError
