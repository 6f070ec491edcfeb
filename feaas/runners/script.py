"""RUN_SCRIPT (the job's script once) and RUN_ACTION (one action as a one-node script)."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from feaas.dao.offload import JobValues
from feaas.errors import InvalidScript, JobFailed
from feaas.jobs import JobStatus, Progress
from feaas.jobs.document import input_data
from feaas.logs import event
from feaas.objects import Link, PlusScript, PlusScriptNode, PlusScriptNodeType, Receipt
from feaas.psee.engine import USERNAME_REGISTER, Engine, NodeState, main_input_registers, supplied_inputs
from feaas.psee.graph import MAIN_INPUT
from feaas.psee.values import from_any_map, parse_json_text, to_any_map
from feaas.runners.context import Outcome, RunContext
from feaas.stopping import StopSignal

logger = logging.getLogger(__name__)
ACTION_NODE = "action"


class ScriptProgress:
    """Engine hook: logs each node, counts finished actions into ``percent``, and hands the
    registers and receipts to the heartbeat so a crashed run resumes where it was."""

    def __init__(self, progress: Progress, total_actions: int, values: JobValues, done_before: int,
                 stop: StopSignal) -> None:
        self.progress = progress
        self.total = max(1, total_actions)
        self.values = values
        self.finished = done_before
        self.stop = stop
        self.registers: dict[str, Any] = {}
        self.receipts: dict[str, Receipt] = {}
        self.partial: dict[str, float] = {}  # running node → fraction it reported (long encodes)
        self._lock = threading.Lock()

    def _percent(self) -> float:
        done = self.finished + sum(self.partial.values())
        return round(100.0 * min(done, self.total) / self.total, 2)

    def action_progress(self, node_id: str, fraction: float) -> None:
        """An action's own progress (0–1), counted as that share of one node (thread-safe)."""
        with self._lock:
            self.partial[node_id] = min(1.0, max(0.0, float(fraction)))
            percent = self._percent()
        self.progress.update(percent=percent)

    def before_node(self, node_id: str, node: PlusScriptNode) -> None:
        if node.ntype == PlusScriptNodeType.ACTION:
            event(logger, "node_started", node=node_id, action_id=node.action_id)

    def after_node(self, node_id: str, node: PlusScriptNode, outcome: NodeState, receipt: Receipt | None,
                   duration_s: float) -> None:
        if node.ntype != PlusScriptNodeType.ACTION:
            return
        fields: dict[str, Any] = {"node": node_id, "action_id": node.action_id, "outcome": outcome,
                                  "duration_ms": round(duration_s * 1000, 1)}
        if receipt is not None and not receipt.success:
            fields["error"] = receipt.error_message
        event(
            logger,
            "node_finished",
            level=logging.INFO if outcome is not NodeState.FAILED else logging.WARNING,
            **fields,
        )
        if receipt is None or outcome is NodeState.RESUMED:
            return
        with self._lock:
            self.partial.pop(node_id, None)
            stopped_midway = not receipt.success and self.stop.stopped  # will run again on resume
            if not stopped_midway:
                self.finished += 1
            self.receipts[node_id] = receipt
            percent = self._percent()
        self.progress.update(percent=percent, **self.values.encode(receipts=self.receipts))


def run_script(
    ctx: RunContext,
    script: PlusScript | None = None,
    main_inputs: dict[str, Any] | None = None,
    output_from: str | None = None,
) -> Outcome:
    """Run ``script`` (default: the job's) once and describe the result for the job document."""
    script = script if script is not None else ctx.job.script
    if main_inputs is None:
        main_inputs = input_data(ctx.job_doc)
    values = ctx.job_values()
    stored_registers, receipts = values.decode(ctx.job_doc, ctx.job)
    registers = from_any_map(stored_registers)
    main_inputs = supplied_inputs(script, main_inputs, registers)
    engine = Engine(ctx.registry, concurrency=ctx.settings.concurrency,
                    max_value_bytes=ctx.settings.max_value_mb << 20)
    graph = engine.prepare(script, provided_inputs=main_inputs)
    registers.update(main_input_registers(script, main_inputs))
    registers[USERNAME_REGISTER] = ctx.settings.username
    resumed = sum(1 for n in graph.action_nodes if n in receipts and receipts[n].success)
    hook = ScriptProgress(ctx.progress, len(graph.action_nodes), values, resumed, ctx.stop)
    hook.receipts.update(receipts)
    engine.hooks.append(hook)
    ctx.action_progress = hook.action_progress
    started = time.perf_counter()
    result = engine.run(graph, ctx.node_environment(), ctx.stop, registers=registers, receipts=receipts)
    event(
        logger,
        "script_finished",
        success=result.success,
        actions_run=result.action_count,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    output = result.output
    if output_from is not None:  # RUN_ACTION: every output of the one action
        receipt = result.receipts.get(output_from)
        output = {}
        if receipt is not None and receipt.success:
            output = {name: result.registers[f"{output_from}:{name}"] for name in receipt.outputs}
    attrs = values.encode(
        registers=to_any_map(result.registers), receipts=result.receipts, output=to_any_map(output)
    )
    attrs.update(action_count=len(result.receipts), iteration=int(ctx.job.iteration) + 1)
    if result.stopped is not None:
        return Outcome(JobStatus.FAILED, "", attrs, stopped=result.stopped)
    if not result.success:
        return Outcome(JobStatus.FAILED, result.error_message, attrs)
    attrs["percent"] = 100
    return Outcome(JobStatus.SUCCEEDED, "", attrs)


def action_inputs(ctx: RunContext) -> dict[str, Any]:
    """``ACTION_INPUT_JSON`` as a map of inputs; bad JSON or another shape is a JobFailed."""
    try:
        inputs = parse_json_text(ctx.settings.action_input_json or "{}")
    except ValueError as exc:
        if str(exc).startswith("nested"):
            raise JobFailed(f"ACTION_INPUT_JSON is {exc}") from None
        raise JobFailed(f"ACTION_INPUT_JSON is not valid JSON: {exc}") from None
    if not isinstance(inputs, dict):
        raise JobFailed(f"ACTION_INPUT_JSON must be a JSON object, got {type(inputs).__name__}")
    try:  # JSON escapes can spell lone surrogates ("\ud800"), which no storage accepts as text
        json.dumps(inputs, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise JobFailed(
            "ACTION_INPUT_JSON is not valid Unicode text: it contains a lone surrogate escape such as \\ud800"
        ) from None
    return inputs


def run_action(ctx: RunContext) -> Outcome:
    """RUN_ACTION: ``ACTION_ID`` with ``ACTION_INPUT_JSON``, recorded like a one-node script."""
    inputs = action_inputs(ctx)
    action_id = ctx.settings.action_id or ""
    if action_id not in ctx.registry:
        raise InvalidScript(f"invalid script: unknown action id {action_id!r}")
    script = PlusScript(
        nodes=[PlusScriptNode(ntype=PlusScriptNodeType.ACTION, unique_id=ACTION_NODE, action_id=action_id)]
    )
    for name in inputs:
        script.links.append(Link(source=MAIN_INPUT, sourceHandle=name, target=ACTION_NODE, targetHandle=name))
    return run_script(ctx, script, inputs, output_from=ACTION_NODE)
