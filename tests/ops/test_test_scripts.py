"""test_scripts/success.sh and fail.sh check the demo's final job record and exit code.

The demo itself (test_scripts/demo.py) is replaced by a stand-in through DEMO, so this tests the
checking logic: right status and code pass; a wrong status, a missing message or a wrong exit
code fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ops.conftest import ROOT


def fake_demo(tmp_path: Path, record: dict[str, object], code: int) -> Path:
    path = tmp_path / "demo.py"
    path.write_text(
        "import sys\n"
        "assert sys.argv[1:2] == ['--scenario']\n"
        "print('stack up, worker ran for', sys.argv[2])\n"
        f"print({json.dumps(json.dumps(record, indent=2))})\n"
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


# ---- the project's environment, --help, failures that eval cannot swallow (issue 11) --------

HELP_SCRIPTS = ("local_stack.sh", "bench.sh", "bootstrap.sh", "gen_proto.sh", "success.sh", "fail.sh")


def fake_python3(tmp_path: Path) -> str:
    """A PATH whose first `python3` is not the project's (like a system python without botocore)."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "python3"
    script.write_text("#!/bin/sh\necho 'fake python3 was run' >&2\nexit 97\n")
    script.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.mark.parametrize("script", HELP_SCRIPTS)
def test_help_runs_nothing(script: str, tmp_path: Path) -> None:
    """--help of a copy of test_scripts in an empty tree: usage on stdout, nothing created."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "test_scripts", tree / "test_scripts")
    before = sorted(tree.rglob("*"))
    began = time.monotonic()
    proc = subprocess.run(
        [str(tree / "test_scripts" / script), "--help"],
        cwd=tree,
        env=dict(os.environ, PATH=fake_python3(tmp_path)),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - began < 5
    assert proc.stdout.lower().startswith("usage:"), proc.stdout
    assert proc.stderr == ""
    assert sorted(tree.rglob("*")) == before  # no .venv, no .local-stack, no generated files


def test_local_stack_help_shows_every_option_of_the_module() -> None:
    shown = subprocess.run(
        ["test_scripts/local_stack.sh", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for command in ("start", "stop", "env"):
        module_help = subprocess.run(
            [sys.executable, "-m", "tests.support.localstack", command, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for flag in set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", module_help)):
            assert re.search(re.escape(flag) + r"(?![\w-])", shown), (
                f"{flag} missing from local_stack.sh --help"
            )


@pytest.mark.parametrize(
    "args",
    [
        ["start", "--no-such-option"],
        ["start", "--state-dir", "{file}/sub"],
        ["env", "--state-dir", "{empty}"],
    ],
)
def test_failed_local_stack_makes_eval_fail(args: list[str], tmp_path: Path) -> None:
    """eval "$(local_stack.sh ...)" ignores the script's exit code; its stdout makes eval fail."""
    (tmp_path / "file").write_text("")
    (tmp_path / "empty").mkdir()
    args = [a.format(file=tmp_path / "file", empty=tmp_path / "empty") for a in args]
    command = " ".join(["test_scripts/local_stack.sh", *args])
    proc = subprocess.run(
        ["bash", "-c", f'set -e; eval "$({command})"; echo reached'],
        cwd=ROOT,
        env=dict(os.environ, PATH=fake_python3(tmp_path)),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "reached" not in proc.stdout
    assert "local_stack.sh: error: " in proc.stderr
    assert "fake python3" not in proc.stderr  # .venv/bin/python ran, not the first python3 on PATH
    assert not (tmp_path / "empty" / "stack.json").exists()


def test_success_uses_the_project_python(tmp_path: Path) -> None:
    record = {"object_id": "h/u/job.1", "status": "SUCCEEDED"}
    env = dict(os.environ, DEMO=str(fake_demo(tmp_path, record, 0)), PATH=fake_python3(tmp_path))
    proc = subprocess.run(
        ["test_scripts/success.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fake python3" not in proc.stderr


def fake_venv_python3(tmp_path: Path, pip_code: int) -> str:
    """A `python3` whose `-m venv DIR` makes a DIR/bin/python (its pip) and DIR/bin/uv, both noisy
    (100 lines of pip's warnings), exiting pip_code; `DIR/bin/python script.py` prints a requirement."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    noisy = (
        "#!/bin/bash\n"
        "for i in \\$(seq 100); do echo \"WARNING: Location 'file:///opt/pypi/\\$i' is ignored\"; done\n"
        'echo "ERROR: pip says no" >&2\n'
        f"exit {pip_code}\n"
    )
    (bin_dir / "python3").write_text(
        "#!/bin/bash\n"
        '[[ "$1 $2" == "-m venv" ]] || exit 97\n'
        'mkdir -p "$3/bin"\n'
        f'cat >"$3/bin/python" <<EOF\n#!/bin/bash\n'
        f'[[ \\$1 != *.py ]] || {{ echo uv==0; exit 0; }}\n{noisy}EOF\n'
        f'cat >"$3/bin/uv" <<EOF\n{noisy}EOF\n'
        'chmod +x "$3/bin/python" "$3/bin/uv"\n'
    )
    (bin_dir / "python3").chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.mark.parametrize("pip_code", [0, 1])
def test_bootstrap_hides_pip_output(pip_code: int, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "test_scripts").mkdir(parents=True)
    shutil.copy(ROOT / "test_scripts" / "bootstrap.sh", tree / "test_scripts")
    (tree / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tree / "uv.lock").write_text("version = 1\n")
    env = dict(os.environ, PATH=fake_venv_python3(tmp_path, pip_code))
    run_it = ["test_scripts/bootstrap.sh"]
    proc = subprocess.run(run_it, cwd=tree, env=env, capture_output=True, text=True, check=False, timeout=60)
    log = tree / ".venv" / "install.log"
    assert log.read_text().count("is ignored") >= 100  # 100 per installer call
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("bootstrap: installing the project and its dev tools into .venv")
    stamps = list((tree / ".venv").glob(".installed-*"))
    if pip_code == 0:
        assert lines[1:] == ["bootstrap: done"]
        assert len(stamps) == 1
        again = subprocess.run(run_it, cwd=tree, env=env, capture_output=True, text=True, check=False)
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")  # idempotent
    else:
        assert proc.returncode != 0
        assert lines[1].startswith("bootstrap: error: installing from uv.lock failed")
        assert lines[-1] == "ERROR: pip says no" and len(lines) <= 33  # the log's tail only
        assert not stamps
