"""The environment and executable of every subprocess an action starts (issue 13 §5, SPEC §8.3).

A child process never inherits the worker's environment: that holds the AWS credentials (explicit
keys, ``AWS_CONTAINER_CREDENTIALS_*_URI`` of the task role, ``ECS_CONTAINER_METADATA_URI*``) and
endpoint settings, and a media tool reading a hostile file has no use for any of them. Children
get a small fixed environment instead, built here and nowhere else.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: The only search path a child sees; the tools it may start live in the system directories.
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"


def child_env(work_dir: Path) -> dict[str, str]:
    """The whole environment of a subprocess working in ``work_dir``.

    ``HOME`` and ``TMPDIR`` point at the work directory so nothing a child writes (caches,
    temporary files, dot-files) lands outside the directory the action removes afterwards.
    """
    home = str(work_dir)
    return {"PATH": CHILD_PATH, "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def find_executable(name: str) -> str | None:
    """The absolute path of ``name`` on the worker's own ``PATH`` (``None`` when missing).

    Resolved in the worker because a child's ``PATH`` is :data:`CHILD_PATH`, which need not hold
    the tool on a developer's machine.
    """
    return shutil.which(name)
