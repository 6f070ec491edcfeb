"""Generated protobuf messages (from proto/objs.proto), re-exported under stable names.

Regenerate with ``test_scripts/gen_proto.sh``; ``tests/unit/test_objects.py`` fails when the
committed code is stale.
"""

from __future__ import annotations

from feaas.gen.objs_pb2 import (  # noqa: F401  (re-exports)
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
]
