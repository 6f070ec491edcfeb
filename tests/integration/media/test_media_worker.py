"""Issue 6, "done when": every media and dataset action works through ``python -m src.worker``.

Media is generated once per module (lavfi testsrc2 + sine, small and short) and uploaded under a
module folder of alice's namespace. Each action then runs as a RUN_ACTION job in a real worker
process against the local stack; a RUN_SCRIPT job chains probe → thumbnail; SIGTERM and
``request_cancel`` arrive while a slow encode runs; hostile keys and files fail cleanly.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from feaas.actions.context import UserStorage
from feaas.dao import Update
from feaas.objects import AnyType
from feaas.psee.values import from_any
from src.actions import default_registry
from tests.support.media import ffprobe
from tests.support.scripts import NAMESPACE, action, job_item, script, static

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                reason="ffmpeg not installed; run test_scripts/ensure_ffmpeg.sh")

SIZE, RATE, SECONDS = "320x240", 25, 3


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
                   check=True, timeout=120, stdin=subprocess.DEVNULL)


def codecs(info: dict[str, Any], kind: str) -> list[str]:
    return [s["codec_name"] for s in info["streams"] if s["codec_type"] == kind]


def video_size(info: dict[str, Any]) -> list[tuple[int, int]]:
    return [(s["width"], s["height"]) for s in info["streams"] if s["codec_type"] == "video"]


@pytest.fixture(scope="module")
def storage(dao) -> UserStorage:  # type: ignore[no-untyped-def]
    return UserStorage(dao.blobs, dao.docs, NAMESPACE)


@pytest.fixture(scope="module")
def media(storage: UserStorage, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Generate the test media once and upload it; name → key."""
    d = tmp_path_factory.mktemp("worker-media")
    av = ["-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={RATE}:duration={SECONDS}",
          "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}"]
    _ffmpeg(*av, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
            str(d / "clip.mp4"))
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=2", "-af", "volume=-20dB",
            str(d / "tone.wav"))
    # 0.5 s silence, 1 s tone, 0.5 s silence
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=1",
            "-af", "adelay=500,apad=pad_dur=0.5", str(d / "padded.wav"))
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x32:rate=1", "-frames:v", "1", str(d / "logo.png"))
    # A long 720p clip for the stop tests: 2 s encoded once, looped to 60 s without re-encoding.
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=2", "-c:v", "libx264",
            "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(d / "seed.mkv"))
    _ffmpeg("-stream_loop", "-1", "-i", str(d / "seed.mkv"), "-t", "60", "-c", "copy", str(d / "long.mkv"))
    with open(d / "sales.csv", "w") as fh:
        fh.write("id,region,amount\n")
        fh.writelines(f"{i},{['north', 'south', 'east'][i % 3]},{i * 1.5}\n" for i in range(300))
    (d / "notmedia.mp4").write_bytes(b"plain text, not a video\n" * 50)
    folder = f"{NAMESPACE}worker-media-{uuid.uuid4().hex[:8]}/"
    keys = {}
    for path in d.iterdir():
        if path.name != "seed.mkv":
            keys[path.name] = folder + path.name
            storage.upload(path, keys[path.name])
    storage.upload(d / "tone.wav", folder + "songs/tone.wav")  # merge_audio_from_folder's own folder
    return keys


def decode(plain_any: dict[str, Any]) -> Any:
    return from_any(json_format.ParseDict(plain_any, AnyType(), ignore_unknown_fields=True))


def fill(value: Any, media: dict[str, str]) -> Any:
    """Replace ``{name}`` placeholders with the uploaded keys (``{folder}`` = their folder)."""
    if isinstance(value, dict):
        return {k: fill(v, media) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, media) for v in value]
    if isinstance(value, str) and value.startswith("{"):
        name, _, rest = value[1:].partition("}")
        base = media["clip.mp4"].rsplit("/", 1)[0] + "/" if name == "folder" else media[name]
        return base + rest
    return value


def outputs(run) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {name: decode(value) for name, value in (run.job.get("output") or {}).items()}


def assert_succeeded(run) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.job["status"] == "SUCCEEDED" and run.job["percent"] == 100
    assert run.job["receipts"]["action"]["success"] is True
    assert "Traceback" not in run.stdout + run.stderr
    return outputs(run)


def assert_failed(run, says: str) -> None:  # type: ignore[no-untyped-def]
    assert run.code == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.job["status"] == "FAILED" and says in run.job["error_message"], run.job["error_message"]
    assert run.job["receipts"]["action"].get("success", False) is False  # false is absent in the JSON form
    assert "Traceback" not in run.stdout + run.stderr


# --------------------------------------------------------------------------------------------------
# The RUN_ACTION jobs: each is one worker process; all of them run a few at a time, once per module
# --------------------------------------------------------------------------------------------------

# Every action once: (action id as the job names it, inputs with {file} placeholders, output names that
# are keys, and for some a check of the downloaded output's ffprobe report)
CASES: list[tuple[str, dict[str, Any], tuple[str, ...], Any]] = [
    ("vendor.ffmpeg.probe", {"key": "{clip.mp4}"}, (), None),
    ("vendor.ffmpeg.convert", {"key": "{clip.mp4}", "format": "webm"}, ("dest_key",),
     lambda info: codecs(info, "video") == ["vp9"] and codecs(info, "audio") == ["opus"]),
    ("vendor.ffmpeg.extract_audio", {"key": "{clip.mp4}", "format": "mp3"}, ("dest_key",),
     lambda info: codecs(info, "video") == [] and codecs(info, "audio") == ["mp3"]),
    ("vendor.ffmpeg.trim", {"key": "{clip.mp4}", "start": 0.5, "duration": 1}, ("dest_key",),
     lambda info: abs(float(info["format"]["duration"]) - 1) < 0.15),
    ("vendor.ffmpeg.concat", {"keys": ["{clip.mp4}", "{clip.mp4}"]}, ("dest_key",), None),
    ("vendor.ffmpeg.resize", {"key": "{clip.mp4}", "width": 160}, ("dest_key",),
     lambda info: video_size(info) == [(160, 120)] and codecs(info, "audio") == ["aac"]),
    ("vendor.ffmpeg.compress", {"key": "{clip.mp4}", "crf": 35, "preset": "ultrafast"}, ("dest_key",), None),
    ("vendor.ffmpeg.to_gif", {"key": "{clip.mp4}", "duration": 1, "fps": 5, "width": 120}, ("dest_key",),
     None),
    ("vendor.ffmpeg.overlay", {"key": "{clip.mp4}", "overlay_key": "{logo.png}", "position": "top-left"},
     ("dest_key",), None),
    ("vendor.ffmpeg.normalize_audio", {"key": "{tone.wav}", "target_lufs": -18}, ("dest_key",), None),
    ("vendor.ffmpeg.mix_audio", {"keys": ["{tone.wav}", "{clip.mp4}"], "volumes": [1, 0.5]}, ("dest_key",),
     None),
    ("vendor.ffmpeg.adjust_volume", {"key": "{tone.wav}", "gain_db": -6}, ("dest_key",), None),
    ("vendor.ffmpeg.trim_silence", {"key": "{padded.wav}"}, ("dest_key",), None),
    ("vendor.ffmpeg.thumbnail", {"key": "{clip.mp4}", "time": 1, "format": "png"}, ("dest_key",),
     lambda info: codecs(info, "video") == ["png"] and video_size(info) == [(320, 240)]),
    ("vendor.ffmpeg.thumbnails", {"key": "{clip.mp4}", "count": 3, "width": 80}, ("keys",), None),
    ("vendor.ffmpeg.waveform", {"key": "{tone.wav}", "width": 320, "height": 80}, ("dest_key",), None),
    ("vendor.ffmpeg.merge_audio_video", {"video_key": "{clip.mp4}", "audio_key": "{tone.wav}"}, ("dest_key",),
     lambda info: codecs(info, "video") == ["h264"] and codecs(info, "audio") == ["aac"]),
    ("vendor.ffmpeg.resize_image", {"key": "{logo.png}", "scale": 0.5, "format": "jpg"}, ("dest_key",),
     lambda info: video_size(info) == [(32, 16)] and codecs(info, "video") == ["mjpeg"]),
    ("vendor.ffmpeg.add_intro_outro", {"key": "{clip.mp4}", "outro_key": "{clip.mp4}"}, ("dest_key",),
     lambda info: abs(float(info["format"]["duration"]) - 2 * SECONDS) < 0.2),
    ("vendor.ffmpeg.edit_media", {"key": "{clip.mp4}", "remove_start": 1, "remove_end": 2}, ("dest_key",),
     lambda info: abs(float(info["format"]["duration"]) - (SECONDS - 1)) < 0.15
     and codecs(info, "video") == ["h264"]),
    ("vendor.ffmpeg.merge_audio", {"key": "{tone.wav}", "other_key": "{padded.wav}"}, ("dest_key",),
     lambda info: codecs(info, "audio") == ["mp3"] and abs(float(info["format"]["duration"]) - 2) < 0.15),
    ("vendor.ffmpeg.merge_audio_from_folder", {"prefix": "{folder}songs/"}, ("dest_key",),
     lambda info: codecs(info, "audio") == ["mp3"]),
    ("sys.dataset.query", {"sources": ["{sales.csv}"], "dest_key": "{folder}summary.parquet",
                           "sql": "SELECT region, count(*) AS n, sum(amount) AS total FROM sales "
                                  "GROUP BY region"},
     ("dest_key",), None),
    ("sys.dataset.convert", {"src_key": "{sales.csv}", "dest_key": "{folder}sales.jsonl"}, ("dest_key",),
     None),
]
CASE_IDS = [c[0].removeprefix("vendor.ffmpeg.") for c in CASES]

OUTSIDE: list[tuple[str, str, dict[str, Any]]] = [
    ("other-user", "vendor.ffmpeg.probe", {"key": "plus_example_com/bob@example.com/x.mp4"}),
    ("dot-dot", "vendor.ffmpeg.probe", {"key": NAMESPACE + "../bob@example.com/x.mp4"}),
    ("dest-outside", "vendor.ffmpeg.convert",
     {"key": "{clip.mp4}", "format": "mp4", "dest_key": "plus_example_com/bob@example.com/stolen.mp4"}),
    ("dataset-source", "sys.dataset.query",
     {"sources": ["/" + NAMESPACE + "../../other_host/bob@example.com/s.csv"], "sql": "SELECT 1",
      "dest_key": "{folder}x.csv"}),
]

# Shell-like names for a copy of the clip inside the namespace.
HOSTILE_NAMES = ["-i /etc/passwd.mp4", "x;rm -rf.mp4", "a'b\"$(touch pwned-by-key)`touch pwned-by-key`.mp4"]

NOT_MEDIA: list[tuple[str, str, dict[str, Any]]] = [
    ("probe", "vendor.ffmpeg.probe", {"key": "{notmedia.mp4}"}),
    ("thumbnail-of-csv", "vendor.ffmpeg.thumbnail", {"key": "{sales.csv}"}),
]


def _jobs() -> dict[str, tuple[str, dict[str, Any]]]:
    jobs = {f"case:{cid}": (c[0], c[1]) for cid, c in zip(CASE_IDS, CASES, strict=True)}
    jobs.update({f"outside:{o[0]}": (o[1], o[2]) for o in OUTSIDE})
    jobs.update({f"shell:{n}": ("vendor.ffmpeg.convert",
                                {"key": f"{{folder}}hostile-{i}/{n}", "format": "mkv"})
                 for i, n in enumerate(HOSTILE_NAMES)})
    jobs.update({f"notmedia:{m[0]}": (m[1], m[2]) for m in NOT_MEDIA})
    jobs["missing"] = ("vendor.ffmpeg.trim", {"key": "{folder}nope.mp4", "start": 1})
    return jobs


@pytest.fixture(scope="module")
def _results() -> dict[str, Any]:
    return {}


@pytest.fixture
def runs(_results, put_job, run_worker, storage, media):  # type: ignore[no-untyped-def]
    """job name → (inputs, WorkerRun) for every RUN_ACTION job above, run four at a time on first use.

    (``run_worker`` only holds the session's stack, so its function outlives the test that made it.)
    """
    if not _results:
        jobs = {name: (action_id, fill(inputs, media)) for name, (action_id, inputs) in _jobs().items()}
        for name, (_, inputs) in jobs.items():
            if name.startswith("shell:"):
                storage.copy(media["clip.mp4"], inputs["key"])

        def one(item: tuple[str, tuple[str, dict[str, Any]]]) -> tuple[str, Any]:
            name, (action_id, inputs) = item
            job_id = put_job(job_item())
            return name, (inputs, run_worker(job_id, RUN_MODE="RUN_ACTION", ACTION_ID=action_id,
                                             ACTION_INPUT_JSON=json.dumps(inputs)))

        with ThreadPoolExecutor(4) as pool:
            _results.update(pool.map(one, jobs.items()))
    return _results


def test_the_cases_cover_every_media_and_dataset_action():
    registry = default_registry()
    expected = {a.id for a in registry.actions() if a.id.startswith(("vendor.ffmpeg.", "sys.dataset."))}
    assert len(expected) == 24
    assert {registry.get(case[0]).id for case in CASES} == expected


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_action_runs_through_the_worker(runs, storage, media, tmp_path, case):
    action_id, _, key_outputs, check = case
    _, run = runs["case:" + action_id.removeprefix("vendor.ffmpeg.")]
    out = assert_succeeded(run)
    assert run.lines[-1]["event"] == "job_finished" and run.lines[-1]["status"] == "SUCCEEDED"
    assert run.job["receipts"]["action"]["outputs"].keys() == run.job["output"].keys()
    folder = media["clip.mp4"].rsplit("/", 1)[0] + "/"
    for name in key_outputs:
        keys = out[name] if isinstance(out[name], list) else [out[name]]
        assert keys, name
        for key in keys:
            assert key.startswith(folder), key  # next to the input, inside the namespace
            assert storage.exists(key), key
    if action_id == "vendor.ffmpeg.probe":
        assert out["width"] == 320 and out["height"] == 240 and out["fps"] == RATE
        assert out["codec"] == "h264" and out["audio_codec"] == "aac" and abs(out["duration"] - SECONDS) < 0.2
    elif action_id == "vendor.ffmpeg.thumbnails":
        assert len(out["keys"]) == 3 and out["dest_prefix"] == folder + "clip_thumbs/"
    elif action_id.startswith("sys.dataset."):
        assert out["rows"] == (3 if action_id == "sys.dataset.query" else 300)
    elif action_id == "vendor.ffmpeg.convert":
        assert out["dest_key"] == folder + "clip_converted.webm"
    if check is not None:
        local = tmp_path / Path(out["dest_key"]).name
        storage.download(out["dest_key"], local)
        info = ffprobe(local)
        assert check(info), info


def test_script_chains_probe_into_thumbnail(put_job, run_worker, storage, media, tmp_path):
    # probe → (duration − 1 s) → thumbnail at that time, as wide as the probed width
    s = script(
        [action("probe", "vendor.ffmpeg.probe"), static("back", -1.0), action("at", "sys.math.add"),
         action("thumb", "vendor.ffmpeg.thumbnail", format="png")],
        ["mainInput:key -> probe:key", "probe:duration -> at:a", "back:value -> at:b", "at:sum -> thumb:time",
         "mainInput:key -> thumb:key", "probe:width -> thumb:width",
         "thumb:dest_key -> mainOutput:thumbnail", "probe:duration -> mainOutput:duration"],
    )
    run = run_worker(put_job(job_item(s, input_data={"key": media["clip.mp4"]})))
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    job = run.job
    assert job["status"] == "SUCCEEDED" and job["action_count"] == 3
    assert all(job["receipts"][n]["success"] for n in ("probe", "at", "thumb"))
    thumb = decode(job["output"]["thumbnail"])
    assert thumb == media["clip.mp4"][: -len(".mp4")] + "_thumb.png"
    local = tmp_path / "thumb.png"
    storage.download(thumb, local)
    video = [s for s in ffprobe(local)["streams"] if s["codec_type"] == "video"]
    assert video[0]["codec_name"] == "png" and (video[0]["width"], video[0]["height"]) == (320, 240)
    assert abs(decode(job["output"]["duration"]) - SECONDS) < 0.2


# --------------------------------------------------------------------------------------------------
# Stopping a long encode: SIGTERM and request_cancel
# --------------------------------------------------------------------------------------------------


def _children(pid: int, name: str = "ffmpeg") -> dict[int, bytes]:
    """pid → cmdline of the ``name`` processes whose parent is ``pid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if comm == name and int(rest[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int, cmdline: bytes) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
        same = Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline
    except OSError:
        return False
    return same and state[state.rindex(")") + 2] != "Z"


def _start_long_encode(put_job, start_worker, dao, media):  # type: ignore[no-untyped-def]
    """A worker compressing the 60 s 720p clip with a slow preset, once ffmpeg is encoding."""
    job_id = put_job(job_item())
    proc = start_worker(job_id, RUN_MODE="RUN_ACTION", ACTION_ID="vendor.ffmpeg.compress",
                        ACTION_INPUT_JSON=json.dumps({"key": media["long.mkv"], "preset": "slower"}),
                        HEARTBEAT_SECONDS=1)
    deadline = time.monotonic() + 60
    ffmpeg: dict[int, bytes] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        ffmpeg = _children(proc.pid)
        if ffmpeg and dao.docs.get(job_id).get("status") == "RUNNING":
            break
        time.sleep(0.05)
    assert ffmpeg, "ffmpeg never started: " + (proc.communicate()[0] if proc.poll() is not None else "")
    time.sleep(0.5)  # let it encode for a moment
    assert proc.poll() is None
    return job_id, proc, ffmpeg


def _assert_no_output_and_no_ffmpeg(storage, media,
                                    ffmpeg: dict[int, bytes]) -> None:  # type: ignore[no-untyped-def]
    dest = media["long.mkv"][: -len(".mkv")] + "_compressed.mkv"
    assert not storage.exists(dest)
    deadline = time.monotonic() + 3  # reaped by the worker before it exits; allow the kernel a moment
    while any(_alive(pid, cmd) for pid, cmd in ffmpeg.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid, cmd in ffmpeg.items() if _alive(pid, cmd)], "ffmpeg left running"


def test_sigterm_during_encode_exits_75_resumable_without_output(put_job, start_worker, run_worker, dao,
                                                                 storage, media):
    job_id, proc, ffmpeg = _start_long_encode(put_job, start_worker, dao, media)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=25)
    took = time.monotonic() - sent
    assert proc.returncode == 75, out[-3000:] + err[-3000:]
    assert took < 20, took
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["resumable"] is True
    assert not job["receipts"]["action"].get("success")  # so a relaunch runs the encode again
    assert "interrupted" in job["error_message"] and "SIGTERM" in job["error_message"]
    assert "lease_owner" not in job
    assert "Traceback" not in out + err
    _assert_no_output_and_no_ffmpeg(storage, media, ffmpeg)
    # A relaunch (here with a quick input) claims the resumable job again and runs the action anew.
    rerun = run_worker(job_id, RUN_MODE="RUN_ACTION", ACTION_ID="vendor.ffmpeg.compress",
                       ACTION_INPUT_JSON=json.dumps({"key": media["clip.mp4"], "preset": "ultrafast"}))
    assert rerun.code == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert rerun.job["status"] == "SUCCEEDED" and rerun.job["attempt"] == 2 and "resumable" not in rerun.job
    assert rerun.job["receipts"]["action"]["success"] is True and "error_message" not in rerun.job
    assert storage.exists(decode(rerun.job["output"]["dest_key"]))


def test_cancel_request_during_encode_stops_it_without_output(put_job, start_worker, dao, storage, media):
    job_id, proc, ffmpeg = _start_long_encode(put_job, start_worker, dao, media)
    dao.docs.update(job_id, Update(set={"request_cancel": True}))
    asked = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out[-3000:] + err[-3000:]
    assert time.monotonic() - asked < 10
    job = dao.docs.get(job_id)
    assert job["status"] == "FAILED" and job["error_message"] == "Job was cancelled by user"
    assert job["cancelled_at"] > 0 and not job.get("resumable")
    assert "Traceback" not in out + err
    _assert_no_output_and_no_ffmpeg(storage, media, ffmpeg)


# --------------------------------------------------------------------------------------------------
# Hostile input
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [o[0] for o in OUTSIDE])
def test_keys_outside_the_namespace_are_refused(runs, storage, name):
    _, run = runs["outside:" + name]
    assert_failed(run, "outside your namespace")
    assert not storage.blobs.exists("plus_example_com/bob@example.com/stolen.mp4")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_shell_like_file_names_are_just_names(runs, storage, tmp_path, name):
    inputs, run = runs["shell:" + name]
    out = assert_succeeded(run)
    key = inputs["key"]
    assert out["dest_key"] == key[: -len(".mp4")] + "_converted.mkv"
    local = tmp_path / "out.mkv"
    storage.download(out["dest_key"], local)
    assert codecs(ffprobe(local), "video") == ["h264"]
    assert list(storage.list_keys(key.rsplit("/", 1)[0] + "/")) == sorted([key, out["dest_key"]])
    assert not list(Path(__file__).parents[3].glob("pwned*")) and not Path("/tmp/pwned-by-key").exists()


@pytest.mark.parametrize("name", [m[0] for m in NOT_MEDIA])
def test_not_a_media_file_fails_clearly(runs, name):
    _, run = runs["notmedia:" + name]
    assert_failed(run, "not a media file")


def test_missing_input_fails_clearly(runs):
    inputs, run = runs["missing"]
    assert_failed(run, f"input not found: {inputs['key']}")
