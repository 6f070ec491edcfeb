"""The two servers (DynamoDB Local, SeaweedFS ``weed mini``) and the stack's start and stop."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
from pathlib import Path

from tests.support.localstack.install import LAUNCHER_CLASS, Paths, ensure_installed
from tests.support.localstack.processes import (
    free_ports,
    kill_group,
    kill_groups,
    ours,
    spawn,
    wait_ready,
)
from tests.support.localstack.stack import (
    DEFAULT_REGION,
    DYNAMODB_DATA_DIR,
    DYNAMODB_LOG,
    HOST,
    READY_TIMEOUT_SECONDS,
    S3_CONFIG_FILE,
    S3_DATA_DIR,
    S3_LOG,
    STACK_FILE,
    LocalStack,
    LocalStackError,
    load,
    save,
)

# weed mini's listening ports besides the S3 one, in the order they are allocated.
WEED_PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3_grpc",
    "admin",
    "admin_grpc",
)


def _probe_config():
    from botocore.config import Config

    return Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1, "mode": "standard"})


# --- DynamoDB Local -----------------------------------------------------------------------------


def _start_dynamodb_process(stack: LocalStack, paths: Paths) -> int:
    state = stack.state_dir
    args = ["-sharedDb", "-disableTelemetry", "-port", str(stack.dynamodb_port)]
    if stack.persistent:
        data = state / DYNAMODB_DATA_DIR
        data.mkdir(parents=True, exist_ok=True)
        args = ["-dbPath", str(data), *args]
    else:
        args = ["-inMemory", *args]
    classpath = os.pathsep.join([str(paths.launcher_dir), str(paths.dynamodb_jar)])
    cmd = [
        str(paths.java),
        "-Xmx1g",
        "-XX:+UseSerialGC",
        "-Djava.net.preferIPv4Stack=true",
        f"-Dloopback.host={HOST}",
        f"-Djava.library.path={paths.dynamodb_lib}",
        "-cp",
        classpath,
        LAUNCHER_CLASS,
        *args,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return spawn(cmd, cwd=state, log=state / DYNAMODB_LOG, env=env)


def _wait_dynamodb(stack: LocalStack, timeout: float) -> None:
    client = stack.client("dynamodb", config=_probe_config())
    wait_ready(
        "DynamoDB Local",
        stack.dynamodb_pid,
        stack.state_dir / DYNAMODB_LOG,
        lambda: client.list_tables(Limit=1),
        timeout,
    )


# --- SeaweedFS ----------------------------------------------------------------------------------


def _weed_sockets(stack: LocalStack) -> list[Path]:
    """Unix sockets weed mini creates in /tmp, named after our ports."""
    found: list[Path] = []
    for port in [stack.s3_port, *stack.weed_ports.values()]:
        found.extend(Path(p) for p in glob.glob(f"/tmp/seaweedfs-*-{int(port)}.sock"))
    return found


def _remove_weed_sockets(stack: LocalStack) -> None:
    for path in _weed_sockets(stack):
        with contextlib.suppress(OSError):
            if path.is_socket():
                path.unlink()


def _write_s3_config(stack: LocalStack) -> Path:
    config = {
        "identities": [
            {
                "name": "local",
                "credentials": [{"accessKey": stack.access_key, "secretKey": stack.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    path = stack.state_dir / S3_CONFIG_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle, indent=2)
    return path


def _start_s3_process(stack: LocalStack, paths: Paths) -> int:
    state = stack.state_dir
    data = state / S3_DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    config = _write_s3_config(stack)
    p = stack.weed_ports
    _remove_weed_sockets(stack)  # stale ones from a crashed run on the same (now free) ports
    cmd = [
        str(paths.weed),
        "mini",
        f"-dir={data}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-master.port={p['master']}",
        f"-master.port.grpc={p['master_grpc']}",
        f"-volume.port={p['volume']}",
        f"-volume.port.grpc={p['volume_grpc']}",
        f"-filer.port={p['filer']}",
        f"-filer.port.grpc={p['filer_grpc']}",
        f"-s3.port={stack.s3_port}",
        f"-s3.port.grpc={p['s3_grpc']}",
        f"-admin.port={p['admin']}",
        f"-admin.port.grpc={p['admin_grpc']}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",
        "-s3.allowDeleteBucketNotEmpty=false",
        "-volume.preStopSeconds=0",  # no grace period for clients of a cluster of one: faster stop
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["GOMEMLIMIT"] = "512MiB"
    return spawn(cmd, cwd=state, log=state / S3_LOG, env=env)


def _wait_s3(stack: LocalStack, timeout: float) -> None:
    client = stack.client("s3", config=_probe_config().merge(_path_style()))
    wait_ready("SeaweedFS", stack.s3_pid, stack.state_dir / S3_LOG, client.list_buckets, timeout)


def _path_style():
    from botocore.config import Config

    return Config(s3={"addressing_style": "path"})


def _paths_for(stack: LocalStack) -> Paths:
    return ensure_installed(Path(stack.cache_dir) if stack.cache_dir else None)


def is_running(stack: LocalStack) -> bool:
    return ours(stack.dynamodb_pid, LAUNCHER_CLASS) and ours(stack.s3_pid, "weed")


# --- public lifecycle ---------------------------------------------------------------------------


def start(
    state_dir: Path,
    *,
    persistent: bool = False,
    dynamodb_port: int | None = None,
    s3_port: int | None = None,
    region: str = DEFAULT_REGION,
    cache_dir: Path | None = None,
    timeout: float = READY_TIMEOUT_SECONDS,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> LocalStack:
    """Start DynamoDB Local and SeaweedFS on loopback, wait until both answer, write stack.json.

    ``access_key``/``secret_key`` fix the S3 identity (default: random per stack)."""
    state = Path(state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    if (state / STACK_FILE).exists():
        previous = load(state)
        if ours(previous.dynamodb_pid, LAUNCHER_CLASS) or ours(previous.s3_pid, "weed"):
            raise LocalStackError(f"a local stack is already running in {state}; stop it first")
    gitignore = state / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")
    paths = ensure_installed(cache_dir)

    if not persistent:
        for name in (DYNAMODB_DATA_DIR, S3_DATA_DIR):
            shutil.rmtree(state / name, ignore_errors=True)
    for name in (DYNAMODB_LOG, S3_LOG):
        with contextlib.suppress(FileNotFoundError):
            (state / name).unlink()

    explicit = {p for p in (dynamodb_port, s3_port) if p}
    needed = len(WEED_PORT_NAMES) + (dynamodb_port is None) + (s3_port is None)
    ports = free_ports(needed, exclude=explicit)
    weed_ports = {name: ports.pop() for name in WEED_PORT_NAMES}
    stack = LocalStack(
        state_dir=state,
        dynamodb_port=dynamodb_port or ports.pop(),
        s3_port=s3_port or ports.pop(),
        dynamodb_pid=0,
        s3_pid=0,
        access_key=access_key or "LOCAL" + secrets.token_hex(8).upper(),
        secret_key=secret_key or secrets.token_hex(20),
        region=region,
        persistent=persistent,
        weed_ports=weed_ports,
        cache_dir=str(cache_dir) if cache_dir is not None else None,
    )
    try:
        stack.dynamodb_pid = _start_dynamodb_process(stack, paths)
        stack.s3_pid = _start_s3_process(stack, paths)
        save(stack)
        _wait_s3(stack, timeout)
        _wait_dynamodb(stack, timeout)
    except BaseException:
        _stop_processes(stack)
        raise
    return stack


def _stop_processes(stack: LocalStack) -> None:
    # Both at once. A throw-away stack's data is discarded anyway, so it is killed outright;
    # a persistent one gets SIGTERM so both servers flush and close their files.
    try:
        kill_groups(
            [(stack.s3_pid, "weed"), (stack.dynamodb_pid, LAUNCHER_CLASS)], graceful=stack.persistent
        )
    finally:
        _remove_weed_sockets(stack)


def stop(stack_or_state_dir: LocalStack | Path | str) -> None:
    """Stop both servers (SIGTERM to each process group, SIGKILL after a grace period). Idempotent.

    A non-persistent stack's SeaweedFS data directory is removed; a persistent one keeps its data.
    """
    if isinstance(stack_or_state_dir, LocalStack):
        stack = stack_or_state_dir
    else:
        try:
            stack = load(Path(stack_or_state_dir))
        except LocalStackError:
            return
    _stop_processes(stack)
    if not stack.persistent:
        shutil.rmtree(stack.state_dir / S3_DATA_DIR, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (stack.state_dir / STACK_FILE).unlink()


def stop_dynamodb(stack: LocalStack) -> None:
    """Stop DynamoDB Local only (its port stays reserved in the stack for start_dynamodb)."""
    kill_group(stack.dynamodb_pid, LAUNCHER_CLASS)


def start_dynamodb(stack: LocalStack, *, timeout: float = READY_TIMEOUT_SECONDS) -> LocalStack:
    """(Re)start DynamoDB Local on the same port; with persistent=True its data is still there."""
    if ours(stack.dynamodb_pid, LAUNCHER_CLASS):
        return stack
    paths = _paths_for(stack)
    stack.dynamodb_pid = _start_dynamodb_process(stack, paths)
    save(stack)
    _wait_dynamodb(stack, timeout)
    return stack


def stop_s3(stack: LocalStack) -> None:
    """Stop SeaweedFS only; its data directory stays for start_s3."""
    kill_group(stack.s3_pid, "weed")
    _remove_weed_sockets(stack)


def start_s3(stack: LocalStack, *, timeout: float = READY_TIMEOUT_SECONDS) -> LocalStack:
    """(Re)start SeaweedFS on the same ports with the same data directory and keys."""
    if ours(stack.s3_pid, "weed"):
        return stack
    paths = _paths_for(stack)
    stack.s3_pid = _start_s3_process(stack, paths)
    save(stack)
    _wait_s3(stack, timeout)
    return stack
