"""Properties of the scheduler and executor over random scripts (hypothesis)."""

from __future__ import annotations

import itertools
import threading
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feaas.actions.base import Action, ActionContext
from feaas.actions.builtin import BUILTIN_ACTIONS
from feaas.actions.registry import Registry
from feaas.errors import InvalidScript
from feaas.psee.engine import Engine
from feaas.psee.graph import build_graph
from feaas.stopping import StopSignal
from tests.support.scripts import NT, action, node, script, static
from tests.unit.test_engine_core import make_env

KINDS = ("echo", "add", "static", "coalesce")
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


class Logged(Action):
    """Echo that records the order in which nodes ran (the node id is its ``me`` input)."""

    id = "test.logged_echo"
    accepts_any_inputs = True
    order: ClassVar[list[str]] = []
    lock = threading.Lock()

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        with Logged.lock:
            Logged.order.append(inputs["me"])
        return {"v": inputs.get("a", 0), "me": inputs["me"]}


@st.composite
def dags(draw):
    """A random DAG: node i only reads from nodes < i, so it has no cycle by construction."""
    count = draw(st.integers(1, 18))
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(count)]
    feeds = []
    for i in range(count):
        sources = draw(st.lists(st.integers(0, i - 1), max_size=2, unique=True)) if i else []
        feeds.append(sources)
    values = [draw(st.integers(-1000, 1000)) for _ in range(count)]
    return kinds, feeds, values


def build(kinds, feeds, values):
    """Turn the drawn DAG into a script; ``register[i]`` is where node i's number ends up."""
    nodes, links, register = [], [], {}
    for i, (kind, sources, value) in enumerate(zip(kinds, feeds, values, strict=True)):
        nid, given = f"n{i}", [register[s] for s in sources]
        if kind == "static" or (kind in ("add", "coalesce") and not sources):
            nodes.append(static(nid, value, out="out"))
            register[i] = f"{nid}:out"
        elif kind == "echo":
            nodes.append(action(nid, "test.logged_echo", me=nid))
            links += [f"{reg} -> {nid}:{'a' if k == 0 else f'b{k}'}" for k, reg in enumerate(given)]
            register[i] = f"{nid}:v"
        elif kind == "add":
            nodes.append(action(nid, "sys.math.add", b=value))
            links += [f"{given[0]} -> {nid}:a"] + ([f"{given[1]} -> {nid}:b"] if len(given) > 1 else [])
            register[i] = f"{nid}:sum"
        else:
            nodes.append(node(nid, NT.COALESCE))
            links += [f"{reg} -> {nid}:in{k}" for k, reg in enumerate(given)]
            register[i] = f"{nid}:value"
    links += [f"{register[i]} -> mainOutput:n{i}" for i in range(len(kinds))]
    return script(nodes, links)


def reference(kinds, feeds, values) -> dict[str, Any]:
    """What each node's number must be, computed sequentially in index order."""
    out: dict[int, Any] = {}
    for i, (kind, sources, value) in enumerate(zip(kinds, feeds, values, strict=True)):
        given = [out[s] for s in sources]
        if kind == "static" or (kind in ("add", "coalesce") and not sources):
            out[i] = value
        elif kind == "echo":
            out[i] = given[0] if given else 0
        elif kind == "add":
            out[i] = given[0] + (given[1] if len(given) > 1 else value)
        else:
            out[i] = next((g for g in given if g is not None and g != ""), None)
    return {f"n{i}": v for i, v in out.items()}


def run_once(s, tmp_path, concurrency):
    Logged.order.clear()
    stop = StopSignal()
    engine = Engine(Registry([*BUILTIN_ACTIONS, Logged()]), concurrency=concurrency)
    seen: list[str] = []

    class Order:
        def before_node(self, node_id, _node):
            seen.append(node_id)

        def after_node(self, node_id, *_):
            seen.append("/" + node_id)

    engine.hooks.append(Order())
    result = engine.run(engine.prepare(s), make_env(tmp_path, stop), stop)
    return result, seen


@SETTINGS
@given(dags())
def test_every_node_runs_once_after_its_inputs_and_matches_a_sequential_run(tmp_path, dag):
    kinds, feeds, values = dag
    s = build(kinds, feeds, values)
    expected = reference(kinds, feeds, values)
    graph = build_graph(s, Registry([*BUILTIN_ACTIONS, Logged()]).get)
    outputs = {}
    for concurrency in (1, 8):
        result, seen = run_once(s, tmp_path, concurrency)
        assert result.success, result.error_message
        # exactly once: each node started once and finished once
        starts = [n for n in seen if not n.startswith("/")]
        assert sorted(starts) == sorted(graph.nodes)
        assert sorted(n[1:] for n in seen if n.startswith("/")) == sorted(graph.nodes)
        logged = sorted(n for n in graph.nodes if graph.nodes[n].action_id == "test.logged_echo")
        assert sorted(Logged.order) == logged
        # after its inputs: every source finished before the node started
        finished_at = {n[1:]: i for i, n in enumerate(seen) if n.startswith("/")}
        started_at = {n: i for i, n in enumerate(seen) if not n.startswith("/")}
        for nid, sources in graph.deps.items():
            for src in sources:
                assert finished_at[src] < started_at[nid], (src, nid)
        outputs[concurrency] = result.output
    assert outputs[1] == outputs[8] == expected


@st.composite
def cyclic(draw):
    """A random DAG plus links closing one cycle through ``k`` nodes."""
    count = draw(st.integers(2, 14))
    members = draw(st.lists(st.integers(0, count - 1), min_size=2, max_size=count, unique=True))
    extra = draw(st.lists(st.tuples(st.integers(0, count - 1), st.integers(0, count - 1)), max_size=10))
    return count, members, [(a, b) for a, b in extra if a < b]


@SETTINGS
@given(cyclic())
def test_a_cycle_is_always_refused_naming_its_nodes(data):
    count, members, extra = data
    nodes = [action(f"c{i}", "sys.debug.echo") for i in range(count)]
    links = [f"c{a}:v{a}_{b} -> c{b}:from_{a}" for a, b in extra]
    ring = members + members[:1]
    links += [f"c{a}:ring -> c{b}:ring_in" for a, b in itertools.pairwise(ring)]
    s = script(nodes, links)
    with pytest.raises(InvalidScript) as err:
        build_graph(s, Registry(BUILTIN_ACTIONS).get)
    text = str(err.value)
    assert "cycle: " in text
    cycle = text.split("cycle: ", 1)[1].split(";")[0].split(" → ")
    assert cycle[0] == cycle[-1] and len(cycle) >= 3
    named = set(cycle)
    # the reported cycle is a real cycle of the script: consecutive nodes are linked in data-flow order
    edges = {(f"c{a}", f"c{b}") for a, b in [*extra, *itertools.pairwise(ring)]}
    assert all((a, b) in edges for a, b in itertools.pairwise(cycle))
    assert named <= {f"c{i}" for i in range(count)}
