"""The worker's action catalogue: built-in ``sys.*`` actions plus the media, dataset and web ones."""

from __future__ import annotations

from feaas.actions.base import Action
from feaas.actions.builtin import BUILTIN_ACTIONS
from feaas.actions.registry import Registry
from src.actions import dataset, ffmpeg, web


def default_registry() -> Registry:
    """Every action this worker can run. Adding an action means adding it here, explicitly."""
    actions: list[Action] = [*BUILTIN_ACTIONS, *ffmpeg.ACTIONS, *dataset.ACTIONS, *web.ACTIONS]
    return Registry(actions)
