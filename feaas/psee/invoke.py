"""Run one action for one node: resolve and convert inputs, call it, build the Receipt."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from feaas.actions.base import Action, ActionContext, ActionFailed
from feaas.errors import NamespaceViolation, StorageError
from feaas.objects import AnyType, Parameter, Receipt, ptype_name
from feaas.objects import ParameterType as PT
from feaas.psee.values import ConversionError, convert, parameter_default, to_any
from feaas.resources import human_size, value_size
from feaas.text import MAX_MESSAGE_CHARS, bounded, describe

logger = logging.getLogger(__name__)
MISSING = object()
MAX_ERROR_CHARS = MAX_MESSAGE_CHARS


class InputError(ActionFailed):
    """An input is missing or cannot be converted to its declared ptype."""


def resolve_inputs(node_id: str, action: Action, given: Mapping[str, Any],
                   node_params: Mapping[str, Parameter]) -> dict[str, Any]:
    """Inputs for ``action``: linked values, else the node's defaults, else the action's; converted."""
    resolved: dict[str, Any] = {}
    if action.accepts_any_inputs:
        names = list(dict.fromkeys([*node_params, *given]))
        for name in names:
            value = given.get(name, MISSING)
            param = node_params.get(name)
            if value is MISSING and param is not None:
                has, value = parameter_default(param)
                if not has:
                    continue
            resolved[name] = _convert(node_id, name, value, param.ptype) if param is not None else value
        return resolved
    for spec in action.inputs:
        value = given.get(spec.name, MISSING)
        param = node_params.get(spec.name)
        if value is MISSING and param is not None:
            has, default = parameter_default(param)
            if has:
                value = default
        if value is MISSING:
            value = spec.default
        if value is None or value is MISSING:
            if spec.optional:
                continue
            raise InputError(f"node {node_id!r}: required input {spec.name!r} has no value")
        resolved[spec.name] = _convert(node_id, spec.name, value, spec.ptype)
    return resolved


def _convert(node_id: str, name: str, value: Any, ptype: int) -> Any:
    try:
        return convert(value, ptype)
    except ConversionError as exc:
        raise InputError(f"node {node_id!r}: input {name!r} expects {ptype_name(ptype)}, "
                         f"got {describe(value)} ({exc})") from None


ContextFactory = Callable[[str, Path], ActionContext]


def run_action(node_id: str, action: Action, given: Mapping[str, Any], node_params: Mapping[str, Parameter],
               make_context: ContextFactory, tmp_root: Path | None = None, *,
               max_value_bytes: int | None = None) -> tuple[Receipt, dict[str, Any]]:
    """Run ``action``; never raises for action problems — they become a failed Receipt.

    An output over ``max_value_bytes`` fails the node (naming the output and its size)."""
    tmp_dir = _work_dir(node_id, tmp_root)
    outputs: dict[str, Any] = {}
    error = ""
    try:
        inputs = resolve_inputs(node_id, action, given, node_params)
        outputs = dict(action.run(make_context(node_id, tmp_dir), inputs) or {})
        if max_value_bytes is not None:
            for name, value in outputs.items():
                size = value_size(value)
                if size > max_value_bytes:
                    outputs = {}
                    raise ActionFailed(f"output {name!r} is {human_size(size)} "
                                       f"(limit {human_size(max_value_bytes)})")
    except (ActionFailed, NamespaceViolation, StorageError) as exc:
        error = str(exc) or type(exc).__name__
    except Exception as exc:  # an action bug must fail this node, not the worker
        logger.exception("action_crashed", extra={"fields": {"node": node_id, "action_id": action.id}})
        error = f"{action.id} crashed: {type(exc).__name__}: {exc}"
    finally:
        _release(tmp_dir, tmp_root)
    # An action may fail with a huge message; the job document may not grow with it.
    receipt = Receipt(
        success=not error, error_message=bounded(error, MAX_ERROR_CHARS), timestamp=int(time.time() * 1000)
    )
    if not error:
        declared = {p.name: p.ptype for p in action.outputs}
        for name, value in outputs.items():
            receipt.outputs[name].CopyFrom(_typed(value, declared.get(name)))
        primary = action.primary_output
        if primary is None:
            primary = action.outputs[0].name if action.outputs else ""
        receipt.primary_output = primary
    return receipt, outputs


#: Text-like ptypes other than STRING: a text output declared as one of these keeps it in the receipt.
_TEXT_LIKE = frozenset({PT.KEY, PT.PREFIX, PT.URL, PT.FIXED_LIST_SINGLE_SELECT, PT.OBJECT_ID, PT.USERNAME,
                        PT.HOSTNAME})


def _typed(value: Any, ptype: int | None) -> AnyType:
    """The receipt's form of an output: by the value's type, except that text declared as another
    text-like ptype (KEY, PREFIX, URL…) carries that ptype, as upstream's receipts do."""
    if isinstance(value, str) and ptype in _TEXT_LIKE:
        return AnyType(ptype=PT.Name(ptype), sval=value)
    return to_any(value)


_spare = threading.local()  # per thread: an empty work directory left by its previous action


def _work_dir(node_id: str, tmp_root: Path | None) -> Path:
    """An empty private directory for one action. Creating and removing one per action costs
    milliseconds on overlay filesystems, so a thread reuses its last one when that stayed empty."""
    if tmp_root is not None and getattr(_spare, "root", None) == tmp_root:
        path: Path = _spare.path
        _spare.root = _spare.path = None
        if path.is_dir():
            return path
    return Path(tempfile.mkdtemp(prefix=f"{_safe(node_id)}-", dir=tmp_root))


def _release(path: Path, tmp_root: Path | None) -> None:
    """Keep ``path`` for this thread's next action when it is empty; otherwise remove it."""
    if tmp_root is not None:
        try:
            with os.scandir(path) as entries:
                empty = next(entries, None) is None
        except OSError:
            empty = False
        if empty:
            _spare.root, _spare.path = tmp_root, path
            return
    shutil.rmtree(path, ignore_errors=True)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)[:40] or "node"
