"""The catalogue is the contract a refactoring must not touch (issue 15 §6).

``catalogue_snapshot.json`` is ``python -m src.catalogue`` as it was before the action modules moved:
every action id, alias, description and parameter (name, ptype, optional, default, hint). Moving code
around must leave it exactly as it is; a deliberate change to an action regenerates it with
``python -m src.catalogue > tests/unit/catalogue_snapshot.json`` in the same commit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from src.actions import default_registry

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).with_name("catalogue_snapshot.json")


def _snapshot() -> list[dict[str, Any]]:
    return json.loads(SNAPSHOT.read_text())  # type: ignore[no-any-return]


def _by_id(catalogue: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in catalogue}


def test_default_registry_lists_the_snapshot_actions_with_the_same_parameters():
    current = json.loads(default_registry().catalogue_json())
    snapshot = _snapshot()
    assert sorted(_by_id(current)) == sorted(_by_id(snapshot))
    for action_id, entry in _by_id(snapshot).items():
        assert _by_id(current)[action_id] == entry, action_id
    assert current == snapshot  # the same order too


def test_catalogue_command_prints_the_snapshot():
    proc = subprocess.run([sys.executable, "-m", "src.catalogue", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert json.loads(proc.stdout) == _snapshot()
