"""The worker's action catalogue: built-in ``sys.*`` actions plus the media, dataset and web ones.

The action packages load when the catalogue is built, not when this package is imported: the
dataset query's child process (``python -m src.actions.dataset.child``) imports this package on
its way and needs none of them (its start is part of every query's time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feaas.actions.registry import Registry


def default_registry() -> Registry:
    """Every action this worker can run. Adding an action means adding it here, explicitly."""
    from feaas.actions.base import Action
    from feaas.actions.builtin import BUILTIN_ACTIONS
    from feaas.actions.registry import Registry
    from src.actions import ffmpeg, web
    from src.actions.dataset.query import ACTIONS as DATASET_ACTIONS

    actions: list[Action] = [*BUILTIN_ACTIONS, *ffmpeg.ACTIONS, *DATASET_ACTIONS, *web.ACTIONS]
    return Registry(actions)
