"""The operations scripts' own failures: one line of their own and a documented exit code.

Given no aws CLI on PATH, or no AWS credentials at all, setup.sh, deploy.sh, run-task.sh and
show_logs.sh print one `<script>: error: ...` line and exit EX_CONFIG (78) — never a bare
`aws: command not found`, a traceback or the CLI's 255. run-task.sh never uses 1 (the job
FAILED) for its own errors. deploy.sh --dry-run needs neither credentials nor .env.deploy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ops.conftest import EX_AWS, EX_CONFIG, EX_USAGE, ROOT, SCRIPTS, run_script
from tests.support.tools import path_with_venv

EXAMPLE = ROOT / ".env.deploy.example"
NOT_INSTALLED = "error: the aws CLI is not installed"
NO_CREDENTIALS = "error: no AWS credentials found"


def path_without_aws(tmp_path: Path) -> str:
    """A PATH directory holding every command of the usual PATH (venv first) except aws."""
    bin_dir = tmp_path / "bin-without-aws"
    bin_dir.mkdir()
    for directory in path_with_venv().split(os.pathsep):
        if not directory or not Path(directory).is_dir():
            continue
        for entry in Path(directory).iterdir():
            target = bin_dir / entry.name
            if entry.name.startswith("aws") or target.exists() or target.is_symlink():
                continue
            if entry.is_file() and os.access(entry, os.X_OK):
                target.symlink_to(entry)
    assert shutil.which("aws", path=str(bin_dir)) is None
    return str(bin_dir)


@pytest.fixture
def no_credentials_env(tmp_path: Path) -> dict[str, str]:
    """No AWS_* variables, empty config and credentials files, no instance metadata."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for name in ("ENV_FILE", "REGION", "CLUSTER", "LOG_GROUP", "TASK_FAMILY", "ACCESS_KEY", "SECRET_KEY"):
        env.pop(name, None)
    for name in ("config", "credentials"):
        (tmp_path / name).write_text("")
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",  # nothing would leave the machine anyway
        AWS_PAGER="",
        PATH=path_with_venv(),
    )
    return env


def script_args(script: str, env_file: Path) -> list[str]:
    """Arguments with which each script gets past its own checks to its first AWS call."""
    common = ["--env-file", str(env_file)]
    return {
        "setup.sh": ["./setup.sh", "--yes", *common],
        "deploy.sh": ["./deploy.sh", *common],
        "run-task.sh": ["./run-task.sh", *common, "--job-id", "h/u/job.1", "--username", "u"],
        "show_logs.sh": ["./show_logs.sh", *common, "--job", "h/u/job.1"],
    }[script]


def assert_one_line_error(
    proc: subprocess.CompletedProcess[str], script: str, message: str, code: int
) -> None:
    stdout, stderr, returncode = proc.stdout, proc.stderr, proc.returncode
    name = script.removesuffix(".sh")
    assert returncode == code, stdout + stderr
    assert stderr.splitlines() == [stderr.strip()], stderr  # one line
    assert stderr.startswith(f"{name}: {message}"), stderr
    assert "Traceback" not in stdout + stderr and "command not found" not in stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_without_the_aws_cli(script: str, tmp_path: Path, no_credentials_env: dict[str, str]) -> None:
    env_file = tmp_path / "settings"
    shutil.copy(EXAMPLE, env_file)
    env = dict(no_credentials_env, PATH=path_without_aws(tmp_path))
    proc = run_script(script_args(script, env_file), env, check=False, timeout=60)
    assert_one_line_error(proc, script, NOT_INSTALLED, EX_CONFIG)
    assert env_file.read_text() == EXAMPLE.read_text()


@pytest.mark.parametrize("script", SCRIPTS)
def test_without_credentials(script: str, tmp_path: Path, no_credentials_env: dict[str, str]) -> None:
    env_file = tmp_path / "settings"
    shutil.copy(EXAMPLE, env_file)
    proc = run_script(script_args(script, env_file), no_credentials_env, check=False, timeout=60)
    assert_one_line_error(proc, script, NO_CREDENTIALS, EX_CONFIG)
    assert env_file.read_text() == EXAMPLE.read_text()


@pytest.mark.parametrize("without_aws", [False, True])
def test_deploy_dry_run_needs_no_credentials_nor_env_file(
    without_aws: bool, tmp_path: Path, no_credentials_env: dict[str, str]
) -> None:
    env = dict(no_credentials_env, ENV_FILE=str(tmp_path / "missing" / ".env.deploy"))
    if without_aws:
        env["PATH"] = path_without_aws(tmp_path)
    proc = run_script(["./deploy.sh", "--dry-run"], env, timeout=60)
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/plus-worker"  # from .env.deploy.example
    assert ".env.deploy.example" in proc.stdout
    assert "would run: docker buildx build --platform linux/amd64" in proc.stdout
    assert f"--tag {uri}:latest --push" in proc.stdout
    assert "would register the latest revision of plus-worker with container worker's image" in proc.stdout
    assert proc.stdout.rstrip().endswith("dry run: nothing was built, pushed or registered")
    assert "Traceback" not in proc.stderr and "error" not in proc.stderr


def test_deploy_without_env_file_and_without_dry_run(
    tmp_path: Path, no_credentials_env: dict[str, str]
) -> None:
    env = dict(no_credentials_env, ENV_FILE=str(tmp_path / ".env.deploy"))
    proc = run_script(["./deploy.sh"], env, check=False, timeout=60)
    assert_one_line_error(proc, "deploy.sh", "error: ", EX_CONFIG)
    assert "not found: run ./setup.sh first" in proc.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--bogus"], EX_USAGE, "unknown option: --bogus"),
        (["--job-id", "h/u/job.1"], EX_USAGE, "--job-id and --username are required"),
        (["--job-id", "j", "--username", "u", "--run-mode", "RUN_X"], EX_USAGE, "unknown --run-mode"),
        (["--job-id", "j", "--username", "u", "--shards", "0"], EX_USAGE, "--shards"),
        (["--run-mode", "RUN_PLUSSCRIPT", "--job-id", "j", "--username", "u"], EX_USAGE, "needs --action-id"),
        (["--run-mode", "REGISTER_ACTIONS", "--job-id", "j"], EX_USAGE, "takes no --job-id"),
        (["--run-mode", "REGISTER_ACTIONS", "--env-file", "/nonexistent"], EX_CONFIG, "not found"),
        (["--job-id", "j", "--username", "u", "--env-file", "/nonexistent"], EX_CONFIG, "not found"),
    ],
)
def test_run_task_own_errors_are_not_job_codes(
    args: list[str], code: int, message: str, no_credentials_env: dict[str, str]
) -> None:
    proc = run_script(["./run-task.sh", *args], no_credentials_env, check=False, timeout=30)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("run-task: error: ")
    assert message in proc.stderr


def test_run_task_help_documents_its_codes() -> None:
    out = run_script(["./run-task.sh", "--help"], os.environ).stdout
    for code in (EX_USAGE, EX_AWS, EX_CONFIG):
        assert f"\n  {code}  " in out


def test_run_task_aws_failure_is_74_not_255(aws_env: dict[str, str], tmp_path: Path) -> None:
    """Against the emulator: credentials work, RunTask fails (no such cluster)."""
    env_file = tmp_path / "settings"
    shutil.copy(EXAMPLE, env_file)
    proc = run_script(
        [
            "./run-task.sh",
            "--env-file",
            str(env_file),
            "--region",
            "us-east-1",
            "--cluster",
            "no-such-cluster",
            "--job-id",
            "h/u/job.1",
            "--username",
            "u",
        ],
        aws_env,
        check=False,
        timeout=60,
    )
    assert proc.returncode == EX_AWS, proc.stdout + proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("run-task: error: RunTask failed for shard 0")
    assert "Traceback" not in proc.stderr
