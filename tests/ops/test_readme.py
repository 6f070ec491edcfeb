"""README.md's "## Deployment" section documents every flag each script's --help shows.

The section's text lives in tests/ops/README_sections.md until it is merged into README.md.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.ops.conftest import ROOT, SCRIPTS

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")


def help_flags(script: str) -> set[str]:
    proc = subprocess.run(
        [f"./{script}", "--help"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: ")
    return set(FLAG.findall(proc.stdout))


def deployment_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Deployment\n" in "\n" + readme, "README.md has no '## Deployment' section"
    section = readme.split("## Deployment\n", 1)[1]
    return re.split(r"\n## (?!#)", section, maxsplit=1)[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_flags_are_documented(script: str) -> None:
    flags = help_flags(script)
    assert "--help" in flags and len(flags) > 3
    section = deployment_section()
    missing = sorted(f for f in flags if not re.search(re.escape(f) + r"(?![\w-])", section))
    assert not missing, f"{script} flags missing from README.md '## Deployment': {missing}"
