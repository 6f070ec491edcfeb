"""The dataset actions' sources as a read-only file system DuckDB reads while they download.

DuckDB reads Python (fsspec) file systems registered on a connection. This one knows only the
sources of one query, by the names ``plussource://{index}{suffix}`` (the suffix keeps DuckDB's
compression detection); every read waits (:mod:`.child`'s ``ArrivingFiles``) until its
bytes have arrived. Nothing can be written and no other name resolves.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from fsspec.spec import AbstractFileSystem  # type: ignore[import-untyped, unused-ignore]

PROTOCOL = "plussource"


class Prefetch(Protocol):
    """What the sources are read through: each one's size, and its bytes once they arrived."""

    def size(self, index: int) -> int: ...
    def read(self, index: int, offset: int, length: int) -> bytes: ...


def source_name(index: int, suffix: str) -> str:
    return f"{PROTOCOL}://{index}{suffix}"


class _SourceFile(io.RawIOBase):
    """One source, read-only. DuckDB may share a handle between its threads, and its positional read
    is a ``seek`` and then a ``read``, each under the GIL on its own: another thread can seek in
    between. So a seek is remembered per thread and used by that thread's next read; plain
    sequential reads go on from wherever the last read ended."""

    def __init__(self, prefetch: Prefetch, index: int) -> None:
        super().__init__()
        self._prefetch, self._index, self._position = prefetch, index, 0
        self._sought = threading.local()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        sought = getattr(self._sought, "position", None)
        return self._position if sought is None else sought

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        ends = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: self._prefetch.size(self._index)}
        base = ends[whence]
        if base + offset < 0:
            raise OSError(f"negative seek position {base + offset}")
        self._sought.position = self._position = base + offset
        return base + offset

    def read(self, size: int | None = -1) -> bytes:
        start = getattr(self._sought, "position", None)
        self._sought.position = None
        start = self._position if start is None else start
        if size is None or size < 0:
            size = self._prefetch.size(self._index) - start
        data = self._prefetch.read(self._index, start, size)
        self._position = start + len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)


class SourceFiles(AbstractFileSystem):  # type: ignore[misc]
    """The sources of one query; ``names[i]`` is the name of ``prefetch``'s object ``i``."""

    protocol = PROTOCOL
    cachable = False  # fsspec would otherwise hand out one instance per argument tuple

    def __init__(self, prefetch: Prefetch, names: Sequence[str]) -> None:
        super().__init__()
        self._prefetch = prefetch
        self._started = datetime.now(UTC)
        self._indexes = {self._strip_protocol(name): i for i, name in enumerate(names)}

    def _index(self, path: str) -> int:
        index = self._indexes.get(self._strip_protocol(path))
        if index is None:
            raise FileNotFoundError(path)
        return index

    def info(self, path: str, **_kwargs: Any) -> dict[str, Any]:
        return {"name": path, "size": self._prefetch.size(self._index(path)), "type": "file"}

    def ls(self, path: str, detail: bool = True, **_kwargs: Any) -> list[Any]:
        return [self.info(path)] if detail else [path]

    def modified(self, path: str) -> datetime:
        """The time the query started: DuckDB keys its Parquet metadata cache on it."""
        self._index(path)
        return self._started

    created = modified

    def _open(self, path: str, mode: str = "rb", **_kwargs: Any) -> _SourceFile:
        if mode != "rb":
            raise PermissionError(f"{path}: sources are read-only")
        return _SourceFile(self._prefetch, self._index(path))
