"""Updates and their conditions as values; the only place that writes DynamoDB's expression syntax.

Callers say what to set and what must hold (``equals("status", "RUNNING") & missing("lease_owner")``);
:class:`Update` turns both into an ``UpdateExpression`` and a ``ConditionExpression`` with
placeholders for every name and value, so no attribute name or value is ever spliced into text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: An attribute name, or a path into maps: ``("shards", "s0", "state")``.
Attr = str | tuple[str, ...]


class Condition:
    """What must hold for a write to happen. Build one with :func:`exists`, :func:`missing`,
    :func:`equals`, :func:`below`, :func:`one_of`; combine with ``&`` and ``|``."""

    def render(self, update: Update) -> str:
        raise NotImplementedError

    def __and__(self, other: Condition) -> Condition:
        return all_of((self, other))

    def __or__(self, other: Condition) -> Condition:
        return any_of((self, other))


@dataclass(frozen=True)
class _Function(Condition):
    function: str
    path: Attr

    def render(self, update: Update) -> str:
        return f"{self.function}({update.name(self.path)})"


@dataclass(frozen=True)
class _Comparison(Condition):
    path: Attr
    operator: str
    values: tuple[Any, ...]

    def render(self, update: Update) -> str:
        if self.operator == "IN":
            return f"{update.name(self.path)} IN ({', '.join(update.value(v) for v in self.values)})"
        return f"{update.name(self.path)} {self.operator} {update.value(self.values[0])}"


@dataclass(frozen=True)
class _Combination(Condition):
    joiner: str
    parts: tuple[Condition, ...]

    def render(self, update: Update) -> str:
        return self.joiner.join(f"({part.render(update)})" for part in self.parts)


def exists(path: Attr) -> Condition:
    """The attribute is there."""
    return _Function("attribute_exists", path)


def missing(path: Attr) -> Condition:
    """The attribute is not there."""
    return _Function("attribute_not_exists", path)


def equals(path: Attr, value: Any) -> Condition:
    """The attribute equals ``value``."""
    return _Comparison(path, "=", (value,))


def below(path: Attr, value: Any) -> Condition:
    """The attribute is less than ``value`` (a lease that ran out: ``below("lease_expires_at", now)``)."""
    return _Comparison(path, "<", (value,))


def one_of(path: Attr, values: Iterable[Any]) -> Condition:
    """The attribute holds one of ``values`` (at most 100, DynamoDB's limit for ``IN``)."""
    return _Comparison(path, "IN", tuple(values))


def all_of(parts: Iterable[Condition]) -> Condition:
    """Every part holds."""
    return _Combination(" AND ", tuple(parts))


def any_of(parts: Iterable[Condition]) -> Condition:
    """At least one part holds."""
    return _Combination(" OR ", tuple(parts))


@dataclass
class Update:
    """A conditional UpdateItem of named attributes, built without string juggling by callers.

    Keys of ``set`` and friends are attribute names, or tuples for a path into maps.
    """

    set: dict[Attr, Any] = field(default_factory=dict)
    set_if_absent: dict[Attr, Any] = field(default_factory=dict)
    add: dict[Attr, int | float] = field(default_factory=dict)
    remove: list[Attr] = field(default_factory=list)
    condition: Condition | None = None
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def setting(cls, values: Mapping[str, Any], condition: Condition | None = None, *,
                remove: Iterable[Attr] = ()) -> Update:
        """An update that sets ``values`` (plain attribute names) and removes ``remove``."""
        update = cls(condition=condition, remove=list(remove))
        for name, value in values.items():
            update.set[name] = value
        return update

    def name(self, attribute: Attr) -> str:
        """Placeholder for an attribute name, or a dotted path of placeholders for a tuple path."""
        if isinstance(attribute, tuple):
            return ".".join(self.name(part) for part in attribute)
        for existing, attr in self.names.items():
            if attr == attribute:
                return existing
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def expression(self) -> str:
        sets = [f"{self.name(k)} = {self.value(v)}" for k, v in self.set.items()]
        sets += [f"{self.name(k)} = if_not_exists({self.name(k)}, {self.value(v)})"
                 for k, v in self.set_if_absent.items()]
        parts = []
        if sets:
            parts.append("SET " + ", ".join(sets))
        if self.add:
            parts.append("ADD " + ", ".join(f"{self.name(k)} {self.value(v)}" for k, v in self.add.items()))
        if self.remove:
            parts.append("REMOVE " + ", ".join(self.name(k) for k in self.remove))
        return " ".join(parts)

    def condition_expression(self, *extra: Condition) -> str | None:
        """The rendered ``condition`` together with ``extra`` conditions (all must hold)."""
        parts = [*extra, *([self.condition] if self.condition is not None else [])]
        if not parts:
            return None
        return (parts[0] if len(parts) == 1 else all_of(parts)).render(self)
