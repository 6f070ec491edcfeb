"""README.md's "## Deployment" section documents every flag each script's --help shows.

The section's text lives in tests/ops/README_sections.md until it is merged into README.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

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


# --- The newcomer's sections run as written (issue 11) -------------------------------------------------

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def section(title: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"\n## {title}\n" in readme, f"README.md has no '## {title}' section"
    return re.split(r"\n## (?!#)", readme.split(f"\n## {title}\n", 1)[1], maxsplit=1)[0]


def blocks(title: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(section(title)) if lang == language]


def test_first_job_runs_as_written_against_a_fresh_local_stack(tmp_path) -> None:
    """Every shell block of "Your first job", then the non-container blocks of "Running the worker",
    in one shell as a person would paste them, with a minimal environment."""
    shell = blocks("Your first job", "bash")
    running = [b for b in blocks("Running the worker", "bash") if "docker " not in b]
    assert len(shell) >= 4 and running, "the sections lost their commands"
    stop = shell.pop()  # the last block stops the stack: run it after "Running the worker"
    assert "local_stack.sh stop" in stop
    script = "\n".join(["set -euo pipefail", *shell, *running, stop])
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8",
           "PLUS_WORKER_STACK_DIR": str(tmp_path / "stack")}
    try:
        proc = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600, check=False)
    finally:
        (ROOT / "first-script.json").unlink(missing_ok=True)
        subprocess.run([sys.executable, "-m", "tests.support.localstack", "stop", "--state-dir",
                        str(tmp_path / "stack")], cwd=ROOT, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    shown = proc.stdout[proc.stdout.index("\n{\n"):]  # show-job's indented JSON
    record = json.loads(shown[:shown.index("\n}\n") + 3])
    assert record["status"] == "SUCCEEDED" and record["output"] == {"result": 84}
    assert record["receipts"]["add"] == {"success": True, "outputs": {"sum": 42}}
    assert "job_finished status=SUCCEEDED" in proc.stdout
    assert "Usage: python -m src.worker" in proc.stdout  # the --help block ran


def test_container_commands_use_the_example_env_file_and_the_stack_variables() -> None:
    """The container block is run by the image tier where an engine exists; here: what it names exists
    and every setting in the example env file is one the worker reads."""
    (docker,) = [b for b in blocks("Running the worker", "bash") if "docker run" in b]
    assert "--env-file test_scripts/job.env" in docker and "--network host" in docker
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "JOB_ID"):
        assert f"-e {name}" in docker
    from feaas.settings import Settings

    settings = dict(line.split("=", 1) for line in (ROOT / "test_scripts/job.env").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert {k.lower() for k in settings} <= set(Settings.model_fields)
    assert {"RUN_MODE", "USERNAME", "REGION", "DYNAMO_TABLE", "DYNAMO_STREAMS_TABLE",
            "PRIMARY_BUCKET"} <= set(settings)


def test_the_worked_example_of_adding_an_action_passes_its_own_tests(tmp_path) -> None:
    action_code, test_code = blocks("Development", "python")
    namespace: dict[str, Any] = {}
    exec(compile(action_code, "README:Shout", "exec"), namespace)
    exec(compile(test_code, "README:test_shout", "exec"), namespace)
    tests = sorted(name for name in namespace if name.startswith("test_"))
    assert len(tests) == 3
    for i, name in enumerate(tests):
        work = tmp_path / str(i)
        work.mkdir()
        namespace[name](work)
