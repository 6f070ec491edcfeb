"""The BENCHMARKS.md generator (tests/bench/report.py) on sample results: it must not rot between
benchmark runs. No timing here: the JSON is made up."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.common import Results, at_least, at_most
from tests.bench.report import main, write_report


def sample(results_dir: Path, *, missed: bool = False) -> None:
    results = Results("bench_items", "Runs over many items", quick=False)
    results.tables.append(
        {
            "title": "Headline",
            "columns": ["run", "items/s"],
            "rows": [["worker", "1,000 [900–1,100, n=5]"], ["floor", "1,050"]],
            "note": "a | note",
        }
    )
    results.targets += [
        at_least("worker / floor", 0.5 if missed else 0.95, 0.9),
        at_most("WCU/item", 2.0, 2.0),
    ]
    results.plot(
        "items_curve",
        "Throughput",
        "items",
        "items/s",
        {"worker": [[1000, 900.0], [10000, 950.0]]},
        xlog=True,
    )
    results.samples["headline"] = {"worker": [{"items_per_s": 1000.0}]}
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "bench_items.json").write_text(
        json.dumps(
            {
                "benchmark": results.benchmark,
                "title": results.title,
                "quick": False,
                "tables": results.tables,
                "targets": [t.__dict__ for t in results.targets],
                "plots": results.plots,
                "notes": ["took 1 s"],
                "samples": results.samples,
            }
        )
    )
    (results_dir / "bench_start.out").write_text("start → RUNNING, host   120 ms   100 ms   1.2  ok\n")


def test_report_has_tables_targets_plots_and_printed_output(tmp_path: Path) -> None:
    sample(tmp_path / "results")
    out = tmp_path / "BENCHMARKS.md"
    assert write_report(tmp_path / "results", out) is True
    text = out.read_text()
    assert "cores" in text and "## Targets" in text
    assert "| bench_items | worker / floor | 0.950 | ≥ 0.9 | ok |" in text
    assert "| worker | 1,000 [900–1,100, n=5] |" in text and "a | note" in text
    png = tmp_path / "benchmarks" / "bench_items-items_curve.png"
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "![Throughput](benchmarks/bench_items-items_curve.png)" in text
    assert "start → RUNNING, host" in text  # a benchmark without JSON: its printed output


def test_a_missed_target_makes_the_report_exit_1(tmp_path: Path) -> None:
    sample(tmp_path / "results", missed=True)
    out = tmp_path / "BENCHMARKS.md"
    assert main([str(tmp_path / "results"), str(out)]) == 1
    assert "**MISSED**" in out.read_text()
