"""Structured logging: one JSON object per line (or a human format), job context bound once.

Use ``event(logger, "name", key=value, ...)``; the formatter adds ``ts``, ``level`` and the
fields bound with :func:`bind` (``job_id``, ``run_mode``, ``attempt``).

A terminal may also show one live line below the log (the progress bar of many-item runs). It
registers with :func:`show_live_line`; the console handler erases it before each log line and draws
it again after, all under :data:`terminal_lock`, so a log line never lands on the bar (issue 11 §5).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, Protocol, TextIO

_bound: dict[str, Any] = {}
_RESERVED = ("ts", "level", "event")
# One writer at a time on the terminal: log lines and live-line frames come from several threads.
# Nothing may log while holding it (the console handler takes it inside the handler's own lock).
terminal_lock = threading.RLock()


class LiveLine(Protocol):
    """A line kept at the bottom of the terminal; log lines are written above it."""

    def erase(self) -> None: ...

    def redraw(self) -> None: ...


_live_line: LiveLine | None = None


def show_live_line(line: LiveLine | None) -> None:
    """Register ``line`` as the terminal's live line (``None``: there is none any more)."""
    global _live_line
    with terminal_lock:
        _live_line = line


def bind(**fields: Any) -> None:
    """Attach fields to every later log line of this process (one job per process)."""
    _bound.update({k: v for k, v in fields.items() if v is not None})


def event(logger: logging.Logger, name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one lifecycle event with its context fields."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        line.update(_bound)
        fields = getattr(record, "fields", None)
        if fields:
            line.update({k: v for k, v in fields.items() if k not in _RESERVED})
        if record.name and not record.name.startswith(("feaas", "src")):
            line["logger"] = record.name
        if record.exc_info and record.levelno >= logging.ERROR:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = getattr(record, "fields", None) or {}
        # For people: absent values are left out, 100.0 reads 100 (the JSON lines keep every field).
        extra = " ".join(f"{k}={_tidy(v)}" for k, v in fields.items() if v is not None)
        text = f"{stamp} {record.levelname:<7} {record.getMessage()}"
        return f"{text} {extra}" if extra else text


def _tidy(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


class ConsoleHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes each log line above the live line, if one is shown."""

    def emit(self, record: logging.LogRecord) -> None:
        with terminal_lock:
            live = _live_line
            if live is not None:
                live.erase()
            super().emit(record)
            if live is not None:
                live.redraw()


def configure(fmt: str, level: str, stream: TextIO | None = None) -> None:
    """Route all logging to ``stream`` (stdout) in the chosen format. Called once by the entrypoint."""
    handler = ConsoleHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
