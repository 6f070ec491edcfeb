"""The executor: takes ready nodes from the scheduler and runs them; observers watch through hooks.

ACTION nodes run on a thread pool (up to ``concurrency`` at once); every other node type is cheap
and runs on the loop's thread. With ``concurrency == 1`` actions run inline too (no thread hop),
which is what per-item runs over large collections use.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from feaas.actions.base import ActionContext
from feaas.actions.registry import Registry
from feaas.errors import InvalidScript, NamespaceViolation, StorageError
from feaas.objects import PlusScript, PlusScriptNode, PlusScriptNodeType, Receipt, ptype_name
from feaas.psee.graph import MAIN_INPUT, MAX_ACTION_NODES, Graph, Scheduler, build_graph
from feaas.psee.invoke import run_action
from feaas.psee.nodes import HANDLERS, WriterTarget
from feaas.psee.values import (
    ConversionError,
    convert,
    from_any,
    parameter_default,
    truthy,
)
from feaas.resources import DEFAULT_MAX_VALUE_MB, human_size, value_size
from feaas.stopping import StopSignal
from feaas.text import describe

NT = PlusScriptNodeType
logger = logging.getLogger(__name__)


class NodeState(enum.StrEnum):
    """What became of a node in a run (``RunResult.states``); RESUMED only reaches the hooks: a
    resumed node's state is DONE."""

    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    RESUMED = "resumed"


class EngineHooks(Protocol):
    """Observers of a run. ``before_node`` is called on the thread that runs the node, right before
    it runs (never for skipped or resumed nodes); ``after_node`` once for each node that ran, was
    skipped or was resumed."""

    def before_node(self, node_id: str, node: PlusScriptNode) -> None: ...

    def after_node(self, node_id: str, node: PlusScriptNode, outcome: NodeState, receipt: Receipt | None,
                   duration_s: float) -> None: ...


@dataclass
class RunResult:
    registers: dict[str, Any]
    receipts: dict[str, Receipt]
    output: dict[str, Any]
    action_count: int = 0
    error_message: str = ""
    failed_node: str | None = None
    stopped: BaseException | None = None
    states: dict[str, NodeState] = field(default_factory=dict)
    #: register → its size (:func:`value_size`), kept as values are stored
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return not self.error_message and self.stopped is None

    def update_values(self) -> dict[str, Any]:
        """``{var: value}`` from every UPDATE_VALUES node that ran."""
        marker = ":update_value:"
        return {name.split(marker, 1)[1]: value for name, value in self.registers.items() if marker in name}


@dataclass
class NodeEnvironment:
    """What nodes may touch: the action context factory and where WRITER nodes write."""

    make_context: Callable[[str, Path], ActionContext]
    writer: WriterTarget
    tmp_root: Path | None = None


#: Always holds the job's user (STRING), as the upstream worker sets it (SPEC §8.1).
USERNAME_REGISTER = "username"


def supplied_inputs(
    script: PlusScript,
    input_data: Mapping[str, Any],
    registers: Mapping[str, Any] | None = None,
    item: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The script inputs a run was given, highest precedence first (SPEC §8.1): the item's attribute
    (runs over many items) > ``input_data`` > a pre-filled ``mainInput:{var}`` register > a pre-filled
    bare ``{var}`` register. The input's default comes last, in :func:`main_input_registers`.

    plus-engine's ``start_script`` writes each declared input into both registers before it launches
    the task, often with no ``input_data``; only declared inputs are looked up there.
    """
    registers = registers or {}
    prefilled: dict[str, Any] = {}
    for param in script.inputs:
        name = param.var_name
        if not name:
            continue
        for register in (f"{MAIN_INPUT}:{name}", name):
            if register in registers:
                prefilled[name] = registers[register]
                break
    return {**prefilled, **input_data, **(item or {})}


def main_input_registers(script: PlusScript, given: Mapping[str, Any]) -> dict[str, Any]:
    """``mainInput:{var}`` registers: given values (see :func:`supplied_inputs`) converted to
    declared ptypes, else defaults. Raises :class:`InvalidScript` naming the input and value."""
    registers = {f"{MAIN_INPUT}:{k}": v for k, v in given.items()}
    for param in script.inputs:
        name = param.var_name
        if not name:
            continue
        if name in given:
            try:
                registers[f"{MAIN_INPUT}:{name}"] = convert(given[name], param.ptype)
            except ConversionError as exc:
                raise InvalidScript(
                    f"script input {name!r} expects {ptype_name(param.ptype)}, "
                    f"got {describe(given[name])} ({exc})"
                ) from None
        else:
            has, default = parameter_default(param)
            if has:
                try:
                    registers[f"{MAIN_INPUT}:{name}"] = convert(default, param.ptype)
                except ConversionError as exc:
                    raise InvalidScript(
                        f"script input {name!r}: default {describe(default)} is not "
                        f"{ptype_name(param.ptype)} ({exc})"
                    ) from None
    return registers


class ValueTooLarge(ValueError):
    """A node would produce a value over the size limit (``MAX_VALUE_MB``)."""


def too_large_message(size: int, limit: int, what: str = "") -> str:
    return f"produced {human_size(size)}{what} (limit {human_size(limit)})"


class Engine:
    def __init__(
        self,
        registry: Registry,
        *,
        concurrency: int = 8,
        hooks: Iterable[EngineHooks] = (),
        max_value_bytes: int = DEFAULT_MAX_VALUE_MB << 20,
    ) -> None:
        self.registry = registry
        self.concurrency = max(1, concurrency)
        self.hooks = list(hooks)
        self.max_value_bytes = max_value_bytes

    def lookup(self, action_id: str) -> Any:
        return self.registry.get(action_id) if action_id in self.registry else None

    def prepare(
        self, script: PlusScript, provided_inputs: Iterable[str] = (), *, max_actions: int = MAX_ACTION_NODES
    ) -> Graph:
        """Validate once; raises :class:`InvalidScript` listing every problem."""
        return build_graph(script, self.lookup, provided_inputs, max_actions=max_actions)

    def run(
        self,
        graph: Graph,
        env: NodeEnvironment,
        stop: StopSignal,
        *,
        registers: Mapping[str, Any] | None = None,
        receipts: Mapping[str, Receipt] | None = None,
    ) -> RunResult:
        """Run every node once in dependency order. Existing successful receipts are not re-run.

        At most ``concurrency`` actions are started at a time; once the run fails or is stopped,
        nothing new starts (queued actions never run) and the loop only drains what is running.
        """
        result = RunResult(registers=dict(registers or {}), receipts=dict(receipts or {}), output={})
        scheduler = Scheduler(graph)
        queue: deque[str] = deque()  # ready action nodes waiting for a free slot
        pool = (
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="node") if self.concurrency > 1 else None
        )
        running: dict[Future[tuple[Receipt, dict[str, Any]]], tuple[str, float]] = {}
        try:
            while scheduler.is_active():
                if not (stop.stopped or result.error_message):
                    ready = scheduler.get_ready()
                    if ready:
                        for nid in ready:
                            self._start(nid, graph, env, result, scheduler, queue)
                        continue  # nodes run inline may have made more nodes ready
                    if queue and len(running) < self.concurrency:
                        nid = queue.popleft()
                        # The only runnable action with nothing in flight (a chain, say) runs on this
                        # thread: nothing else can become ready before it ends, so a pool hop buys nothing.
                        if pool is None or (not running and not queue):
                            began = time.perf_counter()
                            receipt, outputs = self._call(nid, graph, env, self._inputs(nid, graph, result))
                            self._finish_action(
                                nid, graph, result, receipt, outputs, time.perf_counter() - began
                            )
                            scheduler.done(nid)
                        else:
                            future = pool.submit(
                                self._call, nid, graph, env, self._inputs(nid, graph, result)
                            )
                            running[future] = (nid, time.perf_counter())
                        continue
                if not running:
                    break  # stopped or failed, and nothing left in flight
                finished, _ = wait(running, timeout=None, return_when=FIRST_COMPLETED)
                for future in finished:
                    nid, began = running.pop(future)
                    receipt, outputs = future.result()
                    self._finish_action(nid, graph, result, receipt, outputs, time.perf_counter() - began)
                    scheduler.done(nid)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        result.stopped = stop.reason
        result.output = {
            handle: result.registers[edge.register]
            for handle, edge in graph.outputs.items()
            if edge.register in result.registers
        }
        return result

    def _inputs(self, nid: str, graph: Graph, result: RunResult) -> dict[str, Any]:
        registers = result.registers
        return {
            handle: registers[edge.register]
            for handle, edge in graph.incoming[nid].items()
            if edge.register in registers
        }

    def _call(
        self, nid: str, graph: Graph, env: NodeEnvironment, inputs: dict[str, Any]
    ) -> tuple[Receipt, dict[str, Any]]:
        """Run one action node (on a pool thread, or inline when ``concurrency == 1``)."""
        node = graph.nodes[nid]
        self._notify_before(nid, node)  # here, not when queued: the action starts now (issue 11 §5)
        params = {p.var_name: p for p in node.inputs if p.var_name}
        return run_action(
            nid, self.registry.get(node.action_id), inputs, params, env.make_context, env.tmp_root,
            max_value_bytes=self.max_value_bytes,
        )

    def _start(
        self,
        nid: str,
        graph: Graph,
        env: NodeEnvironment,
        result: RunResult,
        scheduler: Scheduler,
        queue: deque[str],
    ) -> None:
        """Skip, resume or queue one ready node; every other node type runs here, inline."""
        node = graph.nodes[nid]
        if self._skipped(nid, node, graph, result):
            result.states[nid] = NodeState.SKIPPED
            self._notify_after(nid, node, NodeState.SKIPPED, None, 0.0)
            scheduler.done(nid)
            return
        if node.ntype == NT.ACTION:
            previous = result.receipts.get(nid)
            if previous is not None and previous.success:  # resume: done in an earlier attempt
                self._finish_action(nid, graph, result, previous, None, 0.0, resumed=True)
                scheduler.done(nid)
            else:
                queue.append(nid)  # before_node fires when it actually starts, in _call
            return
        self._notify_before(nid, node)
        began = time.perf_counter()
        try:
            inputs = self._inputs(nid, graph, result)
            if node.ntype == NT.BUNDLER:  # its JSON holds every input: refuse before building it
                self._check_size(self._inputs_size(nid, graph, result))
            produced = HANDLERS[node.ntype](node, inputs, env.writer)
            sizes = {name: value_size(value) for name, value in produced.items()}
            for size in sizes.values():
                self._check_size(size)
        except ValueTooLarge as exc:
            self._fail_inline(nid, node, result, scheduler, f"node {nid!r} {exc}", began)
            return
        except (NamespaceViolation, StorageError, ValueError, TypeError) as exc:
            self._fail_inline(nid, node, result, scheduler, f"node {nid!r} failed: {exc}", began)
            return
        for name, value in produced.items():
            result.registers[f"{nid}:{name}"] = value
            result.sizes[f"{nid}:{name}"] = sizes[name]
        result.states[nid] = NodeState.DONE
        self._notify_after(nid, node, NodeState.DONE, None, time.perf_counter() - began)
        scheduler.done(nid)

    def _fail_inline(self, nid: str, node: PlusScriptNode, result: RunResult, scheduler: Scheduler,
                     message: str, began: float) -> None:
        result.states[nid] = NodeState.FAILED
        result.failed_node = nid
        result.error_message = message
        self._notify_after(nid, node, NodeState.FAILED, None, time.perf_counter() - began)
        scheduler.done(nid)

    def _check_size(self, size: int) -> None:
        if size > self.max_value_bytes:
            raise ValueTooLarge(too_large_message(size, self.max_value_bytes))

    def _inputs_size(self, nid: str, graph: Graph, result: RunResult) -> int:
        """The sum of the sizes of ``nid``'s inputs, from the sizes stored with the registers."""
        total = 2
        for handle, edge in graph.incoming[nid].items():
            if edge.register not in result.registers:
                continue
            size = result.sizes.get(edge.register)
            if size is None:  # a register given to the run (resume, pre-filled input)
                size = result.sizes[edge.register] = value_size(result.registers[edge.register])
            total += len(handle) + 4 + size
        return total

    def _finish_action(
        self,
        nid: str,
        graph: Graph,
        result: RunResult,
        receipt: Receipt,
        outputs: Mapping[str, Any] | None,
        duration_s: float,
        *,
        resumed: bool = False,
    ) -> None:
        node = graph.nodes[nid]
        result.receipts[nid] = receipt
        result.registers[f"{nid}:receipt"] = receipt
        if receipt.success:
            if outputs is None:  # resumed: outputs come back from the receipt
                outputs = {k: from_any(v) for k, v in receipt.outputs.items()}
            for name, value in outputs.items():
                result.registers[f"{nid}:{name}"] = value
                result.sizes[f"{nid}:{name}"] = value_size(value)
            result.states[nid] = NodeState.DONE
            if not resumed:
                result.action_count += 1
        else:
            result.action_count += 1
            result.states[nid] = NodeState.FAILED
            if nid not in graph.error_branches and not result.error_message:
                result.failed_node = nid
                result.error_message = f"node {nid!r} ({node.action_id}) failed: {receipt.error_message}"
        self._notify_after(
            nid, node, NodeState.RESUMED if resumed else result.states[nid], receipt, duration_s
        )

    def _skipped(self, nid: str, node: PlusScriptNode, graph: Graph, result: RunResult) -> bool:
        states = result.states
        if node.HasField("conditional"):
            src, handle = node.conditional.source, node.conditional.sourceHandle
            if src != MAIN_INPUT and states.get(src) is not NodeState.DONE and handle != "receipt":
                return True
            if not truthy(result.registers.get(f"{src}:{handle}")):
                return True
        feeding = [e for e in graph.incoming[nid].values() if e.source != MAIN_INPUT]
        if not feeding:
            return False
        # skipped when every node that feeds it is skipped, or failed without feeding its receipt
        return all(
            states.get(e.source) is NodeState.SKIPPED
            or (states.get(e.source) is NodeState.FAILED and e.source_handle != "receipt")
            for e in feeding
        )

    def _notify_before(self, nid: str, node: PlusScriptNode) -> None:
        for hook in self.hooks:
            hook.before_node(nid, node)

    def _notify_after(
        self, nid: str, node: PlusScriptNode, outcome: NodeState, receipt: Receipt | None, duration_s: float
    ) -> None:
        for hook in self.hooks:
            hook.after_node(nid, node, outcome, receipt, duration_s)
