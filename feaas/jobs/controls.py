"""Live controls of a run over many items (issue 17 item 4, SPEC §8.5): ``concurrency``,
``tolerated_failure_percent`` and ``request_pause`` on the job record, written by others while the
job runs and read by the heartbeat from the document each of its writes returns.

A value that is not valid (a concurrency of 0 or above 256, a tolerance outside 0..100, a pause
written as text) is refused: the previous setting stays, the refusal is logged and shown on the
record, and nothing stops. Each accepted change is logged (``control_changed``) and shown in the
progress attributes ``active_concurrency``, ``active_tolerated_failure_percent`` and
``last_control_change``; the runner itself sets ``paused`` once its items in flight are saved.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from feaas.logs import event
from feaas.settings import MAX_CONCURRENCY
from feaas.text import describe

logger = logging.getLogger(__name__)

#: The controls' attribute names on the job record (written by others, never by the worker).
CONCURRENCY, TOLERATED, PAUSE = "concurrency", "tolerated_failure_percent", "request_pause"


def _whole_number(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (DynamoDB gives Decimals), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    number = float(value)
    return int(number) if math.isfinite(number) and number == int(number) else None


def parse_concurrency(value: Any) -> int:
    """A valid ``concurrency`` control; ValueError says why not."""
    number = _whole_number(value)
    if number is None or not 1 <= number <= MAX_CONCURRENCY:
        raise ValueError(f"must be a whole number from 1 to {MAX_CONCURRENCY}")
    return number


def parse_tolerated(value: Any) -> float:
    """A valid ``tolerated_failure_percent`` control; ValueError says why not."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a number from 0 to 100")
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise ValueError("must be a number from 0 to 100")
    return int(number) if number == int(number) else number


def parse_pause(value: Any) -> bool:
    """A valid ``request_pause`` control (absent means not paused); ValueError says why not."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError("must be true or false (a boolean, not text)")
    return value


def _show(value: Any) -> str:
    """A stored value as a person wrote it (DynamoDB's Decimals as plain numbers)."""
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    return describe(value)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    CONCURRENCY: parse_concurrency,
    TOLERATED: parse_tolerated,
    PAUSE: parse_pause,
}


class LiveControls:
    """The controls in effect, shared by the heartbeat (which applies the stored values) and the
    runner (which reads them). ``publish`` receives the progress attributes that show a change.
    Thread-safe; ``changed`` is set on every accepted change so a waiting runner wakes up."""

    def __init__(self, *, concurrency: int, tolerated_failure_percent: float | None,
                 publish: Callable[..., None] | None = None) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {
            CONCURRENCY: concurrency, TOLERATED: tolerated_failure_percent, PAUSE: False,
        }
        #: the last stored value seen per control (a refused value is refused, and logged, once)
        self._seen: dict[str, Any] = {}
        self._publish = publish
        self.changed = threading.Event()

    @property
    def concurrency(self) -> int:
        with self._lock:
            return int(self._values[CONCURRENCY])

    @property
    def tolerated_failure_percent(self) -> float | None:
        with self._lock:
            value = self._values[TOLERATED]
            return None if value is None else float(value)

    @property
    def pause_requested(self) -> bool:
        with self._lock:
            return bool(self._values[PAUSE])

    def progress_attributes(self) -> dict[str, Any]:
        """What the record shows of the controls in effect."""
        with self._lock:
            attrs: dict[str, Any] = {"active_concurrency": self._values[CONCURRENCY]}
            if self._values[TOLERATED] is not None:
                attrs["active_tolerated_failure_percent"] = self._values[TOLERATED]
            return attrs

    def apply(self, job_doc: Mapping[str, Any]) -> None:
        """Take the controls from the job as stored: accept valid changes, refuse invalid ones."""
        notes: list[str] = []
        with self._lock:
            for name, parse in _PARSERS.items():
                raw = job_doc.get(name)
                if name in self._seen and self._seen[name] == raw:
                    continue
                first = name not in self._seen
                self._seen[name] = raw
                if raw is None and name != PAUSE:
                    continue  # not set: the task's setting stays
                old = self._values[name]
                try:
                    new = parse(raw)
                except ValueError as exc:
                    note = f"{name} {_show(raw)} refused: {exc}; keeping {_show(old)}"
                    event(logger, "control_refused", level=logging.WARNING, control=name,
                          value=_show(raw), reason=str(exc), kept=old)
                    notes.append(note)
                    continue
                if new == old:
                    continue
                self._values[name] = new
                if not (first and name == PAUSE and new is False):
                    event(logger, "control_changed", control=name, old=old, new=new)
                    notes.append(f"{name} {_show(old)} -> {_show(new)}")
        if notes:
            self.changed.set()
            if self._publish is not None:
                self._publish(**self.progress_attributes(), last_control_change="; ".join(notes))
