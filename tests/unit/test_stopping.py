"""``call_within``: a call bounded by a deadline and by the SIGTERM budget, whatever it does."""

from __future__ import annotations

import threading
import time

import pytest

from feaas.errors import Interrupted, StorageError
from feaas.stopping import StopSignal, call_within


def test_a_call_that_ends_gives_its_result_or_its_error():
    assert call_within(lambda: 42, end=time.monotonic() + 60) == 42

    def fails() -> None:
        raise StorageError("refused")

    with pytest.raises(StorageError, match="refused"):
        call_within(fails, end=time.monotonic() + 60)


def test_a_call_still_running_at_the_deadline_is_given_up():
    never = threading.Event()
    with pytest.raises(TimeoutError):
        call_within(never.wait, end=time.monotonic())
    never.set()


def test_a_call_still_running_after_the_stop_budget_is_given_up_before_the_deadline():
    # Given a stop that came long enough ago for its budget to be spent
    stop = StopSignal()
    stop.stop(Interrupted("SIGTERM"))
    never = threading.Event()
    # Then a call that never ends is given up at once, although its own deadline is far away
    with pytest.raises(TimeoutError):
        call_within(never.wait, end=time.monotonic() + 3600, stop=stop, after_stop_s=0)
    never.set()


def test_a_stop_that_comes_during_the_call_bounds_it():
    stop = StopSignal()
    never = threading.Event()
    threading.Timer(0.05, lambda: stop.stop(Interrupted("SIGTERM"))).start()
    with pytest.raises(TimeoutError):
        call_within(never.wait, end=time.monotonic() + 3600, stop=stop, after_stop_s=0)
    never.set()
