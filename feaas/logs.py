"""Structured logging: one JSON object per line (or a human format), job context bound once.

Use ``event(logger, "name", key=value, ...)``; the formatter adds ``ts``, ``level`` and the
fields bound with :func:`bind` (``job_id``, ``run_mode``, ``attempt``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

_bound: dict[str, Any] = {}
_RESERVED = ("ts", "level", "event")


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
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        text = f"{stamp} {record.levelname:<7} {record.getMessage()}"
        return f"{text} {extra}" if extra else text


def configure(fmt: str, level: str, stream: TextIO | None = None) -> None:
    """Route all logging to ``stream`` (stdout) in the chosen format. Called once by the entrypoint."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
