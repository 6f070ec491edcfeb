"""Large values of a job document moved to the bucket, so the document stays under DynamoDB's 400 KB
item limit whatever a script produces (SPEC §3.3).

An offloaded value is replaced in the document by ``{"ptype": "KEY", "sval": <bucket key>}`` and
listed in the ``offloaded`` attribute (``"registers.<name>"`` → key), so readers and a resumed run
can fetch it back. Values never change once set, so each is uploaded once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from feaas.dao.codec import message_to_plain, parse_message
from feaas.namespace import normalise_key
from feaas.objects import AnyType, PlusScriptJob, Receipt

#: A single register/receipt/output value larger than this (JSON bytes) goes to the bucket.
LARGE_VALUE_BYTES = 16 * 1024
#: Total budget for the values kept inline in a job document (the item limit is 400 KB).
INLINE_BUDGET_BYTES = 256 * 1024
ITEM_LIMIT_BYTES = 400 * 1024
#: Room kept for what the worker adds besides values: status, timestamps, counts, error_message.
ITEM_MARGIN_BYTES = 48 * 1024
GROUPS = ("registers", "receipts", "output")


class ObjectStore(Protocol):
    """Where offloaded values go: the user's namespace-scoped storage (every key is checked there)."""

    namespace: str

    def get_bytes(self, key: str) -> bytes: ...

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None: ...


def plain_size(value: Any) -> int:
    """Bytes of ``value`` in JSON, a close upper bound of its DynamoDB size."""
    return len(json.dumps(value, default=str, ensure_ascii=False).encode("utf-8"))


def document_budget(job_doc: Mapping[str, Any]) -> int:
    """Bytes left for registers, receipts and output in the job document: what DynamoDB allows
    (400 KB) less a safety margin and everything else the document holds (the script above all)."""
    rest = {k: v for k, v in job_doc.items() if k not in (*GROUPS, "offloaded")}
    return max(32 * 1024, ITEM_LIMIT_BYTES - ITEM_MARGIN_BYTES - plain_size(rest))


def offload(store: ObjectStore, key: str, plain: Any) -> dict[str, Any]:
    """Write ``plain`` (a value's JSON form) to ``key``; returns the reference kept in its place."""
    key = normalise_key(key, store.namespace)
    store.put_bytes(key, json.dumps(plain).encode("utf-8"), "application/json")
    return {"ptype": "KEY", "sval": key}


class JobValues:
    """Registers, receipts and outputs (as messages) ⇄ the job document's attributes.

    When the document would still pass ``budget_bytes`` (many values, a large script), a whole
    group is moved to one object: the document keeps ``{}`` and ``offloaded[group]`` names an
    object ``{"values": ..., "offloaded": ...}`` holding the group and its own value references.
    ``{node}:receipt`` registers are not stored: they repeat ``receipts`` and are rebuilt on resume.
    """

    def __init__(self, storage: ObjectStore, prefix: str, budget_bytes: int = INLINE_BUDGET_BYTES) -> None:
        self.storage = storage
        self.prefix = prefix
        self.budget_bytes = budget_bytes
        self.offloaded: dict[str, str] = {}
        self._lock = threading.Lock()

    def _key(self, path: str) -> str:
        return f"{self.prefix}{path.replace('/', '_')}.json"

    def _offload(self, path: str, plain: Any) -> dict[str, Any]:
        with self._lock:
            key = self.offloaded.get(path)
            if key is None:
                key = offload(self.storage, self._key(path), plain)["sval"]
                self.offloaded[path] = key
        return {"ptype": "KEY", "sval": key}

    def encode(
        self,
        registers: Mapping[str, AnyType] | None = None,
        receipts: Mapping[str, Receipt] | None = None,
        output: Mapping[str, AnyType] | None = None,
    ) -> dict[str, Any]:
        """Document attributes for the given values (only the groups passed)."""
        entries: list[tuple[int, str, str, str | None, Any]] = []  # size, group, name, output name, plain
        attrs: dict[str, Any] = {}
        groups = {"registers": registers, "output": output}
        for group, values in groups.items():
            if values is None:
                continue
            attrs[group] = {}
            for name, value in values.items():
                if group == "registers" and name.endswith(":receipt"):
                    continue
                plain = message_to_plain(value)
                entries.append((plain_size(plain), group, name, None, plain))
        if receipts is not None:
            attrs["receipts"] = {}
            for node, receipt in receipts.items():
                plain = message_to_plain(receipt)
                outputs = plain.pop("outputs", {})
                attrs["receipts"][node] = plain
                for out_name, out_value in outputs.items():
                    entries.append((plain_size(out_value), "receipts", node, out_name, out_value))
        total = 0
        for size, group, name, out_name, plain in sorted(entries, key=lambda e: e[0]):
            path = f"{group}.{name}" + (f".{out_name}" if out_name else "")
            if size > LARGE_VALUE_BYTES or total + size > self.budget_bytes or path in self.offloaded:
                plain = self._offload(path, plain)
            else:
                total += size
            if out_name is None:
                attrs[group][name] = plain
            else:
                attrs["receipts"][name].setdefault("outputs", {})[out_name] = plain
        offloaded: dict[str, str] = dict(self.offloaded)
        present = [g for g in GROUPS if g in attrs]
        while present and plain_size({**attrs, "offloaded": offloaded}) > self.budget_bytes:
            group = max(present, key=lambda g: plain_size(attrs[g]))
            present.remove(group)
            own = {path: key for path, key in offloaded.items() if path.startswith(group + ".")}
            key = offload(
                self.storage, self._key(f"{group}-all"), {"values": attrs[group], "offloaded": own}
            )["sval"]
            attrs[group] = {}
            offloaded = {path: k for path, k in offloaded.items() if path not in own}
            offloaded[group] = key
        if offloaded:
            attrs["offloaded"] = offloaded
        return attrs

    def decode(
        self, job_doc: Mapping[str, Any], job: PlusScriptJob
    ) -> tuple[dict[str, AnyType], dict[str, Receipt]]:
        """Registers and receipts already on the job, with offloaded values fetched back."""
        offloaded = job_doc.get("offloaded") or {}
        whole: dict[str, dict[str, Any]] = {}
        for path, key in offloaded.items():
            if not isinstance(key, str):
                continue
            if path in GROUPS:
                blob = json.loads(self.storage.get_bytes(key))
                whole[path] = blob.get("values") or {}
                self.offloaded.update(
                    {k: v for k, v in (blob.get("offloaded") or {}).items() if isinstance(v, str)}
                )
            else:
                self.offloaded[path] = key

        def load(path: str, value: AnyType) -> AnyType:
            key = self.offloaded.get(path)
            if key is None:
                return value
            return parse_message(json.loads(self.storage.get_bytes(key)), AnyType())

        stored_registers = dict(job.registers)
        if "registers" in whole:
            stored_registers = {n: parse_message(v, AnyType()) for n, v in whole["registers"].items()}
        stored_receipts = dict(job.receipts)
        if "receipts" in whole:
            stored_receipts = {n: parse_message(v, Receipt()) for n, v in whole["receipts"].items()}
        registers = {name: load(f"registers.{name}", v) for name, v in stored_registers.items()}
        receipts: dict[str, Receipt] = {}
        for node, receipt in stored_receipts.items():
            copy = Receipt()
            copy.CopyFrom(receipt)
            for out_name in list(copy.outputs):
                copy.outputs[out_name].CopyFrom(load(f"receipts.{node}.{out_name}", copy.outputs[out_name]))
            receipts[node] = copy
        return registers, receipts
