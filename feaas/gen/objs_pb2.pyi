from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlusScriptStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INITIALIZING: _ClassVar[PlusScriptStatus]
    RUNNING: _ClassVar[PlusScriptStatus]
    FAILED: _ClassVar[PlusScriptStatus]
    SUCCEEDED: _ClassVar[PlusScriptStatus]

class PlusScriptNodeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEST: _ClassVar[PlusScriptNodeType]
    ACTION: _ClassVar[PlusScriptNodeType]
    STATIC: _ClassVar[PlusScriptNodeType]
    INPUT: _ClassVar[PlusScriptNodeType]
    OUTPUT: _ClassVar[PlusScriptNodeType]
    WRITER: _ClassVar[PlusScriptNodeType]
    COALESCE: _ClassVar[PlusScriptNodeType]
    RECEIPT_META: _ClassVar[PlusScriptNodeType]
    BUNDLER: _ClassVar[PlusScriptNodeType]
    UI_FEEDBACK: _ClassVar[PlusScriptNodeType]
    UPDATE_VALUES: _ClassVar[PlusScriptNodeType]

class DestinationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NULL: _ClassVar[DestinationType]
    FILE: _ClassVar[DestinationType]
    STREAM: _ClassVar[DestinationType]

class ParameterType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRING: _ClassVar[ParameterType]
    BOOLEAN: _ClassVar[ParameterType]
    INTEGER: _ClassVar[ParameterType]
    FLOAT: _ClassVar[ParameterType]
    KEY: _ClassVar[ParameterType]
    PREFIX: _ClassVar[ParameterType]
    FIXED_LIST_SINGLE_SELECT: _ClassVar[ParameterType]
    FIXED_LIST_MULTI_SELECT: _ClassVar[ParameterType]
    URL: _ClassVar[ParameterType]
    LIST: _ClassVar[ParameterType]
    OBJECT_ID: _ClassVar[ParameterType]
    ANY_TYPE_MAP: _ClassVar[ParameterType]
    DATETIME: _ClassVar[ParameterType]
    STRING_MAP: _ClassVar[ParameterType]
    USERNAME: _ClassVar[ParameterType]
    BYTES: _ClassVar[ParameterType]
    RECEIPT: _ClassVar[ParameterType]
    HOSTNAME: _ClassVar[ParameterType]
    JSON: _ClassVar[ParameterType]
INITIALIZING: PlusScriptStatus
RUNNING: PlusScriptStatus
FAILED: PlusScriptStatus
SUCCEEDED: PlusScriptStatus
TEST: PlusScriptNodeType
ACTION: PlusScriptNodeType
STATIC: PlusScriptNodeType
INPUT: PlusScriptNodeType
OUTPUT: PlusScriptNodeType
WRITER: PlusScriptNodeType
COALESCE: PlusScriptNodeType
RECEIPT_META: PlusScriptNodeType
BUNDLER: PlusScriptNodeType
UI_FEEDBACK: PlusScriptNodeType
UPDATE_VALUES: PlusScriptNodeType
NULL: DestinationType
FILE: DestinationType
STREAM: DestinationType
STRING: ParameterType
BOOLEAN: ParameterType
INTEGER: ParameterType
FLOAT: ParameterType
KEY: ParameterType
PREFIX: ParameterType
FIXED_LIST_SINGLE_SELECT: ParameterType
FIXED_LIST_MULTI_SELECT: ParameterType
URL: ParameterType
LIST: ParameterType
OBJECT_ID: ParameterType
ANY_TYPE_MAP: ParameterType
DATETIME: ParameterType
STRING_MAP: ParameterType
USERNAME: ParameterType
BYTES: ParameterType
RECEIPT: ParameterType
HOSTNAME: ParameterType
JSON: ParameterType

class AnyType(_message.Message):
    __slots__ = ("ptype", "bval", "ival", "dval", "sval", "svals", "dvals", "ivals", "byval", "smap", "imap", "json_data", "vals", "vmap")
    class SmapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ImapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class VmapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AnyType
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AnyType, _Mapping]] = ...) -> None: ...
    PTYPE_FIELD_NUMBER: _ClassVar[int]
    BVAL_FIELD_NUMBER: _ClassVar[int]
    IVAL_FIELD_NUMBER: _ClassVar[int]
    DVAL_FIELD_NUMBER: _ClassVar[int]
    SVAL_FIELD_NUMBER: _ClassVar[int]
    SVALS_FIELD_NUMBER: _ClassVar[int]
    DVALS_FIELD_NUMBER: _ClassVar[int]
    IVALS_FIELD_NUMBER: _ClassVar[int]
    BYVAL_FIELD_NUMBER: _ClassVar[int]
    SMAP_FIELD_NUMBER: _ClassVar[int]
    IMAP_FIELD_NUMBER: _ClassVar[int]
    JSON_DATA_FIELD_NUMBER: _ClassVar[int]
    VALS_FIELD_NUMBER: _ClassVar[int]
    VMAP_FIELD_NUMBER: _ClassVar[int]
    ptype: ParameterType
    bval: bool
    ival: int
    dval: float
    sval: str
    svals: _containers.RepeatedScalarFieldContainer[str]
    dvals: _containers.RepeatedScalarFieldContainer[float]
    ivals: _containers.RepeatedScalarFieldContainer[int]
    byval: bytes
    smap: _containers.ScalarMap[str, str]
    imap: _containers.ScalarMap[str, int]
    json_data: _struct_pb2.Struct
    vals: _containers.RepeatedCompositeFieldContainer[AnyType]
    vmap: _containers.MessageMap[str, AnyType]
    def __init__(self, ptype: _Optional[_Union[ParameterType, str]] = ..., bval: _Optional[bool] = ..., ival: _Optional[int] = ..., dval: _Optional[float] = ..., sval: _Optional[str] = ..., svals: _Optional[_Iterable[str]] = ..., dvals: _Optional[_Iterable[float]] = ..., ivals: _Optional[_Iterable[int]] = ..., byval: _Optional[bytes] = ..., smap: _Optional[_Mapping[str, str]] = ..., imap: _Optional[_Mapping[str, int]] = ..., json_data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., vals: _Optional[_Iterable[_Union[AnyType, _Mapping]]] = ..., vmap: _Optional[_Mapping[str, AnyType]] = ...) -> None: ...

class Parameter(_message.Message):
    __slots__ = ("optional", "var_name", "label", "ptype", "validations", "sdefault", "idefault", "bdefault", "src_owners", "ddefault", "options", "hint")
    OPTIONAL_FIELD_NUMBER: _ClassVar[int]
    VAR_NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PTYPE_FIELD_NUMBER: _ClassVar[int]
    VALIDATIONS_FIELD_NUMBER: _ClassVar[int]
    SDEFAULT_FIELD_NUMBER: _ClassVar[int]
    IDEFAULT_FIELD_NUMBER: _ClassVar[int]
    BDEFAULT_FIELD_NUMBER: _ClassVar[int]
    SRC_OWNERS_FIELD_NUMBER: _ClassVar[int]
    DDEFAULT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    optional: bool
    var_name: str
    label: str
    ptype: ParameterType
    validations: _containers.RepeatedScalarFieldContainer[str]
    sdefault: str
    idefault: int
    bdefault: bool
    src_owners: _containers.RepeatedScalarFieldContainer[str]
    ddefault: float
    options: _containers.RepeatedScalarFieldContainer[str]
    hint: str
    def __init__(self, optional: _Optional[bool] = ..., var_name: _Optional[str] = ..., label: _Optional[str] = ..., ptype: _Optional[_Union[ParameterType, str]] = ..., validations: _Optional[_Iterable[str]] = ..., sdefault: _Optional[str] = ..., idefault: _Optional[int] = ..., bdefault: _Optional[bool] = ..., src_owners: _Optional[_Iterable[str]] = ..., ddefault: _Optional[float] = ..., options: _Optional[_Iterable[str]] = ..., hint: _Optional[str] = ...) -> None: ...

class Layout(_message.Message):
    __slots__ = ("x", "y", "w", "h")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    H_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    w: float
    h: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., w: _Optional[float] = ..., h: _Optional[float] = ...) -> None: ...

class Conditional(_message.Message):
    __slots__ = ("source", "sourceHandle")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCEHANDLE_FIELD_NUMBER: _ClassVar[int]
    source: str
    sourceHandle: str
    def __init__(self, source: _Optional[str] = ..., sourceHandle: _Optional[str] = ...) -> None: ...

class PlusScriptNode(_message.Message):
    __slots__ = ("ntype", "unique_id", "label", "action_id", "value", "layout", "inputs", "outputs", "dest_destination", "dest_stream_id", "dest_owner", "dest_prefix", "dest_extension", "readonly", "conditional")
    NTYPE_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    DEST_DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DEST_STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    DEST_OWNER_FIELD_NUMBER: _ClassVar[int]
    DEST_PREFIX_FIELD_NUMBER: _ClassVar[int]
    DEST_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    READONLY_FIELD_NUMBER: _ClassVar[int]
    CONDITIONAL_FIELD_NUMBER: _ClassVar[int]
    ntype: PlusScriptNodeType
    unique_id: str
    label: str
    action_id: str
    value: AnyType
    layout: Layout
    inputs: _containers.RepeatedCompositeFieldContainer[Parameter]
    outputs: _containers.RepeatedCompositeFieldContainer[Parameter]
    dest_destination: DestinationType
    dest_stream_id: str
    dest_owner: str
    dest_prefix: str
    dest_extension: str
    readonly: bool
    conditional: Conditional
    def __init__(self, ntype: _Optional[_Union[PlusScriptNodeType, str]] = ..., unique_id: _Optional[str] = ..., label: _Optional[str] = ..., action_id: _Optional[str] = ..., value: _Optional[_Union[AnyType, _Mapping]] = ..., layout: _Optional[_Union[Layout, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[Parameter, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[Parameter, _Mapping]]] = ..., dest_destination: _Optional[_Union[DestinationType, str]] = ..., dest_stream_id: _Optional[str] = ..., dest_owner: _Optional[str] = ..., dest_prefix: _Optional[str] = ..., dest_extension: _Optional[str] = ..., readonly: _Optional[bool] = ..., conditional: _Optional[_Union[Conditional, _Mapping]] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("source", "sourceHandle", "target", "targetHandle")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCEHANDLE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGETHANDLE_FIELD_NUMBER: _ClassVar[int]
    source: str
    sourceHandle: str
    target: str
    targetHandle: str
    def __init__(self, source: _Optional[str] = ..., sourceHandle: _Optional[str] = ..., target: _Optional[str] = ..., targetHandle: _Optional[str] = ...) -> None: ...

class PlusScript(_message.Message):
    __slots__ = ("object_id", "owner", "version", "label", "short_desc", "icon", "inputs", "nodes", "outputs", "links", "input_layout", "output_layout")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SHORT_DESC_FIELD_NUMBER: _ClassVar[int]
    ICON_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    INPUT_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    object_id: str
    owner: str
    version: int
    label: str
    short_desc: str
    icon: str
    inputs: _containers.RepeatedCompositeFieldContainer[Parameter]
    nodes: _containers.RepeatedCompositeFieldContainer[PlusScriptNode]
    outputs: _containers.RepeatedCompositeFieldContainer[Parameter]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    input_layout: str
    output_layout: str
    def __init__(self, object_id: _Optional[str] = ..., owner: _Optional[str] = ..., version: _Optional[int] = ..., label: _Optional[str] = ..., short_desc: _Optional[str] = ..., icon: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[Parameter, _Mapping]]] = ..., nodes: _Optional[_Iterable[_Union[PlusScriptNode, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[Parameter, _Mapping]]] = ..., links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., input_layout: _Optional[str] = ..., output_layout: _Optional[str] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("success", "error_message", "outputs", "primary_output", "timestamp", "cost")
    class OutputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AnyType
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AnyType, _Mapping]] = ...) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    success: bool
    error_message: str
    outputs: _containers.MessageMap[str, AnyType]
    primary_output: str
    timestamp: int
    cost: float
    def __init__(self, success: _Optional[bool] = ..., error_message: _Optional[str] = ..., outputs: _Optional[_Mapping[str, AnyType]] = ..., primary_output: _Optional[str] = ..., timestamp: _Optional[int] = ..., cost: _Optional[float] = ...) -> None: ...

class PlusScriptJob(_message.Message):
    __slots__ = ("object_id", "owner", "label", "username", "script", "status", "created_at", "started_at", "completed_at", "updated_at", "registers", "receipts", "output", "action_count", "request_cancel", "error_message", "fargate_task_arn", "percent", "success_count", "error_count", "iteration", "item_count")
    class RegistersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AnyType
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AnyType, _Mapping]] = ...) -> None: ...
    class ReceiptsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Receipt
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Receipt, _Mapping]] = ...) -> None: ...
    class OutputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AnyType
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AnyType, _Mapping]] = ...) -> None: ...
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    REGISTERS_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ACTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CANCEL_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FARGATE_TASK_ARN_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    ITEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    object_id: str
    owner: str
    label: str
    username: str
    script: PlusScript
    status: PlusScriptStatus
    created_at: int
    started_at: int
    completed_at: int
    updated_at: int
    registers: _containers.MessageMap[str, AnyType]
    receipts: _containers.MessageMap[str, Receipt]
    output: _containers.MessageMap[str, AnyType]
    action_count: int
    request_cancel: bool
    error_message: str
    fargate_task_arn: str
    percent: float
    success_count: int
    error_count: int
    iteration: int
    item_count: int
    def __init__(self, object_id: _Optional[str] = ..., owner: _Optional[str] = ..., label: _Optional[str] = ..., username: _Optional[str] = ..., script: _Optional[_Union[PlusScript, _Mapping]] = ..., status: _Optional[_Union[PlusScriptStatus, str]] = ..., created_at: _Optional[int] = ..., started_at: _Optional[int] = ..., completed_at: _Optional[int] = ..., updated_at: _Optional[int] = ..., registers: _Optional[_Mapping[str, AnyType]] = ..., receipts: _Optional[_Mapping[str, Receipt]] = ..., output: _Optional[_Mapping[str, AnyType]] = ..., action_count: _Optional[int] = ..., request_cancel: _Optional[bool] = ..., error_message: _Optional[str] = ..., fargate_task_arn: _Optional[str] = ..., percent: _Optional[float] = ..., success_count: _Optional[int] = ..., error_count: _Optional[int] = ..., iteration: _Optional[int] = ..., item_count: _Optional[int] = ...) -> None: ...
