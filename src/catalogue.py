"""Print the action catalogue: ``python -m src.catalogue [--ids | --json]``."""

from __future__ import annotations

import argparse
import json
import sys

from src.actions import default_registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.catalogue",
        description="Print the worker's action catalogue (every action id with its inputs and outputs).")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="the whole catalogue as JSON (the default)")
    shape.add_argument("--ids", action="store_true",
                       help="one action id per line, with its inputs and outputs")
    args = parser.parse_args(argv)
    catalogue = default_registry().catalogue_json()
    if args.ids:
        for entry in json.loads(catalogue):
            sys.stdout.write(f"{entry['id']}({_names(entry['inputs'])}) -> {_names(entry['outputs'])}\n")
        return 0
    sys.stdout.write(catalogue + "\n")
    return 0


def _names(params: list[dict[str, str]] | str) -> str:
    """Parameter names, or the catalogue's word for "whatever it is given" (``sys.debug.echo``)."""
    return params if isinstance(params, str) else ", ".join(p["name"] for p in params)


if __name__ == "__main__":
    raise SystemExit(main())
