"""One stop signal per run: the first reason wins (cancel, deadline, SIGTERM, lost lease); and calls
that must end within a budget, whatever storage does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

#: How long after SIGTERM the worker may still write (ECS kills it later; SPEC §4.4).
SIGTERM_BUDGET_S = 20.0

T = TypeVar("T")


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


def call_within(call: Callable[[], T], *, end: float, stop: StopSignal | None = None,
                after_stop_s: float = SIGTERM_BUDGET_S, poll_s: float = 0.05) -> T:
    """``call()``'s result (or its exception), unless it is still running at ``end``
    (``time.monotonic()``) or ``after_stop_s`` after ``stop`` came, whichever is first: then
    :class:`TimeoutError`, and the call is left to end on its own or with the process.

    The call runs in a daemon thread, so one request that botocore keeps retrying through an
    outage (about 100 s for DynamoDB) cannot outlast a budget such as SIGTERM's.
    """
    done = threading.Event()
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="bounded-call", daemon=True).start()
    while True:
        limit = end
        if stop is not None and stop.stopped_at is not None:
            limit = min(limit, stop.stopped_at + after_stop_s)
        remaining = limit - time.monotonic()
        if done.wait(max(0.0, min(remaining, poll_s))):
            break
        if remaining <= 0:
            raise TimeoutError("the call did not end in time")
    if failure:
        raise failure[0]
    return result[0]
