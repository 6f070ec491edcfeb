"""``sys.dataset.query`` and ``sys.dataset.convert``: read-only SQL over the user's files (issue 6).

Sources stream from the bucket into the action's temp directory in ordered parts
(:mod:`.prefetch`) while DuckDB, in a child process with a memory, CPU-time and wall-clock limit
(:mod:`.child`, :mod:`feaas.actions.childlimits`; started ahead of the query when it can be,
:mod:`.process`), already reads them through a file system that
knows only this query's sources (:mod:`.files`): parsing overlaps the download. A child killed or
refused for memory fails the action with "out of memory while running …"; cancelling kills it. They
are exposed as views named after each file's stem (``sales.csv`` → ``sales``) and by position
(``t0``, ``t1``, …). Before the user's SQL runs, file access is limited to those sources and the
output directory (``allowed_paths``, ``allowed_directories``, ``enable_external_access=false``) and
the configuration is locked, so the query cannot read other files, attach databases, install
extensions or change limits. Only a single SELECT (or WITH … SELECT) statement is accepted. DuckDB
spills to the temp directory, so inputs larger than the memory limit work."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from feaas.actions.base import Action, ActionCancelled, ActionContext, ActionFailed, Param
from feaas.actions.childlimits import DEFAULT_CPU_SECONDS, child_slot, died_of, out_of_memory
from feaas.dao.blobs import BlobNotFound
from feaas.errors import NamespaceViolation
from feaas.objects import ParameterType as PT
from src.actions.dataset.child import check_select
from src.actions.dataset.files import source_name
from src.actions.dataset.formats import content_type, output_format, source_format
from src.actions.dataset.memory import memory_limit_mb, threads
from src.actions.dataset.prefetch import Prefetch
from src.actions.dataset.process import end, keep_spare, start_child

MAX_SOURCES = 64
__all__ = ["DatasetConvert", "DatasetQuery", "check_select", "run_query"]


def run_query(ctx: ActionContext, sources: list[str], sql: str, dest_key: str,
              fmt: str | None, action_id: str = "sys.dataset.query") -> dict[str, Any]:
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
            rows = _query(ctx, action_id, prefetch, keys, names, parsed, sql, out_dir / f"result.{out_fmt}",
                          spill_dir)
        ctx.check_cancelled()
        ctx.report_progress(0.9)
        storage.upload(out_dir / f"result.{out_fmt}", dest_key, content_type=content_type(out_fmt))
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            raise ActionFailed("disk full: no space left on the worker's disk") from exc
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not ctx.cancel.is_set():
            keep_spare()  # for the next query: started once this one's result is delivered, not before
    ctx.report_progress(1.0)
    return {"dest_key": dest_key, "rows": rows}


def _query(ctx: ActionContext, action_id: str, prefetch: Prefetch, keys: list[str], names: list[str],
           parsed: list[tuple[str, str, str]], sql: str, out_path: Path, spill_dir: Path) -> int:
    """Run ``sql`` in a limited child process (:mod:`.child`) over the sources as they download."""
    limit_mb = memory_limit_mb(ctx.memory_limit_mb)
    n_threads = threads(limit_mb)
    work = out_path.parent.parent
    job = {
        "sql": sql, "out_path": str(out_path), "spill_dir": str(spill_dir), "home": str(work),
        "memory_mb": limit_mb, "threads": n_threads,
        "sources": [{"path": str(work / "sources" / str(n)), "size": prefetch.size(n), "name": name,
                     "format": src_fmt, "table": table}
                    for n, (name, (table, src_fmt, _)) in enumerate(zip(names, parsed, strict=True))],
    }
    wall_s = ctx.time_limit_s or DEFAULT_CPU_SECONDS
    with child_slot(ctx.cancel), open(work / "child.log", "wb") as log:
        proc = start_child(work, memory_mb=limit_mb, cpu_seconds=wall_s * n_threads, stderr=log)
        try:
            reply, outcome = _converse(ctx, proc, prefetch, job, time.monotonic() + wall_s)
        finally:
            end(proc)
    if outcome == "cancelled" or (ctx.cancel.is_set() and proc.returncode != 0):
        raise ActionCancelled("action stopped: the job was cancelled or interrupted")
    if outcome == "timeout":
        raise ActionFailed(f"{action_id} stopped: it ran longer than the job's limit of {wall_s:.0f} s")
    if prefetch.error is not None and "rows" not in reply:  # the download failed: say so
        raise prefetch.error
    cause = died_of(proc.returncode)
    if cause == "memory" or reply.get("oom"):
        raise ActionFailed(out_of_memory(action_id, limit_mb))
    if cause == "cpu":
        raise ActionFailed(f"{action_id} stopped: it used more CPU time than the job's limit")
    if "rows" in reply:
        return int(reply["rows"])
    if "failed" not in reply:
        raise ActionFailed(f"{action_id} failed: the query process ended with exit code {proc.returncode}")
    message = str(reply["failed"]).replace(str(work) + "/", "")
    for name, key in zip(names, keys, strict=True):
        message = message.replace(name, key)
    raise ActionFailed(f"query failed: {message}" if reply.get("duckdb") else message)


def _converse(ctx: ActionContext, proc: subprocess.Popen[bytes], prefetch: Prefetch, job: dict[str, Any],
              deadline: float) -> tuple[dict[str, Any], str | None]:
    """Send the query, then the sources' progress, until the child answers, dies or must stop."""
    assert proc.stdin is not None and proc.stdout is not None
    replies: list[bytes] = []
    reader = threading.Thread(target=lambda: replies.append(proc.stdout.read() if proc.stdout else b""),
                              name="dataset-child-reply", daemon=True)
    reader.start()
    sizes = [prefetch.size(n) for n in range(len(job["sources"]))]
    sent = [0] * len(sizes)
    error_sent = False
    try:
        proc.stdin.write(json.dumps(job).encode() + b"\n")
        proc.stdin.flush()
        while proc.poll() is None:
            if ctx.cancel.is_set():
                return {}, "cancelled"
            if time.monotonic() >= deadline:
                return {}, "timeout"
            if sent == sizes or error_sent:  # nothing more to tell: wait for the answer
                reader.join(0.02)
                continue
            ready = prefetch.wait_ready(sent, 0.02)  # wakes as bytes arrive: the child reads on at once
            if ready != sent:
                proc.stdin.write(json.dumps({"ready": ready}).encode() + b"\n")
                proc.stdin.flush()
                sent = ready
            if prefetch.error is not None:
                proc.stdin.write(json.dumps({"error": str(prefetch.error)[:300]}).encode() + b"\n")
                proc.stdin.flush()
                error_sent = True
    except BrokenPipeError:
        pass  # the child ended: its exit code says why
    proc.wait()
    reader.join()  # the caller closes the pipes (process.end)
    lines = (replies[0] if replies else b"").strip().splitlines()
    try:
        return (json.loads(lines[-1]) if lines else {}), None
    except ValueError:
        return {}, None


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
                         str(inputs.get("format") or "") or None, self.id)



ACTIONS: list[Action] = [DatasetQuery(), DatasetConvert()]
