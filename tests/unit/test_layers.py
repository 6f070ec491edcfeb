"""The layers run one way (STYLE.md, issue 15 §5): worker → runners → jobs → psee → actions → dao →
the foundation (errors, settings, namespace, messages, logging). Every import in feaas/ and src/ is
read with ``ast`` (function-level and ``TYPE_CHECKING`` imports too); one that reaches a higher
layer, or a cycle between packages, fails.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Top to bottom. A module may import its own layer and the layers below it, never one above.
LAYERS: list[tuple[str, ...]] = [
    # entrypoints
    ("src.worker", "src.jobsteps", "src.sweep", "src.register", "src.catalogue", "src.startup"),
    ("feaas.launch", "feaas.jobview"),  # plus-engine's side: job documents, RunTask requests
    ("feaas.runners",),
    ("feaas.jobs",),
    ("feaas.psee",),
    ("src.actions",),
    ("feaas.actions",),
    ("feaas.dao",),
    ("feaas.settings", "feaas.errors", "feaas.exitcodes", "feaas.namespace", "feaas.netpolicy",
     "feaas.objects", "feaas.gen", "feaas.logs", "feaas.stopping", "feaas.metrics", "feaas.text",
     "feaas.usage", "feaas.resources", "feaas", "src"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for top in ("feaas", "src") for p in (ROOT / top).rglob("*.py")}
    found.update({module_name(p): p for p in (ROOT / "feaas" / "gen").glob("*.pyi")})
    return found


MODULES = modules()


def unit_of(module: str) -> str:
    """The layer entry a module belongs to: the longest prefix listed in LAYERS."""
    units = [u for layer in LAYERS for u in layer if module == u or module.startswith(u + ".")]
    if not units:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")
    return max(units, key=len)


def layer_of(module: str) -> int:
    unit = unit_of(module)
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def imports(module: str, source: str | None = None) -> Iterator[tuple[int, str]]:
    """``(line, imported module)`` for every import of a project module in ``module`` (or in
    ``source`` read as that module)."""
    path = MODULES.get(module, ROOT / "x.py")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*kept, base]).strip(".")
            # ``from feaas import logs`` imports the module feaas.logs
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in ("feaas", "src"):
                yield node.lineno, name


def upward_imports(module: str, source: str | None = None) -> list[str]:
    mine = layer_of(module)
    return [f"line {line}: {name} ({unit_of(name)})" for line, name in imports(module, source)
            if layer_of(name) < mine]


def test_every_module_has_a_layer():
    for module in MODULES:
        unit_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    upward = upward_imports(module)
    assert not upward, f"{module} ({unit_of(module)}) imports upward: " + "; ".join(upward)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        unit = unit_of(module)
        graph.setdefault(unit, set()).update(unit_of(name) for _,
                                             name in imports(module) if unit_of(name) != unit)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle between packages: {' → '.join(exc.args[1])}")


def test_no_cycle_between_modules():
    graph = {module: {name for _, name in imports(module) if name != module} for module in MODULES}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle between modules: {' → '.join(exc.args[1])}")


def test_the_checks_see_an_upward_import():
    """The test itself can fail: the cycle issue 15 found (actions importing psee) is caught, in
    every spelling of an import, and so is dao reaching up to the runners."""
    for source in ("from feaas.psee.values import ptype_name\n", "import feaas.psee.values\n",
                   "def f():\n    from feaas.psee import values\n",
                   ("from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from ..psee.values import ptype_name\n")):
        assert upward_imports("feaas.actions.registry", source), source
    assert upward_imports("feaas.dao.batch", "from feaas.runners.context import RunContext\n")
    assert not upward_imports("feaas.runners.items", "from feaas.dao.batch import BatchWriter\n")
