"""sys.dataset: statement checks, table naming and limits, without storage (issue 6)."""

from __future__ import annotations

import pytest

from feaas.actions.base import ActionFailed
from src.actions.dataset.formats import output_format, source_format, table_name
from src.actions.dataset.memory import memory_limit_mb
from src.actions.dataset.query import check_select

duckdb = pytest.importorskip("duckdb")


@pytest.fixture
def con():  # type: ignore[no-untyped-def]
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


@pytest.mark.parametrize("sql", [
    "SELECT 1",
    "select region, sum(amount) from sales group by region;",
    "WITH x AS (SELECT 1 AS a) SELECT * FROM x -- trailing comment",
    "SELECT * FROM t0 UNION ALL SELECT * FROM t1",
])
def test_single_selects_are_accepted(con, sql):
    assert check_select(con, sql).lstrip().lower().startswith(("select", "with"))


@pytest.mark.parametrize("sql, reason", [
    ("COPY sales TO '/tmp/x.csv'", "not COPY"),
    ("ATTACH '/tmp/x.db' AS x", "not ATTACH"),
    ("INSTALL httpfs", "not"),
    ("LOAD httpfs", "not"),
    ("PRAGMA database_list", "not"),
    ("SET enable_external_access = true", "not SET"),
    ("CREATE TABLE x AS SELECT 1", "not CREATE"),
    ("DELETE FROM sales", "not DELETE"),
    ("SELECT 1; SELECT 2", "2 statements"),
    ("SELECT 1; COPY (SELECT 1) TO '/tmp/x'", "2 statements"),
    ("", "empty"),
    ("SELEC oops", "does not parse"),
])
def test_everything_else_is_refused(con, sql, reason):
    with pytest.raises(ActionFailed, match=reason):
        check_select(con, sql)


@pytest.mark.parametrize("key, expected", [
    ("ns/reports/sales.csv", ("sales", "csv", ".csv")),
    ("ns/events.JSONL", ("events", "jsonl", ".jsonl")),
    ("ns/a/b.ndjson", ("b", "jsonl", ".ndjson")),
    ("ns/big.parquet", ("big", "parquet", ".parquet")),
    ("ns/2024-sales.v2.csv.gz", ("_2024_sales_v2", "csv", ".csv.gz")),
])
def test_source_names_and_formats(key, expected):
    assert source_format(key) == expected


@pytest.mark.parametrize("key", ["ns/notes.txt", "ns/noext", "ns/x.parquet.gz"])
def test_unknown_source_types_are_refused(key):
    with pytest.raises(ActionFailed, match="not a CSV"):
        source_format(key)


def test_table_name_is_a_plain_identifier():
    assert table_name('x"; DROP TABLE y; --') == "x___DROP_TABLE_y"
    assert table_name("---") == "t"


def test_output_format_from_input_or_extension():
    assert output_format("ns/out.parquet", None) == "parquet"
    assert output_format("ns/out.csv", "JSONL") == "jsonl"
    assert output_format("ns/out.json", None) == "jsonl"
    with pytest.raises(ActionFailed, match="cannot tell"):
        output_format("ns/out.bin", None)
    with pytest.raises(ActionFailed, match="format must be one of"):
        output_format("ns/out.csv", "xlsx")


def test_memory_limit_prefers_the_action_limit():
    assert memory_limit_mb(100) == 100
    assert memory_limit_mb(None) >= 64
