"""Print the action catalogue as JSON: ``python -m src.catalogue``."""

from __future__ import annotations

import sys

from src.actions import default_registry


def main() -> int:
    sys.stdout.write(default_registry().catalogue_json() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
