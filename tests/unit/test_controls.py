"""Live controls without storage: what each control accepts, and the in-flight limit they drive."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest

from feaas.jobs.controls import LiveControls, parse_concurrency, parse_pause, parse_tolerated
from feaas.runners.inflight import InFlightLimit
from feaas.stopping import StopSignal


@pytest.mark.parametrize("value", [1, 16, 256, Decimal(16), 16.0])
def test_concurrency_accepts_whole_numbers_from_1_to_256(value: Any) -> None:
    assert parse_concurrency(value) == int(value)


@pytest.mark.parametrize("value", [0, -1, 257, Decimal("2.5"), "16", True, None, float("nan")])
def test_concurrency_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError, match="whole number from 1 to 256"):
        parse_concurrency(value)


@pytest.mark.parametrize(("value", "parsed"), [(0, 0), (Decimal("2.5"), 2.5), (100, 100)])
def test_tolerance_accepts_0_to_100(value: Any, parsed: float) -> None:
    assert parse_tolerated(value) == parsed


@pytest.mark.parametrize("value", [-1, Decimal("-0.5"), 101, "5", False])
def test_tolerance_refuses_anything_else(value: Any) -> None:
    with pytest.raises(ValueError, match="number from 0 to 100"):
        parse_tolerated(value)


def test_pause_is_a_boolean_and_absent_means_not_paused() -> None:
    assert (parse_pause(True), parse_pause(False), parse_pause(None)) == (True, False, False)
    for text in ("true", "yes", 1):
        with pytest.raises(ValueError, match="a boolean, not text"):
            parse_pause(text)


def test_apply_publishes_each_change_and_each_refusal_once() -> None:
    shown: list[dict[str, Any]] = []
    controls = LiveControls(concurrency=4, tolerated_failure_percent=None,
                            publish=lambda **a: shown.append(a))
    controls.apply({})  # nothing set: nothing to show
    assert shown == []
    controls.apply({"concurrency": Decimal(16), "request_pause": True})
    assert (controls.concurrency, controls.pause_requested) == (16, True)
    assert shown[-1]["last_control_change"] == "concurrency 4 -> 16; request_pause False -> True"
    controls.apply({"concurrency": 0, "request_pause": True})
    assert controls.concurrency == 16 and "concurrency 0 refused" in shown[-1]["last_control_change"]
    count = len(shown)
    controls.apply({"concurrency": 0, "request_pause": True})  # the same values again: nothing new
    assert len(shown) == count
    controls.apply({"request_pause": None})  # the attribute removed: not paused any more
    assert controls.pause_requested is False and shown[-1]["active_concurrency"] == 16


def test_in_flight_limit_waits_for_room_and_for_the_end_of_a_pause() -> None:
    stop = StopSignal()
    limit = InFlightLimit(1, stop)
    assert limit.enter()
    entered = threading.Event()

    def second() -> None:
        if limit.enter():
            entered.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    assert not entered.wait(0.2)  # no room: the limit is 1 and one item is in flight
    limit.set(1, paused=True)
    limit.leave()
    assert not entered.wait(0.2)  # room, but paused
    limit.set(2, paused=False)
    assert entered.wait(5) and limit.in_flight == 1
    waiter.join()


def test_in_flight_limit_gives_up_when_the_run_stops() -> None:
    stop = StopSignal()
    limit = InFlightLimit(1, stop)
    limit.set(1, paused=True)
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(limit.enter()))
    waiter.start()
    stop.stop(RuntimeError("stop"))
    limit.wake()
    waiter.join(5)
    assert results == [False] and limit.in_flight == 0
