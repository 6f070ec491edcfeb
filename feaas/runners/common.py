"""What every runner gets (RunContext) and gives back (Outcome), and the job-document values codec
that keeps documents under DynamoDB's 400 KB item limit by moving large values to the bucket."""

from __future__ import annotations

import json
import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feaas.actions.base import ActionContext
from feaas.actions.context import UserStorage
from feaas.actions.netpolicy import NetworkPolicy
from feaas.actions.registry import Registry
from feaas.dao import Dao
from feaas.dao.codec import CodecError, message_to_plain, parse_message
from feaas.errors import Cancelled, Interrupted, JobFailed, JobNotClaimable
from feaas.jobs import JobStatus, Progress
from feaas.namespace import check_stream_id, job_id_parts, namespace_for, normalise_key
from feaas.objects import AnyType, PlusScriptJob, Receipt
from feaas.psee.engine import NodeEnvironment
from feaas.psee.nodes import WriterTarget
from feaas.psee.values import from_any, to_any
from feaas.settings import Settings
from feaas.stopping import StopSignal
from feaas.text import bounded, describe

logger = logging.getLogger(__name__)

#: A single register/receipt/output value larger than this (JSON bytes) goes to the bucket.
LARGE_VALUE_BYTES = 16 * 1024
#: Total budget for the values kept inline in a job document (the item limit is 400 KB).
INLINE_BUDGET_BYTES = 256 * 1024
ITEM_LIMIT_BYTES = 400 * 1024
#: Room kept for what the worker adds besides values: status, timestamps, counts, error_message.
ITEM_MARGIN_BYTES = 48 * 1024


@dataclass
class Outcome:
    status: JobStatus
    error_message: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    stopped: BaseException | None = None
    remove: tuple[str, ...] = ()  # attributes to drop from the job (e.g. a stale ``outcome``)

    @classmethod
    def failed(cls, message: str, **attrs: Any) -> Outcome:
        return cls(JobStatus.FAILED, message, dict(attrs))

    def final(self, progress: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...], str]:
        """What the finish writes: ``(attributes, attributes to remove, error message)``. The
        last progress is kept; an interruption makes the job resumable; a cancel stamps the time."""
        attrs = {**progress, **self.attrs}
        message = self.error_message
        if isinstance(self.stopped, Interrupted):
            message = f"Job was interrupted ({self.stopped.signal_name}); it can be resumed"
            attrs["resumable"] = True
        elif isinstance(self.stopped, JobFailed):  # cancelled, deadline, or a failure that stopped the run
            message = str(self.stopped)
            if isinstance(self.stopped, Cancelled):
                attrs["cancelled_at"] = int(time.time())
        if not message:
            return attrs, (*self.remove, "error_message"), ""
        attrs["error_message"] = message = bounded(message)
        return attrs, self.remove, message


@dataclass
class RunContext:
    settings: Settings
    dao: Dao
    registry: Registry
    item: dict[str, Any]
    job: PlusScriptJob
    hostname: str
    namespace: str
    storage: UserStorage
    progress: Progress
    stop: StopSignal
    tmp_root: Path
    #: set by a runner that shows actions' own progress (node id, fraction 0–1)
    action_progress: Callable[[str, float], None] | None = None

    @property
    def job_uuid(self) -> str:
        return self.settings.job_id.rsplit("job.", 1)[-1].replace("/", "_") or "job"

    def job_values(self) -> JobValues:
        """The codec of this job's registers, receipts and output; large values go under the job's prefix."""
        return JobValues(self.storage, f"{self.namespace}.plus-worker/jobs/{self.job_uuid}/",
                         budget_bytes=min(INLINE_BUDGET_BYTES, document_budget(self.item)))

    def node_environment(self) -> NodeEnvironment:
        return NodeEnvironment(make_context=self.action_context, writer=self.writer_target(), tmp_root=self.tmp_root)

    def action_context(self, node_id: str, tmp_dir: Path) -> ActionContext:
        sink = self.action_progress

        def report(fraction: float) -> None:
            if sink is not None:
                sink(node_id, fraction)

        return ActionContext(
            storage=self.storage, tmp_dir=tmp_dir, cancel=self.stop.event,
            log=logging.LoggerAdapter(logging.getLogger("feaas.actions"), {"fields": {"node": node_id}}),
            report_progress=report, memory_limit_mb=self.settings.memory_limit_mb,
            network=NetworkPolicy(allowed=self.settings.screenshot_allowed),
        )

    def writer_target(self) -> WriterTarget:
        def put_file(key: str, data: bytes, content_type: str) -> str:
            checked = self.storage.check_key(key)
            self.storage.put_bytes(checked, data, content_type)
            return checked

        def append_stream(stream_id: str, row: Mapping[str, Any]) -> int:
            check_stream_id(stream_id, self.namespace)
            return self.dao.streams.append(stream_id, {**row, "job_id": self.settings.job_id})

        return WriterTarget(namespace=self.namespace, put_file=put_file, append_stream=append_stream)


def parse_job(item: Mapping[str, Any]) -> PlusScriptJob:
    """The job document as a message; a malformed document is a recorded FAILED."""
    try:
        return parse_message(item, PlusScriptJob())
    except CodecError as exc:
        raise JobFailed(f"invalid job document: {exc}") from None


def _names_a_user(item: Mapping[str, Any]) -> bool:
    """Whether the stored job has a ``username`` or an ``owner`` of the form ``{hostname}/{username}/…``."""
    username, owner = item.get("username"), item.get("owner")
    return (isinstance(username, str) and bool(username)) or (isinstance(owner, str) and owner.count("/") >= 2)


def check_identity_before_claim(item: Mapping[str, Any] | None, job_id: str, username: str) -> None:
    """Refuse, before anything is written, a job that names no user outside the task's namespace.

    A job with neither ``username`` nor a parseable ``owner`` belongs to whoever its id names
    (``{hostname}/{username}/job.{uuid}``); a task for another user must not claim it, run it in its
    own namespace, or even record it FAILED (issue 13 §6, SPEC §8.3). A missing job passes: the
    claim reports it. Raises :class:`JobNotClaimable`.
    """
    if item is None or _names_a_user(item):
        return
    parts = job_id_parts(job_id)
    if parts is None or parts[1] != username:
        raise JobNotClaimable(
            f"job {job_id} names no user (neither username nor owner) and its id is not in the namespace of "
            f"{describe(username)}; it was left unchanged")


def job_identity(item: Mapping[str, Any], job: PlusScriptJob, username: str, job_id: str) -> tuple[str, str]:
    """``(hostname, namespace)`` of the job's user; refuses a username mismatch (SPEC §1.1).

    The job's owner (``{hostname}/{username}/job``) names its user too: a task for another user,
    or a ``hostname`` attribute naming another host than the owner, is refused as well. A job that
    names no user at all is identified by its id (:func:`check_identity_before_claim`)."""
    if job.username and job.username != username:
        raise JobFailed(f"username mismatch: the job belongs to {describe(job.username)}, "
                        f"the task runs for {describe(username)}")
    owner_host, owner_user = "", ""
    origin = f"owner {describe(job.owner)}"
    if job.owner.count("/") >= 2:
        owner_host, owner_user = job.owner.split("/")[:2]
        if owner_user != username:
            raise JobFailed(f"username mismatch: the job's owner {describe(job.owner)} belongs to "
                            f"{describe(owner_user)}, the task runs for {describe(username)}")
    elif not job.username:
        parts = job_id_parts(job_id)
        if parts is None or parts[1] != username:  # refused before the claim; kept as a second lock
            raise JobFailed(f"the job names no user and its id {describe(job_id)} is not in the namespace of "
                            f"{describe(username)}")
        owner_host, origin = parts[0], f"id {describe(job_id)}"
    hostname = item.get("hostname") or owner_host
    if not isinstance(hostname, str) or not hostname or "/" in hostname or hostname in (".", ".."):
        raise JobFailed(f"the job has no usable hostname (hostname attribute {describe(item.get('hostname'))}, "
                        f"{origin})")
    if owner_host and hostname != owner_host:
        raise JobFailed(f"hostname mismatch: the job's hostname attribute says {describe(hostname)}, "
                        f"its {origin} says {describe(owner_host)}")
    return hostname, namespace_for(hostname, username)


def _number(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise JobFailed(f"the job's {name} must be a number, got {describe(value)}")
    return number


def job_limits(item: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """The job's own ``timeout_seconds`` and ``tolerated_failure_percent`` (None when absent),
    checked before anything runs: a value that is not a number in range fails the job."""
    timeout = _number(item, "timeout_seconds")
    if timeout is not None and timeout <= 0:
        raise JobFailed(f"the job's timeout_seconds must be a positive number of seconds, "
                        f"got {describe(item['timeout_seconds'])}")
    tolerated = _number(item, "tolerated_failure_percent")
    if tolerated is not None and not 0 <= tolerated <= 100:
        raise JobFailed(f"the job's tolerated_failure_percent must be between 0 and 100, "
                        f"got {describe(item['tolerated_failure_percent'])}")
    return timeout, tolerated


GROUPS = ("registers", "receipts", "output")


def plain_size(value: Any) -> int:
    """Bytes of ``value`` in JSON, a close upper bound of its DynamoDB size."""
    return len(json.dumps(value, default=str, ensure_ascii=False).encode("utf-8"))


class JobValues:
    """Registers, receipts and outputs ⇄ the job document, offloading large values to the bucket.

    An offloaded value is replaced in the document by ``{"ptype": "KEY", "sval": <bucket key>}``
    and listed in the ``offloaded`` attribute (``"registers.<name>"`` → key), so readers and a
    resumed run can fetch it back. Values never change once set, so each is uploaded once.

    When the document would still pass ``budget_bytes`` (many values, a large script), a whole
    group is moved to one object: the document keeps ``{}`` and ``offloaded[group]`` names an
    object ``{"values": ..., "offloaded": ...}`` holding the group and its own value references.
    ``{node}:receipt`` registers are not stored: they repeat ``receipts`` and are rebuilt on resume.
    """

    def __init__(self, storage: UserStorage, prefix: str, budget_bytes: int = INLINE_BUDGET_BYTES) -> None:
        self.storage = storage
        self.prefix = prefix
        self.budget_bytes = budget_bytes
        self.offloaded: dict[str, str] = {}
        self._lock = threading.Lock()

    def _key(self, path: str) -> str:
        return normalise_key(f"{self.prefix}{path.replace('/', '_')}.json", self.storage.namespace)

    def _offload(self, path: str, plain: Any) -> dict[str, Any]:
        with self._lock:
            key = self.offloaded.get(path)
            if key is None:
                key = self._key(path)
                self.storage.put_bytes(key, json.dumps(plain).encode("utf-8"), "application/json")
                self.offloaded[path] = key
        return {"ptype": "KEY", "sval": key}

    def encode(self, registers: Mapping[str, Any] | None = None, receipts: Mapping[str, Receipt] | None = None,
               output: Mapping[str, Any] | None = None) -> dict[str, Any]:
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
                plain = message_to_plain(to_any(value))
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
            key = self._key(f"{group}-all")
            self.storage.put_bytes(key, json.dumps({"values": attrs[group], "offloaded": own}).encode("utf-8"),
                                   "application/json")
            attrs[group] = {}
            offloaded = {path: k for path, k in offloaded.items() if path not in own}
            offloaded[group] = key
        if offloaded:
            attrs["offloaded"] = offloaded
        return attrs

    def decode(self, item: Mapping[str, Any], job: PlusScriptJob) -> tuple[dict[str, Any], dict[str, Receipt]]:
        """Registers and receipts already on the job, with offloaded values fetched back."""
        offloaded = item.get("offloaded") or {}
        whole: dict[str, dict[str, Any]] = {}
        for path, key in offloaded.items():
            if not isinstance(key, str):
                continue
            if path in GROUPS:
                blob = json.loads(self.storage.get_bytes(key))
                whole[path] = blob.get("values") or {}
                self.offloaded.update({k: v for k, v in (blob.get("offloaded") or {}).items() if isinstance(v, str)})
            else:
                self.offloaded[path] = key

        def load(path: str, value: AnyType) -> AnyType:
            key = self.offloaded.get(path)
            if key is None:
                return value
            restored = AnyType()
            return parse_message(json.loads(self.storage.get_bytes(key)), restored)

        stored_registers = dict(job.registers)
        if "registers" in whole:
            stored_registers = {n: parse_message(v, AnyType()) for n, v in whole["registers"].items()}
        stored_receipts = dict(job.receipts)
        if "receipts" in whole:
            stored_receipts = {n: parse_message(v, Receipt()) for n, v in whole["receipts"].items()}
        registers = {name: from_any(load(f"registers.{name}", v)) for name, v in stored_registers.items()}
        receipts: dict[str, Receipt] = {}
        for node, receipt in stored_receipts.items():
            copy = Receipt()
            copy.CopyFrom(receipt)
            for out_name in list(copy.outputs):
                copy.outputs[out_name].CopyFrom(load(f"receipts.{node}.{out_name}", copy.outputs[out_name]))
            receipts[node] = copy
        return registers, receipts


def document_budget(item: Mapping[str, Any]) -> int:
    """Bytes left for registers, receipts and output in the job document: what DynamoDB allows
    (400 KB) less a safety margin and everything else the document holds (the script above all)."""
    rest = {k: v for k, v in item.items() if k not in (*GROUPS, "offloaded")}
    return max(32 * 1024, ITEM_LIMIT_BYTES - ITEM_MARGIN_BYTES - plain_size(rest))


def make_tmp_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="plus-worker-"))


