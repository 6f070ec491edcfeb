"""The progress bar of many-item runs, on a real terminal (a pty) with the real logging handler."""

from __future__ import annotations

import io
import itertools
import logging
import re
import threading

import pytest

from feaas import logs
from feaas.logs import event
from feaas.runners import progressbar
from feaas.runners.progressbar import ProgressReporter, render_bar
from feaas.settings import Settings
from tests.support.terminal import Terminal, frames, glued_lines, screen_lines

log = logging.getLogger("feaas.tests.progress")
WHOLE_LOG_LINE = re.compile(r"\d\d:\d\d:\d\d INFO +\w+( \w+=[\w.]+)*")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def settings(fmt: str) -> Settings:
    return Settings(run_mode="RUN_COLLECTION", job_id="j", username="u", region="r", dynamo_table="t",
                    dynamo_streams_table="s", primary_bucket="b", log_format=fmt)


class Clock:
    """A clock the test moves by hand: rates and ETAs come out exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def terminal():
    """A pty with two text streams on it, like a worker's stdout (log lines) and stderr (bar);
    logging goes to the first through the real text handler."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    term = Terminal()
    term.stdout, term.stderr = term.open(), term.open()
    logs.configure("text", "INFO", stream=term.stdout)
    yield term
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logs.show_live_line(None)
    term.close()


def test_render_bar_shows_fraction_counts_rate_and_eta():
    line = render_bar(done=250, total=1000, failed=3, rate=50.0, width=20)
    assert line.startswith("[#####...............]")
    assert " 25.0% 250/1000 failed 3 50.0 items/s ETA 0:15" in line


def test_render_bar_without_a_rate_shows_no_fake_eta():
    assert render_bar(0, 100, 0, None).endswith("  0.0% 0/100 failed 0 -- items/s ETA --:--")
    assert render_bar(100, 100, 0, None).endswith("100.0% 100/100 failed 0 -- items/s ETA 0:00")


def test_bar_is_drawn_on_a_terminal_in_text_mode_only():
    tty = Tty()
    reporter = ProgressReporter(settings("text"), stream=tty)
    reporter.tick(10, 100, 0)
    reporter.close()
    assert "10/100" in tty.getvalue() and tty.getvalue().startswith("\r\x1b[2K[")
    quiet = Tty()
    ProgressReporter(settings("json"), stream=quiet).tick(10, 100, 0)
    assert quiet.getvalue() == ""
    pipe = io.StringIO()
    ProgressReporter(settings("text"), stream=pipe).tick(10, 100, 0)
    assert pipe.getvalue() == ""


def test_log_lines_from_item_threads_never_share_a_line_with_the_bar(terminal, monkeypatch):
    # Given a bar redrawn on every tick, and four threads that log and tick at once
    monkeypatch.setattr(progressbar, "REDRAW_EVERY_S", 0.0)
    counter = itertools.count(1000)
    reporter = ProgressReporter(settings("text"), stream=terminal.stderr, clock=lambda: float(next(counter)))
    total, lock, done = 200, threading.Lock(), [0]
    reporter.tick(0, total, 0)

    def work(worker: int) -> None:
        for i in range(total // 4):
            event(log, "item_done", worker=worker, i=i)
            with lock:  # the runner ticks under its counting lock too
                done[0] += 1
                reporter.tick(done[0], total, 0)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reporter.close()
    event(log, "after_the_bar")
    # When a person looks at the terminal
    raw = terminal.close()
    lines = screen_lines(raw)
    # Then every log line stands alone on its line, and none was lost or torn
    assert glued_lines(lines) == []
    logged = [line for line in lines if " INFO " in line]
    assert all(WHOLE_LOG_LINE.fullmatch(line) for line in logged), [line for line in logged
                                                                   if not WHOLE_LOG_LINE.fullmatch(line)]
    assert sorted(line.split("item_done ", 1)[1] for line in logged if "item_done" in line) == sorted(
        f"worker={w} i={i}" for w in range(4) for i in range(total // 4))
    # and the bar went from an honest 0 % to 100 %, then stopped being redrawn
    shown = frames(raw)
    assert (shown[0].done, shown[0].percent, shown[0].rate, shown[0].eta) == (0, 0.0, None, "--:--")
    assert (shown[-1].done, shown[-1].total, shown[-1].percent) == (total, total, 100.0)
    assert lines[-1].endswith("after_the_bar") and lines[-2].startswith("[" + "#" * 30 + "] 100.0%")


def test_first_frame_shows_no_rate_and_no_eta(terminal):
    clock = Clock()
    reporter = ProgressReporter(settings("text"), stream=terminal.stderr, clock=clock)
    reporter.tick(0, 50, 0)
    clock.now += 5
    reporter.tick(0, 50, 0)  # time passes, nothing done yet: still no rate
    reporter.close()
    shown = frames(terminal.close())
    assert all((f.rate, f.eta) == (None, "--:--") for f in shown) and shown


def test_close_draws_the_final_frame_even_when_redraws_are_throttled(terminal, monkeypatch):
    # Given redraws so throttled that only the first frame is ever drawn by tick()
    monkeypatch.setattr(progressbar, "REDRAW_EVERY_S", 3600.0)
    clock = Clock()
    reporter = ProgressReporter(settings("text"), stream=terminal.stderr, clock=clock)
    for done in range(101):
        clock.now += 0.01
        reporter.tick(done, 100, 3)
    # When the run closes the bar
    reporter.close()
    raw = terminal.close()
    # Then the last frame on screen is the final state, and the line is ended
    last = frames(raw)[-1]
    assert (last.percent, last.done, last.total, last.failed, last.eta) == (100.0, 100, 100, 3, "0:00")
    assert raw.endswith("\r\n") and screen_lines(raw)[-1].startswith("[" + "#" * 30 + "] 100.0% 100/100")


def test_a_resumed_run_starts_at_the_skipped_count_and_rates_only_this_runs_items(terminal, monkeypatch):
    # Given a resumed run: 600 of 1,000 items were done by an earlier attempt
    monkeypatch.setattr(progressbar, "REDRAW_EVERY_S", 0.0)
    clock = Clock()
    reporter = ProgressReporter(settings("text"), stream=terminal.stderr, clock=clock)
    # When it starts, then processes 10 items in 2 s
    reporter.tick(600, 1000, 0, skipped=600)
    clock.now += 2.0
    reporter.tick(610, 1000, 1, skipped=600)
    reporter.close()
    shown = frames(terminal.close())
    # Then the first frame already shows them as done, with no rate yet
    assert (shown[0].done, shown[0].total, shown[0].percent, shown[0].rate, shown[0].eta) == (
        600, 1000, 60.0, None, "--:--")
    # and the rate counts only the 10 items of this run: 5 items/s, 390 left → 1:18
    assert (shown[-1].done, shown[-1].failed, shown[-1].rate, shown[-1].eta) == (610, 1, 5.0, "1:18")
