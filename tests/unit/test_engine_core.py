"""The engine without storage: dependency order, values, failures, skips, resume (no I/O)."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from feaas.actions.base import Action, ActionContext, Param
from feaas.actions.builtin import BUILTIN_ACTIONS
from feaas.actions.registry import Registry
from feaas.errors import Cancelled, InvalidScript
from feaas.objects import Parameter, Receipt
from feaas.objects import ParameterType as PT
from feaas.psee.engine import Engine, NodeEnvironment, main_input_registers, supplied_inputs
from feaas.psee.nodes import WriterTarget
from feaas.stopping import StopSignal
from tests.support.scripts import NAMESPACE, NT, action, node, script, static


class Recorder(Action):
    """Records when it ran; returns its input ``x`` as ``y``."""

    id = "test.record"
    inputs = (Param("x", PT.JSON, optional=True),)
    outputs = (Param("y", PT.JSON),)
    log: ClassVar[list[tuple[str, float, float]]] = []

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        began = time.perf_counter()
        time.sleep(0.001)
        Recorder.log.append((threading.current_thread().name, began, time.perf_counter()))
        return {"y": inputs.get("x")}


def make_env(tmp_path: Path, stop: StopSignal, files: dict[str, bytes] | None = None,
             rows: list[tuple[str, Any]] | None = None) -> NodeEnvironment:
    files = files if files is not None else {}
    rows = rows if rows is not None else []

    def ctx(node_id: str, tmp_dir: Path) -> ActionContext:
        return ActionContext(storage=None, tmp_dir=tmp_dir, cancel=stop.event,  # type: ignore[arg-type]
                             log=__import__("logging").getLogger("t"))

    def put(key: str, data: bytes, _ct: str) -> str:
        files[key] = data
        return key

    def append(stream_id: str, row: Any) -> int:
        rows.append((stream_id, row))
        return len(rows)

    return NodeEnvironment(make_context=ctx, writer=WriterTarget(NAMESPACE, put, append), tmp_root=tmp_path)


def run(s, tmp_path, inputs=None, concurrency=4, registers=None, receipts=None, stop=None):
    stop = stop or StopSignal()
    engine = Engine(Registry([*BUILTIN_ACTIONS, Recorder()]), concurrency=concurrency)
    graph = engine.prepare(s, provided_inputs=inputs or {})
    regs = dict(registers or {})
    regs.update(main_input_registers(s, inputs or {}))
    return engine.run(graph, make_env(tmp_path, stop), stop, registers=regs, receipts=receipts)


def test_chain_of_adds_runs_in_dependency_order_whatever_the_list_order(tmp_path):
    # Given nodes listed in reverse of their data flow
    s = script([action("c", "sys.math.add"), action("b", "sys.math.add"), action("a", "sys.math.add")],
               ["mainInput:x -> a:a", "mainInput:y -> a:b", "a:sum -> b:a", "mainInput:y -> b:b",
                "b:sum -> c:a", "mainInput:x -> c:b", "c:sum -> mainOutput:total"])
    # When it runs
    result = run(s, tmp_path, {"x": 2, "y": "3"})
    # Then each add saw its predecessor's sum
    assert result.success, result.error_message
    assert result.output == {"total": 2 + 3 + 3 + 2}
    assert result.registers["a:sum"] == 5 and result.registers["b:sum"] == 8
    assert result.action_count == 3
    assert isinstance(result.registers["a:receipt"], Receipt) and result.registers["a:receipt"].success


def test_static_value_feeds_action_and_ints_stay_ints(tmp_path):
    s = script([static("two", 2), static("half", 0.5), action("add", "sys.math.add"),
                action("addf", "sys.math.add")],
               ["two:value -> add:a", "two:value -> add:b", "two:value -> addf:a", "half:value -> addf:b",
                "add:sum -> mainOutput:i", "addf:sum -> mainOutput:f"])
    result = run(s, tmp_path)
    assert result.output == {"i": 4, "f": 2.5}
    assert isinstance(result.output["i"], int)


def test_failed_action_fails_the_script_and_names_node_and_message(tmp_path):
    s = script([action("boom", "sys.debug.fail", message="disk on fire"), action("after", "sys.math.add")],
               ["boom:nothing -> after:a", "mainInput:x -> after:b"])
    result = run(s, tmp_path, {"x": 1})
    assert not result.success
    assert result.failed_node == "boom"
    assert "boom" in result.error_message and "disk on fire" in result.error_message
    assert result.receipts["boom"].success is False
    assert "after" not in result.receipts  # never started


def test_error_branch_receipt_meta_keeps_script_successful(tmp_path):
    s = script([action("boom", "sys.debug.fail", message="nope"), node("meta", NT.RECEIPT_META)],
               ["boom:receipt -> meta:receipt", "meta:success -> mainOutput:ok",
                "meta:error_message -> mainOutput:why"])
    result = run(s, tmp_path)
    assert result.success, result.error_message
    assert result.output == {"ok": False, "why": "nope"}


def test_conditional_false_skips_node_and_everything_that_only_depends_on_it(tmp_path):
    s = script([static("flag", False), action("maybe", "sys.math.add"),
                action("child", "sys.debug.echo"), action("other", "sys.debug.echo")],
               ["mainInput:x -> maybe:a", "mainInput:x -> maybe:b", "maybe:sum -> child:v",
                "mainInput:x -> other:v", "child:v -> mainOutput:child", "other:v -> mainOutput:other"])
    s.nodes[1].conditional.source, s.nodes[1].conditional.sourceHandle = "flag", "value"
    result = run(s, tmp_path, {"x": 1})
    assert result.success
    assert result.states["maybe"] == "skipped" and result.states["child"] == "skipped"
    assert result.output == {"other": 1}


def test_conditional_true_runs(tmp_path):
    s = script([static("flag", "yes"), action("maybe", "sys.math.add")],
               ["mainInput:x -> maybe:a", "mainInput:x -> maybe:b", "maybe:sum -> mainOutput:s"])
    s.nodes[1].conditional.source, s.nodes[1].conditional.sourceHandle = "flag", "value"
    assert run(s, tmp_path, {"x": 4}).output == {"s": 8}


def test_coalesce_bundler_update_values_ui_feedback(tmp_path):
    s = script([static("empty", ""), static("name", "Ada"), node("co", NT.COALESCE), node("bu", NT.BUNDLER),
                node("uv", NT.UPDATE_VALUES), node("ui", NT.UI_FEEDBACK), action("add", "sys.math.add")],
               ["empty:value -> co:first", "name:value -> co:second", "co:value -> bu:who",
                "add:sum -> bu:sum", "co:value -> uv:name", "add:sum -> ui:total",
                "mainInput:x -> add:a", "mainInput:x -> add:b", "bu:json -> mainOutput:bundle"])
    result = run(s, tmp_path, {"x": 3})
    assert result.success, result.error_message
    assert result.registers["co:value"] == "Ada"
    assert result.output["bundle"] == {"who": "Ada", "sum": 6}
    assert result.registers["uv:update_value:name"] == "Ada"
    assert result.registers["ui:total"] == 6
    assert result.update_values() == {"name": "Ada"}


def test_writer_file_and_stream_stay_in_namespace(tmp_path):
    files: dict[str, bytes] = {}
    rows: list[tuple[str, Any]] = []
    s = script([static("txt", "hello"),
                node("wf", NT.WRITER, dest_prefix=f"{NAMESPACE}out/", dest_extension="md"),
                node("ws", NT.WRITER, dest_destination=2, dest_stream_id=f"{NAMESPACE}mystream")],
               ["txt:value -> wf:data", "txt:value -> ws:data", "wf:key -> mainOutput:key"])
    stop = StopSignal()
    engine = Engine(Registry(BUILTIN_ACTIONS))
    result = engine.run(engine.prepare(s), make_env(tmp_path, stop, files, rows), stop)
    assert result.success, result.error_message
    key = result.output["key"]
    assert key.startswith(f"{NAMESPACE}out/wf-") and key.endswith(".md") and files[key] == b"hello"
    assert rows == [(f"{NAMESPACE}mystream", {"node": "ws", "data": "hello"})]


def test_validation_lists_every_problem_at_once(tmp_path):
    s = script([action("a", "os.system"), action("b", "sys.math.add"), action("c", "sys.math.add"),
                action("d", "sys.math.add")],
               ["ghost:x -> b:a", "b:sum -> nowhere:x", "c:sum -> d:a", "d:sum -> c:a", "mainInput:q -> c:b",
                "mainInput:q -> d:b", "mainInput:r -> d:b"])
    with pytest.raises(InvalidScript) as err:
        run(s, tmp_path)
    text = str(err.value)
    assert "unknown action id 'os.system'" in text
    assert "source 'ghost' is not a node" in text
    assert "target 'nowhere' is not a node" in text
    assert "cycle:" in text and "c" in text and "d" in text
    assert "input d:b is fed by two links" in text
    assert "required input 'b' of sys.math.add has no link and no default" in text  # node b's input b


def test_conversion_failure_names_node_input_and_value(tmp_path):
    s = script([action("nap", "sys.debug.nap")], ["mainInput:s -> nap:seconds"])
    result = run(s, tmp_path, {"s": "soon"})
    assert not result.success
    assert "node 'nap': input 'seconds' expects FLOAT, got 'soon'" in result.receipts["nap"].error_message


def test_independent_actions_run_in_parallel(tmp_path):
    s = script([action(f"n{i}", "sys.debug.nap") for i in range(4)],
               [f"mainInput:s -> n{i}:seconds" for i in range(4)])
    began = time.perf_counter()
    result = run(s, tmp_path, {"s": 0.3}, concurrency=4)
    assert result.success
    assert time.perf_counter() - began < 1.1  # four 0.3 s naps, sequentially 1.2 s


def test_resume_does_not_rerun_successful_receipts(tmp_path):
    Recorder.log.clear()
    s = script([action("first", "test.record"), action("second", "test.record")],
               ["mainInput:x -> first:x", "first:y -> second:x", "second:y -> mainOutput:y"])
    done = run(s, tmp_path, {"x": 7})
    assert len(Recorder.log) == 2
    Recorder.log.clear()
    kept = {"first": done.receipts["first"]}
    again = run(s, tmp_path, {"x": 7}, registers={"first:y": 7}, receipts=kept)
    assert again.output == {"y": 7}
    assert len(Recorder.log) == 1  # only "second" ran


def test_stop_signal_stops_a_running_nap_and_starts_nothing_new(tmp_path):
    stop = StopSignal()
    s = script([action("nap", "sys.debug.nap"), action("after", "sys.debug.echo")],
               ["mainInput:s -> nap:seconds", "nap:message -> after:m"])
    threading.Timer(0.2, stop.stop, args=(Cancelled(),)).start()
    began = time.perf_counter()
    result = run(s, tmp_path, {"s": 30}, stop=stop)
    assert time.perf_counter() - began < 5
    assert isinstance(result.stopped, Cancelled)
    assert "after" not in result.receipts


# --- script inputs: item attribute > input_data > mainInput:{var} register > bare {var} register > default

LEVELS = ("item", "input_data", "main_register", "bare_register", "default")


def resolve(present: tuple[str, ...]) -> dict[str, Any]:
    """Resolve input ``x`` given a value at each level in ``present`` (1 for item … 5 for default)."""
    value = {level: n for n, level in enumerate(LEVELS, start=1)}
    param = Parameter(var_name="x", ptype=PT.INTEGER,
                      idefault=value["default"] if "default" in present else 0)
    s = script([], inputs=[param])
    registers: dict[str, Any] = {}
    if "main_register" in present:
        registers["mainInput:x"] = str(value["main_register"])  # a STRING register converts to INTEGER
    if "bare_register" in present:
        registers["x"] = str(value["bare_register"])
    given = supplied_inputs(s, {"x": value["input_data"]} if "input_data" in present else {}, registers,
                            {"x": value["item"]} if "item" in present else None)
    return main_input_registers(s, given)


@pytest.mark.parametrize("present", [
    *itertools.combinations(LEVELS,
                            2),  # every pair, e.g. item > main_register: a collection run on registers
    LEVELS, LEVELS[1:], LEVELS[2:],  # whole chains
    ("default",),
], ids=lambda present: " > ".join(present))
def test_each_input_source_beats_the_ones_below_it(present):
    # Given a value for input x at each level in `present`, When inputs are resolved,
    # Then the highest level wins, converted to the declared INTEGER
    assert resolve(present)["mainInput:x"] == LEVELS.index(present[0]) + 1


def test_an_input_only_in_the_registers_is_supplied_and_the_script_runs(tmp_path):
    # Given plus-engine's registers (mainInput:{var} and bare {var}) and no input_data
    s = script([action("add", "sys.math.add")], ["mainInput:a -> add:a", "mainInput:b -> add:b",
                                                 "add:sum -> mainOutput:sum"],
               inputs=[Parameter(var_name="a", ptype=PT.INTEGER), Parameter(var_name="b", ptype=PT.INTEGER)])
    registers = {"mainInput:a": 2, "a": 2, "b": "3"}
    given = supplied_inputs(s, {}, registers)
    # When the script is validated and run, Then neither input is missing and both are integers
    result = run(s, tmp_path, given, registers=registers)
    assert result.success, result.error_message
    assert result.output == {"sum": 5}


def test_without_any_source_a_required_input_is_still_reported(tmp_path):
    s = script([], inputs=[Parameter(var_name="x", ptype=PT.INTEGER)])
    with pytest.raises(InvalidScript, match="script input 'x' is required and has no value or default"):
        run(s, tmp_path, supplied_inputs(s, {}, {"y": 1, "other:x": 2}))


def test_registers_of_undeclared_names_are_not_inputs():
    s = script([], inputs=[Parameter(var_name="x")])
    assert supplied_inputs(s, {"q": 1}, {"mainInput:y": 2, "z": 3, "n:x": 4}) == {"q": 1}


def test_a_register_that_cannot_convert_names_the_input_and_value():
    s = script([], inputs=[Parameter(var_name="x", ptype=PT.INTEGER, idefault=9)])
    with pytest.raises(InvalidScript, match="script input 'x' expects INTEGER, got 'many'"):
        main_input_registers(s, supplied_inputs(s, {}, {"x": "many"}))
