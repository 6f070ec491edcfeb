"""Job documents in both accepted forms, Decimals, bytes, unknown fields (SPEC §3)."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feaas.dao.codec import CodecError, from_dynamo, message_to_plain, parse_message, plain, to_dynamo
from feaas.objects import AnyType, ParameterType, PlusScriptJob, PlusScriptStatus


def test_strings_and_enum_names_parse():
    job = parse_message({"status": "RUNNING", "created_at": "1764633600", "action_count": "3",
                         "registers": {"r": {"ptype": "INTEGER", "ival": "5"}},
                         "script": {"nodes": [{"ntype": "ACTION", "unique_id": "n"}],
                                    "links": [{"source": "a", "sourceHandle": "x", "target": "n",
                                               "targetHandle": "y"}]}},
                        PlusScriptJob())
    assert job.status == PlusScriptStatus.RUNNING and job.created_at == 1764633600 and job.action_count == 3
    assert job.registers["r"].ival == 5 and job.script.links[0].sourceHandle == "x"


def test_numbers_and_decimals_parse():
    job = parse_message(plain({"status": Decimal(1), "created_at": Decimal(1764633600),
                               "percent": Decimal("12.5"),
                               "registers": {"r": {"ptype": Decimal(2), "ival": Decimal(5)}}}),
                               PlusScriptJob())
    assert job.status == PlusScriptStatus.RUNNING and job.percent == 12.5
    assert job.registers["r"].ptype == ParameterType.INTEGER


def test_absent_fields_are_defaults_and_unknown_fields_are_ignored():
    job = parse_message({"object_id": "x", "job_type": "singleton", "input_data": {"a": 1}, "brand_new": [1]},
                        PlusScriptJob())
    assert job.status == PlusScriptStatus.INITIALIZING
    assert job.request_cancel is False and job.object_id == "x"


def test_unknown_enum_name_does_not_crash():
    job = parse_message({"registers": {"r": {"ptype": "FUTURE_TYPE", "sval": "s"}}}, PlusScriptJob())
    assert job.registers["r"].sval == "s" and job.registers["r"].ptype == ParameterType.STRING


def test_bytes_as_base64_and_as_binary():
    raw = b"\x00\xffdata"
    a = parse_message({"ptype": "BYTES", "byval": base64.b64encode(raw).decode()}, AnyType())
    b = parse_message(from_dynamo({"ptype": {"S": "BYTES"}, "byval": {"B": raw}}), AnyType())
    assert a.byval == raw == b.byval


def test_wrong_shapes_raise_codec_error_naming_the_field():
    with pytest.raises(CodecError, match="script"):
        parse_message({"script": "not a map"}, PlusScriptJob())
    with pytest.raises(CodecError):
        parse_message({"created_at": "yesterday"}, PlusScriptJob())


def test_dynamo_round_trip_of_plain_values():
    values = {"i": 5, "f": 2.5, "s": "x", "b": True, "n": None, "l": [1, "a"], "m": {"k": 1.25},
              "by": b"\x01"}
    assert from_dynamo(to_dynamo(values)) == values


anytypes = st.builds(
    AnyType,
    ptype=st.sampled_from([int(v) for v in ParameterType.values()]),
    bval=st.booleans(), ival=st.integers(-(2**63), 2**63 - 1),
    dval=st.floats(allow_nan=False, allow_infinity=False),
    sval=st.text(max_size=20), svals=st.lists(st.text(max_size=5), max_size=3), byval=st.binary(max_size=10),
    smap=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(anytypes)
def test_any_message_round_trips_through_the_dynamodb_item_form(value):
    item = to_dynamo({"v": message_to_plain(value)})
    back = parse_message(from_dynamo(item)["v"], AnyType())
    assert back == value


def test_plus_engine_validation_objects_in_a_script_parse_as_text() -> None:
    """plus-engine's Parameter JSON has ``validations: [{vtype, ival | svals}]``; node inputs copied
    from the published catalogue carry them, and the script must still parse (issue 12)."""
    from feaas.objects import PlusScript

    data = {"nodes": [{"ntype": "ACTION", "unique_id": "n", "inputs": [
        {"var_name": "width", "ptype": "INTEGER", "idefault": "1200",
         "validations": [{"vtype": "GREATER_THAN", "ival": Decimal(50)},
                         {"vtype": "ENDS_WITH", "svals": [".png"]}]},
        {"var_name": "plain", "validations": ["already text"]}]}]}
    parsed = parse_message(data, PlusScript())
    width, other = parsed.nodes[0].inputs
    assert list(width.validations) == ['{"ival":50,"vtype":"GREATER_THAN"}',
                                       '{"svals":[".png"],"vtype":"ENDS_WITH"}']
    assert width.idefault == 1200 and list(other.validations) == ["already text"]
    untouched = data["nodes"][0]["inputs"][0]["validations"][0]
    assert untouched == {"vtype": "GREATER_THAN", "ival": Decimal(50)}


_plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8) | st.binary(max_size=8)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(_plain_values)
def test_the_direct_wire_form_is_what_the_serializer_writes(value):
    """to_dynamo_value writes common types itself: the result must equal TypeSerializer's."""
    from boto3.dynamodb.types import TypeSerializer

    from feaas.dao.codec import storable, to_dynamo_value

    try:
        expected = TypeSerializer().serialize(storable(value))
    except (TypeError, ArithmeticError) as exc:
        with pytest.raises(type(exc)):
            to_dynamo_value(value)
        return
    assert to_dynamo_value(value) == expected
