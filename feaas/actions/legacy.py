"""The upstream worker's interface of an action, declared as data beside the action (issue 12).

Scripts written for the upstream plus-worker name an action by its Python class path
(``src.actions.vendor.ffmpeg.thumbnail.Thumbnail``, LEGACY_ACTIONS.md §1.1) and use upstream's input
and output names, defaults, ptypes, primary output and output keys (§2). An action upstream had
declares them in a :class:`LegacyInterface` (its ``legacy`` attribute). The registry then also
registers a :class:`LegacyAction` under that class path, which runs the action's one
implementation behind upstream's interface:

* it publishes upstream's inputs (:class:`LegacyInput`: name, ptype, default, validations), so the
  engine links, checks and converts them as for any action;
* it renames them to the implementation's inputs (``ours``), and ``adapt`` maps the values whose
  meaning differs (a quality word to a CRF, milliseconds to seconds);
* it runs the implementation, on a copy whose attributes ``configure`` replaces (the output-key
  rule of the media actions);
* it renames the outputs back (:class:`LegacyOutput`); ``finish`` adds the ones upstream computed
  differently.

Nothing here copies an action's work: an interface is names, defaults and small value mappings.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from feaas.actions.base import Action, ActionContext, ActionFailed, Param
from feaas.objects import ParameterType as PT

#: The package upstream's actions live in; the full class path is the canonical legacy id.
ROOT = "src.actions."
#: Upstream's first search path (relative to ``ROOT``): ``ffmpeg.probe.Probe`` means
#: ``vendor.ffmpeg.probe.Probe`` (LEGACY_ACTIONS.md §1.1).
VENDOR = "vendor."

Values = Mapping[str, Any]


@dataclass(frozen=True)
class Validation:
    """A declared validation of an upstream input, enforced before the action runs (upstream only
    declared them): ``GREATER_THAN``/``LESS_THAN`` a number, or ``ENDS_WITH`` one of ``svals``."""

    vtype: str
    ival: int | None = None
    svals: tuple[str, ...] = ()

    def check(self, name: str, value: Any) -> None:
        """Raise :class:`ActionFailed` when ``value`` (already converted) breaks the rule."""
        if value is None or value == "":
            return
        if self.vtype == "ENDS_WITH":
            if not str(value).lower().endswith(tuple(s.lower() for s in self.svals)):
                raise ActionFailed(f"{name} must end with one of {' '.join(self.svals)}, got {value!r}")
            return
        limit = self.ival if self.ival is not None else 0
        if self.vtype == "GREATER_THAN" and not value > limit:
            raise ActionFailed(f"{name} must be greater than {limit}, got {value}")
        if self.vtype == "LESS_THAN" and not value < limit:
            raise ActionFailed(f"{name} must be less than {limit}, got {value}")

    def as_json(self) -> dict[str, Any]:
        """plus-engine's form: ``{vtype, ival}`` (int64 as a string) or ``{vtype, svals}``."""
        if self.svals:
            return {"vtype": self.vtype, "svals": list(self.svals)}
        return {"vtype": self.vtype, "ival": str(self.ival)}


def greater_than(limit: int) -> Validation:
    return Validation("GREATER_THAN", ival=limit)


def less_than(limit: int) -> Validation:
    return Validation("LESS_THAN", ival=limit)


def ends_with(*suffixes: str) -> Validation:
    return Validation("ENDS_WITH", svals=suffixes)


@dataclass(frozen=True)
class LegacyInput:
    """One of upstream's inputs."""

    name: str
    ptype: int = PT.STRING
    #: The implementation's input it feeds under its own name; ``None``: only ``adapt`` reads it.
    ours: str | None = None
    #: Upstream's default (the method's keyword default, or the declared one where upstream
    #: declared one and never applied it); ``None`` when there is none.
    default: Any = None
    #: Upstream had no default: a node must give it, and a blank text or empty list is missing.
    required: bool = False
    hint: str = ""
    validations: tuple[Validation, ...] = ()
    #: The values of a FIXED_LIST_SINGLE_SELECT, for the catalogue.
    choices: tuple[str, ...] = ()
    #: False for a name upstream accepted without declaring it: taken, but not in the catalogue.
    published: bool = True


@dataclass(frozen=True)
class LegacyOutput:
    """One of upstream's outputs; ``ours`` is the implementation's output it repeats (``None``:
    ``finish`` computes it)."""

    name: str
    ptype: int = PT.STRING
    ours: str | None = None


@dataclass(frozen=True)
class LegacyInterface:
    """What an upstream script sees of an action. ``class_path`` is relative to ``src.actions``
    (``vendor.ffmpeg.probe.Probe``)."""

    class_path: str
    inputs: tuple[LegacyInput, ...]
    outputs: tuple[LegacyOutput, ...]
    #: The receipt's ``primary_output``: ``None`` = the first output, ``""`` = none.
    primary_output: str | None = None
    #: Upstream's (converted) inputs → more of the implementation's inputs, where a value means
    #: something else upstream. May raise :class:`ActionFailed`.
    adapt: Callable[[Values], Values] | None = None
    #: Upstream's inputs → attributes to replace on a copy of the implementation for this run.
    configure: Callable[[Values], Values] | None = None
    #: (context, upstream's inputs, the implementation's outputs) → upstream's outputs that are not
    #: plain renames.
    finish: Callable[[ActionContext, Values, Values], Values] | None = None

    @property
    def action_id(self) -> str:
        """The full class path, upstream's ``sys_action_id``."""
        return ROOT + self.class_path

    @property
    def label(self) -> str:
        """The class name (upstream never set a label)."""
        return self.class_path.rpartition(".")[2]

    def spellings(self) -> tuple[str, ...]:
        """The other ids that name it (LEGACY_ACTIONS.md §1.1)."""
        extra = (self.class_path.removeprefix(VENDOR),) if self.class_path.startswith(VENDOR) else ()
        return (self.class_path, *extra)


def class_paths(action_id: str) -> list[str]:
    """Where an id spelled as a class path may point, relative to ``src.actions``, first match
    first: ``src.actions.vendor.x.Y`` → ``[vendor.x.Y]``; ``ffmpeg.x.Y`` → ``[ffmpeg.x.Y,
    vendor.ffmpeg.x.Y]``; ``[]`` when the last segment is not a class name. Pure string work."""
    text = action_id.strip()
    head, _, last = text.rpartition(".")
    if not head or not last[:1].isupper():
        return []
    if text.startswith(ROOT):
        return [text.removeprefix(ROOT)]
    return [text, VENDOR + text]


class LegacyAction(Action):
    """``target`` behind upstream's interface ``interface`` (see the module docstring)."""

    def __init__(self, target: Action, interface: LegacyInterface) -> None:
        self.target = target
        self.interface = interface
        self.id = interface.action_id
        self.aliases = interface.spellings()
        self.description = (f"The upstream worker's {interface.label}: {target.id} with upstream's names "
                            f"and keys.")
        ours = {p.name: p for p in target.inputs}
        self.inputs = tuple(_param(spec, ours.get(spec.ours or "")) for spec in interface.inputs)
        self.outputs = tuple(Param(o.name, o.ptype) for o in interface.outputs)
        self.primary_output = interface.primary_output
        self._defaults = {p.name: p.default for p in target.inputs if p.default is not None}
        self._upstream_names = {spec.ours: spec.name for spec in interface.inputs if spec.ours}

    def renamed_input(self, name: str) -> str | None:
        upstream = self._upstream_names.get(name)
        return upstream if upstream != name else None

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        interface = self.interface
        for spec in interface.inputs:
            value = inputs.get(spec.name)
            blank = value is None or value == [] or (isinstance(value, str) and not value.strip())
            if spec.required and blank:
                raise ActionFailed(f"missing input: {spec.name}")
            for validation in spec.validations:
                validation.check(spec.name, value)
        ours = dict(self._defaults)
        ours.update({spec.ours: inputs[spec.name] for spec in interface.inputs
                     if spec.ours and inputs.get(spec.name) is not None})
        if interface.adapt is not None:
            ours.update(interface.adapt(inputs))
        implementation = self.target
        if interface.configure is not None:
            implementation = copy.copy(self.target)
            for attribute, value in interface.configure(inputs).items():
                setattr(implementation, attribute, value)
        produced = implementation.run(ctx, ours)
        outputs = {o.name: produced[o.ours] for o in interface.outputs if o.ours and o.ours in produced}
        if interface.finish is not None:
            outputs.update(interface.finish(ctx, inputs, produced))
        return outputs

    def catalogue_entry(self) -> dict[str, Any]:
        """This action as upstream's REGISTER_ACTIONS listed it (LEGACY_ACTIONS.md §3), without the
        fixed ``runtime`` and ``sys_name``; ``implements`` names the action behind it."""
        interface = self.interface
        return {
            "action_id": self.id,
            "class_path": self.id,
            "label": interface.label,
            "short_desc": "",
            "params": [parameter_json(p, spec.validations, spec.choices)
                       for p, spec in zip(self.inputs, interface.inputs, strict=True) if spec.published],
            "outputs": [parameter_json(p) for p in self.outputs],
            "implements": self.target.id,
        }


def _param(spec: LegacyInput, ours: Param | None) -> Param:
    """The published input: the implementation's parameter renamed, with upstream's ptype and default."""
    base = ours if ours is not None else Param(spec.name)
    return replace(base, name=spec.name, ptype=spec.ptype, default=spec.default,
                   optional=not spec.required, hint=spec.hint or base.hint, label=base.label)


def parameter_json(param: Param, validations: tuple[Validation, ...] = (),
                   choices: tuple[str, ...] = ()) -> dict[str, Any]:
    """A parameter in plus-engine's Parameter JSON (protobuf JSON, original field names): unset
    fields and the STRING ptype left out, enums by name, int64 as strings."""
    out: dict[str, Any] = {"var_name": param.name}
    if param.label:
        out["label"] = param.label
    if param.ptype != PT.STRING:
        out["ptype"] = PT.Name(param.ptype)
    if param.hint:
        out["hint"] = param.hint
    default = param.default
    if isinstance(default, bool):
        out["bdefault"] = default
    elif isinstance(default, int):
        out["idefault"] = str(default)
    elif isinstance(default, float):
        out["ddefault"] = default
    elif default is not None and default != "":
        out["sdefault"] = str(default)
    if param.optional:
        out["optional"] = True
    if validations:
        out["validations"] = [v.as_json() for v in validations]
    if choices:
        out["svals"] = [{"label": c, "value": c} for c in choices]
    return out
