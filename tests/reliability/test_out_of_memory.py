"""Out-of-memory trials (issue 13, SPEC §8.3): the worker runs inside a real memory cgroup, as in a
Fargate task, and each trial asks for far more memory than the cgroup has. Every trial must end
with the job recorded FAILED with a message and the worker exiting 1; never a killed worker and a
job left RUNNING.

The cgroup is created under this test's own memory cgroup (tests/support/cgroups.py: v1, the
``memory`` controller's directory, ``memory.limit_in_bytes``; v2, ``memory.max``; the v2 path is
unit-tested on fake trees in tests/unit/test_cgroups.py); the worker is moved into it by a small
``sh`` wrapper that writes its own pid into ``cgroup.procs`` and then ``exec``s the worker. When no
memory cgroup can be created the trials fail with the reason: they are the only proof of §8.3.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import OUTPUTS, ROOT, WorkerRun, worker_env
from tests.support.cgroups import (
    NoMemoryCgroup,
    create_memory_cgroup,
    oom_kills,
    own_memory_cgroup,
    peak_bytes,
    remove_cgroup,
)
from tests.support.scripts import NT, action, job_item, node, script, static

#: The whole task's memory in the trials: the worker, its children and the page cache of its files.
CGROUP_MB = 600


@pytest.fixture
def memory_cgroup(request: pytest.FixtureRequest, report) -> Iterator[Path]:
    """A new cgroup limited to :data:`CGROUP_MB`, under this process's own (v1 or v2); its peak use
    and how many processes the kernel killed in it go to the report's notes."""
    try:
        parent, version = own_memory_cgroup()
        group = create_memory_cgroup(parent, version, CGROUP_MB << 20)
    except NoMemoryCgroup as exc:
        pytest.fail(f"no memory cgroup: {exc}")
    yield group
    peak = peak_bytes(group, version)
    report.notes.append(f"{request.node.name}: cgroup {version}, peak "
                        f"{'unknown' if peak is None else f'{peak >> 20} MB'} of {CGROUP_MB} MB, "
                        f"kernel OOM kills in it: {oom_kills(group, version)}")
    remove_cgroup(group)


def run_in_cgroup(group: Path, stack, dao, job_id: str, timeout: float = 180, **env: str) -> WorkerRun:
    """``python -m src.worker`` moved into ``group`` before it starts."""
    wrapper = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
    proc = subprocess.run(["sh", "-c", wrapper, str(group), sys.executable, "-m", "src.worker"], cwd=ROOT,
                          env=worker_env(stack, job_id, **env), capture_output=True, text=True,
                          timeout=timeout)
    OUTPUTS.append(proc.stdout + proc.stderr)
    return WorkerRun(proc.returncode, proc.stdout, proc.stderr, dao.docs.get(job_id))


def _check_recorded(run: WorkerRun, report, *expected: str) -> None:
    report.add(oom_trials=1)
    job = run.job
    output = (run.stdout + run.stderr)[-2000:]
    assert run.code != -9, f"the worker was killed: {output}"
    assert job["status"] == "FAILED", f"{job['status']}: {output}"
    assert run.code == 1, output
    for text in expected:
        assert text in job["error_message"], job["error_message"]
    report.add(oom_recorded=1)


def test_a_format_blow_up_fails_its_node(memory_cgroup, stack, dao, put_job, report):
    s = script([static("v", {"x": 1}), action("fmt", "sys.text.format", template="{x:99999}" * 30000)],
               ["v:value -> fmt:values"])
    job_id = put_job(job_item(s))
    run = run_in_cgroup(memory_cgroup, stack, dao, job_id)
    _check_recorded(run, report, "node 'fmt'", "limit 16 MB")


def test_a_bundler_chain_fails_at_the_node_that_goes_over(memory_cgroup, stack, dao, put_job, report):
    nodes = [static("s", "x" * 1000)] + [node(f"b{i}", NT.BUNDLER) for i in range(29)]
    links = ["s:value -> b0:a", "s:value -> b0:b"]
    links += [f"b{i - 1}:json -> b{i}:{h}" for i in range(1, 29) for h in ("a", "b")]
    job_id = put_job(job_item(script(nodes, [*links, "b28:json -> mainOutput:out"])))
    run = run_in_cgroup(memory_cgroup, stack, dao, job_id)
    _check_recorded(run, report, "node 'b14' produced", "(limit 16 MB)")


def test_a_duckdb_repeat_fails_in_its_child(memory_cgroup, stack, dao, put_job, user_storage, report):
    key = f"{user_storage.namespace}oom/t.csv"
    user_storage.put_bytes(key, b"a\n1\n")
    job_id = put_job(job_item())
    inputs = {"sources": [key], "sql": "SELECT length(repeat('x', 2000000000)) AS n FROM t0",
              "dest_key": f"{user_storage.namespace}oom/out.csv"}
    run = run_in_cgroup(memory_cgroup, stack, dao, job_id, RUN_MODE="RUN_ACTION",
                        ACTION_ID="sys.dataset.query", ACTION_INPUT_JSON=json.dumps(inputs))
    _check_recorded(run, report, "out of memory while running sys.dataset.query (limit ")


def test_the_same_query_under_memory_limit_mb(memory_cgroup, stack, dao, put_job, user_storage, report):
    key = f"{user_storage.namespace}oom/t2.csv"
    user_storage.put_bytes(key, b"a\n1\n")
    job_id = put_job(job_item())
    inputs = {"sources": [key], "sql": "SELECT length(repeat('x', 2000000000)) AS n FROM t0",
              "dest_key": f"{user_storage.namespace}oom/out2.csv"}
    run = run_in_cgroup(memory_cgroup, stack, dao, job_id, RUN_MODE="RUN_ACTION", MEMORY_LIMIT_MB="1024",
                        ACTION_ID="sys.dataset.query", ACTION_INPUT_JSON=json.dumps(inputs))
    _check_recorded(run, report, "out of memory while running sys.dataset.query (limit 437 MB)")


@pytest.mark.skipif(shutil.which("ffmpeg") is None,
                    reason="ffmpeg not installed; run test_scripts/ensure_ffmpeg.sh")
def test_a_huge_picture_fails_in_ffmpeg(memory_cgroup, stack, dao, put_job, user_storage, tmp_path, report):
    # A 16000×16000 PNG: 200 KB on disk, 768 MB once decoded (more than the whole cgroup)
    huge = tmp_path / "huge.png"
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "color=c=red:s=16000x16000", "-frames:v", "1", "-pix_fmt", "rgb24", str(huge)],
                   check=True, timeout=120, stdin=subprocess.DEVNULL)
    key = f"{user_storage.namespace}oom/huge.png"
    user_storage.put_bytes(key, huge.read_bytes(), "image/png")
    job_id = put_job(job_item())
    inputs = {"key": key, "width": 320}
    run = run_in_cgroup(memory_cgroup, stack, dao, job_id, RUN_MODE="RUN_ACTION",
                        ACTION_ID="vendor.ffmpeg.resize", ACTION_INPUT_JSON=json.dumps(inputs))
    _check_recorded(run, report, "out of memory while running ff")
