"""The worker process's own memory stays small and flat whatever the action does (issue 13 §2,
SPEC §8.3): measured as the worker's own peak resident set (``VmHWM`` of /proc/self/status,
which leaves its children out), next to its largest child's (``RUSAGE_CHILDREN``). Not
``getrusage(RUSAGE_SELF)``: Linux carries the high-water mark of the image a process replaced at
exec into it, so a worker started from a large test process would report that process's size. No
timing: each run goes to its end and the peaks are read as it exits.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from feaas.resources import WORKER_RESERVE_MB
from tests.conftest import OUTPUTS, ROOT, worker_env
from tests.support.collections import new_owner, seed_collection, tag_script
from tests.support.scripts import job_item

#: ``python -c`` this: the worker itself (``runpy``, in this very process), then its peaks on stderr.
WITH_PEAKS = """
import resource, runpy, sys
try:
    runpy.run_module("src.worker", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status:
        own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sys.stderr.write(f"PEAK_RSS_KB own={own} child={child}\\n")
"""


@dataclass
class Peaks:
    code: int
    own_mb: float  # the worker process alone
    child_mb: float  # its largest child (DuckDB, ffmpeg), 0 without any
    stdout: str
    job: dict[str, Any] | None


def run_with_peaks(stack: Any, dao: Any, job_id: str, **env: Any) -> Peaks:
    proc = subprocess.run([sys.executable, "-c", WITH_PEAKS], cwd=ROOT, env=worker_env(stack, job_id, **env),
                          capture_output=True, text=True, timeout=300)
    OUTPUTS.append(proc.stdout + proc.stderr)
    found = re.search(r"PEAK_RSS_KB own=(\d+) child=(\d+)", proc.stderr)
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    return Peaks(proc.returncode, int(found[1]) / 1024, int(found[2]) / 1024, proc.stdout,
                 dao.docs.get(job_id))


#: How much the worker's own peak may differ between a short and a ten times longer run over items.
FLAT_MB = 16


def test_a_query_that_eats_its_child_memory_leaves_the_worker_small(stack, dao, put_job, user_storage,
                                                                    report):
    # Given a query whose aggregate grows until its child's limit (MEMORY_LIMIT_MB=1024: 437 MB)
    key = f"{user_storage.namespace}rss/t.csv"
    user_storage.put_bytes(key, b"a\n1\n")
    job_id = put_job(job_item())
    inputs = {"sources": [key], "dest_key": f"{user_storage.namespace}rss/out.csv",
              "sql": "SELECT length(string_agg(repeat('x', 100) || i, ',')) AS n FROM range(50000000) r(i)"}
    # When it runs
    peaks = run_with_peaks(stack, dao, job_id, RUN_MODE="RUN_ACTION", MEMORY_LIMIT_MB="1024",
                           ACTION_ID="sys.dataset.query", ACTION_INPUT_JSON=json.dumps(inputs))
    # Then the child grew to hundreds of MB and was stopped; the job is recorded
    assert peaks.code == 1 and peaks.job is not None and peaks.job["status"] == "FAILED", peaks.stdout[-2000:]
    assert "out of memory while running sys.dataset.query (limit 437 MB)" in peaks.job["error_message"]
    assert peaks.child_mb > 200, peaks
    # and the worker itself stayed within the reserve it keeps for itself
    assert peaks.own_mb < WORKER_RESERVE_MB, peaks
    report.notes.append(f"worker memory: own peak {peaks.own_mb:.0f} MB while its DuckDB child reached "
                        f"{peaks.child_mb:.0f} MB (reserve {WORKER_RESERVE_MB} MB)")


def test_ten_times_more_items_leave_the_worker_flat(stack, dao, put_job, report):
    own: dict[int, float] = {}
    for count in (100, 1000):
        owner = new_owner()
        seed_collection(dao, owner, count)
        job_id = put_job(job_item(tag_script(), collection_owner=owner))
        peaks = run_with_peaks(stack, dao, job_id, RUN_MODE="RUN_COLLECTION")
        assert peaks.code == 0 and peaks.job is not None, peaks.stdout[-2000:]
        assert peaks.job["success_count"] == count
        own[count] = peaks.own_mb
    assert abs(own[1000] - own[100]) < FLAT_MB, own
    assert max(own.values()) < WORKER_RESERVE_MB, own
    report.notes.append(f"worker memory: own peak {own[100]:.0f} MB over 100 items, {own[1000]:.0f} MB "
                        "over 1000")
