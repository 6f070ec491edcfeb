"""What a person sees: ``python -m src.worker`` with ``LOG_FORMAT=text`` on a real terminal (a pty),
over many items, against the real local stack (issue 11 §5)."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.conftest import OUTPUTS, ROOT, worker_env
from tests.support.collections import nap_script, new_owner, receipts, seed_collection, tag_script
from tests.support.scripts import NAMESPACE, job_item
from tests.support.terminal import Terminal, frames, glued_lines, screen_lines
from tests.support.waiting import wait_for

NAP_S = 0.05
CONCURRENCY = 2


def run_all(job_id: str) -> str:
    return f"{NAMESPACE}stream-run-all.{job_id.rsplit('job.', 1)[1]}"


def run_on_terminal(stack, job_id: str, **env) -> tuple[int, str]:
    """Run the worker with stdout and stderr on one pty; returns its exit code and all it wrote."""
    terminal = Terminal()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "src.worker"], cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=terminal.slave, stderr=terminal.slave,
                                env=worker_env(stack, job_id, LOG_FORMAT="text", **env))
        terminal.close_slave()  # the child holds its own copies; EOF comes when it exits
        code = proc.wait(timeout=120)
    finally:
        raw = terminal.close()
        OUTPUTS.append(raw)  # joins the session's secrets check
    return code, raw



def test_items_run_on_a_terminal_shows_clean_log_lines_and_a_bar_from_0_to_100(stack, dao, put_job):
    # Given 150 items, every 10th of which fails (so warnings are logged while the bar is shown)
    owner = new_owner()
    seed_collection(dao, owner, 150, make=lambda i: {"n": "not a number" if i % 10 == 0 else i})
    job_id = put_job(job_item(tag_script(), collection_owner=owner, tolerated_failure_percent=20))
    # When the worker runs on a terminal
    code, raw = run_on_terminal(stack, job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=CONCURRENCY)
    # Then it succeeded, and no log line shares a line with the bar
    assert code == 0, raw[-3000:]
    lines = screen_lines(raw)
    assert glued_lines(lines) == [], raw[-3000:]
    assert any("WARNING item_failed" in line for line in lines)
    assert any(" INFO    items_finished " in line for line in lines)
    # and the bar started at an honest 0 % and ended on 100 %, N/N
    shown = frames(raw)
    assert (shown[0].done, shown[0].total, shown[0].rate, shown[0].eta) == (0, 150, None, "--:--")
    assert (shown[-1].percent, shown[-1].done, shown[-1].total, shown[-1].failed) == (100.0, 150, 150, 15)
    # the last frame stays on screen, on its own line just above the final log lines
    bar_lines = [line for line in lines if line.startswith("[")]
    assert bar_lines[-1].startswith("[" + "#" * 30 + "] 100.0% 150/150 failed 15")


def test_resumed_run_on_a_terminal_starts_at_the_done_items_and_rates_only_new_ones(stack, dao, put_job,
                                                                                  start_worker):
    # Given a run over 120 items interrupted after some of them were recorded
    owner = new_owner()
    seed_collection(dao, owner, 120)
    job_id = put_job(job_item(nap_script(NAP_S), collection_owner=owner))
    first = start_worker(job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=CONCURRENCY)
    wait_for(lambda: len(receipts(dao, run_all(job_id))) >= 30)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=30)
    assert first.returncode == 75
    skipped = len({r["object_id"] for r in receipts(dao, run_all(job_id)) if r["success"]})
    assert 0 < skipped < 120
    # When it is resumed on a terminal
    code, raw = run_on_terminal(stack, job_id, RUN_MODE="RUN_COLLECTION", CONCURRENCY=CONCURRENCY)
    assert code == 0, raw[-3000:]
    assert glued_lines(screen_lines(raw)) == [], raw[-3000:]
    shown = frames(raw)
    # Then the first frame already counts the items done before, with no rate yet
    assert (shown[0].done, shown[0].total, shown[0].rate, shown[0].eta) == (skipped, 120, None, "--:--")
    # and the rate only counts this run's items: each naps NAP_S on one of CONCURRENCY threads, so it
    # cannot exceed CONCURRENCY / NAP_S; the skipped items, if counted, would push the early frames above it
    ceiling = CONCURRENCY / NAP_S
    assert all(f.rate is None or f.rate <= ceiling for f in shown), [f.rate for f in shown]
    assert all(f.done >= skipped for f in shown)
    assert (shown[-1].percent, shown[-1].done, shown[-1].total) == (100.0, 120, 120)
