"""Waiting in tests for something a worker process does (a receipt, a field on the job)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, step: float = 0.05) -> None:
    """Poll ``predicate`` every ``step`` seconds until it is true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(step)
