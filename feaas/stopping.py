"""One stop signal per run: the first reason wins (cancel, deadline, SIGTERM, lost lease)."""

from __future__ import annotations

import threading


class StopSignal:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: BaseException | None = None
        self._lock = threading.Lock()

    def stop(self, reason: BaseException) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
                self.event.set()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()
