"""Fixtures for the operations tests: an AWS API emulator (moto_server) on loopback and helpers
to run the deploy scripts against it with fake credentials."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.tools import find_tool, path_with_venv

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("setup.sh", "deploy.sh", "run-task.sh", "show_logs.sh")
REGION = "us-east-1"
# The operations scripts' own exit codes (test_scripts/ops_common.sh, each script's --help).
EX_USAGE = 64
EX_AWS = 74
EX_CONFIG = 78


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto_server_command(port: int) -> list[str]:
    exe = find_tool("moto_server")
    if exe:
        return [exe, "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start moto_server on a free loopback port for the whole session."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen(_moto_server_command(port), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start (exit {proc.poll()})") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def aws_env(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for scripts and the aws CLI: emulator endpoint, fake keys, no real profile."""
    home = tmp_path_factory.mktemp("aws-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
        AWS_PAGER="",
        PATH=path_with_venv(),  # the scripts run `aws` from the venv on a fresh machine
    )
    for name in (
        "ACCESS_KEY",
        "SECRET_KEY",
        "ENV_FILE",
        "REGION",
        "CLUSTER",
        "SUBNETS",
        "SECURITY_GROUPS",
        "DYNAMO_TABLE",
        "DYNAMO_STREAMS_TABLE",
        "PRIMARY_BUCKET",
        "LOG_GROUP",
        "TASK_FAMILY",
    ):
        env.pop(name, None)
    return env


def run_script(
    args: list[str], env: Mapping[str, str], *, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a repository script with stdin closed (so it never prompts) and capture its output."""
    proc = subprocess.run(
        args,
        check=False,
        cwd=ROOT,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="session")
def client(aws_env: dict[str, str]) -> Callable[[str], Any]:
    """boto3 clients for the emulator (assertions use boto3: the aws CLI takes ~1 s per call)."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    cache: dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=aws_env["AWS_ENDPOINT_URL"])
        return cache[service]

    return get
