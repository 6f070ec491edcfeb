"""Each non-action node handler on its own (SPEC §5.1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from feaas.errors import NamespaceViolation
from feaas.objects import AnyType, DestinationType, Parameter, PlusScriptNode, Receipt
from feaas.objects import ParameterType as PT
from feaas.psee.nodes import HANDLERS, WriterTarget
from feaas.psee.values import to_any
from tests.support.scripts import NAMESPACE, NT


class Target:
    """A WriterTarget that records what it was asked to write and checks the namespace like the real one."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.rows: list[tuple[str, Any]] = []

    def put(self, key: str, data: bytes, content_type: str) -> str:
        if not key.startswith(NAMESPACE):
            raise NamespaceViolation(f"key {key!r} is outside your namespace")
        self.files[key] = (data, content_type)
        return key

    def append(self, stream_id: str, row: Any) -> int:
        self.rows.append((stream_id, row))
        return 1764633600000

    @property
    def target(self) -> WriterTarget:
        return WriterTarget(NAMESPACE, self.put, self.append)


def run(ntype: int, given: dict[str, Any] | None = None, target: Target | None = None, **fields: Any) -> dict:
    node = PlusScriptNode(ntype=ntype, unique_id="n", **fields)
    return HANDLERS[ntype](node, given or {}, (target or Target()).target)


def test_every_non_action_type_has_a_handler():
    assert set(HANDLERS) == set(NT.values()) - {NT.ACTION}


def test_static_value_goes_to_first_output_var_or_value():
    assert run(NT.STATIC, value=to_any(5), outputs=[Parameter(var_name="count")]) == {"count": 5}
    assert run(NT.STATIC, value=AnyType(ptype=PT.JSON, sval='{"a": 1}')) == {"value": {"a": 1}}


def test_coalesce_first_non_empty_in_declared_order():
    node_inputs = [Parameter(var_name=n) for n in ("first", "second", "third")]
    out = run(NT.COALESCE, {"third": "c", "second": "b", "first": ""}, inputs=node_inputs)
    assert out == {"value": "b"}
    assert run(NT.COALESCE, {"a": None, "b": [], "c": 0}) == {"value": 0}
    assert run(NT.COALESCE, {"a": None}) == {"value": None}


def test_bundler_makes_one_json_object():
    receipt = Receipt(success=True)
    out = run(NT.BUNDLER, {"name": "Ada", "n": 2, "raw": b"x", "r": receipt})
    assert out == {"json": {"name": "Ada", "n": 2, "raw": "x", "r": {"success": True}}}


def test_receipt_meta_splits_a_receipt():
    receipt = Receipt(success=False, error_message="boom")
    assert run(NT.RECEIPT_META, {"receipt": receipt}) == {"success": False, "error_message": "boom",
                                                          "outputs": {}}
    ok = Receipt(success=True)
    ok.outputs["sum"].CopyFrom(to_any(3))
    assert run(NT.RECEIPT_META, {"receipt": ok}) == {"success": True, "error_message": "",
                                                     "outputs": {"sum": 3}}


def test_receipt_meta_without_a_receipt_reports_it():
    assert run(NT.RECEIPT_META, {"receipt": "not one"})["error_message"] == "no receipt"


def test_update_values_and_ui_feedback_registers():
    assert run(NT.UPDATE_VALUES, {"title": "x", "n": 1}) == {"update_value:title": "x", "update_value:n": 1}
    assert run(NT.UI_FEEDBACK, {"msg": "done"}) == {"msg": "done"}


@pytest.mark.parametrize("ntype", [NT.TEST, NT.INPUT, NT.OUTPUT])
def test_test_input_output_are_no_ops(ntype):
    assert run(ntype, {"x": 1}) == {}


@pytest.mark.parametrize("value, data, content_type, ext", [
    ("hello", b"hello", "text/plain; charset=utf-8", "txt"),
    (b"\x00\x01", b"\x00\x01", "application/octet-stream", "bin"),
    ({"a": [1]}, b'{"a": [1]}', "application/json", "json"),
])
def test_writer_file_picks_payload_and_extension(value, data, content_type, ext):
    t = Target()
    out = run(NT.WRITER, {"data": value}, t, dest_prefix=f"{NAMESPACE}out")
    key = out["key"]
    assert key.startswith(f"{NAMESPACE}out/n-") and key.endswith(f".{ext}")
    assert t.files[key] == (data, content_type)


def test_writer_file_defaults_inside_namespace_and_uses_extension():
    t = Target()
    key = run(NT.WRITER, {"a": 1, "b": "two"}, t, dest_extension=".ndjson")["key"]
    assert key.startswith(f"{NAMESPACE}writer/n-") and key.endswith(".ndjson")
    assert json.loads(t.files[key][0]) == {"a": 1, "b": "two"}


def test_writer_outside_namespace_raises():
    with pytest.raises(NamespaceViolation):
        run(NT.WRITER, {"data": "x"}, dest_prefix="plus_example_com/bob@example.com/")


def test_writer_stream_appends_a_row():
    t = Target()
    out = run(NT.WRITER, {"data": {"v": 1}}, t, dest_destination=DestinationType.STREAM,
              dest_stream_id=f"{NAMESPACE}s1")
    assert out == {"key": f"{NAMESPACE}s1", "timestamp": 1764633600000}
    assert t.rows == [(f"{NAMESPACE}s1", {"node": "n", "data": {"v": 1}})]
    default = run(NT.WRITER, {"data": 1}, t, dest_destination=DestinationType.STREAM)
    assert default["key"] == f"{NAMESPACE}stream-n"
