"""The explicit action registry: ids, older aliases, fail-closed lookups, the catalogue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from feaas.actions.base import Action, Param
from feaas.actions.builtin import BUILTIN_ACTIONS
from feaas.actions.legacy import LegacyAction
from feaas.actions.registry import Registry, UnknownAction
from feaas.objects import ParameterType as PT
from src.actions import default_registry

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("alias", ["sys.math.add", "sys.math.add.Add", "src.actions.sys.math.add.Add",
                                   "feaas.actions.sys.math.add.Add"])
def test_aliases_resolve_to_the_same_action(alias):
    registry = Registry(BUILTIN_ACTIONS)
    assert alias in registry
    assert registry.get(alias) is registry.get("sys.math.add")


@pytest.mark.parametrize("legacy_id", ["sys.debug.nap.Nap", "src.actions.sys.debug.nap.Nap"])
def test_an_upstream_class_path_reaches_the_upstream_interface_of_the_same_action(legacy_id):
    registry = Registry(BUILTIN_ACTIONS)
    legacy = registry.get(legacy_id)
    assert isinstance(legacy, LegacyAction) and legacy.target is registry.get("sys.debug.nap")
    assert legacy.id == "src.actions.sys.debug.nap.Nap"
    assert [(p.name, p.ptype, p.default) for p in legacy.inputs] == [("seconds", PT.INTEGER, 0)]
    assert legacy.primary_output == ""  # upstream's Nap set none


@pytest.mark.parametrize("spelling", ["src.actions.vendor.ffmpeg.probe.Probe", "vendor.ffmpeg.probe.Probe",
                                      "ffmpeg.probe.Probe", " ffmpeg.probe.Probe "])
def test_every_spelling_of_an_upstream_id_reaches_one_interface(spelling):
    registry = default_registry()
    assert registry.get(spelling) is registry.get("src.actions.vendor.ffmpeg.probe.Probe")
    assert registry.get(spelling).target is registry.get("vendor.ffmpeg.probe")


@pytest.mark.parametrize("action_id", ["vendor.ffmpeg.probe.probe", "src.actions.ffmpeg.probe.Probe",
                                       "src.actions.vendor.ffmpeg.Probe", "src.actions.Probe",
                                       "vendor.ffmpeg.probe.Convert", "sys.debug.nap.Sleep"])
def test_misspelled_upstream_ids_are_unknown(action_id):
    assert action_id not in default_registry()


def test_an_undeclared_class_name_is_unknown():
    class Probe(Action):
        id = "vendor.ffmpeg.probe"

    registry = Registry([Probe()])
    assert "src.actions.vendor.ffmpeg.probe.Probe" not in registry  # no alias, no upstream interface
    assert "sys.math.add.Sum" not in Registry(BUILTIN_ACTIONS)


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
    ids = [entry["id"] for entry in catalogue if "implements" not in entry]
    assert ids == sorted(set(ids))
    assert [(e["id"], e["implements"]) for e in catalogue if "implements" in e] == [
        ("src.actions.sys.debug.nap.Nap", "sys.debug.nap")]  # the upstream interfaces come last
    assert {"sys.debug.nap", "sys.debug.echo", "sys.debug.fail", "sys.math.add", "sys.text.format",
            "sys.blob.put_text", "sys.blob.get_text", "sys.blob.copy", "sys.doc.get",
            "sys.doc.update"} <= set(ids)
    nap = next(e for e in catalogue if e["id"] == "sys.debug.nap")
    assert nap["aliases"] == []
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
