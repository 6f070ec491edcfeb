"""Engine rules found missing while finishing Issue 3 (each test failed before its fix)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from feaas.actions.base import ActionContext
from feaas.actions.builtin import BUILTIN_ACTIONS, Format
from feaas.actions.registry import Registry
from feaas.errors import Cancelled, InvalidScript
from feaas.objects import Parameter
from feaas.objects import ParameterType as PT
from feaas.psee.engine import Engine, main_input_registers
from feaas.psee.graph import MAX_PROBLEMS_SHOWN, build_graph
from feaas.psee.invoke import MAX_ERROR_CHARS
from feaas.stopping import StopSignal
from tests.support.scripts import NT, action, node, script, static
from tests.unit.test_engine_core import Recorder, make_env, run


def test_after_a_failure_queued_actions_never_start(tmp_path):
    # Given one failing action and ten independent slow ones, two slots
    Recorder.log.clear()
    nodes = [action("boom", "sys.debug.fail")] + [action(f"r{i}", "test.record") for i in range(10)]
    s = script(nodes + [static("slow", 0.3)] + [action(f"n{i}", "sys.debug.nap") for i in range(10)],
               [f"slow:value -> n{i}:seconds" for i in range(10)])
    # When it runs with concurrency 2
    result = run(s, tmp_path, concurrency=2)
    # Then the run failed and at most the one action that shared the first slots ran
    assert result.failed_node == "boom"
    started = [n for n in result.receipts if n != "boom"]
    assert len(started) <= 1, started


def test_a_stop_starts_nothing_queued(tmp_path):
    stop = StopSignal()
    s = script([static("s", 0.3)] + [action(f"n{i}", "sys.debug.nap") for i in range(8)],
               [f"s:value -> n{i}:seconds" for i in range(8)])
    threading.Timer(0.1, stop.stop, args=(Cancelled(),)).start()
    result = run(s, tmp_path, concurrency=2, stop=stop)
    assert isinstance(result.stopped, Cancelled)
    assert len(result.receipts) == 2  # the two in flight, stopped early; the six queued never began


def test_concurrency_is_never_exceeded(tmp_path):
    active, peak, lock = [0], [0], threading.Lock()

    class Busy(Recorder):
        id = "test.busy"

        def run(self, ctx: ActionContext, inputs):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.02)
            with lock:
                active[0] -= 1
            return {"y": 1}

    stop = StopSignal()
    engine = Engine(Registry([*BUILTIN_ACTIONS, Busy()]), concurrency=3)
    s = script([action(f"b{i}", "test.busy") for i in range(12)])
    result = engine.run(engine.prepare(s), make_env(tmp_path, stop), stop)
    assert result.success and len(result.receipts) == 12
    assert peak[0] == 3


def test_conditional_true_but_every_feeder_skipped_is_skipped(tmp_path):
    s = script([static("no", False), static("yes", True), action("a", "sys.math.add"),
                action("b", "sys.debug.echo")],
               ["mainInput:x -> a:a", "mainInput:x -> a:b", "a:sum -> b:v"])
    s.nodes[2].conditional.source, s.nodes[2].conditional.sourceHandle = "no", "value"
    s.nodes[3].conditional.source, s.nodes[3].conditional.sourceHandle = "yes", "value"
    result = run(s, tmp_path, {"x": 1})
    assert result.success, result.error_message
    assert result.states["a"] == "skipped" and result.states["b"] == "skipped"


def test_conditional_on_main_input(tmp_path):
    s = script([action("a", "sys.math.add")], ["mainInput:x -> a:a", "mainInput:x -> a:b"],
               inputs=[Parameter(var_name="go", ptype=PT.BOOLEAN), Parameter(var_name="x", ptype=PT.INTEGER)])
    s.nodes[0].conditional.source, s.nodes[0].conditional.sourceHandle = "mainInput", "go"
    assert run(s, tmp_path, {"x": 2, "go": "false"}).states["a"] == "skipped"
    assert run(s, tmp_path, {"x": 2, "go": True}).registers["a:sum"] == 4


def test_a_bad_script_input_default_is_an_invalid_script_not_a_crash():
    s = script([], inputs=[Parameter(var_name="n", ptype=PT.INTEGER, sdefault="many")])
    with pytest.raises(InvalidScript, match="script input 'n': default 'many' is not INTEGER"):
        main_input_registers(s, {})


def test_a_bad_script_input_value_is_an_invalid_script():
    s = script([], inputs=[Parameter(var_name="n", ptype=PT.INTEGER)])
    with pytest.raises(InvalidScript, match="script input 'n' expects INTEGER, got 'x'"):
        main_input_registers(s, {"n": "x"})


def test_thousands_of_problems_give_a_bounded_message():
    s = script([action(f"a{i}", "os.system") for i in range(400)])
    with pytest.raises(InvalidScript) as err:
        build_graph(s, lambda _id: None)
    text = str(err.value)
    assert text.count("unknown action id") == MAX_PROBLEMS_SHOWN
    assert text.endswith(f"… and {400 - MAX_PROBLEMS_SHOWN} more") and len(text) < 10_000


def test_action_limit_is_500_and_can_be_lifted_for_benchmarks():
    s = script([action(f"a{i}", "sys.debug.echo") for i in range(501)])
    registry = Registry(BUILTIN_ACTIONS)
    with pytest.raises(InvalidScript, match="the script has 501 actions; the limit is 500"):
        Engine(registry).prepare(s)
    assert len(Engine(registry).prepare(s, max_actions=1000).action_nodes) == 501
    assert len(Engine(registry).prepare(script([action(f"a{i}", "sys.debug.echo") for i in range(500)]))
               .action_nodes) == 500


def test_a_huge_failure_message_is_cut(tmp_path):
    s = script([action("boom", "sys.debug.fail")], ["mainInput:m -> boom:message"])
    result = run(s, tmp_path, {"m": "x" * 100_000})
    message = result.receipts["boom"].error_message
    assert len(message) < MAX_ERROR_CHARS + 100 and message.endswith("(98000 more characters)")


@pytest.mark.parametrize("template, why", [
    ("{x:>999999999}", "width or precision above"),
    ("{x:.5000000f}", "width or precision above"),
    ("{d:>5}", "invalid template"),  # a dict takes no format spec
    ("{x.__class__}", "must be a plain name"),
    ("{0}", "must be a plain name"),
    ("{missing}", "has no value"),
    ("{x", "invalid template"),
])
def test_format_refuses_unsafe_or_broken_templates(template, why):
    from feaas.actions.base import ActionFailed

    ctx = ActionContext(storage=None, tmp_dir=None, cancel=threading.Event(),  # type: ignore[arg-type]
                        log=logging.getLogger("t"))
    with pytest.raises(ActionFailed, match=why):
        Format().run(ctx, {"template": template, "values": {"x": 1.5, "d": {"a": 1}}})


def test_format_fills_plain_fields():
    ctx = ActionContext(storage=None, tmp_dir=None, cancel=threading.Event(),  # type: ignore[arg-type]
                        log=logging.getLogger("t"))
    out = Format().run(ctx, {"template": "{name}: {n:>4} {x!r}", "values": {"name": "Ada", "n": 7, "x": "q"}})
    assert out == {"text": "Ada:    7 'q'"}


def test_post_phase_nodes_run_after_every_action(tmp_path):
    order: list[str] = []

    class Hook:
        def before_node(self, node_id, node):
            order.append(node_id)

        def after_node(self, *args):
            pass

    stop = StopSignal()
    engine = Engine(Registry(BUILTIN_ACTIONS), concurrency=4, hooks=[Hook()])
    s = script([node("uv", NT.UPDATE_VALUES), node("ui", NT.UI_FEEDBACK), static("s", 0.05),
                action("n1", "sys.debug.nap"), action("n2", "sys.debug.nap")],
               ["s:value -> uv:secs", "s:value -> n1:seconds", "s:value -> n2:seconds", "n1:message -> ui:m"])
    result = engine.run(engine.prepare(s), make_env(tmp_path, stop), stop)
    assert result.success, result.error_message
    assert order.index("uv") > max(order.index("n1"), order.index("n2"))
    assert result.registers["uv:update_value:secs"] == 0.05 and result.registers["ui:m"] == "slept 0.05 s"


def test_every_action_gets_an_empty_work_dir_and_leftovers_are_removed(tmp_path):
    from feaas.actions.base import Action

    seen: list[tuple[str, list[str]]] = []

    class Scribble(Action):
        id = "test.scribble"
        accepts_any_inputs = True

        def run(self, ctx: ActionContext, inputs):
            seen.append((str(ctx.tmp_dir), sorted(p.name for p in ctx.tmp_dir.iterdir())))
            if inputs.get("write"):
                (ctx.tmp_dir / "left.bin").write_bytes(b"x")
            return {}

    stop = StopSignal()
    engine = Engine(Registry([*BUILTIN_ACTIONS, Scribble()]), concurrency=1)
    s = script([action(f"s{i}", "test.scribble", write="yes" if i % 2 else "") for i in range(6)],
               [f"s{i}:done -> s{i + 1}:after" for i in range(5)])
    result = engine.run(engine.prepare(s), make_env(tmp_path, stop), stop)
    assert result.success, result.error_message
    assert [files for _, files in seen] == [[]] * 6  # never sees another action's files
    assert not list(tmp_path.rglob("left.bin"))  # a dirty directory is removed, not reused


class Timeline:
    """Engine hook recording ``start:<node>`` / ``end:<node>`` and the thread each start ran on."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.start_threads: dict[str, str] = {}

    def before_node(self, node_id, _node):
        self.start_threads[node_id] = threading.current_thread().name
        self.events.append(f"start:{node_id}")

    def after_node(self, node_id, *_):
        self.events.append(f"end:{node_id}")


def test_a_queued_action_is_announced_when_it_starts_not_when_it_is_queued(tmp_path):
    # Given two independent naps, both ready at once, and one slot (issue 11 §5)
    timeline = Timeline()
    stop = StopSignal()
    engine = Engine(Registry(BUILTIN_ACTIONS), concurrency=1, hooks=[timeline])
    s = script([static("s", 0.01), action("a", "sys.debug.nap"), action("b", "sys.debug.nap")],
               ["s:value -> a:seconds", "s:value -> b:seconds"])
    # When it runs
    result = engine.run(engine.prepare(s), make_env(tmp_path, stop), stop)
    # Then the second nap starts only after the first one ended
    assert result.success, result.error_message
    naps = [e for e in timeline.events if e.endswith((":a", ":b"))]
    first, second = naps[0].split(":")[1], "b" if naps[0].endswith(":a") else "a"
    assert naps == [f"start:{first}", f"end:{first}", f"start:{second}", f"end:{second}"]


def test_before_node_runs_on_the_thread_that_runs_the_action(tmp_path):
    # Given two independent actions and two slots (so they run on the pool)
    Recorder.log.clear()
    timeline = Timeline()
    stop = StopSignal()
    engine = Engine(Registry([*BUILTIN_ACTIONS, Recorder()]), concurrency=2, hooks=[timeline])
    s = script([action("r1", "test.record"), action("r2", "test.record")], [])
    # When it runs
    result = engine.run(engine.prepare(s), make_env(tmp_path, stop), stop)
    # Then each start was announced on a pool thread, the threads the actions ran on
    assert result.success, result.error_message
    assert all(name.startswith("node") for name in timeline.start_threads.values()), timeline.start_threads
    assert set(timeline.start_threads.values()) <= {name for name, _, _ in Recorder.log}


def test_a_resumed_or_skipped_action_is_not_announced_as_started(tmp_path):
    from feaas.objects import Receipt

    timeline = Timeline()
    stop = StopSignal()
    engine = Engine(Registry([*BUILTIN_ACTIONS, Recorder()]), concurrency=1, hooks=[timeline])
    s = script([action("done", "test.record"), action("fresh", "test.record")], ["done:y -> fresh:x"])
    graph = engine.prepare(s)
    result = engine.run(graph, make_env(tmp_path, stop), stop, receipts={"done": Receipt(success=True)})
    assert result.success, result.error_message
    assert timeline.events == ["end:done", "start:fresh", "end:fresh"]
