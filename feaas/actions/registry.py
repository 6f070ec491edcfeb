"""Explicit action registry: id → action object. Unknown ids fail closed; nothing is ever imported.

An action that declares the upstream worker's interface (``Action.legacy``) is registered twice:
under its own id, and as a :class:`~feaas.actions.legacy.LegacyAction` under upstream's class path,
in any spelling of LEGACY_ACTIONS.md §1.1 (``src.actions.vendor.ffmpeg.probe.Probe``,
``vendor.ffmpeg.probe.Probe``, ``ffmpeg.probe.Probe``). The class-path forms of the other actions
are aliases they declare (``sys.math.add.Add``, also with ``src.actions.`` or ``feaas.actions.``
in front); any other class name is unknown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from feaas.actions.base import Action, Param
from feaas.actions.legacy import LegacyAction, LegacyInterface, class_paths
from feaas.errors import NotFound
from feaas.objects import ptype_name

_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_PREFIXES = ("src.actions.", "feaas.actions.")


def _without_package(action_id: str) -> str:
    """``src.actions.sys.math.add.Add`` → ``sys.math.add.Add``. Pure string work; it never touches
    the import system."""
    text = action_id.strip()
    for prefix in _PREFIXES:
        text = text.removeprefix(prefix)
    return text


class UnknownAction(NotFound):
    """No action is registered under that id (``action_id``, ``args[0]``)."""

    template = "unknown action id {name!r}"

    @property
    def action_id(self) -> str:
        return self.name


class Registry:
    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self._by_id: dict[str, Action] = {}
        self._legacy: dict[str, LegacyAction] = {}  # class path relative to src.actions → action
        for action in actions:
            self.register(action)

    def register(self, action: Action) -> None:
        if not _ID.match(action.id):
            raise ValueError(f"action id {action.id!r} is not dotted lowercase")
        for name in (action.id, *action.aliases):
            if name in self._by_id and self._by_id[name] is not action:
                raise ValueError(f"action id {name!r} registered twice")
            self._by_id[name] = action
        interface = action.legacy
        if interface is not None:
            if not isinstance(interface, LegacyInterface):
                raise TypeError(f"{action.id}: legacy must be a LegacyInterface, "
                                f"not {type(interface).__name__}")
            if interface.class_path in self._legacy:
                raise ValueError(f"legacy action id {interface.class_path!r} registered twice")
            self._legacy[interface.class_path] = LegacyAction(action, interface)

    def get(self, action_id: str) -> Action:
        """The action for ``action_id`` (or one of its older forms); raises :class:`UnknownAction`."""
        action = self._find(action_id)
        if action is None:
            raise UnknownAction(action_id)
        return action

    def _find(self, action_id: str) -> Action | None:
        """The id itself, else an upstream class path, else a declared alias without its package."""
        found = self._by_id.get(action_id)
        if found is None:
            found = next((self._legacy[p] for p in class_paths(action_id) if p in self._legacy), None)
        return found if found is not None else self._by_id.get(_without_package(action_id))

    def __contains__(self, action_id: object) -> bool:
        return isinstance(action_id, str) and self._find(action_id) is not None

    def actions(self) -> list[Action]:
        """Every action under its own id (not the upstream interfaces), by id."""
        return sorted({id(a): a for a in self._by_id.values()}.values(), key=lambda a: a.id)

    def legacy_actions(self) -> list[LegacyAction]:
        """The upstream interfaces, by class path."""
        return sorted(self._legacy.values(), key=lambda a: a.id)

    def legacy_catalogue(self) -> list[dict[str, Any]]:
        """Each upstream interface as upstream's REGISTER_ACTIONS described it (LEGACY_ACTIONS.md §3:
        ``action_id``, ``class_path``, ``label``, ``short_desc``, ``params`` and ``outputs`` as
        plus-engine's Parameter JSON), plus ``implements``, the id of the action behind it."""
        return [action.catalogue_entry() for action in self.legacy_actions()]

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

        def entry(a: Action) -> dict[str, Any]:
            return {
                "id": a.id,
                "aliases": list(a.aliases),
                "description": a.description,
                "inputs": "any" if a.accepts_any_inputs else params(a.inputs),
                "outputs": params(a.outputs),
                **({"implements": a.target.id} if isinstance(a, LegacyAction) else {}),
            }

        return [entry(a) for a in [*self.actions(), *self.legacy_actions()]]

    def catalogue_json(self) -> str:
        return json.dumps(self.catalogue(), indent=2, default=str)
