"""One stop signal per run: the first reason wins (cancel, deadline, SIGTERM, lost lease)."""

from __future__ import annotations

import threading
import time

#: How long after SIGTERM the worker may still write (ECS kills it later; SPEC §4.4).
SIGTERM_BUDGET_S = 20.0


class StopSignal:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: BaseException | None = None
        #: ``time.monotonic()`` when the stop came (None: not stopped)
        self.stopped_at: float | None = None
        self._lock = threading.Lock()

    def stop(self, reason: BaseException) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
                self.stopped_at = time.monotonic()
                self.event.set()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()
