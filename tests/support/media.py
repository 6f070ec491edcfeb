"""Helpers the media and dataset tests share: run an action directly, read a file with ffprobe."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from feaas.actions.base import Action


def runner(actions: Iterable[Action]) -> Any:
    """``run(ctx, action_id, **inputs)`` over ``actions``, with every optional input at its default
    (as the engine supplies them) unless given."""
    by_id = {a.id: a for a in actions}

    def run(ctx: Any, action_id: str, **inputs: Any) -> dict[str, Any]:
        action = by_id[action_id]
        full = {p.name: p.default for p in action.inputs if p.optional}
        full.update(inputs)
        return action.run(ctx, full)

    return run


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON of ``path``'s format and streams."""
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                          str(path)], capture_output=True, check=True, timeout=60)
    return json.loads(out.stdout)  # type: ignore[no-any-return]
