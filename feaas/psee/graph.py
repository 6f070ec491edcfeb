"""Validate a PlusScript once and schedule its nodes (pure: no I/O, no actions run here).

``build_graph`` checks the whole script and raises :class:`InvalidScript` listing every problem;
``Scheduler`` hands out nodes whose dependencies are done, in the spirit of ``graphlib``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from feaas.errors import InvalidScript
from feaas.objects import PlusScript, PlusScriptNode, PlusScriptNodeType
from feaas.psee.values import parameter_default

NT = PlusScriptNodeType
MAIN_INPUT = "mainInput"
MAIN_OUTPUT = "mainOutput"
MAX_ACTION_NODES = 500  # action nodes per script run (SPEC §5.1)
MAX_PROBLEMS_SHOWN = 50
POST_PHASE = frozenset({NT.UPDATE_VALUES, NT.UI_FEEDBACK})
KNOWN_TYPES = frozenset(NT.values())


@dataclass(frozen=True)
class Edge:
    source: str
    source_handle: str
    target: str
    target_handle: str

    @property
    def register(self) -> str:
        return f"{self.source}:{self.source_handle}"


@dataclass
class Graph:
    nodes: dict[str, PlusScriptNode]
    incoming: dict[str, dict[str, Edge]]  # target node → input name → the edge feeding it
    link_sources: dict[str, set[str]]  # node → nodes that feed it through links or its conditional
    deps: dict[str, set[str]]  # node → everything it waits for (links, conditional, post-phase order)
    dependents: dict[str, set[str]] = field(default_factory=dict)
    outputs: dict[str, Edge] = field(default_factory=dict)  # mainOutput handle → edge
    error_branches: frozenset[str] = frozenset()  # actions whose receipt feeds a RECEIPT_META node
    action_nodes: tuple[str, ...] = ()


ActionLookup = Callable[[str], Any]  # action id → Action, or None when unknown


def build_graph(script: PlusScript, lookup_action: ActionLookup, provided_inputs: Iterable[str] = (), *,
                max_actions: int = MAX_ACTION_NODES) -> Graph:
    """Validate ``script`` and return its graph. Raises :class:`InvalidScript` with every problem.

    ``max_actions`` is the per-run limit (SPEC §5.1); only benchmarks lift it.
    """
    problems: list[str] = []
    nodes: dict[str, PlusScriptNode] = {}
    for index, node in enumerate(script.nodes):
        nid = node.unique_id
        if not nid:
            problems.append(f"node #{index + 1} has no unique_id")
        elif nid in (MAIN_INPUT, MAIN_OUTPUT):
            problems.append(f"node id {nid!r} is reserved")
        elif nid in nodes:
            problems.append(f"node id {nid!r} is used twice")
        else:
            nodes[nid] = node
        if node.ntype not in KNOWN_TYPES:
            problems.append(f"node {nid!r} has unknown type {node.ntype}")

    incoming: dict[str, dict[str, Edge]] = {nid: {} for nid in nodes}
    link_sources: dict[str, set[str]] = {nid: set() for nid in nodes}
    outputs: dict[str, Edge] = {}
    error_branches: set[str] = set()
    for index, link in enumerate(script.links):
        edge = Edge(link.source, link.sourceHandle, link.target, link.targetHandle)
        where = f"link #{index + 1} ({edge.source}:{edge.source_handle} → {edge.target}:{edge.target_handle})"
        ok = True
        if edge.source != MAIN_INPUT and edge.source not in nodes:
            problems.append(f"{where}: source {edge.source!r} is not a node")
            ok = False
        if edge.target != MAIN_OUTPUT and edge.target not in nodes:
            problems.append(f"{where}: target {edge.target!r} is not a node")
            ok = False
        if not edge.source_handle or not edge.target_handle:
            problems.append(f"{where}: missing sourceHandle or targetHandle")
            ok = False
        if not ok:
            continue
        feeds = outputs if edge.target == MAIN_OUTPUT else incoming[edge.target]
        if edge.target_handle in feeds:
            problems.append(f"input {edge.target}:{edge.target_handle} is fed by two links")
            continue
        feeds[edge.target_handle] = edge
        if edge.target != MAIN_OUTPUT and edge.source != MAIN_INPUT:
            link_sources[edge.target].add(edge.source)
            if (edge.source_handle == "receipt" and nodes[edge.target].ntype == NT.RECEIPT_META):
                error_branches.add(edge.source)

    for nid, node in nodes.items():
        if node.HasField("conditional"):
            src = node.conditional.source
            if src != MAIN_INPUT and src not in nodes:
                problems.append(f"node {nid!r}: conditional source {src!r} is not a node")
            elif src != MAIN_INPUT:
                link_sources[nid].add(src)

    action_nodes = tuple(nid for nid, n in nodes.items() if n.ntype == NT.ACTION)
    if len(action_nodes) > max_actions:
        problems.append(f"the script has {len(action_nodes)} actions; the limit is {max_actions}")
    for nid in action_nodes:
        node = nodes[nid]
        action = lookup_action(node.action_id) if node.action_id else None
        if action is None:
            problems.append(f"node {nid!r}: unknown action id {node.action_id!r}")
            continue
        if not action.accepts_any_inputs:
            problems += _unknown_inputs(nid, node, action, incoming[nid])
            problems += _missing_inputs(nid, node, action, incoming[nid])

    provided = set(provided_inputs)
    for param in script.inputs:
        required = not param.optional and not parameter_default(param)[0]
        if param.var_name and param.var_name not in provided and required:
            problems.append(f"script input {param.var_name!r} is required and has no value or default")

    deps = {nid: set(srcs) for nid, srcs in link_sources.items()}
    for nid, node in nodes.items():
        if node.ntype in POST_PHASE:
            deps[nid] |= set(action_nodes)
    cycle = find_cycle(deps)
    if cycle:
        problems.append("cycle: " + " → ".join(cycle))
    if problems:
        raise InvalidScript(describe_problems(problems))

    dependents: dict[str, set[str]] = {nid: set() for nid in nodes}
    for nid, sources in deps.items():
        for src in sources:
            dependents[src].add(nid)
    return Graph(
        nodes=nodes,
        incoming=incoming,
        link_sources=link_sources,
        deps=deps,
        dependents=dependents,
        outputs=outputs,
        error_branches=frozenset(error_branches),
        action_nodes=action_nodes,
    )


def describe_problems(problems: list[str]) -> str:
    """One message listing every problem; a script with thousands of them still gives a message
    short enough for the job document (it ends in "… and N more")."""
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    return "invalid script: " + "; ".join(shown) + (f"; … and {more} more" if more else "")


def _missing_inputs(nid: str, node: PlusScriptNode, action: Any, fed: Mapping[str, Edge]) -> list[str]:
    node_defaults = {p.var_name for p in node.inputs if p.optional or parameter_default(p)[0]}
    return [
        f"node {nid!r}: required input {p.name!r} of {action.id} has no link and no default"
        for p in action.inputs
        if not p.optional and p.default is None and p.name not in fed and p.name not in node_defaults
    ]


def _unknown_inputs(nid: str, node: PlusScriptNode, action: Any, fed: Mapping[str, Edge]) -> list[str]:
    """Inputs a node gives (a link, or a value among its own parameters) that its action does not
    declare. One rule for every action and run mode: upstream failed some of these and silently
    dropped others (LEGACY_ACTIONS.md §5). A new name given to an upstream interface is named as such."""
    declared = {p.name for p in action.inputs}
    given = [*fed, *(p.var_name for p in node.inputs if p.var_name and parameter_default(p)[0])]
    problems = []
    for name in dict.fromkeys(given):
        if name in declared:
            continue
        upstream = action.renamed_input(name)
        if upstream is not None and upstream in given:
            problems.append(f"node {nid!r}: inputs {upstream!r} and {name!r} are one input of {action.id} "
                            f"(its upstream name and its new name); give only {upstream!r}")
        elif upstream is not None:
            problems.append(f"node {nid!r}: {action.id} has no input {name!r}; this upstream id calls it "
                            f"{upstream!r}")
        else:
            expected = ", ".join(sorted(declared)) or "none"
            problems.append(f"node {nid!r}: {action.id} has no input {name!r} (its inputs: {expected})")
    return problems


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None. Iterative DFS (scripts may have 10,000 nodes)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for root in deps:
        if state.get(root):
            continue
        path: list[str] = [root]
        iters = [iter(deps[root])]
        state[root] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            if nxt not in deps:
                continue
            if state.get(nxt) == 1:
                # deps point from a node to what it waits for: reverse to show data flow
                return list(reversed([*path[path.index(nxt):], nxt]))
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(deps[nxt]))
    return None


class Scheduler:
    """Ready-set scheduling over a validated graph: ``get_ready()`` then ``done(node)``."""

    def __init__(self, graph: Graph) -> None:
        self._dependents = graph.dependents
        self._waiting = {nid: len(d) for nid, d in graph.deps.items()}
        self._ready = [nid for nid, n in self._waiting.items() if n == 0]
        self._left = len(self._waiting)

    def get_ready(self) -> list[str]:
        ready, self._ready = self._ready, []
        return ready

    def done(self, node: str) -> None:
        self._left -= 1
        for dependent in self._dependents[node]:
            self._waiting[dependent] -= 1
            if self._waiting[dependent] == 0:
                self._ready.append(dependent)

    def is_active(self) -> bool:
        return self._left > 0
