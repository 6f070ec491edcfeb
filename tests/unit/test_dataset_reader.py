"""The sniffed CSV reader of sys.dataset.query reads exactly what ``read_csv(path, header = true)`` reads."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from src.actions.dataset.formats import plain_reader, sql_literal, table_reader

CSVS = {
    "plain": "id,grp,value,label\n1,2,3.5,a\n2,3,4.25,b\n",
    "quoted": 'id,"na,me",note\n1,"x, y","say ""hi"""\n2,z,\n',
    "semicolons": "a;b;c\n1;2;2024-01-02\n3;4;2024-02-03\n",
    "tabs-and-nulls": "a\tb\n1\t\n\tq\n",
    "hostile-header": "id,\"we'ird\"\"); SELECT 1 --\",c\n1,2,\"q,uoted\"\n3,4,5\n",
    "timestamps": "t,v\n2024-01-02 03:04:05,1\n2024-05-06 07:08:09,2\n",
}


@pytest.mark.parametrize("name", list(CSVS))
def test_sniffed_reader_matches_auto_detection(tmp_path: Path, name: str):
    path = tmp_path / f"{name}.csv"
    path.write_text(CSVS[name])
    con = duckdb.connect()
    reader = table_reader(con, "csv", path)
    assert "auto_detect = false" in reader  # the sniffed form, not the fallback
    plain = plain_reader("csv", sql_literal(str(path)))

    def read(source: str) -> tuple[list[tuple[str, str]], list[tuple]]:
        result = con.execute(f"SELECT * FROM {source}")
        return [(d[0], str(d[1])) for d in result.description], result.fetchall()

    assert read(reader) == read(plain)


def test_other_formats_and_unsniffable_files_use_plain_readers(tmp_path: Path):
    con = duckdb.connect()
    jsonl = tmp_path / "a.jsonl"
    assert table_reader(con, "jsonl", jsonl) == plain_reader("jsonl", sql_literal(str(jsonl)))
    missing = tmp_path / "missing.csv"
    assert table_reader(con, "csv", missing) == plain_reader("csv", sql_literal(str(missing)))
