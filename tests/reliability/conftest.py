"""The reliability tier: fault injection, hostile input, tenant isolation. Its figures are
collected in REPORT and printed as one table at the end of the session."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Report:
    """Counters that tests add to; printed by ``pytest_terminal_summary``."""

    trials: int = 0
    faults_injected: int = 0
    items_lost: int = 0
    duplicates: int = 0
    stuck_jobs: int = 0
    worst_interrupt_s: float = 0.0
    bad_inputs_tried: int = 0
    bad_inputs_handled: int = 0
    attacks_tried: int = 0
    attacks_refused: int = 0
    tasks_killed: int = 0
    tasks_swept: int = 0
    oom_trials: int = 0
    oom_recorded: int = 0
    playlist_attacks: int = 0
    playlist_refused: int = 0
    notes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def worst(self, seconds: float) -> None:
        with self._lock:
            self.worst_interrupt_s = max(self.worst_interrupt_s, seconds)

    def rows(self) -> list[tuple[str, Any]]:
        return [
            ("fault-injection trials", self.trials),
            ("faults injected", self.faults_injected),
            ("items lost", self.items_lost),
            ("duplicate executions (≤ CONCURRENCY per crash allowed)", self.duplicates),
            ("jobs left stuck INITIALIZING/RUNNING", self.stuck_jobs),
            ("worst time to record an interruption", f"{self.worst_interrupt_s:.2f} s"),
            ("bad inputs tried / handled", f"{self.bad_inputs_tried} / {self.bad_inputs_handled}"),
            ("attacks tried / refused", f"{self.attacks_tried} / {self.attacks_refused}"),
            ("killed tasks / swept", f"{self.tasks_killed} / {self.tasks_swept}"),
            ("out-of-memory trials / recorded", f"{self.oom_trials} / {self.oom_recorded}"),
            ("playlist attacks / refused", f"{self.playlist_attacks} / {self.playlist_refused}"),
        ]


REPORT = Report()


@pytest.fixture(scope="session")
def report() -> Report:
    return REPORT


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not (REPORT.trials or REPORT.bad_inputs_tried or REPORT.attacks_tried or REPORT.tasks_killed
            or REPORT.oom_trials or REPORT.playlist_attacks or REPORT.notes):
        return
    terminalreporter.write_sep("=", "reliability report")
    for name, value in REPORT.rows():
        terminalreporter.write_line(f"{name:<58} {value}")
    for note in REPORT.notes:
        terminalreporter.write_line(f"note: {note}")
