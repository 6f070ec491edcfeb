"""Progress of a many-item run for people: a log line every 10 s, and on a terminal with
``LOG_FORMAT=text`` a live bar with items/s and ETA on stderr."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

from feaas.logs import event
from feaas.settings import LogFormat, Settings

logger = logging.getLogger(__name__)
LOG_EVERY_S = 10.0
REDRAW_EVERY_S = 0.2


def render_bar(done: int, total: int, failed: int, rate: float, width: int = 30) -> str:
    fraction = min(1.0, done / total) if total else 1.0
    filled = int(fraction * width)
    eta = (total - done) / rate if rate > 0 and total > done else 0.0
    minutes, seconds = divmod(int(eta), 60)
    return (f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {done}/{total} "
            f"failed {failed} {rate:,.1f} items/s ETA {minutes}:{seconds:02d}")


class ProgressReporter:
    def __init__(self, settings: Settings, report: Callable[[int, int, int], None] | None = None,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bar = settings.effective_log_format is LogFormat.TEXT and self.stream.isatty()
        self.report = report
        self.started = time.monotonic()
        self.last_log = self.last_draw = 0.0
        self.first_done: int | None = None

    def tick(self, done: int, total: int, failed: int) -> None:
        now = time.monotonic()
        if self.first_done is None:
            self.first_done = done  # items skipped on resume do not count towards the rate
        elapsed = max(now - self.started, 1e-6)
        rate = (done - self.first_done) / elapsed
        if self.report is not None:
            self.report(done, total, failed)
        if self.bar and now - self.last_draw >= REDRAW_EVERY_S:
            self.last_draw = now
            self.stream.write("\r" + render_bar(done, total, failed, rate))
            self.stream.flush()
        if now - self.last_log >= LOG_EVERY_S:
            self.last_log = now
            event(logger, "items_progress", done=done, item_count=total, error_count=failed,
                  items_per_s=round(rate, 1))

    def close(self) -> None:
        if self.bar:
            self.stream.write("\n")
            self.stream.flush()
