"""AnyType ⇄ Python and conversion to declared ptypes (SPEC §3.2), every ptype in use."""

from __future__ import annotations

import json

import pytest
from google.protobuf import struct_pb2

from feaas.objects import AnyType, Parameter, Receipt
from feaas.objects import ParameterType as PT
from feaas.psee.values import ConversionError, convert, from_any, is_empty, parameter_default, to_any, truthy

TEXT_PTYPES = [PT.STRING, PT.KEY, PT.PREFIX, PT.FIXED_LIST_SINGLE_SELECT, PT.URL, PT.OBJECT_ID, PT.USERNAME,
               PT.HOSTNAME]


@pytest.mark.parametrize("ptype", TEXT_PTYPES)
def test_text_like_ptypes_read_sval(ptype):
    assert from_any(AnyType(ptype=ptype, sval="plus_example_com/a")) == "plus_example_com/a"


@pytest.mark.parametrize("any_value, expected", [
    (AnyType(ptype=PT.BOOLEAN, bval=True), True),
    (AnyType(ptype=PT.BOOLEAN), False),
    (AnyType(ptype=PT.INTEGER, ival=-5), -5),
    (AnyType(ptype=PT.DATETIME, ival=1764633600), 1764633600),
    (AnyType(ptype=PT.FLOAT, dval=2.5), 2.5),
    (AnyType(ptype=PT.LIST, svals=["a", "b"]), ["a", "b"]),
    (AnyType(ptype=PT.FIXED_LIST_MULTI_SELECT, svals=["x"]), ["x"]),
    (AnyType(ptype=PT.STRING_MAP, smap={"k": "v"}), {"k": "v"}),
    (AnyType(ptype=PT.BYTES, byval=b"\x00\xff"), b"\x00\xff"),
    (AnyType(ptype=PT.JSON, sval='{"a": [1, 2.5, null]}'), {"a": [1, 2.5, None]}),
    (AnyType(ptype=PT.ANY_TYPE_MAP, vmap={"n": AnyType(ptype=PT.INTEGER, ival=3)}), {"n": 3}),
])
def test_from_any_reads_the_field_of_each_ptype(any_value, expected):
    value = from_any(any_value)
    assert value == expected and type(value) is type(expected)


def test_json_reads_json_data_when_sval_is_empty():
    data = struct_pb2.Struct()
    data.update({"name": "Ada", "tags": ["x"]})
    assert from_any(AnyType(ptype=PT.JSON, json_data=data)) == {"name": "Ada", "tags": ["x"]}


def test_json_that_does_not_parse_is_kept_as_text():
    assert from_any(AnyType(ptype=PT.JSON, sval="{not json")) == "{not json"


def test_receipt_is_parsed_from_byval():
    receipt = Receipt(success=True, primary_output="sum")
    receipt.outputs["sum"].CopyFrom(AnyType(ptype=PT.INTEGER, ival=4))
    value = from_any(AnyType(ptype=PT.RECEIPT, byval=receipt.SerializeToString()))
    assert isinstance(value, Receipt) and value == receipt


@pytest.mark.parametrize("unknown", [99, 147, 5000])
def test_unknown_ptypes_read_as_strings(unknown):
    assert from_any(AnyType(ptype=unknown, sval="kept")) == "kept"
    assert convert(12, unknown) == "12"


@pytest.mark.parametrize("any_value, expected", [
    (AnyType(ival=7), 7),
    (AnyType(bval=True), True),
    (AnyType(dval=1.5), 1.5),
    (AnyType(svals=["a"]), ["a"]),
    (AnyType(smap={"a": "b"}), {"a": "b"}),
    (AnyType(byval=b"raw"), b"raw"),
    (AnyType(vals=[AnyType(ptype=PT.INTEGER, ival=1), AnyType(sval="two")]), [1, "two"]),
    (AnyType(sval="text"), "text"),
    (AnyType(), ""),
])
def test_untyped_anytype_reads_whichever_field_is_populated(any_value, expected):
    assert from_any(any_value) == expected


@pytest.mark.parametrize("value", [
    True, False, 0, -42, 2**62, 3.25, "", "héllo", b"\x01\x02", ["a", "b"], {"k": "v"},
    {"n": 1, "nested": {"x": [1, None]}}, [1, 2, 3], [], {}, None, [{"a": 1}],
])
def test_python_round_trips_through_anytype(value):
    back = from_any(to_any(value))
    assert back == value and type(back) is type(value)


@pytest.mark.parametrize("value, ptype", [
    (True, PT.BOOLEAN), (5, PT.INTEGER), (0.5, PT.FLOAT), ("s", PT.STRING), (b"b", PT.BYTES),
    (["a"], PT.LIST), ({"a": "b"}, PT.STRING_MAP), ({"a": 1}, PT.JSON), ([1], PT.JSON), (None, PT.JSON),
    (2**70, PT.JSON),
])
def test_to_any_picks_the_ptype_by_value_bool_before_int(value, ptype):
    assert to_any(value).ptype == ptype


def test_to_any_receipt_and_huge_int():
    receipt = Receipt(success=False, error_message="x")
    assert from_any(to_any(receipt)) == receipt
    assert from_any(to_any(2**70)) == 2**70


@pytest.mark.parametrize("value, ptype, expected", [
    ("5", PT.INTEGER, 5), (" 5 ", PT.INTEGER, 5), ("1e3", PT.INTEGER, 1000), (7.0, PT.INTEGER, 7),
    ("1764633600", PT.DATETIME, 1764633600),
    ("2.5", PT.FLOAT, 2.5), (3, PT.FLOAT, 3.0),
    ("true", PT.BOOLEAN, True), ("No", PT.BOOLEAN, False), (1, PT.BOOLEAN, True), ("", PT.BOOLEAN, False),
    (5, PT.STRING, "5"), (b"abc", PT.STRING, "abc"), ({"a": 1}, PT.STRING, '{"a": 1}'),
    (True, PT.KEY, "true"),
    ("one", PT.LIST, ["one"]), ('["a", 2]', PT.LIST, ["a", "2"]),
    ([1, "b"], PT.FIXED_LIST_MULTI_SELECT, ["1", "b"]),
    ('{"a": 1}', PT.STRING_MAP, {"a": "1"}), ({"a": "b"}, PT.STRING_MAP, {"a": "b"}),
    ('{"a": [1]}', PT.JSON, {"a": [1]}), ("5", PT.JSON, 5), ({"a": b"x"}, PT.JSON, {"a": "x"}),
    ("text", PT.BYTES, b"text"), (b"\x00", PT.BYTES, b"\x00"),
    ('{"n": {"m": 1}}', PT.ANY_TYPE_MAP, {"n": {"m": 1}}),
])
def test_convert_to_declared_ptype(value, ptype, expected):
    converted = convert(value, ptype)
    assert converted == expected and type(converted) is type(expected)


def test_convert_receipt_from_receipt_or_bytes():
    receipt = Receipt(success=True)
    assert convert(receipt, PT.RECEIPT) is receipt
    assert convert(receipt.SerializeToString(), PT.RECEIPT) == receipt


@pytest.mark.parametrize("value, ptype, why", [
    ("soon", PT.INTEGER, "not a number"),
    ("5.5", PT.INTEGER, "not a whole number"),
    (True, PT.INTEGER, "a boolean is not an integer"),
    (None, PT.INTEGER, "NoneType is not an integer"),
    ([1], PT.FLOAT, "list is not a number"),
    ("inf", PT.FLOAT, "not a finite number"),
    ("maybe", PT.BOOLEAN, "not a boolean"),
    (2, PT.BOOLEAN, "not a boolean"),
    ("{broken", PT.JSON, "not valid JSON"),
    ("[1, 2", PT.LIST, "not valid JSON"),
    (5, PT.LIST, "int is not a list"),
    ("[1]", PT.STRING_MAP, "list is not a map"),
    (5, PT.BYTES, "int is not bytes"),
    ("x", PT.RECEIPT, "str is not a receipt"),
    (b"\xff\xfe\xfd", PT.RECEIPT, "not a serialised receipt"),
    (b"\xff", PT.STRING, "not UTF-8"),
    ("[]", PT.ANY_TYPE_MAP, "list is not a map"),
])
def test_conversion_failures_say_why(value, ptype, why):
    with pytest.raises(ConversionError) as err:
        convert(value, ptype)
    assert why in str(err.value)


def test_conversion_error_is_a_value_error():
    assert issubclass(ConversionError, ValueError)


@pytest.mark.parametrize("value, expected", [
    ("", False), ("false", False), (" OFF ", False), ("0", False), ("no", False), ("none", False),
    ("yes", True), ("anything", True), (0, False), (1, True), ([], False), ([0], True), (None, False),
    (Receipt(success=True), True), (Receipt(success=False), False),
])
def test_truthy_for_conditionals(value, expected):
    assert truthy(value) is expected


@pytest.mark.parametrize("value, empty", [
    (None, True), ("", True), ([], True), ({}, True), (b"", True), (0, False), (False, False), (" ", False),
])
def test_is_empty_for_coalesce(value, empty):
    assert is_empty(value) is empty


@pytest.mark.parametrize("param, expected", [
    (Parameter(ptype=PT.INTEGER, idefault=5), (True, 5)),
    (Parameter(ptype=PT.INTEGER), (False, None)),
    (Parameter(ptype=PT.INTEGER, sdefault="0"), (True, "0")),
    (Parameter(ptype=PT.FLOAT, ddefault=0.5), (True, 0.5)),
    (Parameter(ptype=PT.BOOLEAN), (True, False)),
    (Parameter(ptype=PT.BOOLEAN, sdefault="true"), (True, True)),
    (Parameter(ptype=PT.STRING, sdefault="hi"), (True, "hi")),
    (Parameter(ptype=PT.STRING), (False, None)),
])
def test_parameter_defaults(param, expected):
    assert parameter_default(param) == expected


def test_json_output_is_stored_as_json_text():
    assert json.loads(to_any({"a": [1, {"b": None}]}).sval) == {"a": [1, {"b": None}]}
