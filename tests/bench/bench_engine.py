"""Engine benchmarks: ``python -m tests.bench.bench_engine``.

(a) 8 independent 200 ms ``sys.debug.nap`` nodes, CONCURRENCY=8: wall time vs the 200 ms ideal
    (target ≤ 1.5×).
(b) a 5,000-node chain of ``sys.math.add`` through ``Engine.run`` in ONE run, built with the per-run limit
    lifted (``prepare(..., max_actions=5000)``; production keeps 500): engine time per node vs calling the
    action directly in a loop (target: overhead < 200 µs per node). No storage I/O.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path

from feaas.actions.base import ActionContext
from feaas.actions.builtin import BUILTIN_ACTIONS, Add
from feaas.actions.registry import Registry
from feaas.psee.engine import Engine, NodeEnvironment, main_input_registers
from feaas.psee.nodes import WriterTarget
from feaas.stopping import StopSignal
from tests.support.scripts import NAMESPACE, action, script, static

CHAIN = 5_000


def environment(tmp: Path, stop: StopSignal) -> NodeEnvironment:
    log = logging.getLogger("bench")

    def ctx(_node: str, tmp_dir: Path) -> ActionContext:
        return ActionContext(storage=None, tmp_dir=tmp_dir, cancel=stop.event,  # type: ignore[arg-type]
                             log=log)

    def refuse(*_args: object) -> object:
        raise AssertionError("no storage in this benchmark")

    return NodeEnvironment(make_context=ctx,
                           writer=WriterTarget(NAMESPACE, refuse, refuse),  # type: ignore[arg-type]
                           tmp_root=tmp)


def bench_naps(tmp: Path) -> tuple[float, float]:
    s = script([static("s", 0.2)] + [action(f"n{i}", "sys.debug.nap") for i in range(8)],
               [f"s:value -> n{i}:seconds" for i in range(8)])
    engine = Engine(Registry(BUILTIN_ACTIONS), concurrency=8)
    graph = engine.prepare(s)
    best = float("inf")
    for _ in range(3):
        stop = StopSignal()
        began = time.perf_counter()
        result = engine.run(graph, environment(tmp, stop), stop)
        best = min(best, time.perf_counter() - began)
        assert result.success and len(result.receipts) == 8, result.error_message
    return best, 0.2


def chain_script():
    nodes = [action(f"a{i}", "sys.math.add", b=1) for i in range(CHAIN)]
    links = ["mainInput:start -> a0:a"] + [f"a{i}:sum -> a{i + 1}:a" for i in range(CHAIN - 1)]
    return script(nodes, [*links, f"a{CHAIN - 1}:sum -> mainOutput:total"])


def bench_chain(tmp: Path, concurrency: int) -> tuple[float, float, float]:
    """(validate s, run s, direct loop s) for the whole chain."""
    s = chain_script()
    engine = Engine(Registry(BUILTIN_ACTIONS), concurrency=concurrency)
    began = time.perf_counter()
    graph = engine.prepare(s, max_actions=CHAIN)
    validate_s = time.perf_counter() - began
    stop = StopSignal()
    began = time.perf_counter()
    result = engine.run(graph, environment(tmp, stop), stop, registers=main_input_registers(s, {"start": 0}))
    run_s = time.perf_counter() - began
    assert result.success and result.output == {"total": CHAIN}, result.error_message
    add, ctx = Add(), ActionContext(storage=None, tmp_dir=tmp,  # type: ignore[arg-type]
                                    cancel=threading.Event(),
                                    log=logging.getLogger("bench"))
    began = time.perf_counter()
    total = 0
    for _ in range(CHAIN):
        total = add.run(ctx, {"a": total, "b": 1})["sum"]
    direct_s = time.perf_counter() - began
    assert total == CHAIN
    return validate_s, run_s, direct_s


def main() -> int:
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp_name:
        tmp = Path(tmp_name)
        wall, ideal = bench_naps(tmp)
        rows = [("(a) 8 × nap 200 ms, CONCURRENCY=8", f"{wall * 1000:.0f} ms", f"{wall / ideal:.2f}× ideal",
                 "≤ 1.5×", wall / ideal <= 1.5)]
        for concurrency in (1, 8):
            validate_s, run_s, direct_s = bench_chain(tmp, concurrency)
            per_node_us = run_s / CHAIN * 1e6
            overhead_us = (run_s - direct_s) / CHAIN * 1e6
            rows.append((f"(b) {CHAIN}-node add chain, CONCURRENCY={concurrency}",
                         f"{per_node_us:.0f} µs/node (direct {direct_s / CHAIN * 1e6:.1f} µs)",
                         (f"overhead {overhead_us:.0f} µs/node, ratio {run_s / direct_s:.0f}×, "
                          f"validate {validate_s * 1000:.0f} ms"), "< 200 µs", overhead_us < 200))
    width = [max(len(str(r[i])) for r in rows) for i in range(4)]
    print(f"{'benchmark':<{width[0]}}  {'measured':<{width[1]}}  {'figure':<{width[2]}}  target  ok")
    for name, measured, figure, target, ok in rows:
        verdict = "yes" if ok else "NO"
        print(f"{name:<{width[0]}}  {measured:<{width[1]}}  {figure:<{width[2]}}  {target:<6}  {verdict}")
    return 0 if all(r[4] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
