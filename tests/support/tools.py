"""Find the command-line tools the tests run: the project's venv first, then PATH.

A fresh machine has shellcheck, hadolint, moto_server and aws only inside `.venv/bin`, which
nothing puts on PATH when pytest is started directly (issue 11).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def venv_bin() -> Path:
    """The directory of the running interpreter's scripts (the venv's `bin`)."""
    return Path(sys.executable).parent


def find_tool(name: str) -> str | None:
    """Path of `name`, preferring the one installed beside this interpreter."""
    candidate = venv_bin() / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def path_with_venv(path: str | None = None) -> str:
    """PATH with the venv's bin first, for subprocesses that look tools up themselves."""
    rest = path if path is not None else os.environ.get("PATH", "")
    return os.pathsep.join([str(venv_bin()), rest]) if rest else str(venv_bin())
