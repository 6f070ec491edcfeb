"""The table files a dataset action reads and writes: CSV, JSONL and Parquet, by extension.

A source key names its table (``reports/sales.csv`` → ``sales``) and its reader (a DuckDB table
function); the output format comes from the ``format`` input or the destination key.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from feaas.actions.base import ActionFailed

FORMATS = ("csv", "jsonl", "parquet")
_EXT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
                ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSIONS = (".gz", ".zst")
_READERS = {
    "csv": "read_csv({path}, header = true, buffer_size = {buffer})",
    "jsonl": "read_json({path}, format = 'newline_delimited')",
    "parquet": "read_parquet({path})",
}
WRITERS = {"csv": "FORMAT csv, HEADER true", "jsonl": "FORMAT json", "parquet": "FORMAT parquet"}
_CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson",
                  "parquet": "application/vnd.apache.parquet"}
_IDENT = re.compile(r"[^A-Za-z0-9_]")


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


def sql_literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


#: DuckDB reads a CSV in 32 MB buffers by default and parses none before it has a whole one, so on
#: a source still downloading it would wait for 32 MB at a time. The sniffer reads 2 MB (the
#: smallest DuckDB takes: its longest line) and the scan 4 MB buffers, so parsing follows the
#: download closely; a local file scans no slower (480 MB: 0.81 s in 32 MB buffers, 0.77 s in 4 MB).
SNIFF_BUFFER = 2 * 1024 * 1024
SCAN_BUFFER = 4 * 1024 * 1024


def table_reader(con: Any, fmt: str, source: str | Path) -> str:
    """The table function reading one source.

    A CSV is sniffed once here, and its views read it with the sniffed dialect and columns spelled
    out: otherwise DuckDB sniffs the file again each time a view or the query is bound (four times
    per query, ~25 ms each on a 50 MB file). The options are built from sniff_csv's columns, each
    value quoted (its ``Prompt`` text is not safe: it does not escape quotes in column names).
    Anything unexpected falls back to plain auto-detection.
    """
    import duckdb

    path = sql_literal(str(source))
    plain = plain_reader(fmt, path)
    if fmt != "csv":
        return plain
    try:
        return _sniffed_csv_reader(con, path) or plain
    except (duckdb.Error, KeyError, TypeError, ValueError):  # read_csv itself reports real problems
        return plain


def plain_reader(fmt: str, path: str) -> str:
    """The table function reading the source at ``path`` (an SQL literal) with DuckDB's own detection."""
    return _READERS[fmt].format(path=path, buffer=SCAN_BUFFER)


def _sniffed_csv_reader(con: Any, path: str) -> str | None:
    row = con.execute(
        "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, Columns, "
        f"DateFormat, TimestampFormat FROM sniff_csv({path}, header = true, buffer_size = {SNIFF_BUFFER})"
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
    cols = ", ".join(f"{sql_literal(str(c['name']))}: {sql_literal(str(c['type']))}" for c in columns)
    options = [f"delim = {sql_literal(delim)}", f"quote = {sql_literal(quote)}",
               f"escape = {sql_literal(escape)}", f"new_line = {sql_literal(new_line)}", f"skip = {skip}",
               "header = true", f"columns = {{{cols}}}", f"buffer_size = {SCAN_BUFFER}"]
    if comment:
        options.append(f"comment = {sql_literal(comment)}")
    if date_fmt:
        options.append(f"dateformat = {sql_literal(str(date_fmt))}")
    if ts_fmt:
        options.append(f"timestampformat = {sql_literal(str(ts_fmt))}")
    return f"read_csv({path}, auto_detect = false, {', '.join(options)})"


def content_type(fmt: str) -> str:
    return _CONTENT_TYPES[fmt]
