"""The built-in ``sys.*`` actions (SPEC §5.2)."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from feaas.actions.base import Action, ActionCancelled, ActionContext, ActionFailed, Param
from feaas.actions.context import DocumentNotFound
from feaas.actions.legacy import LegacyInput, LegacyInterface, LegacyOutput
from feaas.dao import BlobNotFound
from feaas.objects import ParameterType as PT
from feaas.resources import human_size, value_size

MAX_FORMAT_WIDTH = 100_000
_NUMBER = re.compile(r"\d+")


class Nap(Action):
    id = "sys.debug.nap"
    description = "Sleep for `seconds` (0–3600); stops early when the job is cancelled."
    inputs = (Param("seconds", PT.FLOAT, default=1.0),)
    outputs = (Param("slept_seconds", PT.FLOAT), Param("message", PT.STRING))
    legacy = LegacyInterface(
        "sys.debug.nap.Nap",
        inputs=(LegacyInput("seconds", PT.INTEGER, default=0),),
        outputs=(LegacyOutput("slept_seconds", PT.INTEGER), LegacyOutput("message")),
        primary_output="",
        adapt=lambda i: {"seconds": min(max(i["seconds"], 0), 3600)},  # upstream clamped
        finish=lambda ctx, i, out: {"slept_seconds": round(out["slept_seconds"]),
                                    "message": f"Slept for {round(out['slept_seconds'])} seconds"},
    )

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        seconds = inputs["seconds"]
        if not 0 <= seconds <= 3600:
            raise ActionFailed(f"seconds must be between 0 and 3600, got {seconds}")
        if ctx.cancel.wait(seconds):
            raise ActionCancelled("nap stopped early: the job was cancelled or interrupted")
        return {"slept_seconds": seconds, "message": f"slept {seconds:g} s"}


class Echo(Action):
    id = "sys.debug.echo"
    aliases = ("sys.debug.echo.Echo",)
    description = "Return every input unchanged, under the same names."
    accepts_any_inputs = True

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        return dict(inputs)


class Fail(Action):
    id = "sys.debug.fail"
    aliases = ("sys.debug.fail.Fail",)
    description = "Always fail with `message`."
    inputs = (Param("message", PT.STRING, default="failed on purpose"),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        raise ActionFailed(inputs["message"])


class Add(Action):
    id = "sys.math.add"
    aliases = ("sys.math.add.Add",)
    description = "`sum` = `a` + `b` (an integer when both are integers)."
    # JSON so that 2 and "2" stay integers while 2.5 stays a float; checked below.
    inputs = (Param("a", PT.JSON, hint="number"), Param("b", PT.JSON, hint="number"))
    outputs = (Param("sum", PT.FLOAT),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        a, b = (_number(name, inputs[name]) for name in ("a", "b"))
        return {"sum": a + b}


def _number(name: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ActionFailed(f"{name} must be a number, got {value!r:.60}")
    return value


class Format(Action):
    id = "sys.text.format"
    aliases = ("sys.text.format.Format",)
    description = (
        "Fill `{name}` fields of `template` from the JSON object `values` (no attribute or index access)."
    )
    inputs = (Param("template", PT.STRING), Param("values", PT.JSON, default={}))
    outputs = (Param("text", PT.STRING),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        values = inputs["values"]
        if not isinstance(values, dict):
            raise ActionFailed("values must be a JSON object")
        parts = []
        try:
            fields = list(string.Formatter().parse(inputs["template"]))
            for _literal, field, spec, _conversion in fields:
                if field is None:
                    continue
                if not field.isidentifier():  # refuse {a.b}, {a[0]}, {0}: data never reaches attributes
                    raise ActionFailed(f"template field {{{field}}} must be a plain name")
                if field not in values:
                    raise ActionFailed(f"template field {{{field}}} has no value")
                # {x:>999999999} would allocate gigabytes before anything could check the result
                if any(int(n) > MAX_FORMAT_WIDTH for n in _NUMBER.findall(spec or "")):
                    raise ActionFailed(
                        f"template field {{{field}}}: width or precision above {MAX_FORMAT_WIDTH}"
                    )
            # "{x:99999}" * 30000 passes each field's check but would build gigabytes together
            _check_format_size(fields, values, ctx.max_value_bytes)
            for literal, field, spec, conversion in fields:
                parts.append(literal)
                if field is None:
                    continue
                value = values[field]
                if conversion == "r":
                    value = repr(value)
                parts.append(format(value, spec or ""))
        except (ValueError, TypeError) as exc:  # bad spec, or a spec the value's type does not take
            raise ActionFailed(f"invalid template: {exc}") from None
        return {"text": "".join(parts)}


def _check_format_size(fields: list[tuple[str, str | None, str | None, str | None]], values: dict[str, Any],
                       limit: int) -> None:
    """Refuse a template whose text could exceed ``limit`` before any of it is built: an upper bound
    from its parts (literal text, and per field its width, precision and value's length)."""
    sizes: dict[str, int] = {}
    bound = 0
    for literal, field, spec, _conversion in fields:
        bound += len(literal)
        if field is None or field not in values:
            continue
        if field not in sizes:
            sizes[field] = 2 * value_size(values[field]) + 400  # repr's escapes, a float's digits
        numbers = [int(n) for n in _NUMBER.findall(spec or "")]
        bound += sum(numbers) + sizes[field]
    if bound > limit:
        raise ActionFailed(f"the text would be up to {human_size(bound)} (limit {human_size(limit)})")


@contextmanager
def _input_exists(key: str) -> Iterator[None]:
    """A missing object at ``key`` fails the action with "no object at …"."""
    try:
        yield
    except BlobNotFound:
        raise ActionFailed(f"no object at {key!r}") from None


class PutText(Action):
    id = "sys.blob.put_text"
    aliases = ("sys.blob.put_text.PutText",)
    description = "Write `text` (UTF-8) to bucket key `key`."
    inputs = (Param("key", PT.KEY), Param("text", PT.STRING, default=""))
    outputs = (Param("key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        key = ctx.storage.check_key(inputs["key"])
        ctx.storage.put_bytes(key, inputs["text"].encode("utf-8"), "text/plain; charset=utf-8")
        return {"key": key}


class GetText(Action):
    id = "sys.blob.get_text"
    aliases = ("sys.blob.get_text.GetText",)
    description = "Read bucket key `key` as UTF-8 text."
    inputs = (Param("key", PT.KEY),)
    outputs = (Param("text", PT.STRING), Param("size", PT.INTEGER))

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        with _input_exists(inputs["key"]):
            data = ctx.storage.get_bytes(inputs["key"])
        try:
            return {"text": data.decode("utf-8"), "size": len(data)}
        except UnicodeDecodeError:
            raise ActionFailed(f"{inputs['key']!r} is not UTF-8 text") from None


class Copy(Action):
    id = "sys.blob.copy"
    aliases = ("sys.blob.copy.Copy",)
    description = "Copy bucket key `src_key` to `dest_key`."
    inputs = (Param("src_key", PT.KEY), Param("dest_key", PT.KEY))
    outputs = (Param("dest_key", PT.KEY),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        dest = ctx.storage.check_key(inputs["dest_key"])
        with _input_exists(inputs["src_key"]):
            ctx.storage.copy(inputs["src_key"], dest)
        return {"dest_key": dest}


class DocGet(Action):
    id = "sys.doc.get"
    aliases = ("sys.doc.get.DocGet",)
    description = "Read document `object_id` as JSON."
    inputs = (Param("object_id", PT.OBJECT_ID),)
    outputs = (Param("document", PT.JSON),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        doc = ctx.storage.get_document(inputs["object_id"])
        if doc is None:
            raise ActionFailed(f"no document {inputs['object_id']!r}")
        return {"document": doc}


class DocUpdate(Action):
    id = "sys.doc.update"
    aliases = ("sys.doc.update.DocUpdate",)
    description = "Set the attributes in JSON object `values` on existing document `object_id`."
    inputs = (Param("object_id", PT.OBJECT_ID), Param("values", PT.JSON))
    outputs = (Param("object_id", PT.OBJECT_ID),)

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        values = inputs["values"]
        if not isinstance(values, dict):
            raise ActionFailed("values must be a JSON object")
        try:
            ctx.storage.update_document(inputs["object_id"], values)
        except DocumentNotFound:
            raise ActionFailed(f"no document {inputs['object_id']!r}") from None
        return {"object_id": inputs["object_id"]}


BUILTIN_ACTIONS: list[Action] = [
    Nap(),
    Echo(),
    Fail(),
    Add(),
    Format(),
    PutText(),
    GetText(),
    Copy(),
    DocGet(),
    DocUpdate(),
]
