"""Print one package of ``uv.lock`` as a hash-pinned pip requirement (issue 14).

``uv.lock`` is the one source of pinned versions. uv itself is a locked (dev) package, and both
``test_scripts/bootstrap.sh`` and the Dockerfile install that exact uv with pip first
(``pip install --require-hashes``), then let it install everything else from the lock.

Usage: python test_scripts/lock_requirement.py uv.lock uv  →  ``uv==0.13.9 --hash=sha256:…``
"""

from __future__ import annotations

import sys
import tomllib


def requirement(lock_path: str, name: str) -> str:
    with open(lock_path, "rb") as f:
        lock = tomllib.load(f)
    for package in lock.get("package", []):
        if package.get("name") == name:
            hashes = [wheel["hash"] for wheel in package.get("wheels", [])]
            if "sdist" in package:
                hashes.append(package["sdist"]["hash"])
            if not hashes:
                raise SystemExit(f"lock_requirement: {name} has no hashes in {lock_path}")
            return f"{name}=={package['version']} " + " ".join(f"--hash={h}" for h in hashes)
    raise SystemExit(f"lock_requirement: {name} is not in {lock_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python test_scripts/lock_requirement.py LOCK_FILE PACKAGE")
    print(requirement(sys.argv[1], sys.argv[2]))
