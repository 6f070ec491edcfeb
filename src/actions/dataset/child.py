"""The process a dataset query runs in: ``python -m src.actions.dataset.child`` (issue 13 §2).

The worker starts it with a capped address space and CPU time (:mod:`feaas.actions.childlimits`)
and the minimal environment of :func:`feaas.actions.childenv.child_env`, then talks to it over
its stdin and stdout, one JSON object a line:

* out, once DuckDB is imported: ``{"started": true}`` (a child may be started ahead of its query,
  :mod:`.process`, and waits here);
* in: first the query (``sql``, ``sources`` as local ``path``/``size``/``name``/``format``,
  ``out_path``, ``spill_dir``, ``home``, ``memory_mb``, ``threads``), then ``{"ready": [bytes, …]}``
  as the sources' downloads progress, ``{"error": "…"}`` when a download failed;
* out: ``{"rows": n}`` or ``{"failed": "…", "oom": bool}``.

The sources are read while they download: a read waits until the worker said its bytes are on
disk. DuckDB runs sandboxed here exactly as it did in the worker (only these sources and the output
directory, no external access, configuration locked); the worker stops it by killing the process.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import threading
from typing import IO, Any

from feaas.actions.base import ActionFailed
from src.actions.dataset.files import SourceFiles
from src.actions.dataset.formats import WRITERS, sql_literal, table_reader


class ArrivingFiles:
    """Local files the worker is still writing; ``read`` waits for the bytes it asks for."""

    def __init__(self, paths: list[str], sizes: list[int]) -> None:
        self._fds = [os.open(p, os.O_RDONLY) for p in paths]
        self._sizes = sizes
        self._ready = [0] * len(paths)
        self._error: str | None = None
        self._closed = False
        self._cond = threading.Condition()

    def update(self, ready: list[int] | None = None, error: str | None = None, closed: bool = False) -> None:
        with self._cond:
            if ready is not None:
                self._ready = [max(a, int(b)) for a, b in zip(self._ready, ready, strict=True)]
            self._error = error or self._error
            self._closed = self._closed or closed
            self._cond.notify_all()

    def size(self, index: int) -> int:
        return self._sizes[index]

    def read(self, index: int, offset: int, length: int) -> bytes:
        end = min(self._sizes[index], offset + max(0, length))
        if offset >= end:
            return b""
        with self._cond:
            while self._ready[index] < end:
                if self._error is not None:
                    raise OSError(errno.EIO, f"source could not be read: {self._error}")
                if self._closed:
                    raise OSError(errno.ECANCELED, "reading stopped")
                self._cond.wait(0.5)
        chunks, position = [], offset
        while position < end:
            chunk = os.pread(self._fds[index], end - position, position)
            if not chunk:
                raise OSError(errno.EIO, "local copy is shorter than expected")
            chunks.append(chunk)
            position += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _listen(stream: IO[str], files: ArrivingFiles) -> None:
    for line in stream:
        message = json.loads(line)
        files.update(ready=message.get("ready"), error=message.get("error"))
    files.update(closed=True)  # the worker went away


def _first_line(exc: BaseException) -> str:
    """The message's first line; for an error raised in Python under DuckDB, its last line."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].startswith("Traceback") or "Traceback (most recent call last)" in lines[0]:
        sys.stderr.write(str(exc) + "\n")
        return lines[-1].strip()[:300]
    return lines[0][:300]


def check_select(con: Any, sql: str) -> str:
    """Return the single SELECT statement in ``sql``; refuse anything else."""
    import duckdb

    if not sql or not sql.strip():
        raise ActionFailed("sql is empty")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise ActionFailed(f"sql does not parse: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise ActionFailed(f"sql must be exactly one SELECT statement, got {len(statements)} statements")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        kind = str(statement.type).rsplit(".", 1)[-1]
        raise ActionFailed(f"only read-only SELECT queries are allowed, not {kind}")
    return str(statement.query)


def connect(job: dict[str, Any]) -> Any:
    """The DuckDB connection for the query in ``job``: its memory limit, spill directory and threads."""
    import duckdb

    return duckdb.connect(":memory:", config={
        "memory_limit": f"{job['memory_mb']}MB",
        "temp_directory": job["spill_dir"],
        "threads": job["threads"],
        "preserve_insertion_order": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    })


def run(con: Any, job: dict[str, Any], files: ArrivingFiles) -> int:
    """Run the query in ``job`` on ``con``; the number of rows written. Raises ``duckdb.Error`` or
    ActionFailed."""
    sources = job["sources"]
    names = [s["name"] for s in sources]
    con.register_filesystem(SourceFiles(files, names))
    statement = check_select(con, job["sql"])
    tables: set[str] = set()
    for n, source in enumerate(sources):
        reader = table_reader(con, source["format"], source["name"])
        con.execute(f'CREATE VIEW "t{n}" AS SELECT * FROM {reader}')
        table = source["table"]
        if table not in tables and not re.fullmatch(r"t\d+", table):
            con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM {reader}')
            tables.add(table)
    # From here on the user's SQL runs: only these sources and the output directory, no
    # extensions, no attach, and no way to undo these settings.
    out_path = job["out_path"]
    con.execute(f"SET allowed_paths = [{', '.join(sql_literal(p) for p in names)}]")
    con.execute(f"SET allowed_directories = [{sql_literal(os.path.dirname(out_path) + '/')}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    rel = con.sql(statement)
    if rel is None:
        raise ActionFailed("the query returned no result set")
    rel.create_view("__plus_result")
    fmt = os.path.splitext(out_path)[1].lstrip(".")
    row = con.execute(f"COPY __plus_result TO {sql_literal(out_path)} ({WRITERS[fmt]})").fetchone()
    return int(row[0]) if row else 0


def _reply(reply: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


def main() -> int:
    try:  # before the query arrives: a child started ahead of it (.process) waits here ready
        import duckdb
        installed = True
    except ImportError:
        installed = False
    try:
        _reply({"started": True})
    except BrokenPipeError:
        return 0  # the worker is gone

    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the worker went away without a query (a spare it did not need)
    job = json.loads(line)
    os.environ["HOME"] = os.environ["TMPDIR"] = job["home"]  # nothing lands outside the query's directory
    sources = job["sources"]
    files = ArrivingFiles([s["path"] for s in sources], [int(s["size"]) for s in sources])
    threading.Thread(target=_listen, args=(sys.stdin, files), daemon=True).start()
    if not installed:
        _reply({"failed": "DuckDB is not installed on this worker", "oom": False})
        return 0
    try:
        con = connect(job)
        reply: dict[str, Any] = {"rows": run(con, job, files)}
    except ActionFailed as exc:
        reply = {"failed": str(exc), "oom": False}
    except (duckdb.Error, MemoryError) as exc:
        message = _first_line(exc) if not isinstance(exc, MemoryError) else "Out of Memory"
        oom = isinstance(exc, (MemoryError, duckdb.OutOfMemoryException)) or "Out of Memory" in message
        reply = {"failed": message, "oom": oom, "duckdb": True}
    _reply(reply)
    sys.stderr.flush()
    os._exit(0)  # now, with DuckDB still open: closing it first would hold the answer back (~9 ms)


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # the answer is out: no need to wait for the interpreter's teardown
