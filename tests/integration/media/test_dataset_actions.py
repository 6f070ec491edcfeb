"""sys.dataset.query / sys.dataset.convert over files in the user's storage (issue 6)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from feaas.actions.base import ActionCancelled, ActionFailed
from src.actions.dataset.prefetch import PART_SIZE
from src.actions.dataset.query import ACTIONS
from tests.support.media import runner

duckdb = pytest.importorskip("duckdb")

NAMESPACE = "plus_example_com/alice@example.com/"
BY_ID = {a.id: a for a in ACTIONS}

SALES_CSV = "region,amount,qty\nnorth,10.5,1\nsouth,20,2\nnorth,4.5,3\neast,7,1\nsouth,1,5\n"
TARGETS_JSONL = "".join(json.dumps(r) + "\n" for r in [
    {"region": "north", "target": 12}, {"region": "south", "target": 30}, {"region": "east", "target": 5},
])


run = runner(BY_ID.values())


@pytest.fixture
def tables(storage, prefix) -> dict[str, str]:  # type: ignore[no-untyped-def]
    keys = {"sales": f"{prefix}data/sales.csv", "targets": f"{prefix}data/targets.jsonl"}
    storage.put_bytes(keys["sales"], SALES_CSV.encode())
    storage.put_bytes(keys["targets"], TARGETS_JSONL.encode())
    return keys


def test_aggregation_by_stem_and_position(make_ctx, storage, tables, prefix):
    dest = f"{prefix}out/summary.csv"
    sql = ("SELECT s.region, sum(s.amount) AS total, sum(qty) AS qty, any_value(t.target) AS target "
           "FROM sales s JOIN t1 t USING (region) GROUP BY s.region ORDER BY s.region")
    ctx = make_ctx(memory_limit_mb=256)
    out = run(ctx, "sys.dataset.query", sources=[tables["sales"], tables["targets"]], sql=sql, dest_key=dest)
    assert out == {"dest_key": dest, "rows": 3}
    assert storage.get_bytes(dest).decode().splitlines() == [
        "region,total,qty,target", "east,7.0,1,5", "north,15.0,4,12", "south,21.0,7,30",
    ]
    assert ctx.extra["progress"][-1] == 1.0
    assert list(ctx.tmp_dir.iterdir()) == []


def test_jsonl_and_parquet_outputs(make_ctx, storage, tables, tmp_path, prefix):
    ctx = make_ctx()
    out = run(ctx, "sys.dataset.query", sources=[tables["sales"]], sql="SELECT count(*) AS n FROM t0",
              dest_key=f"{prefix}out/n.json", format="jsonl")
    assert json.loads(storage.get_bytes(out["dest_key"])) == {"n": 5}
    out = run(ctx, "sys.dataset.convert", src_key=tables["sales"], dest_key=f"{prefix}out/sales.parquet")
    assert out["rows"] == 5
    local = tmp_path / "check.parquet"
    storage.download(out["dest_key"], local)
    total = duckdb.connect().execute(f"SELECT sum(amount) FROM read_parquet('{local}')").fetchone()[0]
    assert total == pytest.approx(43.0)


@pytest.mark.parametrize("sql, message", [
    ("SELECT * FROM read_csv('/etc/passwd')", "query failed"),
    ("SELECT * FROM '/etc/hostname'", "query failed"),
    ("SELECT * FROM read_text('/proc/self/environ')", "query failed"),
    ("SELECT * FROM read_csv('plussource://1.csv')", "query failed"),  # only this query's sources resolve
    ("SELECT * FROM glob('plussource://*')", "query failed"),
    ("COPY sales TO '/tmp/stolen.csv'", "only read-only SELECT"),
    ("ATTACH '/tmp/x.db'", "only read-only SELECT"),
    ("INSTALL httpfs", "only read-only SELECT"),
    ("SELECT 1; SELECT 2", "exactly one SELECT"),
    ("SELECT * FROM nope", "query failed"),
])
def test_unsafe_or_bad_sql_fails_cleanly(make_ctx, storage, tables, sql, message, prefix):
    dest = f"{prefix}out/x.csv"
    with pytest.raises(ActionFailed, match=message):
        run(make_ctx(), "sys.dataset.query", sources=[tables["sales"]], sql=sql, dest_key=dest)
    assert not storage.exists(dest)
    assert not Path("/tmp/stolen.csv").exists()


def test_sources_of_every_format_spanning_many_parts_are_read_exactly(make_ctx, storage, tables, tmp_path,
                                                                      prefix):
    """Sources stream in 16 MB parts while DuckDB reads them: a 40 MB CSV, a gzipped CSV, Parquet."""
    big = tmp_path / "wide.csv"
    with open(big, "w") as fh:
        fh.write("id,grp,pad\n")
        fh.writelines(f"{i},{i % 7},{'p' * 40}\n" for i in range(800_000))
    assert big.stat().st_size > 2 * PART_SIZE  # three parts, the last one short
    storage.upload(big, f"{prefix}data/wide.csv")
    packed = tmp_path / "sales.csv.gz"
    packed.write_bytes(gzip.compress(SALES_CSV.encode()))
    storage.upload(packed, f"{prefix}data/packed.csv.gz")
    ctx = make_ctx()
    run(ctx, "sys.dataset.convert", src_key=tables["sales"], dest_key=f"{prefix}data/columns.parquet")
    sql = ("SELECT (SELECT count(*) FROM wide) AS rows, (SELECT sum(id) FROM wide WHERE grp = 3) AS ids, "
           "(SELECT sum(amount) FROM packed) AS packed, (SELECT sum(qty) FROM columns) AS qty")
    out = run(ctx, "sys.dataset.query", sources=[f"{prefix}data/wide.csv", f"{prefix}data/packed.csv.gz",
                                                 f"{prefix}data/columns.parquet"],
              sql=sql, dest_key=f"{prefix}out/all.jsonl")
    assert out["rows"] == 1
    assert json.loads(storage.get_bytes(out["dest_key"])) == {
        "rows": 800_000, "ids": sum(range(3, 800_000, 7)), "packed": 43.0, "qty": 12}
    assert max(ctx.extra["progress"]) == 1.0 and list(ctx.tmp_dir.iterdir()) == []


def test_a_parquet_source_of_many_row_groups_read_by_several_threads_is_exact(make_ctx, storage, tmp_path,
                                                                                  prefix):
    """DuckDB's threads share one handle on a Parquet source; every row group must come out right."""
    local = tmp_path / "groups.parquet"
    duckdb.execute(f"COPY (SELECT i AS id, i % 97 AS grp, (i * 13) % 1000 AS v FROM range(600000) t(i)) "
                   f"TO '{local}' (FORMAT parquet, ROW_GROUP_SIZE 20000)")
    storage.upload(local, f"{prefix}data/groups.parquet")
    sql = "SELECT grp, count(*) AS n, sum(v) AS total, min(id) AS first FROM {} GROUP BY grp ORDER BY grp"
    out = run(make_ctx(memory_limit_mb=1024), "sys.dataset.query", sources=[f"{prefix}data/groups.parquet"],
              sql=sql.format("groups"), dest_key=f"{prefix}out/groups.csv")
    assert out["rows"] == 97
    want = duckdb.execute(sql.format(f"read_parquet('{local}')")).fetchall()
    lines = storage.get_bytes(out["dest_key"]).decode().splitlines()[1:]
    assert [tuple(int(x) for x in line.split(",")) for line in lines] == want


def test_errors_do_not_show_local_paths(make_ctx, tables, prefix):
    ctx = make_ctx()
    with pytest.raises(ActionFailed) as info:
        run(ctx, "sys.dataset.query", sources=[tables["sales"]], sql="SELECT nope FROM sales",
            dest_key=f"{prefix}out/x.csv")
    assert "nope" in str(info.value) and str(ctx.tmp_dir) not in str(info.value)


def test_missing_source_and_foreign_keys(make_ctx, tables, prefix):
    with pytest.raises(ActionFailed, match="input not found"):
        run(make_ctx(), "sys.dataset.query", sources=[f"{prefix}data/none.csv"], sql="SELECT 1",
            dest_key=f"{prefix}out/x.csv")
    with pytest.raises(ActionFailed, match="outside your namespace"):
        run(make_ctx(), "sys.dataset.query", sources=[tables["sales"]], sql="SELECT 1",
            dest_key="plus_example_com/bob@example.com/x.csv")


def _write_big_csv(path: Path, target_bytes: int) -> tuple[int, dict[int, int]]:
    """A CSV of ~target_bytes: (rows, expected sum of value per group)."""
    rows, sums = 0, dict.fromkeys(range(100), 0)
    pad = "x" * 60
    with open(path, "w") as fh:
        fh.write("id,grp,value,pad\n")
        block = []
        while fh.tell() < target_bytes:
            for _ in range(10_000):
                grp, value = rows % 100, (rows * 7) % 1000
                sums[grp] += value
                block.append(f"{rows},{grp},{value},{pad}{rows}\n")
                rows += 1
            fh.write("".join(block))
            block.clear()
    return rows, sums


@pytest.mark.slow
def test_query_over_a_csv_four_times_the_memory_limit(make_ctx, storage, tmp_path, prefix):
    source = tmp_path / "big.csv"
    rows, sums = _write_big_csv(source, 400 * 1024 * 1024)
    key = f"{prefix}data/big.csv"
    storage.upload(source, key)
    source.unlink()
    dest = f"{prefix}out/big_summary.csv"
    sql = ("SELECT grp, sum(value) AS total, count(*) AS n, count(DISTINCT id) AS ids, max(pad) AS maxpad "
           "FROM big GROUP BY grp ORDER BY grp")
    out = run(make_ctx(memory_limit_mb=100), "sys.dataset.query", sources=[key], sql=sql, dest_key=dest)
    assert out["rows"] == 100
    lines = storage.get_bytes(dest).decode().splitlines()[1:]
    got = {int(g): (int(t), int(n), int(i)) for g, t, n, i, _ in (ln.split(",") for ln in lines)}
    assert got == {g: (sums[g], len(range(g, rows, 100)), len(range(g, rows, 100))) for g in range(100)}


def _cancelled_midway(ctx: Any, cancel: threading.Event, after_s: float, **inputs: Any) -> tuple[Any, float]:
    """Run the query in a thread, cancel it after ``after_s``: (what it raised, seconds it took to stop)."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            run(ctx, "sys.dataset.query", **inputs)
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(after_s)
    cancel.set()
    stopped = time.monotonic()
    thread.join(10)
    assert not thread.is_alive()
    return outcome.get("error"), time.monotonic() - stopped


def test_cancel_interrupts_a_running_query(make_ctx, storage, tables, prefix):
    cancel = threading.Event()
    ctx = make_ctx(cancel=cancel)
    error, took = _cancelled_midway(ctx, cancel, 1.0, sources=[tables["sales"]],
                                    dest_key=f"{prefix}out/c.csv",
                                    sql="SELECT count(*) FROM range(100000000000) a")
    assert isinstance(error, ActionCancelled)
    assert took < 5.0
    assert not storage.exists(f"{prefix}out/c.csv")
    assert list(ctx.tmp_dir.iterdir()) == []


class _SlowLink:
    """The real storage behind a slow connection: every 1 MB chunk of a download takes 0.2 s more."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read_range(self, key: str, start: int, end: int, *, etag: str | None = None) -> Any:
        for chunk in self._inner.read_range(key, start, end, etag=etag):
            time.sleep(0.2)
            yield chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_cancel_while_duckdb_waits_for_a_source_still_downloading(make_ctx, storage, tmp_path, prefix):
    big = tmp_path / "slow.csv"
    with open(big, "w") as fh:
        fh.write("id,pad\n")
        # ~36 MB: 3 parts, about 3 s on the slow link
        fh.writelines(f"{i},{'p' * 50}\n" for i in range(600_000))
    storage.upload(big, f"{prefix}data/slow.csv")
    cancel = threading.Event()
    ctx = make_ctx(cancel=cancel)
    ctx.storage = _SlowLink(storage)
    error, took = _cancelled_midway(ctx, cancel, 0.5, sources=[f"{prefix}data/slow.csv"],
                                    sql="SELECT count(*) FROM slow", dest_key=f"{prefix}out/slow.csv")
    assert isinstance(error, ActionCancelled), error
    assert took < 2.0
    assert not storage.exists(f"{prefix}out/slow.csv")
    assert list(ctx.tmp_dir.iterdir()) == []


def test_a_query_over_its_memory_limit_fails_in_its_child_not_the_worker(make_ctx, tables, prefix):
    # Given a query DuckDB's own limit does not cover: a 2 GB string, under a 256 MB limit
    sql = "SELECT length(repeat('x', 2000000000)) AS n FROM sales"
    # When it runs
    with pytest.raises(ActionFailed) as raised:
        run(make_ctx(memory_limit_mb=256), "sys.dataset.query", sources=[tables["sales"]], sql=sql,
            dest_key=f"{prefix}out/huge.csv")
    # Then it failed for memory, in its child: the worker itself never grew by 2 GB
    assert str(raised.value) == "out of memory while running sys.dataset.query (limit 256 MB)"
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kb = int(next(ln for ln in status if ln.startswith("VmHWM")).split()[1])
    assert peak_kb < 1_500_000
