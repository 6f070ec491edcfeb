"""Explicit action registry: id → action object. Unknown ids fail closed; nothing is ever imported."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from feaas.actions.base import Action, Param
from feaas.errors import NotFound
from feaas.objects import ptype_name

_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_PREFIXES = ("src.actions.", "feaas.actions.")


def canonical_id(action_id: str) -> str:
    """Normalise the older class-path forms: ``src.actions.vendor.ffmpeg.probe.Probe`` →
    ``vendor.ffmpeg.probe``. Pure string work; it never touches the import system."""
    text = action_id.strip()
    for prefix in _PREFIXES:
        text = text.removeprefix(prefix)
    head, _, last = text.rpartition(".")
    if head and last[:1].isupper():
        text = head
    return text.lower()


class UnknownAction(NotFound):
    """No action is registered under that id (``action_id``, ``args[0]``)."""

    template = "unknown action id {name!r}"

    @property
    def action_id(self) -> str:
        return self.name


class Registry:
    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self._by_id: dict[str, Action] = {}
        for action in actions:
            self.register(action)

    def register(self, action: Action) -> None:
        if not _ID.match(action.id):
            raise ValueError(f"action id {action.id!r} is not dotted lowercase")
        for name in (action.id, *(canonical_id(a) for a in action.aliases)):
            if name in self._by_id and self._by_id[name] is not action:
                raise ValueError(f"action id {name!r} registered twice")
            self._by_id[name] = action

    def get(self, action_id: str) -> Action:
        """The action for ``action_id`` (or one of its older forms); raises :class:`UnknownAction`."""
        action = self._by_id.get(action_id) or self._by_id.get(canonical_id(action_id))
        if action is None:
            raise UnknownAction(action_id)
        return action

    def __contains__(self, action_id: object) -> bool:
        return isinstance(action_id, str) and (
            action_id in self._by_id or canonical_id(action_id) in self._by_id
        )

    def actions(self) -> list[Action]:
        return sorted({id(a): a for a in self._by_id.values()}.values(), key=lambda a: a.id)

    def catalogue(self) -> list[dict[str, Any]]:
        def params(ps: tuple[Param, ...]) -> list[dict[str, Any]]:
            return [
                {
                    "name": p.name,
                    "ptype": ptype_name(p.ptype),
                    "optional": p.optional or p.default is not None,
                    **({"default": p.default} if p.default is not None else {}),
                    **({"hint": p.hint} if p.hint else {}),
                }
                for p in ps
            ]

        return [
            {
                "id": a.id,
                "aliases": list(a.aliases),
                "description": a.description,
                "inputs": "any" if a.accepts_any_inputs else params(a.inputs),
                "outputs": params(a.outputs),
            }
            for a in self.actions()
        ]

    def catalogue_json(self) -> str:
        return json.dumps(self.catalogue(), indent=2, default=str)
