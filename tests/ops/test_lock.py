"""One lock (issue 14): uv.lock is the only list of pinned versions, for .venv and the image alike."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.ops.conftest import ROOT


def uv_lock_check(project: Path, *, offline: bool = True) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
    network = ["--offline"] if offline else []
    # as bootstrap.sh runs uv: the machine's CA certificates (HTTPS may be re-signed by a proxy)
    env = {**os.environ, "UV_SYSTEM_CERTS": "1", "UV_PYTHON_DOWNLOADS": "never"}
    return subprocess.run([uv, "lock", "--locked", *network, "--project", str(project)],
                          capture_output=True, text=True, check=False, timeout=120, env=env)


def test_uv_lock_matches_pyproject() -> None:
    proc = uv_lock_check(ROOT)
    assert proc.returncode == 0, ("uv.lock does not match pyproject.toml: run `.venv/bin/uv lock` and "
                                  f"commit uv.lock\n{proc.stderr}")


def test_a_dependency_missing_from_the_lock_is_refused(tmp_path: Path) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    with_six = pyproject.replace('dependencies = [\n', 'dependencies = [\n    "six",\n', 1)
    (tmp_path / "pyproject.toml").write_text(with_six)
    shutil.copy(ROOT / "uv.lock", tmp_path / "uv.lock")
    # A changed dependency list is resolved again before uv can say the lock is stale, and that
    # needs the metadata of every locked package for every Python the project allows: a new
    # machine's uv cache holds only what bootstrap installed, so offline the resolution itself
    # fails ("not found in the cache"). It asks PyPI, as bootstrap does.
    proc = uv_lock_check(tmp_path, offline=False)
    assert proc.returncode != 0 and "needs to be updated" in proc.stderr, proc.stderr


def test_no_install_pins_versions_of_its_own() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"\b[a-z0-9_.-]+==\d", dockerfile), \
        "the Dockerfile pins a version: it belongs in uv.lock"
    assert "uv.lock" in dockerfile and "--require-hashes" in dockerfile and "uv sync --locked" in dockerfile
    bootstrap = (ROOT / "test_scripts" / "bootstrap.sh").read_text()
    assert "--require-hashes" in bootstrap and "sync --project \"$root\" --locked" in bootstrap
