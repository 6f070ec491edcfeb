"""A query's DuckDB process started ahead of it (src/actions/dataset/process.py, issue 16).

Each test starts from no spare; the real child, the real store."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feaas.actions.base import ActionCancelled, ActionFailed
from feaas.actions.childenv import CHILD_PATH
from src.actions.dataset import process
from src.actions.dataset.query import ACTIONS
from tests.support.media import runner

pytest.importorskip("duckdb")

run = runner(ACTIONS)
SALES_CSV = "region,amount\nnorth,10.5\nsouth,20\nnorth,4.5\n"
SQL = "SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region"


@pytest.fixture(autouse=True)
def no_spare() -> Iterator[None]:
    process.discard_spare()
    yield
    process.discard_spare()


@pytest.fixture
def sales(storage, prefix) -> str:  # type: ignore[no-untyped-def]
    key = f"{prefix}data/sales.csv"
    storage.put_bytes(key, SALES_CSV.encode())
    return key


def spare() -> subprocess.Popen[bytes]:
    assert process.spare_started(30), "no spare child started"
    waiting = process._spare
    assert waiting is not None
    return waiting


def query(make_ctx, sales: str, prefix: str, **ctx_args) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return run(make_ctx(**ctx_args), "sys.dataset.query", sources=[sales], sql=SQL,
               dest_key=f"{prefix}out/summary.csv")


def test_a_query_leaves_a_spare_and_the_next_query_runs_in_it(make_ctx, storage, sales, prefix):
    # Given no spare: the first query starts its own process
    assert not process.spare_started(0)
    assert query(make_ctx, sales, prefix)["rows"] == 2
    # Then it left one started, DuckDB imported, for the next query
    first = spare()
    # When the next query runs
    assert query(make_ctx, sales, prefix, memory_limit_mb=200)["rows"] == 2
    # Then it ran in that process, which ended by itself (a discarded spare is killed), and a new
    # spare waits
    assert first.wait(10) == 0
    assert storage.get_bytes(f"{prefix}out/summary.csv").decode().splitlines() == [
        "region,total", "north,15.0", "south,20.0"]
    assert spare().pid != first.pid


def test_the_next_process_starts_only_once_the_result_is_delivered(make_ctx, sales, prefix, monkeypatch):
    query(make_ctx, sales, prefix)
    first = spare()
    ctx = make_ctx()
    spare_while_uploading: list[int | None] = []
    upload = ctx.storage.upload

    def watched_upload(*args, **kwargs):  # type: ignore[no-untyped-def]
        spare_while_uploading.append(process.spare_pid())
        upload(*args, **kwargs)

    monkeypatch.setattr(ctx.storage, "upload", watched_upload)
    run(ctx, "sys.dataset.query", sources=[sales], sql=SQL, dest_key=f"{prefix}out/summary.csv")
    # While its result was uploaded, the query had taken the spare and none had started yet
    assert spare_while_uploading == [None]
    # After it, a new one waits
    assert spare().pid != first.pid


def test_a_query_that_fails_leaves_a_spare_too(make_ctx, sales, prefix):
    with pytest.raises(ActionFailed, match=r"query failed: .*nope"):
        run(make_ctx(), "sys.dataset.query", sources=[sales], sql="SELECT nope FROM sales",
            dest_key=f"{prefix}out/failed.csv")
    spare()


def test_a_spare_gets_the_child_environment_and_no_limits_until_taken(make_ctx, sales, prefix):
    query(make_ctx, sales, prefix)
    waiting = spare()
    env = dict(item.split("=", 1) for item in
               Path(f"/proc/{waiting.pid}/environ").read_text().split("\0") if item)
    assert set(env) == {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "MALLOC_ARENA_MAX"}
    assert env["PATH"] == CHILD_PATH
    assert Path(f"/proc/{waiting.pid}/oom_score_adj").read_text().strip() == "1000"
    limits = Path(f"/proc/{waiting.pid}/limits").read_text()
    assert "Max address space         unlimited" in limits


def test_a_spare_takes_the_memory_limit_of_its_query(make_ctx, sales, prefix):
    query(make_ctx, sales, prefix)
    waiting = spare()
    sql = "SELECT length(repeat('x', 2000000000)) AS n FROM sales"
    with pytest.raises(ActionFailed) as raised:
        run(make_ctx(memory_limit_mb=256), "sys.dataset.query", sources=[sales], sql=sql,
            dest_key=f"{prefix}out/huge.csv")
    assert str(raised.value) == "out of memory while running sys.dataset.query (limit 256 MB)"
    assert waiting.poll() is not None  # it was the query's process


def test_cancelling_a_query_in_a_spare_kills_it_and_starts_no_new_one(make_ctx, sales, prefix):
    query(make_ctx, sales, prefix)
    waiting = spare()
    cancel = threading.Event()
    ctx = make_ctx(cancel=cancel)
    outcome: dict[str, BaseException] = {}

    def go() -> None:
        try:
            run(ctx, "sys.dataset.query", sources=[sales], dest_key=f"{prefix}out/c.csv",
                sql="SELECT count(*) FROM range(100000000000) a")
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            outcome["error"] = exc

    thread = threading.Thread(target=go)
    thread.start()
    time.sleep(1.0)
    cancel.set()
    thread.join(10)
    assert isinstance(outcome.get("error"), ActionCancelled)
    assert waiting.wait(5) != 0  # killed
    assert process._spare is None


def test_a_spare_that_died_is_replaced_by_a_new_process(make_ctx, sales, prefix):
    query(make_ctx, sales, prefix)
    waiting = spare()
    waiting.kill()
    waiting.wait()
    assert query(make_ctx, sales, prefix)["rows"] == 2
    assert spare().pid != waiting.pid


def test_an_unused_spare_ends_quietly_when_the_worker_goes_away(make_ctx, sales, prefix):
    query(make_ctx, sales, prefix)
    waiting = spare()
    assert waiting.stdin is not None
    waiting.stdin.close()  # what the worker's exit does to it
    assert waiting.wait(10) == 0


def test_a_spare_that_cannot_start_costs_the_query_nothing(make_ctx, sales, prefix, monkeypatch, caplog):
    # Given a machine where the spare cannot start (a full process table) but the query's own can
    real = subprocess.Popen

    def refused_for_spares(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("stderr") is subprocess.DEVNULL:  # only the spare's output goes nowhere
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return real(*args, **kwargs)

    monkeypatch.setattr(process.subprocess, "Popen", refused_for_spares)
    # When a query runs and ends
    assert query(make_ctx, sales, prefix)["rows"] == 2
    # Then it succeeded all the same; nothing waits, and a warning says why
    assert process.spare_pid() is None
    assert "could not start a DuckDB process ahead of the next query" in caplog.text
    monkeypatch.setattr(process.subprocess, "Popen", real)
    assert query(make_ctx, sales, prefix)["rows"] == 2
    assert process.spare_started(30)
