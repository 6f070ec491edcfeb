"""Start-up as a person meets it (issue 11): --help, storage that cannot be reached, a table or bucket
that does not exist. Each is answered at once with a clear message and nothing written."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from feaas.exitcodes import ExitCode
from tests.conftest import ROOT
from tests.support.scripts import action, job_item, script


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_prints_variables_run_modes_and_exit_codes() -> None:
    proc = subprocess.run([sys.executable, "-m", "src.worker", "--help"], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: python -m src.worker")
    for word in ("RUN_MODE", "JOB_ID", "USERNAME", "DYNAMO_STREAMS_TABLE", "ACTION_INPUT_JSON",
                 "RUN_COLLECTION", "RUN_FILES", "AWS_ENDPOINT_URL_S3"):
        assert word in proc.stdout
    # the sweeper's run mode and every setting it reads (feaas.settings.SweepSettings)
    run_modes = next(line for line in proc.stdout.splitlines() if line.strip().startswith("RUN_MODE"))
    assert "SWEEP" in run_modes
    for word in ("CLUSTER", "TASK_FAMILY", "SUBNETS", "SECURITY_GROUPS", "ASSIGN_PUBLIC_IP",
                 "CONTAINER_NAME", "MAX_ATTEMPTS"):
        assert word in proc.stdout.split("\n  SWEEP ", 1)[1], word
    for code in ExitCode:
        assert f"\n  {int(code):<3} {code.meaning}\n" in proc.stdout
    assert "invalid configuration" not in proc.stdout + proc.stderr


def test_an_unexpected_argument_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "src.worker", "--job"], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == ExitCode.CONFIG
    assert "see --help" in proc.stderr


@pytest.mark.parametrize("service", ["DYNAMODB", "S3"])
def test_unreachable_storage_exits_69_naming_the_endpoint(service, put_job, run_worker) -> None:
    job_id = put_job(job_item(script([action("add", "sys.math.add", a=1, b=2)])))
    endpoint = f"http://127.0.0.1:{closed_port()}"
    run = run_worker(job_id, timeout=30, **{f"AWS_ENDPOINT_URL_{service}": endpoint})
    assert run.code == ExitCode.UNREACHABLE, run.stdout + run.stderr
    failure = run.events("storage_unreachable")
    assert len(failure) == 1 and endpoint in failure[0]["error"]
    assert "status" not in run.job and "attempt" not in run.job  # nothing written


@pytest.mark.parametrize(("variable", "value"), [("DYNAMO_TABLE", "no-such-documents"),
                                                 ("DYNAMO_STREAMS_TABLE", "no-such-streams"),
                                                 ("PRIMARY_BUCKET", "no-such-bucket-x")])
def test_a_missing_table_or_bucket_is_configuration(variable, value, dao, put_job, run_worker) -> None:
    job_id = put_job(job_item(script([action("add", "sys.math.add", a=1, b=2)])))
    before = dao.docs.get(job_id)
    run = run_worker(job_id, timeout=60, **{variable: value})
    assert run.code == ExitCode.CONFIG, run.stdout + run.stderr
    message = run.events("storage_missing")[0]["error"]
    assert f"{variable}={value!r} does not exist" in message
    assert run.job == before


def test_catalogue_help_and_ids() -> None:
    help_proc = subprocess.run([sys.executable, "-m", "src.catalogue", "--help"], check=False, cwd=ROOT,
                               capture_output=True, text=True, timeout=60)
    assert help_proc.returncode == 0 and help_proc.stdout.startswith("usage: python -m src.catalogue")
    assert len(help_proc.stdout) < 2000  # usage, not the catalogue
    ids = subprocess.run([sys.executable, "-m", "src.catalogue", "--ids"], check=False, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert ids.returncode == 0, ids.stderr
    assert "sys.math.add(a, b) -> sum\n" in ids.stdout
    assert "sys.debug.echo(any) -> \n" in ids.stdout
