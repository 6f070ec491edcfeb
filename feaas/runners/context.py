"""What every runner gets (:class:`RunContext`: the claimed job, its user's storage, progress and
the stop signal) and gives back (:class:`Outcome`: what the finish writes)."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feaas.actions.base import ActionContext
from feaas.actions.context import UserStorage
from feaas.actions.registry import Registry
from feaas.dao import Dao
from feaas.dao.offload import INLINE_BUDGET_BYTES, JobValues, document_budget
from feaas.errors import Cancelled, Interrupted, JobFailed
from feaas.jobs import ChunkedJobRecord, JobStatus, Progress
from feaas.jobs.controls import LiveControls
from feaas.namespace import check_stream_id, job_prefix_for, job_uuid_of
from feaas.netpolicy import NetworkPolicy
from feaas.objects import PlusScriptJob
from feaas.psee.engine import NodeEnvironment
from feaas.psee.nodes import WriterTarget
from feaas.resources import child_memory_mb, memory_budget_mb
from feaas.settings import Settings
from feaas.stopping import StopSignal
from feaas.text import bounded


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
    job_doc: dict[str, Any]  # the job document as claimed
    job: PlusScriptJob
    hostname: str
    namespace: str
    storage: UserStorage
    progress: Progress
    stop: StopSignal
    tmp_root: Path
    #: set by a runner that shows actions' own progress (node id, fraction 0–1)
    action_progress: Callable[[str, float], None] | None = None
    #: the live controls the heartbeat reads from the record (runs over many items follow them)
    controls: LiveControls | None = None
    #: this task's share of a many-item run (SPEC §8.5); None for single runs
    chunks: ChunkedJobRecord | None = None

    @property
    def job_uuid(self) -> str:
        return job_uuid_of(self.settings.job_id)

    @property
    def job_prefix(self) -> str:
        """Where this job's own objects go: large values, large item outputs."""
        return job_prefix_for(self.namespace, self.settings.job_id)

    def job_values(self) -> JobValues:
        """The codec of this job's registers, receipts and output; large values go under the job's prefix."""
        return JobValues(self.storage, self.job_prefix,
                         budget_bytes=min(INLINE_BUDGET_BYTES, document_budget(self.job_doc)))

    def node_environment(self) -> NodeEnvironment:
        return NodeEnvironment(
            make_context=self.action_context, writer=self.writer_target(), tmp_root=self.tmp_root
        )

    def action_context(self, node_id: str, tmp_dir: Path) -> ActionContext:
        sink = self.action_progress

        def report(fraction: float) -> None:
            if sink is not None:
                sink(node_id, fraction)

        return ActionContext(
            storage=self.storage,
            tmp_dir=tmp_dir,
            cancel=self.stop.event,
            log=logging.LoggerAdapter(logging.getLogger("feaas.actions"), {"fields": {"node": node_id}}),
            report_progress=report,
            memory_limit_mb=child_memory_mb(memory_budget_mb(self.settings.memory_limit_mb)),
            max_value_bytes=self.settings.max_value_mb << 20,
            time_limit_s=self.settings.max_runtime_seconds,
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


def make_tmp_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="plus-worker-"))
