"""Engine benchmarks: ``python -m tests.bench.bench_engine [--quick] [--repeats N]``. No storage I/O.

(a) 8 independent 200 ms ``sys.debug.nap`` nodes, CONCURRENCY=8: wall time vs the 200 ms ideal
    (target ≤ 1.5×).
(b) graphs of 500 and 5,000 ``sys.math.add`` nodes in ONE run each (the per-run limit lifted with
    ``prepare(..., max_actions=N)``; production keeps 500), two shapes:
    chain   — every node feeds the next (CONCURRENCY=1: inline; CONCURRENCY=8: each node waits for
              the one before, the thread pool gets one node at a time);
    fan-out — one static feeds N independent nodes whose sums are not used (CONCURRENCY=8: the
              thread-pool path with 8 nodes in flight).
    Engine time per node vs calling the action directly in a loop (target: overhead < 200 µs per
    node). Discarded warm-up, then the shapes interleaved, median of N repeats.
The engine's per-item cost inside a collection run is measured by bench_items (curves).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from feaas.actions.base import ActionContext
from feaas.actions.builtin import BUILTIN_ACTIONS, Add
from feaas.actions.registry import Registry
from feaas.psee.engine import Engine, NodeEnvironment, main_input_registers
from feaas.psee.nodes import WriterTarget
from feaas.stopping import StopSignal
from tests.bench.common import Results, at_most, interleaved, quick_mode, stats
from tests.support.scripts import NAMESPACE, action, script, static

OVERHEAD_US = 200.0


def environment(tmp: Path, stop: StopSignal) -> NodeEnvironment:
    log = logging.getLogger("bench")

    def ctx(_node: str, tmp_dir: Path) -> ActionContext:
        return ActionContext(
            storage=None,
            tmp_dir=tmp_dir,
            cancel=stop.event,  # type: ignore[arg-type]
            log=log,
        )

    def refuse(*_args: object) -> object:
        raise AssertionError("no storage in this benchmark")

    return NodeEnvironment(
        make_context=ctx,
        writer=WriterTarget(NAMESPACE, refuse, refuse),  # type: ignore[arg-type]
        tmp_root=tmp,
    )


def bench_naps(tmp: Path, repeats: int) -> list[float]:
    s = script(
        [static("s", 0.2)] + [action(f"n{i}", "sys.debug.nap") for i in range(8)],
        [f"s:value -> n{i}:seconds" for i in range(8)],
    )
    engine = Engine(Registry(BUILTIN_ACTIONS), concurrency=8)
    graph = engine.prepare(s)
    walls = []
    for _ in range(repeats + 1):
        stop = StopSignal()
        began = time.perf_counter()
        result = engine.run(graph, environment(tmp, stop), stop)
        walls.append(time.perf_counter() - began)
        assert result.success and len(result.receipts) == 8, result.error_message
    return walls[1:]


def chain_script(n: int) -> Any:
    nodes = [action(f"a{i}", "sys.math.add", b=1) for i in range(n)]
    links = ["mainInput:start -> a0:a"] + [f"a{i}:sum -> a{i + 1}:a" for i in range(n - 1)]
    return script(nodes, [*links, f"a{n - 1}:sum -> mainOutput:total"])


def fanout_script(n: int) -> Any:
    nodes = [static("s", 1)] + [action(f"a{i}", "sys.math.add", b=1) for i in range(n)]
    return script(nodes, [f"s:value -> a{i}:a" for i in range(n)] + ["a0:sum -> mainOutput:total"])


def direct_loop(tmp: Path, n: int) -> float:
    """Seconds to call the add action ``n`` times directly."""
    add, ctx = (
        Add(),
        ActionContext(
            storage=None,
            tmp_dir=tmp,
            cancel=threading.Event(),  # type: ignore[arg-type]
            log=logging.getLogger("bench"),
        ),
    )
    began = time.perf_counter()
    total = 0
    for _ in range(n):
        total = add.run(ctx, {"a": total, "b": 1})["sum"]
    assert total == n
    return time.perf_counter() - began


def graph_run(tmp: Path, shape: str, n: int, concurrency: int) -> Callable[[], dict[str, float]]:
    s = chain_script(n) if shape == "chain" else fanout_script(n)
    engine = Engine(Registry(BUILTIN_ACTIONS), concurrency=concurrency)
    began = time.perf_counter()
    graph = engine.prepare(s, max_actions=n)
    validate_s = time.perf_counter() - began
    registers = main_input_registers(s, {"start": 0}) if shape == "chain" else None

    def run() -> dict[str, float]:
        stop = StopSignal()
        began = time.perf_counter()
        result = engine.run(graph, environment(tmp, stop), stop, registers=registers)
        run_s = time.perf_counter() - began
        expected = n if shape == "chain" else 2
        assert result.success and result.output == {"total": expected}, result.error_message
        direct_s = direct_loop(tmp, n)
        return {
            "run_s": run_s,
            "direct_s": direct_s,
            "validate_s": validate_s,
            "items_per_s": n / run_s,
            "overhead_us": (run_s - direct_s) / n * 1e6,
        }

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=0, help="default 5 (quick: 2)")
    args = parser.parse_args(argv)
    quick = quick_mode(argv) or args.quick
    repeats = args.repeats or (2 if quick else 5)
    logging.disable(logging.WARNING)
    results = Results("bench_engine", "Script engine", quick)
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp_name:
        tmp = Path(tmp_name)
        walls = stats([w * 1000 for w in bench_naps(tmp, repeats)])
        results.table(
            "Parallel naps",
            ["graph", "wall ms", "× ideal (200 ms)"],
            [["8 × nap 200 ms, CONCURRENCY=8", walls.text(".0f"), f"{walls.median / 200:.2f}"]],
        )
        results.targets.append(at_most("8 naps of 200 ms at C=8, × ideal", walls.median / 200, 1.5))
        sizes = (500, 5000)
        variants = {
            f"{shape} {n} C={c}": graph_run(tmp, shape, n, c)
            for n in sizes
            for shape, c in (("chain", 1), ("chain", 8), ("fan-out", 8))
        }
        kept = interleaved(variants, repeats)
        results.samples["graphs"] = kept
        rows = []
        series: dict[str, list[list[float]]] = {}
        for name, samples in kept.items():
            per_node = stats([s["run_s"] / int(name.split()[1]) * 1e6 for s in samples])
            over = stats([s["overhead_us"] for s in samples])
            direct = stats([s["direct_s"] / int(name.split()[1]) * 1e6 for s in samples])
            rows.append(
                [
                    name,
                    per_node.text(".0f", " µs"),
                    f"{direct.median:.1f} µs",
                    over.text(".0f", " µs"),
                    f"{samples[0]['validate_s'] * 1000:.0f} ms",
                ]
            )
            shape_c = name.split()[0] + " " + name.split()[2]
            series.setdefault(shape_c, []).append([int(name.split()[1]), per_node.median])
            results.targets.append(at_most(f"engine overhead per node, {name}, µs", over.median, OVERHEAD_US))
        results.table(
            f"Graphs of sys.math.add nodes, one run each, median [min–max] of {repeats}",
            ["graph", "engine µs/node", "direct call", "overhead µs/node", "validate"],
            rows,
        )
        results.plot("graphs", "Engine time per node", "nodes in the graph", "µs per node", series, xlog=True)
    code = results.save()
    return 0 if quick else code


if __name__ == "__main__":
    raise SystemExit(main())
