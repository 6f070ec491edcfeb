"""Updates and their conditions as values; the only place that writes DynamoDB's expression syntax.

Callers say what to set and what must hold (``Equals("status", "RUNNING") & Missing("lease_owner")``);
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
    """What must hold for a write to happen. Combine with ``&`` and ``|``."""

    def render(self, update: Update) -> str:
        raise NotImplementedError

    def __and__(self, other: Condition) -> Condition:
        return AllOf((self, other))

    def __or__(self, other: Condition) -> Condition:
        return AnyOf((self, other))


@dataclass(frozen=True)
class Exists(Condition):
    path: Attr

    def render(self, update: Update) -> str:
        return f"attribute_exists({update.name(self.path)})"


@dataclass(frozen=True)
class Missing(Condition):
    path: Attr

    def render(self, update: Update) -> str:
        return f"attribute_not_exists({update.name(self.path)})"


@dataclass(frozen=True)
class Equals(Condition):
    path: Attr
    value: Any

    def render(self, update: Update) -> str:
        return f"{update.name(self.path)} = {update.value(self.value)}"


@dataclass(frozen=True)
class OneOf(Condition):
    """The attribute holds one of ``values`` (at most 100, DynamoDB's limit for ``IN``)."""

    path: Attr
    values: tuple[Any, ...]

    def render(self, update: Update) -> str:
        return f"{update.name(self.path)} IN ({', '.join(update.value(v) for v in self.values)})"


@dataclass(frozen=True)
class Below(Condition):
    """The attribute is less than ``value`` (a lease that ran out: ``Below("lease_expires_at", now)``)."""

    path: Attr
    value: Any

    def render(self, update: Update) -> str:
        return f"{update.name(self.path)} < {update.value(self.value)}"


@dataclass(frozen=True)
class AllOf(Condition):
    parts: tuple[Condition, ...]

    def render(self, update: Update) -> str:
        return " AND ".join(f"({part.render(update)})" for part in self.parts)


@dataclass(frozen=True)
class AnyOf(Condition):
    parts: tuple[Condition, ...]

    def render(self, update: Update) -> str:
        return " OR ".join(f"({part.render(update)})" for part in self.parts)


def all_of(parts: Iterable[Condition]) -> Condition:
    return AllOf(tuple(parts))


def any_of(parts: Iterable[Condition]) -> Condition:
    return AnyOf(tuple(parts))


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
