"""Generated protobuf messages (from proto/objs.proto), re-exported under stable names, and the
names of their enum values for messages.

Regenerate with ``test_scripts/gen_proto.sh``; ``tests/unit/test_objects.py`` fails when the
committed code is stale.
"""

from __future__ import annotations

from feaas.gen.objs_pb2 import (
    AnyType,
    Conditional,
    DestinationType,
    Layout,
    Link,
    Parameter,
    ParameterType,
    PlusScript,
    PlusScriptJob,
    PlusScriptNode,
    PlusScriptNodeType,
    PlusScriptStatus,
    Receipt,
)

__all__ = [
    "AnyType",
    "Conditional",
    "DestinationType",
    "Layout",
    "Link",
    "Parameter",
    "ParameterType",
    "PlusScript",
    "PlusScriptJob",
    "PlusScriptNode",
    "PlusScriptNodeType",
    "PlusScriptStatus",
    "Receipt",
    "ptype_name",
]


def ptype_name(ptype: int) -> str:
    """``ParameterType``'s name for ``ptype`` (``"ptype 99"`` for an unknown number)."""
    try:
        return ParameterType.Name(ptype)
    except ValueError:
        return f"ptype {ptype}"
