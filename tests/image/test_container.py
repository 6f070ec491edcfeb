"""The image as Fargate and `docker run` use it (issue 14), against the session's local stack.

Every worker container runs hardened like the task definition: read-only root file system, /tmp a
tmpfs, all capabilities dropped, no new privileges.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from feaas.objects import AnyType
from feaas.psee.values import from_any
from tests.conftest import OUTPUTS, ROOT, worker_env
from tests.image.conftest import BUDGET_MB, SIZES_MB
from tests.support import container
from tests.support.scripts import NAMESPACE, action, add_and_nap_script, job_item, script
from tests.support.webpages import PageServer, colour_page, read_png

STOP_TIMEOUT_S = 20  # `stop -t`: SIGTERM, then SIGKILL after this long (ECS: stopTimeout)
WORKER_VARS = ("RUN_MODE", "JOB_ID", "USERNAME", "REGION", "DYNAMO_TABLE", "DYNAMO_STREAMS_TABLE",
               "PRIMARY_BUCKET", "LOG_FORMAT", "HEARTBEAT_SECONDS", "ACCESS_KEY", "SECRET_KEY",
               "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3")
GREEN = (0, 160, 0)


def container_env(stack, job_id: str, **overrides: Any) -> dict[str, str]:
    """The worker's variables for one job, as the test suite runs it, and nothing of the host's."""
    env = worker_env(stack, job_id, **overrides)
    return {k: env[k] for k in (*WORKER_VARS, *(k.upper() for k in overrides)) if k in env}


def run_worker_container(engine: container.Engine, image: str, env: dict[str, str], timeout: float = 180,
                         ) -> subprocess.CompletedProcess[str]:
    proc = engine.run(*container.run_args(image, sorted(env)), env=env, timeout=timeout)
    OUTPUTS.append(proc.stdout + proc.stderr)
    return proc


def wait_for(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def locked_runtime_versions() -> dict[str, str]:
    """The project's runtime dependencies and theirs, at the versions of uv.lock."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {p["name"]: p for p in lock["package"]}
    project = next(p for p in lock["package"] if p.get("source", {}).get("editable") == ".")
    wanted: dict[str, str] = {}
    todo = [d["name"] for d in project.get("dependencies", [])]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted[name] = packages[name]["version"]
        todo += [d["name"] for d in packages[name].get("dependencies", []) if "marker" not in d]
    return wanted


# --- the image itself -------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["without browser", "with browser"])
def test_image_size_is_within_budget(variant: str, engine, request) -> None:  # type: ignore[no-untyped-def]
    image = request.getfixturevalue("browser_image" if variant == "with browser" else "image")
    size_mb = engine.image_size(image) / 1e6
    SIZES_MB[variant] = size_mb
    print(f"image size {variant}: {size_mb:.0f} MB (budget {BUDGET_MB[variant]} MB)")  # noqa: T201 - the tier's report
    assert size_mb <= BUDGET_MB[variant], \
        f"{image} is {size_mb:.0f} MB, over its {BUDGET_MB[variant]} MB budget"


def test_installed_versions_are_exactly_the_lock(engine, image) -> None:  # type: ignore[no-untyped-def]
    code = ("import importlib.metadata as m, json, re; print(json.dumps({re.sub(r'[-_.]+', '-', "
            "d.metadata['Name']).lower(): d.version for d in m.distributions()}))")
    proc = engine.run("run", "--rm", *container.OFFLINE, "--entrypoint", "python", image, "-c", code,
                      timeout=120)
    assert proc.returncode == 0, proc.stderr
    installed = json.loads(proc.stdout)
    assert installed == locked_runtime_versions()  # nothing else either: no pip, no setuptools


def test_ffmpeg_has_every_codec_format_and_filter_the_actions_use(engine, image) -> None:  # type: ignore[no-untyped-def]
    script_text = (ROOT / "tests" / "image" / "ffmpeg_features.py").read_text()
    proc = engine.run(*container.run_args(image, [], extra=["-i", "--entrypoint", "python"]), "-",
                      input=script_text, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^\d+ passed, 0 failed$", proc.stdout, re.MULTILINE), proc.stdout


def test_runs_as_uid_10001_and_starts_tini(engine, image) -> None:  # type: ignore[no-untyped-def]
    proc = engine.run("run", "--rm", *container.OFFLINE, *container.HARDENED, "--entrypoint", "id", image,
                      timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"uid=10001\(worker\) gid=10001\(worker\)", proc.stdout), proc.stdout
    inspect = json.loads(engine.run("image", "inspect", image, timeout=60).stdout)[0]
    config = inspect.get("Config", {})
    assert config.get("User") == "10001:10001"
    assert config.get("Entrypoint") == ["/usr/bin/tini", "--", "python", "-m", "src.worker"]


def test_sources_are_byte_compiled(engine, image) -> None:  # type: ignore[no-untyped-def]
    code = ("import pathlib, sys;"
            "src = [p for d in ('/app/feaas', '/app/src') for p in pathlib.Path(d).rglob('*.py')];"
            "tag = sys.implementation.cache_tag;"
            "missing = [str(p) for p in src"
            " if not (p.parent / '__pycache__' / f'{p.stem}.{tag}.pyc').exists()];"
            "print(len(src), missing[:5]); sys.exit(1 if missing or not src else 0)")
    proc = engine.run("run", "--rm", *container.OFFLINE, *container.HARDENED, "--entrypoint", "python", image,
                      "-c", code, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the worker in the container ----------------------------------------------------------------------------

def test_empty_environment_exits_2_naming_the_settings(engine, image) -> None:  # type: ignore[no-untyped-def]
    proc = engine.run("run", "--rm", *container.OFFLINE, *container.HARDENED, image, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "JOB_ID" in proc.stderr and "RUN_MODE" in proc.stderr and "Traceback" not in proc.stderr


def test_short_job_succeeds_on_a_read_only_root(engine, image, stack, put_job, dao) -> None:  # type: ignore[no-untyped-def]
    job_id = put_job(job_item(add_and_nap_script(0.1), input_data={"a": 2, "b": 40}))
    proc = run_worker_container(engine, image, container_env(stack, job_id))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED" and job["output"]["sum"]["ival"] == "42"


def test_media_job_writes_its_output(engine, image, stack, put_job, dao, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = _clip(tmp_path / "clip.mp4", seconds=2, size="320x240")
    key = f"{NAMESPACE}image-tier/{uuid.uuid4().hex[:8]}/clip.mp4"
    dao.blobs.upload(clip, key)
    s = script([action("probe", "vendor.ffmpeg.probe"),
                action("webm", "vendor.ffmpeg.convert", format="webm"),
                action("thumb", "vendor.ffmpeg.thumbnail")],
               ["mainInput:key -> probe:key", "mainInput:key -> webm:key", "mainInput:key -> thumb:key",
                "probe:duration -> mainOutput:duration", "webm:dest_key -> mainOutput:webm",
                "thumb:dest_key -> mainOutput:thumb"])
    job_id = put_job(job_item(s, input_data={"key": key}))
    proc = run_worker_container(engine, image, container_env(stack, job_id))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    output = dao.docs.get(job_id)["output"]
    assert abs(float(output["duration"]["dval"]) - 2.0) < 0.2
    assert dao.blobs.size(output["webm"]["sval"]) > 0 and dao.blobs.size(output["thumb"]["sval"]) > 0


def test_dataset_queries_one_after_another_run_in_the_container(engine, image, stack, put_job, dao) -> None:  # type: ignore[no-untyped-def]
    """The first query leaves a DuckDB process started ahead (as uid 10001, on the read-only root)
    and the second runs in it, reading the first one's result."""
    base = f"{NAMESPACE}image-tier/{uuid.uuid4().hex[:8]}/"
    dao.blobs.put_bytes(f"{base}sales.csv", b"region,amount\nnorth,10.5\nsouth,20\nnorth,4.5\n")
    s = script([action("totals", "sys.dataset.query", dest_key=f"{base}totals.csv",
                       sql="SELECT region, sum(amount) AS total FROM sales GROUP BY region"),
                action("top", "sys.dataset.query", dest_key=f"{base}top.jsonl",
                       sql="SELECT region, total FROM totals ORDER BY total DESC LIMIT 1")],
               ["mainInput:key -> totals:sources", "totals:dest_key -> top:sources",
                "top:dest_key -> mainOutput:top"])
    job_id = put_job(job_item(s, input_data={"key": f"{base}sales.csv"}))
    proc = run_worker_container(engine, image, container_env(stack, job_id))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    output = dao.docs.get(job_id)["output"]
    assert json.loads(dao.blobs.get_bytes(output["top"]["sval"])) == {"region": "south", "total": 20.0}


def test_stop_saves_progress_and_exits_75_within_the_stop_timeout(engine, image, stack, put_job, dao) -> None:  # type: ignore[no-untyped-def]
    s = script([action("nap", "sys.debug.nap")], ["mainInput:s -> nap:seconds"])
    job_id = put_job(job_item(s, input_data={"s": 60}))
    env = container_env(stack, job_id)
    name = f"plus-worker-stop-{uuid.uuid4().hex[:8]}"
    proc = engine.popen(*container.run_args(image, sorted(env), name=name), env=env)
    try:
        wait_for(lambda: (dao.docs.get(job_id) or {}).get("status") == "RUNNING", 60, "the job to be RUNNING")
        started = time.monotonic()
        engine.run("stop", "-t", str(STOP_TIMEOUT_S), name, timeout=STOP_TIMEOUT_S + 30)
        out, err = proc.communicate(timeout=STOP_TIMEOUT_S + 30)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            engine.run("kill", name, timeout=30)
            proc.communicate(timeout=30)
    OUTPUTS.append(out + err)
    assert proc.returncode == 75, out + err
    assert elapsed < STOP_TIMEOUT_S, f"stopped after {elapsed:.1f} s: SIGTERM was not handled"
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["resumable"] is True


def test_stop_while_ffmpeg_encodes_uploads_nothing(  # type: ignore[no-untyped-def]
        engine, image, stack, put_job, dao, tmp_path: Path) -> None:
    clip = _clip(tmp_path / "long.mp4", seconds=40, size="1280x720")
    prefix = f"{NAMESPACE}image-tier/{uuid.uuid4().hex[:8]}/"
    dao.blobs.upload(clip, f"{prefix}long.mp4")
    s = script([action("small", "vendor.ffmpeg.compress", crf=30, preset="slower")],
               ["mainInput:key -> small:key"])
    job_id = put_job(job_item(s, input_data={"key": f"{prefix}long.mp4"}))
    env = container_env(stack, job_id)
    name = f"plus-worker-ffstop-{uuid.uuid4().hex[:8]}"
    proc = engine.popen(*container.run_args(image, sorted(env), name=name), env=env)
    try:
        def encoding() -> bool:
            top = engine.run("top", name, "args", timeout=30).stdout
            return any("ffmpeg" in line and "libx264" in line for line in top.splitlines())
        wait_for(encoding, 90, "ffmpeg to encode")
        time.sleep(1)
        engine.run("stop", "-t", str(STOP_TIMEOUT_S), name, timeout=STOP_TIMEOUT_S + 30)
        out, err = proc.communicate(timeout=STOP_TIMEOUT_S + 30)
    finally:
        if proc.poll() is None:
            engine.run("kill", name, timeout=30)
            proc.communicate(timeout=30)
    OUTPUTS.append(out + err)
    assert proc.returncode == 75, out + err
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["resumable"] is True
    assert sorted(dao.blobs.list_keys(prefix)) == [f"{prefix}long.mp4"]  # no partial output


def test_readme_docker_run_example_works_as_written(engine, stack, put_job, dao) -> None:  # type: ignore[no-untyped-def]
    """README "Running the worker": `docker build -t plus-worker .` and its `docker run --env-file …`,
    with `docker` standing for the engine here (and the local base image where no registry answers)."""
    readme = (ROOT / "README.md").read_text()
    section = re.split(r"\n## (?!#)", readme.split("\n## Running the worker\n", 1)[1], maxsplit=1)[0]
    blocks = re.findall(r"^```bash\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    (block,) = [b for b in blocks if "docker run" in b]
    job_id = put_job(job_item(add_and_nap_script(0), username="me@example.com", input_data={"a": 40, "b": 2}))
    base = container.base_image()
    shim = (f'docker() {{ if [[ $1 == build ]]; then shift; command {engine.command} build --network host '
            f'--build-arg PYTHON_IMAGE={base} "$@"; else command {engine.command} "$@"; fi; }}\n')
    env = {"JOB_ID": job_id, **{k: v for k, v in stack.env.items() if k.startswith("AWS_")}}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", shim + block], cwd=ROOT, env=engine.environ(env),
                          capture_output=True, text=True, timeout=900, check=False)
    OUTPUTS.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED" and job["output"]["sum"]["ival"] == "42"


# --- the browser variant ----------------------------------------------------------------------------------

def test_browser_variant_runs_web_screenshot(engine, browser_image, stack, put_job, dao) -> None:  # type: ignore[no-untyped-def]
    """web.screenshot in the browser image, hardened, against a loopback page the test allows."""
    with PageServer({"/": colour_page(GREEN)}) as server:
        job_id = put_job(job_item())
        env = container_env(stack, job_id, RUN_MODE="RUN_ACTION", ACTION_ID="web.screenshot",
                            ACTION_INPUT_JSON=json.dumps({"url": server.url("/"), "width": 320,
                                                          "height": 200}),
                            SCREENSHOT_ALLOW_HOSTS=server.origin)
        proc = run_worker_container(engine, browser_image, env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    job = dao.docs.get(job_id)
    assert job["status"] == "SUCCEEDED"
    key = from_any(json_format.ParseDict(job["output"]["dest_key"], AnyType()))
    width, height, rows = read_png(dao.blobs.get_bytes(key))
    assert (width, height) == (320, 200) and rows[100][160] == GREEN


def _clip(path: Path, *, seconds: int, size: str) -> Path:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", str(path)], check=True, timeout=300)
    return path

