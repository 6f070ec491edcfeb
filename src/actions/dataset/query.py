"""``sys.dataset.query`` and ``sys.dataset.convert``: read-only SQL over the user's files (issue 6).

Sources stream from the bucket into the action's temp directory in ordered parts
(:mod:`.prefetch`) while DuckDB already reads them through a file system that knows
only this query's sources (:mod:`.files`): parsing overlaps the download. They
are exposed as views named after each file's stem (``sales.csv`` → ``sales``) and by position
(``t0``, ``t1``, …). Before the user's SQL runs, file access is limited to those sources and the
output directory (``allowed_paths``, ``allowed_directories``, ``enable_external_access=false``) and
the configuration is locked, so the query cannot read other files, attach databases, install
extensions or change limits. Only a single SELECT (or WITH … SELECT) statement is accepted. DuckDB
spills to the temp directory, so inputs larger than the memory limit work."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from feaas.actions.base import Action, ActionContext, ActionFailed, Param
from feaas.dao.blobs import BlobNotFound
from feaas.errors import NamespaceViolation
from feaas.objects import ParameterType as PT
from src.actions.dataset.files import SourceFiles, source_name
from src.actions.dataset.formats import (
    WRITERS,
    content_type,
    output_format,
    source_format,
    sql_literal,
    table_reader,
)
from src.actions.dataset.memory import memory_limit_mb, threads
from src.actions.dataset.prefetch import Prefetch

MAX_SOURCES = 64


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


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def run_query(ctx: ActionContext, sources: list[str], sql: str, dest_key: str,
              fmt: str | None) -> dict[str, Any]:
    """Run ``sql`` over ``sources`` (read while they download) and upload the result to ``dest_key``."""
    try:
        import duckdb  # noqa: F401 - here only to fail early and clearly
    except ImportError as exc:  # pragma: no cover - the dataset extra is not installed
        raise ActionFailed("DuckDB is not installed on this worker "
                           "(pip install 'plus-worker[dataset]')") from exc

    if not sources:
        raise ActionFailed("sources must list at least one file")
    if len(sources) > MAX_SOURCES:
        raise ActionFailed(f"at most {MAX_SOURCES} sources, got {len(sources)}")
    storage = ctx.storage
    try:
        dest_key = storage.check_key(dest_key) if dest_key else ""
        if not dest_key:
            raise ActionFailed("missing input: dest_key")
        keys = [storage.check_key(str(k)) for k in sources]
    except NamespaceViolation as exc:
        raise ActionFailed(str(exc)) from exc
    out_fmt = output_format(dest_key, fmt)
    parsed = [source_format(k) for k in keys]

    ctx.tmp_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dataset-", dir=ctx.tmp_dir))
    src_dir, out_dir, spill_dir = work / "sources", work / "out", work / "spill"
    for d in (src_dir, out_dir, spill_dir):
        d.mkdir()
    names = [source_name(n, suffix) for n, (_, _, suffix) in enumerate(parsed)]
    try:
        ctx.check_cancelled()
        try:
            prefetch = Prefetch(storage, [(key, src_dir / str(n)) for n, key in enumerate(keys)], ctx.cancel,
                                on_progress=lambda fraction: ctx.report_progress(0.8 * fraction))
        except BlobNotFound as exc:
            raise ActionFailed(f"input not found: {exc.args[0]}") from None
        with prefetch:
            rows = _query(ctx, prefetch, keys, names, parsed, sql, out_dir / f"result.{out_fmt}", spill_dir)
        ctx.check_cancelled()
        ctx.report_progress(0.9)
        storage.upload(out_dir / f"result.{out_fmt}", dest_key, content_type=content_type(out_fmt))
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            raise ActionFailed("disk full: no space left on the worker's disk") from exc
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ctx.report_progress(1.0)
    return {"dest_key": dest_key, "rows": rows}


def _query(ctx: ActionContext, prefetch: Prefetch, keys: list[str], names: list[str],
           parsed: list[tuple[str, str, str]], sql: str, out_path: Path, spill_dir: Path) -> int:
    """Run ``sql`` over the sources (read as they download) and write the result to ``out_path``."""
    import duckdb

    limit_mb = memory_limit_mb(ctx.memory_limit_mb)
    con = duckdb.connect(":memory:", config={
        "memory_limit": f"{limit_mb}MB",
        "temp_directory": str(spill_dir),
        "threads": threads(limit_mb),
        "preserve_insertion_order": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    })
    try:
        con.register_filesystem(SourceFiles(prefetch, names))
        statement = check_select(con, sql)
        tables: set[str] = set()
        for n, (path, (name, src_fmt, _)) in enumerate(zip(names, parsed, strict=True)):
            reader = table_reader(con, src_fmt, path)
            con.execute(f'CREATE VIEW "t{n}" AS SELECT * FROM {reader}')
            if name not in tables and not re.fullmatch(r"t\d+", name):
                con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM {reader}')
                tables.add(name)
        # From here on the user's SQL runs: only these sources and the output directory, no
        # extensions, no attach, and no way to undo these settings.
        con.execute(f"SET allowed_paths = [{', '.join(sql_literal(p) for p in names)}]")
        con.execute(f"SET allowed_directories = [{sql_literal(str(out_path.parent) + '/')}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        ctx.check_cancelled()
        rel = con.sql(statement)
        if rel is None:
            raise ActionFailed("the query returned no result set")
        rel.create_view("__plus_result")
        out_fmt = out_path.suffix.lstrip(".")
        copy = f"COPY __plus_result TO {sql_literal(str(out_path))} ({WRITERS[out_fmt]})"
        return _interruptible(ctx, con, copy)
    except duckdb.Error as exc:
        ctx.check_cancelled()
        if prefetch.error is not None:  # the download failed: say so, not what DuckDB made of it
            raise prefetch.error from None
        message = _first_line(exc).replace(str(out_path.parent.parent) + "/", "")
        for name, key in zip(names, keys, strict=True):
            message = message.replace(name, key)
        if "Out of Memory" in message:
            raise ActionFailed(f"query needs more memory than the {limit_mb} MB limit: {message}") from exc
        raise ActionFailed(f"query failed: {message}") from exc
    finally:
        con.close()


def _interruptible(ctx: ActionContext, con: Any, sql: str) -> int:
    """Run ``sql`` while a watcher interrupts DuckDB when the job is cancelled."""
    import threading

    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.1):
            if ctx.cancel.is_set():
                con.interrupt()
                return

    watcher = threading.Thread(target=watch, name="dataset-cancel-watch", daemon=True)
    watcher.start()
    try:
        row = con.execute(sql).fetchone()
    except Exception:
        ctx.check_cancelled()
        raise
    finally:
        done.set()
        watcher.join()
    ctx.check_cancelled()
    return int(row[0]) if row else 0


class DatasetQuery(Action):
    id = "sys.dataset.query"
    description = (
        "Run one read-only SQL SELECT (DuckDB) over CSV, JSONL or Parquet files. Inputs: `sources` (list "
        "of keys; each is a table named after its file stem, `sales.csv` → `sales`, and `t0`, `t1`, … "
        "by position), `sql`, `dest_key`, `format` (csv, jsonl, parquet; default from dest_key's "
        "extension). Outputs: `dest_key`, `rows`."
    )
    inputs = (
        Param("sources", PT.LIST),
        Param("sql", PT.STRING),
        Param("dest_key", PT.KEY),
        Param("format", PT.STRING, optional=True, default=""),
    )
    outputs = (Param("dest_key", PT.KEY), Param("rows", PT.INTEGER))

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        sources = inputs.get("sources") or []
        if isinstance(sources, str):
            sources = [sources]
        return run_query(ctx, [str(s) for s in sources], str(inputs.get("sql") or ""),
                         str(inputs.get("dest_key") or ""), str(inputs.get("format") or "") or None)


class DatasetConvert(Action):
    id = "sys.dataset.convert"
    description = (
        "Convert a table file between CSV, JSONL and Parquet. Inputs: `src_key`, `dest_key`, `format` "
        "(default from dest_key's extension). Outputs: `dest_key`, `rows`."
    )
    inputs = (
        Param("src_key", PT.KEY),
        Param("dest_key", PT.KEY),
        Param("format", PT.STRING, optional=True, default=""),
    )
    outputs = (Param("dest_key", PT.KEY), Param("rows", PT.INTEGER))

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        src = str(inputs.get("src_key") or "")
        if not src:
            raise ActionFailed("missing input: src_key")
        return run_query(ctx, [src], "SELECT * FROM t0", str(inputs.get("dest_key") or ""),
                         str(inputs.get("format") or "") or None)

