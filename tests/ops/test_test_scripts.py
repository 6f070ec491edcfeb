"""test_scripts/success.sh and fail.sh check the demo's final job record and exit code.

The demo itself (test_scripts/demo.py) is replaced by a stand-in through DEMO, so this tests the
checking logic: right status and code pass; a wrong status, a missing message or a wrong exit
code fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.ops.conftest import ROOT


def fake_demo(tmp_path: Path, record: dict[str, object], code: int) -> Path:
    path = tmp_path / "demo.py"
    path.write_text(
        "import sys\n"
        "assert sys.argv[1:2] == ['--scenario']\n"
        "print('stack up, worker ran for', sys.argv[2])\n"
        f"print({json.dumps(json.dumps(record))})\n"
        f"sys.exit({code})\n"
    )
    return path


def run(script: str, demo: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEMO=str(demo))
    return subprocess.run(
        [f"test_scripts/{script}"], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize(
    ("script", "record", "code", "ok"),
    [
        (
            "success.sh",
            {"object_id": "h/u/job.1", "status": "SUCCEEDED", "output": {"sum": {"ival": "5"}}},
            0,
            True,
        ),
        ("success.sh", {"object_id": "h/u/job.1", "status": "FAILED", "error_message": "x"}, 1, False),
        ("success.sh", {"object_id": "h/u/job.1", "status": "SUCCEEDED"}, 3, False),
        (
            "fail.sh",
            {"object_id": "h/u/job.2", "status": "FAILED", "error_message": "failing on purpose"},
            1,
            True,
        ),
        ("fail.sh", {"object_id": "h/u/job.2", "status": "FAILED"}, 1, False),
        ("fail.sh", {"object_id": "h/u/job.2", "status": "RUNNING"}, 1, False),
        ("fail.sh", {"object_id": "h/u/job.2", "status": "FAILED", "error_message": "x"}, 0, False),
    ],
)
def test_final_record_is_checked(
    tmp_path: Path, script: str, record: dict[str, object], code: int, ok: bool
) -> None:
    proc = run(script, fake_demo(tmp_path, record, code))
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr
    if ok:
        assert proc.stdout.rstrip().endswith(f"exit code {code})")


def test_help() -> None:
    for script in ("success.sh", "fail.sh"):
        proc = subprocess.run(
            [f"test_scripts/{script}", "--help"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0 and "--aws" in proc.stdout
