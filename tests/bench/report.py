"""BENCHMARKS.md from the benchmarks' JSON: ``python -m tests.bench.report [RESULTS_DIR] [OUT.md]``.

Reads every ``*.json`` a benchmark wrote (``tests/bench/common.py`` ``Results``: tables, targets,
plots, raw samples) and, for a benchmark that wrote none, its captured output ``NAME.out``
(bench.sh keeps one per benchmark). Writes the Markdown with the machine's core count and the
date, and one PNG per plot (matplotlib) into ``benchmarks/`` next to it. Exits 1 when a target
recorded in the JSON was missed (quick-mode results are shown but judge nothing), 0 otherwise.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ORDER = ("bench_items", "bench_engine", "bench_media", "bench_start")


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def _table(table: dict[str, Any]) -> list[str]:
    lines = [
        f"**{table['title']}**",
        "",
        "| " + " | ".join(_cell(c) for c in table["columns"]) + " |",
        "|" + "---|" * len(table["columns"]),
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table["rows"]]
    if table.get("note"):
        lines += ["", table["note"]]
    return [*lines, ""]


def _plot(spec: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for name, points in spec["series"].items():
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=name)
    if spec.get("xlog"):
        ax.set_xscale("log")
    if spec.get("ylog"):
        ax.set_yscale("log")
    ax.set_title(spec["title"])
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _sorted(paths: list[Path]) -> list[Path]:
    def rank(p: Path) -> tuple[int, str]:
        return (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem)

    return sorted(paths, key=rank)


def write_report(results_dir: Path, out: Path) -> bool:
    """Write ``out`` (and its plots); returns whether every recorded target held."""
    plots_dir = out.parent / "benchmarks"
    plots_dir.mkdir(parents=True, exist_ok=True)
    results = {p.stem: json.loads(p.read_text()) for p in _sorted(list(results_dir.glob("*.json")))}
    outputs = {p.stem: p for p in _sorted(list(results_dir.glob("*.out"))) if p.stem not in results}
    lines = [
        "# Benchmarks",
        "",
        (
            f"Written by `test_scripts/bench.sh` on {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}: "
            f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}. "
            "Generated from the JSON in `bench-results/` (raw samples there) by `tests/bench/report.py`. "
            "Every baseline is measured in the same run as what it is compared with; figures hold for "
            "this machine only."
        ),
        "",
    ]
    all_ok = True
    summary = [
        "## Targets",
        "",
        "| benchmark | target | measured | bound | result |",
        "|---|---|---|---|---|",
    ]
    for name, data in results.items():
        for t in data.get("targets", []):
            all_ok = all_ok and (bool(t["ok"]) or bool(data.get("quick")))  # quick mode judges nothing
            summary.append(
                f"| {name} | {_cell(t['name'])} | {t['measured']:.3f} | {_cell(t['bound'])} | "
                f"{'ok' if t['ok'] else '**MISSED**'} |"
            )
    if any(d.get("quick") for d in results.values()):
        summary += [
            "",
            (
                "Quick mode (BENCH_QUICK=1): sizes too small to judge the targets; the run only "
                "shows that every path works."
            ),
        ]
    lines += [*summary, ""]
    for name, data in results.items():
        lines += [f"## {data.get('title', name)} (`python -m tests.bench.{name}`)", ""]
        for table in data.get("tables", []):
            lines += _table(table)
        for spec in data.get("plots", []):
            png = plots_dir / f"{name}-{spec['stem']}.png"
            _plot(spec, png)
            lines += [f"![{spec['title']}]({png.relative_to(out.parent).as_posix()})", ""]
        lines += [f"- {note}" for note in data.get("notes", [])]
        lines.append("")
    for name, path in outputs.items():
        lines += [
            f"## `python -m tests.bench.{name}` (printed output)",
            "",
            "```",
            path.read_text().rstrip(),
            "```",
            "",
        ]
    out.write_text("\n".join(lines))
    return all_ok


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    results_dir = Path(args[0]) if args else Path("bench-results")
    out = Path(args[1]) if len(args) > 1 else Path("BENCHMARKS.md")
    ok = write_report(results_dir, out)
    print(f"report: {out} ({'every target held' if ok else 'a target was missed'})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
