"""Build and run the worker's image with docker or podman (issue 14): the image tier and the start-up
benchmark use it.

``engine()`` finds a working docker, or installs and configures podman (test_scripts/ensure_podman.sh);
``base_image()`` is the official Python image where a registry answers, else a locally made Debian
one (test_scripts/ensure_base_image.sh); ``build()`` builds the Dockerfile of this checkout.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: How `docker run` is hardened the way the task definition is (setup.sh): read-only root, /tmp the
#: only writable place, no capabilities, no privilege gain.
HARDENED = ("--read-only", "--tmpfs", "/tmp:rw,size=1g,mode=1777", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges")
#: For a container that needs no network. Every run names its network: the engine's default bridge
#: needs iptables, which a machine of this kind has not.
OFFLINE = ("--network", "none")


class ContainerError(RuntimeError):
    """The engine could not be set up, or an image could not be built."""


@dataclass(frozen=True)
class Engine:
    command: str  # "docker" or "podman"
    env: Mapping[str, str] = field(default_factory=dict)  # CONTAINERS_CONF for podman

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, **self.env, **(extra or {})}

    def run(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.command, *args], env=self.environ(env), capture_output=True, text=True,
                              timeout=timeout, input=input, check=False)

    def popen(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([self.command, *args], env=self.environ(env), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def image_size(self, image: str) -> int:
        proc = self.run("image", "inspect", "--format", "{{.Size}}", image, timeout=60)
        if proc.returncode != 0:
            raise ContainerError(proc.stderr.strip())
        return int(proc.stdout.strip())


@cache
def engine() -> Engine:
    proc = subprocess.run([str(ROOT / "test_scripts" / "ensure_podman.sh")], capture_output=True, text=True,
                          check=False, timeout=900)
    if proc.returncode != 0:
        raise ContainerError(f"ensure_podman.sh failed: {proc.stderr.strip()[-2000:]}")
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    env = {"CONTAINERS_CONF": values["CONTAINERS_CONF"]} if values.get("CONTAINERS_CONF") else {}
    return Engine(values["ENGINE"], env)


@cache
def base_image() -> str:
    eng = engine()
    proc = subprocess.run([str(ROOT / "test_scripts" / "ensure_base_image.sh"), eng.command],
                          env=eng.environ(), capture_output=True, text=True, check=False, timeout=900)
    if proc.returncode != 0:
        raise ContainerError(f"ensure_base_image.sh failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


def image_name(variant: str = "") -> str:
    """A tag of this checkout's own, so two checkouts on one machine do not overwrite each other's."""
    checkout = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
    return f"localhost/plus-worker-test:{checkout}{'-' + variant if variant else ''}"


@cache
def build(with_browser: bool = False) -> str:
    """Build the Dockerfile (``WITH_BROWSER=1`` adds chromium) and return the image's name."""
    eng = engine()
    name = image_name("browser" if with_browser else "")
    args = ["build", "--network", "host", "-t", name, "--build-arg", f"PYTHON_IMAGE={base_image()}",
            "--build-arg", f"WITH_BROWSER={1 if with_browser else 0}", str(ROOT)]
    with tempfile.NamedTemporaryFile("w+", prefix="image-build-", suffix=".log", delete=False) as log:
        proc = subprocess.run([eng.command, *args], env=eng.environ(), stdout=log, stderr=subprocess.STDOUT,
                              text=True, check=False, timeout=1800)
        log.seek(0)
        tail = log.read()[-3000:]
    if proc.returncode != 0:
        raise ContainerError(f"{eng.command} build failed (log: {log.name}):\n{tail}")
    os.unlink(log.name)
    return name


def run_args(image: str, env_names: Sequence[str], *, name: str | None = None, hardened: bool = True,
             extra: Sequence[str] = ()) -> list[str]:
    """``run`` arguments for the worker on the host's network; variables are passed by name (``-e NAME``),
    so their values never appear on a command line."""
    args = ["run", "--rm", "--network", "host", "--name", name or f"plus-worker-{uuid.uuid4().hex[:10]}"]
    if hardened:
        args += HARDENED
    for var in env_names:
        args += ["-e", var]
    return [*args, *extra, image]
