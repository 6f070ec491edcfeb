"""``sys.dataset.query`` and ``sys.dataset.convert``: read-only SQL over the user's files (issue 6).

Sources stream from the bucket into the action's temp directory in ordered parts
(:mod:`feaas.actions.prefetch`) while DuckDB already reads them through a file system that knows
only this query's sources (:mod:`src.actions.dataset_files`): parsing overlaps the download. They
are exposed as views named after each file's stem (``sales.csv`` → ``sales``) and by position
(``t0``, ``t1``, …). Before the user's SQL runs, file access is limited to those sources and the
output directory (``allowed_paths``, ``allowed_directories``, ``enable_external_access=false``) and
the configuration is locked, so the query cannot read other files, attach databases, install
extensions or change limits. Only a single SELECT (or WITH … SELECT) statement is accepted. DuckDB
spills to the temp directory, so inputs larger than the memory limit work."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from feaas.actions.base import Action, ActionContext, ActionFailed, Param
from feaas.actions.prefetch import Prefetch
from feaas.dao.blobs import BlobNotFound
from feaas.errors import NamespaceViolation
from feaas.objects import ParameterType as PT
from src.actions.dataset_files import SourceFiles, source_name

MAX_SOURCES = 64
FORMATS = ("csv", "jsonl", "parquet")
_EXT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
                ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSIONS = (".gz", ".zst")
_READERS = {
    "csv": "read_csv({path}, header = true)",
    "jsonl": "read_json({path}, format = 'newline_delimited')",
    "parquet": "read_parquet({path})",
}
_WRITERS = {"csv": "FORMAT csv, HEADER true", "jsonl": "FORMAT json", "parquet": "FORMAT parquet"}
_IDENT = re.compile(r"[^A-Za-z0-9_]")


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


def source_format(key: str) -> tuple[str, str, str]:
    """(table name from the stem, format, local suffix) for a source key.

    ``reports/sales.csv`` → ``("sales", "csv", ".csv")``; ``a/b.csv.gz`` → ``("b", "csv", ".csv.gz")``.
    """
    name = PurePosixPath(key).name
    compression = next((c for c in _COMPRESSIONS if name.lower().endswith(c)), "")
    bare = name[: len(name) - len(compression)] if compression else name
    suffix = PurePosixPath(bare).suffix.lower()
    fmt = _EXT_FORMATS.get(suffix)
    if fmt is None or (compression and fmt == "parquet"):
        raise ActionFailed(f"{key}: not a CSV, JSONL or Parquet file (by its extension)")
    stem = bare[: len(bare) - len(suffix)]
    return table_name(stem), fmt, suffix + compression


def table_name(stem: str) -> str:
    """A plain SQL identifier from a file stem: other characters become ``_``."""
    ident = _IDENT.sub("_", stem).strip("_") or "t"
    return "_" + ident if ident[0].isdigit() else ident


def output_format(dest_key: str, fmt: str | None) -> str:
    """The output format: the ``format`` input, else the dest_key's extension."""
    if fmt:
        fmt = fmt.strip().lower().lstrip(".")
        fmt = "jsonl" if fmt in ("json", "ndjson") else fmt
        if fmt not in FORMATS:
            raise ActionFailed(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return fmt
    suffix = PurePosixPath(dest_key).suffix.lower()
    if suffix not in _EXT_FORMATS:
        raise ActionFailed("cannot tell the output format from dest_key; set format (csv, jsonl, parquet)")
    return _EXT_FORMATS[suffix]


def memory_limit_mb(ctx_limit_mb: int | None) -> int:
    """DuckDB's memory limit: the action's limit, else half of the cgroup limit or of the RAM."""
    if ctx_limit_mb:
        return max(16, int(ctx_limit_mb))
    total = _cgroup_limit_bytes() or _ram_bytes()
    return max(64, total // 2 // (1024 * 1024)) if total else 1024


def _cgroup_limit_bytes() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:  # "max" or a huge number means no limit
            return min(int(raw), _ram_bytes() or int(raw))
    return None


def _ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


#: Each DuckDB thread keeps its own hash tables; below this much memory per thread a tight limit
#: runs out of memory instead of spilling (a 400 MB CSV under 100 MB failed with 2 threads).
MIN_MB_PER_THREAD = 128


def _threads(limit_mb: int) -> int:
    try:
        cpus = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        cpus = max(1, os.cpu_count() or 1)
    return max(1, min(cpus, limit_mb // MIN_MB_PER_THREAD))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------
# The query
# --------------------------------------------------------------------------------------------


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


def run_query(ctx: ActionContext, sources: list[str], sql: str, dest_key: str, fmt: str | None) -> dict[str, Any]:
    """Run ``sql`` over ``sources`` (read while they download) and upload the result to ``dest_key``."""
    try:
        import duckdb  # noqa: F401 - here only to fail early and clearly
    except ImportError as exc:  # pragma: no cover - the dataset extra is not installed
        raise ActionFailed("DuckDB is not installed on this worker (pip install 'plus-worker[dataset]')") from exc

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
        storage.upload(out_dir / f"result.{out_fmt}", dest_key, content_type=_content_type(out_fmt))
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
        "threads": _threads(limit_mb),
        "preserve_insertion_order": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    })
    try:
        con.register_filesystem(SourceFiles(prefetch, names))
        statement = check_select(con, sql)
        tables: set[str] = set()
        for n, (path, (name, src_fmt, _)) in enumerate(zip(names, parsed)):
            reader = _reader(con, src_fmt, path)
            con.execute(f'CREATE VIEW "t{n}" AS SELECT * FROM {reader}')
            if name not in tables and not re.fullmatch(r"t\d+", name):
                con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM {reader}')
                tables.add(name)
        # From here on the user's SQL runs: only these sources and the output directory, no
        # extensions, no attach, and no way to undo these settings.
        con.execute(f"SET allowed_paths = [{', '.join(_quote(p) for p in names)}]")
        con.execute(f"SET allowed_directories = [{_quote(str(out_path.parent) + '/')}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        ctx.check_cancelled()
        rel = con.sql(statement)
        if rel is None:
            raise ActionFailed("the query returned no result set")
        rel.create_view("__plus_result")
        out_fmt = out_path.suffix.lstrip(".")
        return _interruptible(ctx, con, f"COPY __plus_result TO {_quote(str(out_path))} ({_WRITERS[out_fmt]})")
    except duckdb.Error as exc:
        ctx.check_cancelled()
        if prefetch.error is not None:  # the download failed: say so, not what DuckDB made of it
            raise prefetch.error from None
        message = _first_line(exc).replace(str(out_path.parent.parent) + "/", "")
        for name, key in zip(names, keys):
            message = message.replace(name, key)
        if "Out of Memory" in message:
            raise ActionFailed(f"query needs more memory than the {limit_mb} MB limit: {message}") from exc
        raise ActionFailed(f"query failed: {message}") from exc
    finally:
        con.close()


#: DuckDB reads a CSV in 32 MB buffers, and its sniffer waits for a whole first buffer of a source
#: that is still downloading. Sniffing from 2 MB (the smallest DuckDB takes: its longest line) let
#: the 48 MB benchmark CSV start 0.3 s sooner; the scan keeps DuckDB's buffers (smaller ones did
#: not pay off there).
SNIFF_BUFFER = 2 * 1024 * 1024


def _reader(con: Any, fmt: str, source: str | Path) -> str:
    """The table function reading one source.

    A CSV is sniffed once here, and its views read it with the sniffed dialect and columns spelled
    out: otherwise DuckDB sniffs the file again each time a view or the query is bound (four times
    per query, ~25 ms each on a 50 MB file). The options are built from sniff_csv's columns, each
    value quoted (its ``Prompt`` text is not safe: it does not escape quotes in column names).
    Anything unexpected falls back to plain auto-detection.
    """
    import duckdb

    path = _quote(str(source))
    plain = _READERS[fmt].format(path=path)
    if fmt != "csv":
        return plain
    try:
        return _sniffed_csv_reader(con, path) or plain
    except (duckdb.Error, KeyError, TypeError, ValueError):  # read_csv itself reports real problems
        return plain


def _sniffed_csv_reader(con: Any, path: str) -> str | None:
    row = con.execute(
        "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, Columns, DateFormat, "
        f"TimestampFormat FROM sniff_csv({path}, header = true, buffer_size = {SNIFF_BUFFER})"
    ).fetchone()
    if row is None:
        return None
    delim, quote, escape, new_line, comment, skip, has_header, columns, date_fmt, ts_fmt = row
    # sniff_csv shows a missing quote, escape or comment character as "(empty)".
    quote, escape, comment = ("" if c == "(empty)" else c for c in (quote, escape, comment))
    singles = (quote, escape, comment)
    if (not has_header or not columns or not isinstance(skip, int) or not isinstance(delim, str) or not delim
            or not isinstance(new_line, str) or not all(isinstance(c, str) and len(c) <= 1 for c in singles)):
        return None
    cols = ", ".join(f"{_quote(str(c['name']))}: {_quote(str(c['type']))}" for c in columns)
    options = [f"delim = {_quote(delim)}", f"quote = {_quote(quote)}", f"escape = {_quote(escape)}",
               f"new_line = {_quote(new_line)}", f"skip = {skip}", "header = true", f"columns = {{{cols}}}"]
    if comment:
        options.append(f"comment = {_quote(comment)}")
    if date_fmt:
        options.append(f"dateformat = {_quote(str(date_fmt))}")
    if ts_fmt:
        options.append(f"timestampformat = {_quote(str(ts_fmt))}")
    return f"read_csv({path}, auto_detect = false, {', '.join(options)})"


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


def _content_type(fmt: str) -> str:
    return {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}[fmt]


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


ACTIONS: list[Action] = [DatasetQuery(), DatasetConvert()]
