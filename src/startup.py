"""What every entry point (worker, sweeper, REGISTER_ACTIONS) does before its work: reach storage.

A storage check that fails is answered the same way everywhere (issue 11): a table or bucket that
does not exist is configuration (exit 2), endpoints that cannot be reached exit 69; nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from feaas.errors import ConfigError, StorageUnreachable
from feaas.exitcodes import ExitCode
from feaas.logs import event

T = TypeVar("T")
logger = logging.getLogger("src.startup")


def storage_or_exit(connect: Callable[[], T]) -> T | ExitCode:
    """``connect()``'s result, or the exit code of why storage could not be reached (logged)."""
    try:
        return connect()
    except ConfigError as exc:  # a table or the bucket does not exist
        event(logger, "storage_missing", level=logging.ERROR, error=str(exc))
        return ExitCode.CONFIG
    except StorageUnreachable as exc:
        event(logger, "storage_unreachable", level=logging.ERROR, error=str(exc))
        return ExitCode.UNREACHABLE
