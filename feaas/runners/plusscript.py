"""RUN_PLUSSCRIPT (SPEC §8.2, LEGACY_ACTIONS.md §4): a stored script, named by its document id in
``ACTION_ID``, run once with ``ACTION_INPUT_JSON`` as its inputs.

Unlike upstream, the script must lie in the task user's namespace (``{hostname}/{USERNAME}/``) and
the run is recorded on the ``JOB_ID`` document exactly like RUN_SCRIPT (claim, heartbeat,
registers, receipts, output, finish): this runner only loads, checks and cleans the script, then
hands it to :func:`feaas.runners.script.run_script`.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from feaas.dao.codec import CodecError, parse_message, plain
from feaas.errors import JobFailed, NamespaceViolation
from feaas.logs import event
from feaas.namespace import check_object_id
from feaas.objects import PlusScript
from feaas.runners.context import Outcome, RunContext
from feaas.runners.script import action_inputs, run_script

logger = logging.getLogger(__name__)


def is_buffer(value: Any) -> bool:
    """A Node.js Buffer as JSON encodes it: ``{"type": "Buffer", "data": [...]}``."""
    return isinstance(value, dict) and value.get("type") == "Buffer" and "data" in value


def clean_script(value: Any) -> Any:
    """The stored script as plain JSON that protobuf parsing accepts.

    Decimals become numbers. A Node.js Buffer object is dropped wherever it is: as a map value its
    key is removed (upstream removed it under ``byval`` and left ``null`` elsewhere), as a list
    element the element is removed (upstream left ``null``). Upstream's nulls break protobuf
    parsing (a null list element or a null message is refused), so none is left behind; a null
    that was stored as such is left to the parser, which reads it as "unset".
    """
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, dict):
        return {k: clean_script(v) for k, v in value.items() if not is_buffer(v)}
    if isinstance(value, list):
        return [clean_script(v) for v in value if not is_buffer(v)]
    return value


def load_script(ctx: RunContext, script_id: str) -> PlusScript:
    """The script document ``script_id`` as a PlusScript, after the namespace check and the
    cleaning; anything else is a JobFailed naming the script."""
    try:
        check_object_id(script_id, ctx.namespace)
    except NamespaceViolation:
        raise JobFailed(
            f"script {script_id!r} is not in the namespace of this task's user "
            f"({ctx.namespace!r}); nothing was run"
        ) from None
    document = ctx.dao.docs.get(script_id)
    if document is None:
        raise JobFailed(f"script {script_id!r} not found")
    owner = document.get("owner")
    if isinstance(owner, str) and owner and not owner.startswith(ctx.namespace):
        raise JobFailed(
            f"script {script_id!r} is owned by {owner!r}, outside the namespace of this task's "
            f"user ({ctx.namespace!r}); nothing was run"
        )
    try:
        return parse_message(clean_script(document), PlusScript())
    except CodecError as exc:
        raise JobFailed(f"script {script_id!r} is not a valid PlusScript: {exc}") from None


def run_plusscript(ctx: RunContext) -> Outcome:
    """RUN_PLUSSCRIPT: load ``ACTION_ID``'s script, run it with ``ACTION_INPUT_JSON``."""
    inputs = action_inputs(ctx)
    inputs.pop("job_id", None)  # upstream consumed it as the run's uuid; the JOB_ID document is the run here
    script_id = (ctx.settings.action_id or "").strip()
    script = load_script(ctx, script_id)
    event(logger, "plusscript_loaded", script_id=script_id, nodes=len(script.nodes))
    return run_script(ctx, script, inputs)
