"""Build PlusScripts and job documents for tests, in plus-engine's JSON form."""

from __future__ import annotations

import time
import uuid
from typing import Any

from feaas.dao.codec import message_to_plain
from feaas.objects import AnyType, Conditional, Link, Parameter, PlusScript, PlusScriptJob, PlusScriptNode
from feaas.objects import PlusScriptNodeType as NT
from feaas.psee.values import to_any

HOSTNAME = "plus_example_com"
USERNAME = "alice@example.com"
NAMESPACE = f"{HOSTNAME}/{USERNAME}/"


def action(uid: str, action_id: str, **defaults: Any) -> PlusScriptNode:
    node = PlusScriptNode(ntype=NT.ACTION, unique_id=uid, action_id=action_id)
    for name, value in defaults.items():
        node.inputs.append(Parameter(var_name=name, sdefault=str(value)))
    return node


def static(uid: str, value: Any, out: str = "value") -> PlusScriptNode:
    return PlusScriptNode(ntype=NT.STATIC, unique_id=uid, value=to_any(value),
                          outputs=[Parameter(var_name=out)])


def node(uid: str, ntype: int, conditional: tuple[str, str] | None = None, **fields: Any) -> PlusScriptNode:
    n = PlusScriptNode(ntype=ntype, unique_id=uid, **fields)
    if conditional:
        n.conditional.CopyFrom(Conditional(source=conditional[0], sourceHandle=conditional[1]))
    return n


def link(source: str, target: str) -> Link:
    """``link("a:sum", "b:x")``."""
    s, sh = source.split(":", 1)
    t, th = target.split(":", 1)
    return Link(source=s, sourceHandle=sh, target=t, targetHandle=th)


def script(nodes: list[PlusScriptNode], links: list[str | tuple[str, str]] = (),  # type: ignore[assignment]
           inputs: list[Parameter] = ()) -> PlusScript:  # type: ignore[assignment]
    s = PlusScript(object_id=f"{NAMESPACE}script.{uuid.uuid4()}", owner=f"{NAMESPACE}script", label="test")
    s.nodes.extend(nodes)
    s.inputs.extend(inputs)
    for pair in links:
        src, dst = pair if isinstance(pair, tuple) else pair.split("->")
        s.links.append(link(src.strip(), dst.strip()))
    return s


def add_and_nap_script(nap_seconds: float = 0.2) -> PlusScript:
    """mainInput a, b → add → nap(seconds) → mainOutput sum / message."""
    return script(
        [action("add", "sys.math.add"), static("secs", nap_seconds), action("nap", "sys.debug.nap")],
        ["mainInput:a -> add:a", "mainInput:b -> add:b", "secs:value -> nap:seconds",
         "add:sum -> mainOutput:sum", "nap:message -> mainOutput:message"],
    )


def job_item(s: PlusScript | None = None, *, key_attribute: str = "object_id", username: str = USERNAME,
             hostname: str = HOSTNAME, numbers: bool = False, **extra: Any) -> dict[str, Any]:
    """A job document exactly as plus-engine writes it (MessageToDict of PlusScriptJob + extras)."""
    job_uuid = uuid.uuid4()
    owner = f"{hostname}/{username}/job"
    job = PlusScriptJob(object_id=f"{owner}.{job_uuid}", owner=owner, label="test job", username=username,
                        created_at=int(time.time()))
    if s is not None:
        job.script.CopyFrom(s)
    item = message_to_plain(job)
    if numbers:  # the other accepted form: enums and int64 as numbers
        item["created_at"] = int(item["created_at"])
        for n in item.get("script", {}).get("nodes", []):
            if "ntype" in n:
                n["ntype"] = NT.Value(n["ntype"])
    item["hostname"] = hostname
    if key_attribute != "object_id":
        item[key_attribute] = item["object_id"]
    item.update(extra)
    return item


__all__ = [
    "HOSTNAME",
    "NAMESPACE",
    "NT",
    "USERNAME",
    "AnyType",
    "Parameter",
    "action",
    "add_and_nap_script",
    "job_item",
    "link",
    "node",
    "script",
    "static",
]
