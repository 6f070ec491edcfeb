"""Progress of a many-item run for people: a log line every 10 s, and on a terminal with
``LOG_FORMAT=text`` a live bar with items/s and ETA on stderr.

The bar is the terminal's live line (:func:`feaas.logs.show_live_line`): log lines are printed
above it, never glued onto it. Items skipped on resume count as done but not towards the rate.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

from feaas.logs import event, show_live_line, terminal_lock
from feaas.settings import LogFormat, Settings

logger = logging.getLogger(__name__)
LOG_EVERY_S = 10.0
REDRAW_EVERY_S = 0.2
ERASE_LINE = "\r\x1b[2K"  # back to the start of the line, then clear all of it


def render_bar(done: int, total: int, failed: int, rate: float | None, width: int = 30) -> str:
    """One frame; ``rate`` is ``None`` until an item was processed in this run (no rate, no ETA)."""
    fraction = min(1.0, done / total) if total else 1.0
    filled = int(fraction * width)
    if done >= total:
        eta = "0:00"
    elif rate:
        minutes, seconds = divmod(int((total - done) / rate), 60)
        eta = f"{minutes}:{seconds:02d}"
    else:
        eta = "--:--"
    speed = f"{rate:,.1f}" if rate is not None else "--"
    return (f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {done}/{total} "
            f"failed {failed} {speed} items/s ETA {eta}")


class ProgressReporter:
    """Counts from the run → the ``report`` callback, a periodic ``items_progress`` log line and,
    on a terminal in text mode, the bar. :meth:`tick` may be called from any thread."""

    def __init__(self, settings: Settings, report: Callable[[int, int, int], None] | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.bar = settings.effective_log_format is LogFormat.TEXT and self.stream.isatty()
        self.report = report
        self.clock = clock
        self.started: float | None = None  # the first tick: the rate covers this run's work only
        self.last_log = self.last_draw = float("-inf")
        self.frame = ""

    def tick(self, done: int, total: int, failed: int, *, skipped: int = 0) -> None:
        """``done`` includes the ``skipped`` items (done by an earlier attempt, not counted in the rate)."""
        now = self.clock()
        if self.started is None:
            self.started = now
            if self.bar:
                show_live_line(self)
        processed = done - skipped
        elapsed = now - self.started
        rate = processed / elapsed if processed > 0 and elapsed > 0 else None
        if self.report is not None:
            self.report(done, total, failed)
        if self.bar:
            with terminal_lock:
                self.frame = render_bar(done, total, failed, rate)
                if now - self.last_draw >= REDRAW_EVERY_S:
                    self.last_draw = now
                    self.redraw()
        if now - self.last_log >= LOG_EVERY_S:
            self.last_log = now
            event(logger, "items_progress", done=done, item_count=total, error_count=failed,
                  items_per_s=round(rate, 1) if rate is not None else None)

    def erase(self) -> None:
        self.stream.write(ERASE_LINE)
        self.stream.flush()

    def redraw(self) -> None:
        self.stream.write(ERASE_LINE + self.frame)
        self.stream.flush()

    def close(self) -> None:
        """Draw the latest state (redraws are throttled, so it may not be on screen) and end the line."""
        if not self.bar:
            return
        with terminal_lock:
            show_live_line(None)
            if self.frame:
                self.redraw()
                self.stream.write("\n")
                self.stream.flush()
