"""Session fixtures: one real local stack (DynamoDB Local + SeaweedFS) shared by the integration tiers,
and helpers that run ``python -m src.worker`` against it the way Fargate would."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from feaas.actions.base import ActionContext
from feaas.actions.context import UserStorage
from feaas.dao import Blobs, Dao, Documents, Streams, make_clients
from tests.support import localstack
from tests.support.environ import setting_env
from tests.support.scripts import NAMESPACE, USERNAME

ROOT = Path(__file__).resolve().parents[1]
TABLE, STREAMS_TABLE, BUCKET = "plus-docs", "plus-streams", "plus-bucket"
REGION = "us-east-1"
# Distinctive explicit keys: every worker run of the suite gets them as ACCESS_KEY/SECRET_KEY, and
# no 4-character piece of either may appear in any output (checked at the end of the session).
ACCESS_KEY = "ZXQJWVKQZJXVWKQJ"
SECRET_KEY = "qjzx+VWKQ+jzxw+QVKJ+zqxj+WKVQ+xjqz"
OUTPUTS: list[str] = []  # every stdout/stderr of every worker this session started


# What the ECS agent gives a task to fetch its role's credentials: as secret as the keys (issue 13).
CREDENTIALS_TOKEN = "KXQVJZWVQXKJ-zqjxwv"
CREDENTIALS_RELATIVE_URI = f"/v2/credentials/{CREDENTIALS_TOKEN}"


def secret_fragments(min_len: int = 4) -> set[str]:
    return {key[i:i + min_len] for key in (ACCESS_KEY, SECRET_KEY, CREDENTIALS_TOKEN)
            for i in range(len(key) - min_len + 1)}


def leaked_fragments(text: str) -> list[str]:
    return sorted(f for f in secret_fragments() if f in text)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localstack.LocalStack]:
    """The real local stack, started once per test session on loopback. Persistent, so fault
    injection can stop a server and start it again with its data."""
    started = localstack.start(tmp_path_factory.mktemp("stack"), persistent=True, access_key=ACCESS_KEY,
                               secret_key=SECRET_KEY)
    with setting_env(started.env):
        localstack.create_resources(started.env, table=TABLE, streams_table=STREAMS_TABLE, bucket=BUCKET)
        try:
            yield started
        finally:
            localstack.stop(started)


@pytest.fixture(scope="session")
def dao(stack: localstack.LocalStack) -> Dao:
    clients = make_clients(REGION)
    return Dao(docs=Documents(clients.dynamodb, TABLE, "object_id", "ownerIndex"),
               streams=Streams(clients.dynamodb, STREAMS_TABLE), blobs=Blobs(clients.s3, BUCKET))


@pytest.fixture
def user_storage(dao: Dao) -> UserStorage:
    """A real namespace-scoped storage for ``plus_example_com/alice@example.com/``."""
    return UserStorage(dao.blobs, dao.docs, NAMESPACE)


@pytest.fixture
def action_ctx(user_storage: UserStorage, tmp_path: Path):
    """Factory for an ActionContext over the real storage: ``action_ctx()`` or
    ``action_ctx(cancel=event)``."""

    def make(cancel: threading.Event | None = None, memory_limit_mb: int | None = None) -> ActionContext:
        work = tmp_path / f"action-{uuid.uuid4().hex[:8]}"
        work.mkdir()
        return ActionContext(storage=user_storage, tmp_dir=work, cancel=cancel or threading.Event(),
                             log=logging.getLogger("tests.action"), memory_limit_mb=memory_limit_mb)

    return make


@dataclass
class WorkerRun:
    code: int
    stdout: str
    stderr: str
    job: dict[str, Any] | None

    @property
    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stdout.splitlines():
            with contextlib.suppress(ValueError):  # a line that is not JSON (a traceback, say)
                out.append(json.loads(line))
        return out

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]


def worker_env(stack: localstack.LocalStack, job_id: str, **overrides: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUN_MODE", "JOB_ID"))}
    # keys come explicitly
    env.update({k: v for k, v in stack.env.items() if k.startswith("AWS_ENDPOINT_URL")})
    env.update({"RUN_MODE": "RUN_SCRIPT", "JOB_ID": job_id, "USERNAME": USERNAME, "REGION": REGION,
                "DYNAMO_TABLE": TABLE, "DYNAMO_STREAMS_TABLE": STREAMS_TABLE, "PRIMARY_BUCKET": BUCKET,
                "LOG_FORMAT": "json", "HEARTBEAT_SECONDS": "1", "PYTHONPATH": str(ROOT),
                "ACCESS_KEY": ACCESS_KEY, "SECRET_KEY": SECRET_KEY,
                # never used while explicit keys are given, but must never be printed either
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": CREDENTIALS_RELATIVE_URI})
    env.update({k.upper(): str(v) for k, v in overrides.items() if v is not None})
    for k in [k for k, v in overrides.items() if v is None]:
        env.pop(k.upper(), None)
    return env


@pytest.fixture
def put_job(dao: Dao):
    """Store a job document (as plus-engine does) and return its id."""

    def put(item: dict[str, Any]) -> str:
        dao.docs.put_new(item)
        return str(item["object_id"])

    return put


class RecordedPopen(subprocess.Popen):  # type: ignore[type-arg]
    """A worker process whose output joins OUTPUTS (for the secrets check)."""

    def communicate(self, *args: Any, **kwargs: Any) -> tuple[str, str]:
        out, err = super().communicate(*args, **kwargs)
        OUTPUTS.append((out or "") + (err or ""))
        return out, err

    def wait(self, timeout: float | None = None) -> int:
        if self.stdout is not None and not self.stdout.closed:
            self.communicate(timeout=timeout)
        return super().wait(timeout)


@pytest.fixture
def start_worker(stack: localstack.LocalStack):
    """Start the worker as a subprocess (for signal tests): ``start_worker(job_id, **env)`` → Popen."""
    procs: list[subprocess.Popen[str]] = []

    def start(job_id: str, **env: Any) -> subprocess.Popen[str]:
        proc = RecordedPopen([sys.executable, "-m", "src.worker"], cwd=ROOT,
                             env=worker_env(stack, job_id, **env),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture
def run_worker(stack: localstack.LocalStack, dao: Dao):
    """Run ``python -m src.worker`` to completion: ``run_worker(job_id, **env)`` → WorkerRun."""

    def run(job_id: str, timeout: float = 120, **env: Any) -> WorkerRun:
        proc = subprocess.run([sys.executable, "-m", "src.worker"], cwd=ROOT,
                              env=worker_env(stack, job_id, **env),
                              capture_output=True, text=True, timeout=timeout)
        OUTPUTS.append(proc.stdout + proc.stderr)
        return WorkerRun(proc.returncode, proc.stdout, proc.stderr, dao.docs.get(job_id))

    return run


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No piece of the explicit keys may appear in any worker output of the whole session."""
    leaks = sorted({f for text in OUTPUTS for f in leaked_fragments(text)})
    session.config.stash[_LEAKS] = (len(OUTPUTS), leaks)
    if leaks:
        session.exitstatus = 1


_LEAKS = pytest.StashKey[tuple[int, list[str]]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    runs, leaks = config.stash.get(_LEAKS, (0, []))
    if runs:
        verdict = f"LEAKED {leaks}" if leaks else "none leaked"
        terminalreporter.write_line(f"secrets check: {runs} worker outputs scanned for 4-character pieces of "
                                    f"ACCESS_KEY/SECRET_KEY and the credentials URI: {verdict}")
