"""How many items a run has in flight: a limit that can be raised, lowered or paused while the run
goes on (issue 17 item 4). Item threads ``enter`` before they start an item and ``leave`` after it;
lowering the limit or pausing lets the items in flight finish and starts no new one until there is
room again."""

from __future__ import annotations

import threading

from feaas.stopping import StopSignal


class InFlightLimit:
    def __init__(self, limit: int, stop: StopSignal) -> None:
        self._cond = threading.Condition()
        self._limit = limit
        self._paused = False
        self._in_flight = 0
        self._stop = stop

    @property
    def limit(self) -> int:
        with self._cond:
            return self._limit

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def set(self, limit: int, *, paused: bool) -> None:
        with self._cond:
            self._limit, self._paused = limit, paused
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake every waiting thread (the run is stopping)."""
        with self._cond:
            self._cond.notify_all()

    def enter(self) -> bool:
        """Wait for room for one more item; False when the run stops meanwhile."""
        with self._cond:
            while not self._stop.stopped and (self._paused or self._in_flight >= self._limit):
                self._cond.wait(0.5)  # the timeout also notices a stop nobody woke us for
            if self._stop.stopped:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()
