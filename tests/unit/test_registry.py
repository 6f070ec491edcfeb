"""The explicit action registry: ids, older aliases, fail-closed lookups, the catalogue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from feaas.actions.base import Action, Param
from feaas.actions.builtin import BUILTIN_ACTIONS
from feaas.actions.registry import Registry, UnknownAction, canonical_id
from src.actions import default_registry

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("old, new", [
    ("sys.debug.nap.Nap", "sys.debug.nap"),
    ("src.actions.vendor.ffmpeg.probe.Probe", "vendor.ffmpeg.probe"),
    ("vendor.ffmpeg.probe.Probe", "vendor.ffmpeg.probe"),
    ("feaas.actions.sys.math.add.Add", "sys.math.add"),
    ("  sys.math.add  ", "sys.math.add"),
    ("sys.math.add", "sys.math.add"),
])
def test_canonical_id_strips_class_path_forms(old, new):
    assert canonical_id(old) == new


@pytest.mark.parametrize("alias", ["sys.debug.nap", "sys.debug.nap.Nap", "src.actions.sys.debug.nap.Nap"])
def test_aliases_resolve_to_the_same_action(alias):
    registry = Registry(BUILTIN_ACTIONS)
    assert alias in registry
    assert registry.get(alias) is registry.get("sys.debug.nap")


def test_vendor_style_class_path_resolves_through_canonical_id():
    class Probe(Action):
        id = "vendor.ffmpeg.probe"

    registry = Registry([Probe()])
    assert registry.get("src.actions.vendor.ffmpeg.probe.Probe").id == "vendor.ffmpeg.probe"


@pytest.mark.parametrize("action_id", ["os.system", "subprocess.run", "builtins.eval", "src.worker.main",
                                       "feaas.actions.builtin.Nap", "sys.debug", "", "sys.debug.nap.nap.Nap",
                                       "__import__", "os.system.System"])
def test_unknown_ids_raise_and_nothing_is_imported(action_id):
    registry = default_registry()
    before = set(sys.modules)
    assert action_id not in registry
    with pytest.raises(UnknownAction) as err:
        registry.get(action_id)
    assert f"unknown action id {action_id!r}" == str(err.value)
    assert set(sys.modules) == before


def test_ids_must_be_dotted_lowercase_and_unique():
    class Bad(Action):
        id = "Sys.Bad"

    class Twin(Action):
        id = "sys.debug.nap"

    with pytest.raises(ValueError, match="dotted lowercase"):
        Registry([Bad()])
    with pytest.raises(ValueError, match="registered twice"):
        Registry([*BUILTIN_ACTIONS, Twin()])


def test_catalogue_lists_each_action_once_with_params():
    catalogue = Registry(BUILTIN_ACTIONS).catalogue()
    ids = [entry["id"] for entry in catalogue]
    assert ids == sorted(set(ids))
    assert {"sys.debug.nap", "sys.debug.echo", "sys.debug.fail", "sys.math.add", "sys.text.format",
            "sys.blob.put_text", "sys.blob.get_text", "sys.blob.copy", "sys.doc.get",
            "sys.doc.update"} <= set(ids)
    nap = next(e for e in catalogue if e["id"] == "sys.debug.nap")
    assert nap["aliases"] == ["sys.debug.nap.Nap"]
    assert nap["inputs"] == [{"name": "seconds", "ptype": "FLOAT", "optional": True, "default": 1.0}]
    assert [o["name"] for o in nap["outputs"]] == ["slept_seconds", "message"]
    echo = next(e for e in catalogue if e["id"] == "sys.debug.echo")
    assert echo["inputs"] == "any"


def test_catalogue_command_prints_json():
    proc = subprocess.run([sys.executable, "-m", "src.catalogue"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    catalogue = json.loads(proc.stdout)
    assert isinstance(catalogue, list) and all({"id", "aliases", "description", "inputs", "outputs"} <= set(e)
                                               for e in catalogue)
    assert any(e["id"] == "sys.blob.copy" for e in catalogue)


def test_param_defaults_show_as_optional():
    class WithDefault(Action):
        id = "test.defaults"
        inputs = (Param("n", default=3), Param("m", optional=True), Param("k"))

    entry = Registry([WithDefault()]).catalogue()[0]
    assert [(p["name"], p["optional"]) for p in entry["inputs"]] == [("n", True), ("m", True), ("k", False)]
