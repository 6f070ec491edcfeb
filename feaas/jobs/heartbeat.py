"""The heartbeat thread: renews the lease, saves progress, sees ``request_cancel``, enforces the deadline."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from feaas.errors import Cancelled, DeadlineExceeded, LeaseLost, StorageError
from feaas.jobs.controls import LiveControls
from feaas.jobs.record import JobRecord
from feaas.jobs.status import is_true
from feaas.logs import event
from feaas.stopping import StopSignal

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """Progress shared between the run and the heartbeat thread. ``version`` bumps on each change."""

    values: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, **values: Any) -> None:
        with self._lock:
            self.values.update(values)
            self.version += 1

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            return self.version, dict(self.values)


class Heartbeat(threading.Thread):
    """Renews the lease every ``period_s``, writes progress at most once a second when it changes,
    reads ``request_cancel`` and the live controls from the same write, and enforces the deadline."""

    def __init__(self, record: JobRecord, progress: Progress, stop: StopSignal, *, period_s: float,
                 deadline_at: float | None = None, timeout_s: float | None = None,
                 min_interval_s: float = 1.0, controls: LiveControls | None = None) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.record = record
        self.progress = progress
        self.stop_signal = stop
        self.period_s = period_s
        self.deadline_at = deadline_at
        self.timeout_s = timeout_s
        self.min_interval_s = min_interval_s
        self.controls = controls
        self._done = threading.Event()
        self._written_version = -1
        self._last_write = time.monotonic()

    def check_job_doc(self, job_doc: Mapping[str, Any]) -> None:
        """Stop the run when the job as stored asks to be cancelled; apply its live controls."""
        if is_true(job_doc.get("request_cancel")):
            self.stop_signal.stop(Cancelled())
        if self.controls is not None:
            self.controls.apply(job_doc)

    def run(self) -> None:
        tick = min(self.min_interval_s, self.period_s)
        while not self._done.wait(tick):
            if self.deadline_at is not None and time.monotonic() >= self.deadline_at:
                self.stop_signal.stop(DeadlineExceeded(f"timed out after {self.timeout_s:g} s"))
            version, values = self.progress.snapshot()
            since = time.monotonic() - self._last_write
            changed = version != self._written_version
            if since < self.period_s and not (changed and since >= self.min_interval_s):
                continue
            try:
                job_doc = self.record.heartbeat(values)
            except LeaseLost as exc:
                event(logger, "lease_lost", level=logging.ERROR, error=str(exc))
                self.stop_signal.stop(exc)
                return
            except StorageError as exc:  # retried next tick; the lease outlives a few missed beats
                event(logger, "heartbeat_failed", level=logging.WARNING, error=str(exc))
                continue
            self._written_version = version
            self._last_write = time.monotonic()
            self.check_job_doc(job_doc)

    def close(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join()
