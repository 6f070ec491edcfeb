"""The ``web.*`` actions (issue 12). ``ACTIONS`` is what the registry wires in."""

from __future__ import annotations

from feaas.actions.base import Action
from src.actions.web.screenshot import Screenshot

ACTIONS: list[Action] = [Screenshot()]

__all__ = ["ACTIONS"]
