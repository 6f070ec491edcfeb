"""Bounded values and the task's memory budget (issue 13 §1, §3; SPEC §8.3)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from feaas.actions.base import ActionContext, ActionFailed
from feaas.actions.builtin import BUILTIN_ACTIONS, Format
from feaas.actions.registry import Registry
from feaas.objects import Parameter
from feaas.objects import ParameterType as PT
from feaas.psee.engine import Engine, main_input_registers
from feaas.resources import WORKER_RESERVE_MB, cgroup_limit_bytes, child_memory_mb, human_size, value_size
from feaas.stopping import StopSignal
from tests.support.scripts import NT, action, node, script, static
from tests.unit.test_engine_core import make_env, run


def _ctx(limit: int = 16 << 20) -> ActionContext:
    return ActionContext(storage=None, tmp_dir=None, cancel=threading.Event(),  # type: ignore[arg-type]
                         log=logging.getLogger("t"), max_value_bytes=limit)


def test_a_format_blow_up_is_refused_before_the_text_is_built():
    # 270 KB of template, each field within the per-field width: together about 3 GB of text
    with pytest.raises(ActionFailed, match=r"the text would be up to 2\.\d GB \(limit 16 MB\)"):
        Format().run(_ctx(), {"template": "{x:99999}" * 30000, "values": {"x": 1}})


def test_a_format_bound_counts_long_values_once_per_use():
    values = {"s": "y" * 100_000}
    with pytest.raises(ActionFailed, match="limit 1 MB"):
        Format().run(_ctx(1 << 20), {"template": "{s}" * 20, "values": values})
    assert Format().run(_ctx(1 << 20), {"template": "{s}", "values": values})["text"] == values["s"]


def test_a_bundler_chain_fails_at_the_node_that_goes_over(tmp_path):
    # Given 29 BUNDLERs, each fed the previous one's JSON twice, starting from 1 KB
    nodes = [static("s", "x" * 1000)] + [node(f"b{i}", NT.BUNDLER) for i in range(29)]
    links = ["s:value -> b0:a", "s:value -> b0:b"]
    links += [f"b{i - 1}:json -> b{i}:{h}" for i in range(1, 29) for h in ("a", "b")]
    # When it runs
    result = run(script(nodes, [*links, "b28:json -> mainOutput:out"]), tmp_path)
    # Then the first BUNDLER over 16 MB fails with its size; nothing after it ran
    assert result.failed_node == "b14"
    assert result.error_message == "node 'b14' produced 31.7 MB (limit 16 MB)"
    assert "b15" not in {n for n, s in result.states.items() if s.value == "done"}


def test_an_action_output_over_the_limit_fails_its_node(tmp_path):
    # Given an action whose output (1.2 MB of text) is over a 1 MB limit
    s = script([action("fmt", "sys.text.format", template="{s}{s}{s}")], ["mainInput:v -> fmt:values"])
    s.inputs.append(Parameter(var_name="v", ptype=PT.JSON))
    engine = Engine(Registry(list(BUILTIN_ACTIONS)), max_value_bytes=1 << 20)
    graph = engine.prepare(s, provided_inputs={"v": 1})
    stop = StopSignal()
    registers = main_input_registers(s, {"v": {"s": "z" * 400_000}})
    # When it runs
    result = engine.run(graph, make_env(tmp_path, stop), stop, registers=registers)
    # Then the node failed naming the output and its size, and no register holds the text
    assert result.failed_node == "fmt"
    assert result.error_message == "node 'fmt' (sys.text.format) failed: output 'text' is 1.1 MB (limit 1 MB)"
    assert not result.receipts["fmt"].success and "fmt:text" not in result.registers


def test_value_size_counts_shared_parts_without_walking_them_again():
    leaf = {"k": "x" * 1000}
    value: object = leaf
    for _ in range(60):  # 2**60 copies of the leaf if it were expanded
        value = {"a": value, "b": value}
    assert value_size(value) > 1 << 60


def test_human_size():
    assert human_size(16 << 20) == "16 MB"
    assert human_size(int(1.2 * (1 << 30))) == "1.2 GB"
    assert human_size(512) == "512 bytes"


def _fake_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_cgroup_v1_limit_is_the_tightest_of_the_own_group_and_its_parents(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("9:name=systemd:/\n4:memory:/task/trial\n0::/\n")
    _fake_tree(tmp_path / "fs", {"memory/task/trial/memory.limit_in_bytes": str(600 << 20),
                                 "memory/task/memory.limit_in_bytes": str(900 << 20),
                                 "memory/memory.limit_in_bytes": "9223372036854771712"})
    assert cgroup_limit_bytes(proc, tmp_path / "fs") == 600 << 20


def test_cgroup_v2_limit_and_no_limit(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("0::/ecs/task\n")
    _fake_tree(tmp_path / "fs", {"ecs/task/memory.max": str(2048 << 20), "memory.max": "max"})
    assert cgroup_limit_bytes(proc, tmp_path / "fs") == 2048 << 20
    _fake_tree(tmp_path / "fs", {"ecs/task/memory.max": "max"})
    assert cgroup_limit_bytes(proc, tmp_path / "fs") is None


def test_cgroup_v2_limit_on_a_hybrid_host_is_read_under_unified(tmp_path):
    # memory bound to cgroup2 mounted at /sys/fs/cgroup/unified, v1 hierarchies beside it
    proc = tmp_path / "cgroup"
    proc.write_text("9:name=systemd:/task\n4:pids:/task\n0::/task\n")
    _fake_tree(tmp_path / "fs", {"unified/task/memory.max": str(1024 << 20), "unified/memory.max": "max"})
    assert cgroup_limit_bytes(proc, tmp_path / "fs") == 1024 << 20


def test_children_share_the_budget_minus_the_workers_reserve():
    assert child_memory_mb(1024) == (1024 - WORKER_RESERVE_MB) // 2
    assert child_memory_mb(100) == 64  # never below the floor


def test_value_size_of_deeply_nested_values_does_not_recurse() -> None:
    # Given a value nested far deeper than Python's recursion limit (the engine allows 512 levels)
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    # Then its size is measured (2 brackets per level, 1 separator per child)
    assert value_size(deep) == 2 + 5000 * 3
    assert value_size({"a": [1, {"b": "cc"}]}) == 2 + (1 + 4) + (2 + (8 + 1) + (2 + (1 + 4) + 4) + 1)
