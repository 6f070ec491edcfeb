"""Fuzzing with hypothesis: any message survives the DynamoDB item form; any graph a user can draw
either runs or is refused — never a crash — in the engine and through the real worker."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feaas.actions.registry import Registry
from feaas.dao.codec import from_dynamo, message_to_plain, parse_message, to_dynamo
from feaas.errors import InvalidScript
from feaas.objects import Link, PlusScript, PlusScriptJob, PlusScriptNode
from feaas.psee.engine import Engine, main_input_registers
from feaas.stopping import StopSignal
from src.actions import default_registry
from tests.support.scripts import job_item
from tests.unit.test_engine_core import make_env

F = FieldDescriptor
_SCALARS: dict[int, Any] = {
    F.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    F.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    F.TYPE_DOUBLE: st.floats(allow_nan=False, allow_infinity=False),
    F.TYPE_FLOAT: st.floats(allow_nan=False, allow_infinity=False, width=32),
    F.TYPE_BOOL: st.booleans(),
    F.TYPE_STRING: st.text(max_size=12),
    F.TYPE_BYTES: st.binary(max_size=12),
}


def messages(descriptor: Any, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Random messages of any type in objs.proto, as keyword dicts (nesting bounded)."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is not None and depth >= 2:
                continue
            fields[field.name] = st.dictionaries(st.text(max_size=6), _value(value_field, depth), max_size=2)
        elif field.message_type is not None:
            if depth >= 2 or field.message_type.full_name.startswith("google.protobuf."):
                continue
            inner = messages(field.message_type, depth + 1)
            fields[field.name] = st.lists(inner, max_size=2) if field.is_repeated else inner
        else:
            scalar = _value(field, depth)
            fields[field.name] = st.lists(scalar, max_size=3) if field.is_repeated else scalar
    return st.fixed_dictionaries({}, optional=fields)


def _value(field: Any, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None:
        return messages(field.message_type, depth + 1)
    if field.enum_type is not None:
        return st.sampled_from([v.number for v in field.enum_type.values])
    return _SCALARS[field.type]


def build(cls: Any, data: dict[str, Any]) -> Any:
    msg = cls()
    for name, value in data.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        target = getattr(msg, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_type = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                if value_type.message_type is not None:
                    target[k].CopyFrom(build(value_type.message_type._concrete_class, v))
                else:
                    target[k] = v
        elif field.message_type is not None:
            klass = field.message_type._concrete_class
            if field.is_repeated:
                target.extend(build(klass, v) for v in value)
            else:
                target.CopyFrom(build(klass, value))
        elif field.is_repeated:
            target.extend(value)
        else:
            setattr(msg, name, value)
    return msg


@settings(max_examples=150, deadline=None)
@given(messages(PlusScriptJob.DESCRIPTOR))
def test_any_job_message_round_trips_through_the_dynamodb_item_form(data):
    job = build(PlusScriptJob, data)
    item = to_dynamo(message_to_plain(job))
    assert parse_message(from_dynamo(item), PlusScriptJob()) == job


REGISTRY = default_registry()
IDS = [a.id for a in REGISTRY.actions()] + ["os.system", "", "sys.debug", "vendor.ffmpeg.probe.Probe"]
HANDLES = ["a", "b", "value", "sum", "text", "receipt", "key", "seconds", "json"]


@st.composite
def drawn_scripts(draw):
    """What an editor could produce: any node types, any links (maybe dangling or cyclic)."""
    count = draw(st.integers(0, 10))
    ids = [f"n{i}" for i in range(count)]
    nodes = []
    for nid in ids:
        ntype = draw(st.integers(0, 11))  # 11 is not a node type
        node = PlusScriptNode(ntype=ntype, unique_id=draw(st.sampled_from([nid, nid, "", "mainInput"])))
        if ntype == 1:
            node.action_id = draw(st.sampled_from(IDS))
        if draw(st.booleans()):
            node.inputs.add(var_name=draw(st.sampled_from(HANDLES)),
                            sdefault=draw(st.sampled_from(["1", "x", ""])))
        if ntype == 1 and node.action_id == "sys.debug.nap":
            node.inputs.add(var_name="seconds", sdefault="0")
        nodes.append(node)
    ends = [*ids, "mainInput", "mainOutput", "ghost"]
    links = [Link(source=draw(st.sampled_from(ends)), sourceHandle=draw(st.sampled_from(HANDLES)),
                  target=draw(st.sampled_from(ends)), targetHandle=draw(st.sampled_from(HANDLES)))
             for _ in range(draw(st.integers(0, 14)))]
    return PlusScript(nodes=nodes, links=links)


SAFE = Registry([a for a in REGISTRY.actions() if a.id.startswith(("sys.debug", "sys.math", "sys.text"))])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn_scripts(),
       st.dictionaries(st.sampled_from(HANDLES), st.one_of(st.integers(), st.text(max_size=5))))
def test_random_graphs_run_or_are_refused_never_crash_in_the_engine(tmp_path, s, inputs):
    engine = Engine(SAFE, concurrency=3)
    try:
        graph = engine.prepare(s, provided_inputs=inputs)
        registers = main_input_registers(s, inputs)
    except InvalidScript as exc:
        assert str(exc).startswith("invalid script")
        return
    stop = StopSignal()
    result = engine.run(graph, make_env(tmp_path, stop), stop, registers=registers)
    assert result.success or result.error_message  # a verdict either way
    assert set(result.states) <= set(graph.nodes)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn_scripts())
def test_random_graphs_through_the_real_worker_never_crash(put_job, run_worker, report, s):
    run = run_worker(put_job(job_item(s, input_data={"a": 1, "b": 2})))
    report.add(bad_inputs_tried=1)
    assert run.code in (0, 1), run.stdout[-1500:] + run.stderr[-1500:]
    assert run.job["status"] in ("SUCCEEDED", "FAILED")
    assert "Traceback" not in run.stdout + run.stderr
    if run.job["status"] == "FAILED":
        assert run.job["error_message"]
    report.add(bad_inputs_handled=1)
