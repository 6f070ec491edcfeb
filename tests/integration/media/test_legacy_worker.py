"""Issue 12: each upstream action id, with upstream's inputs, through ``python -m src.worker`` on the local
stack.

Every case is a RUN_ACTION job naming an upstream class path (in the spellings of LEGACY_ACTIONS.md §1.1)
with upstream's input names; the job document must then hold upstream's output names, ptypes, primary output
and the output key of LEGACY_ACTIONS.md §2, and the file there must be what the action says.
``web.screenshot.Screenshot`` is covered with a real browser in ``tests/integration/web``. Bad input (both
names for one input, an unknown input, a value of the wrong type, a folder of more than 100 files) ends FAILED
with a message naming it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from feaas.actions.context import UserStorage
from feaas.objects import AnyType, Parameter
from feaas.objects import ParameterType as PT
from feaas.psee.values import from_any
from tests.support.media import ffprobe
from tests.support.scripts import NAMESPACE, action, job_item, script, static

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                reason="ffmpeg not installed; run test_scripts/ensure_ffmpeg.sh")

SECONDS = 3


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
                   check=True, timeout=120, stdin=subprocess.DEVNULL)


def codecs(info: dict[str, Any]) -> list[str]:
    return [s["codec_name"] for s in info["streams"]]


def size(info: dict[str, Any]) -> tuple[int, int]:
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    return video["width"], video["height"]


def seconds(info: dict[str, Any]) -> float:
    return float(info["format"]["duration"])


def peak_db(path: Path) -> float:
    err = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(path), "-af", "volumedetect", "-f",
                          "null", "-"], capture_output=True, text=True, timeout=60, check=True).stderr
    return float(re.findall(r"max_volume: (-?[0-9.]+) dB", err)[-1])


@pytest.fixture(scope="module")
def storage(dao) -> UserStorage:  # type: ignore[no-untyped-def]
    return UserStorage(dao.blobs, dao.docs, NAMESPACE)


@pytest.fixture(scope="module")
def folder(storage: UserStorage, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Generated media, uploaded once under a fresh folder of alice's namespace."""
    d = tmp_path_factory.mktemp("legacy-media")
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={SECONDS}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
            str(d / "clip.mp4"))
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=2", str(d / "tone.wav"))
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=1.5", "-c:a", "libmp3lame",
            str(d / "music.mp3"))
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=1",  # 0.5 s silence each side
            "-af", "adelay=500,apad=pad_dur=0.5", str(d / "padded.wav"))
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x32:rate=1", "-frames:v", "1", str(d / "logo.png"))
    base = f"{NAMESPACE}legacy-{uuid.uuid4().hex[:8]}/"
    for path in d.iterdir():
        storage.upload(path, base + path.name)
    storage.upload(d / "tone.wav", base + "songs/a.wav")
    storage.upload(d / "music.mp3", base + "songs/deeper/b.MP3")
    storage.put_bytes(base + "songs/notes.txt", b"not audio")
    return base


def decode(plain: dict[str, Any]) -> Any:
    return from_any(json_format.ParseDict(plain, AnyType(), ignore_unknown_fields=True))


Check = Callable[[dict[str, Any]], bool]
# (upstream id as a script names it, upstream inputs ({F} = the media folder), outputs: name → (ptype,
# value: a key under {F}, a regex "re:…", or a predicate), primary output, check of the written file's
# ffprobe report)
CASES: list[tuple[str, dict[str, Any], dict[str, tuple[str, Any]], str, Check | None]] = [
    ("sys.debug.nap.Nap", {"seconds": 0},
     {"slept_seconds": ("INTEGER", 0), "message": ("STRING", "Slept for 0 seconds")}, "", None),
    ("src.actions.vendor.ffmpeg.probe.Probe", {"file": "{F}clip.mp4"},
     {"duration": ("FLOAT", lambda v: abs(v - SECONDS) < 0.2), "width": ("INTEGER", 320),
      "height": ("INTEGER", 240),
      "codec": ("STRING", "h264"), "audio_codec": ("STRING", "aac"), "fps": ("FLOAT", 25.0),
      "bitrate": ("INTEGER", lambda v: 10 < v < 5000), "format": ("STRING", "mov,mp4,m4a,3gp,3g2,mj2")},
     "duration", None),
    ("vendor.ffmpeg.convert.Convert", {"file": "{F}clip.mp4", "format": "MKV"},
     {"file": ("STRING", "{F}clip_converted.mkv")}, "file", lambda i: codecs(i) == ["h264", "aac"]),
    ("ffmpeg.extract_audio.ExtractAudio", {"video_file": "{F}clip.mp4"},
     {"audio_file": ("STRING", "{F}clip_audio.mp3")}, "audio_file", lambda i: codecs(i) == ["mp3"]),
    ("vendor.ffmpeg.trim.Trim", {"file": "{F}clip.mp4", "start_time": "0.5", "end_time": "00:00:02"},
     {"file": ("STRING", "{F}clip_trimmed.mp4")}, "file", lambda i: abs(seconds(i) - 1.5) < 0.15),
    ("vendor.ffmpeg.concat.Concat", {"files": ["{F}clip.mp4", "{F}clip.mp4"]},
     {"file": ("STRING", "{F}clip_concat.mp4")}, "file", lambda i: abs(seconds(i) - 2 * SECONDS) < 0.2),
    ("vendor.ffmpeg.resize.Resize", {"file": "{F}clip.mp4", "scalar": 0.5},
     {"file": ("STRING", "{F}clip_r0.5.mp4")}, "file", lambda i: size(i) == (160, 120)),
    ("vendor.ffmpeg.resize.ResizeImage", {"src_key": "{F}logo.png", "scalar": 2, "out_format": ".GIF"},
     {"dest_key": ("KEY", "{F}logo_r2.0.gif")}, "dest_key",
     lambda i: codecs(i) == ["gif"] and size(i) == (128, 64)),
    ("vendor.ffmpeg.compress.Compress", {"file": "{F}clip.mp4", "quality": "low"},
     {"file": ("STRING", "{F}clip_compressed.mp4"), "size_reduction": ("FLOAT", lambda v: -1000 < v < 100)},
     "file", lambda i: codecs(i) == ["h264", "aac"]),
    ("vendor.ffmpeg.to_gif.ToGif", {"video_file": "{F}clip.mp4", "duration": 1, "fps": 5, "width": 100},
     {"gif_file": ("STRING", "{F}clip_gif.gif")}, "gif_file", lambda i: size(i) == (100, 75)),
    ("vendor.ffmpeg.overlay.Overlay", {"video_file": "{F}clip.mp4", "image_file": "{F}logo.png",
                                       "position": "topright", "scale": 0.5},
     {"file": ("STRING", "{F}clip_watermarked.mp4")}, "file", lambda i: abs(seconds(i) - SECONDS) < 0.2),
    ("vendor.ffmpeg.normalize_audio.NormalizeAudio",
     {"file": "{F}tone.wav", "method": "peak", "target_level": -3},
     {"file": ("STRING", "{F}tone_normalized.wav")}, "file", None),
    ("vendor.ffmpeg.mix_audio.MixAudio",
     {"file": "{F}clip.mp4", "audio_track": "{F}music.mp3", "mix_mode": "ducking"},
     {"file": ("STRING", "{F}clip_mixed.mp4")}, "file",  # the track looped, cut to the main file
     lambda i: codecs(i) == ["h264", "aac"] and abs(seconds(i) - SECONDS) < 0.2),
    ("vendor.ffmpeg.adjust_volume.AdjustVolume", {"file": "{F}tone.wav", "gain_db": -6.5},
     {"file": ("STRING", "{F}tone_vol-6db.wav")}, "file", None),
    ("vendor.ffmpeg.add_intro_outro.AddIntroOutro", {"body": "{F}clip.mp4", "intro": "{F}clip.mp4",
                                                     "crossfade_sec": 0.5},
     {"file": ("STRING", "{F}clip_with_intro_outro.mp4")}, "file",
     lambda i: codecs(i) == ["h264", "aac"] and abs(seconds(i) - (2 * SECONDS - 0.5)) < 0.2),  # video kept
    ("vendor.ffmpeg.trim_silence.TrimSilence", {"file": "{F}padded.wav"},
     {"file": ("STRING", "{F}padded_desilenced.wav")}, "file", lambda i: abs(seconds(i) - 1.0) < 0.15),
    ("vendor.ffmpeg.thumbnail.Thumbnail", {"file": "{F}clip.mp4", "at_sec": 1.5, "format": "PNG",
                                           "max_width_px": 2000},
     {"file": ("STRING", "{F}clip_thumb_2s.png")}, "file", lambda i: size(i) == (320, 240)),  # never upscaled
    ("vendor.ffmpeg.thumbnails.Thumbnails", {"src_key": "{F}clip.mp4", "thumbnail_prefix": "{F}thumbs",
                                             "thumbnail_ext": "jpg", "thumbnails_per_second": 1},
     {"thumbnails_created": ("INTEGER", lambda v: SECONDS <= v <= SECONDS + 1),
      "dest_prefix": ("PREFIX", "{F}thumbs/")},
     "thumbnails_created", None),
    ("vendor.ffmpeg.waveform.Waveform", {"file": "{F}tone.wav", "width_px": 300, "height_px": 60},
     {"file": ("STRING", "{F}tone_waveform_300x60.png")}, "file", lambda i: size(i) == (300, 60)),
    ("vendor.ffmpeg.merge.MergeAudioVideo", {"audio_key": "{F}music.mp3", "video_key": "{F}clip.mp4"},
     {"dest_key": ("KEY", "{F}clip_merged.mp4")}, "dest_key",
     lambda i: codecs(i) == ["h264", "aac"] and abs(seconds(i) - SECONDS) < 0.2),  # the longer of the two
    ("vendor.ffmpeg.merge.MergeAudio", {"audio_key1": "{F}tone.wav", "audio_key2": "{F}music.mp3"},
     {"dest_key": ("KEY", "{F}tone_merged.mp3")}, "dest_key", lambda i: abs(seconds(i) - 2) < 0.15),
    ("vendor.ffmpeg.merge.MergeAudioFromFolder", {"src_prefix": "{F}songs"},
     {"dest_key": ("KEY", "{F}songs/merged_output.mp3")}, "dest_key", lambda i: abs(seconds(i) - 2) < 0.15),
    ("vendor.ffmpeg.edit.EditMedia",
     {"media_key": "{F}tone.wav", "edit_remove_from": 500, "edit_remove_until": 1500},
     {"dest_key": ("KEY", "re:" + re.escape(NAMESPACE) + r"ffmpeg/[0-9a-f-]{36}\.wav")}, "dest_key",
     lambda i: abs(seconds(i) - 1.0) < 0.1),
]
CASE_IDS = [c[0].rpartition(".")[2] for c in CASES]


def fill(value: Any, base: str) -> Any:
    if isinstance(value, list):
        return [fill(v, base) for v in value]
    return value.replace("{F}", base) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def _results() -> dict[str, Any]:
    return {}


@pytest.fixture
def runs(_results, folder, put_job, run_worker):  # type: ignore[no-untyped-def]
    """case id → WorkerRun of every RUN_ACTION job above, run four at a time on first use."""
    if not _results:
        def one(case: tuple[str, dict[str, Any], Any, Any, Any]) -> tuple[str, Any]:
            action_id, inputs = case[0], {k: fill(v, folder) for k, v in case[1].items()}
            run = run_worker(put_job(job_item()), RUN_MODE="RUN_ACTION", ACTION_ID=action_id,
                             ACTION_INPUT_JSON=json.dumps(inputs))
            return action_id, run

        with ThreadPoolExecutor(4) as pool:
            _results.update(pool.map(one, CASES))
    return _results


def test_the_cases_cover_every_upstream_action_but_the_screenshot():
    from src.actions import default_registry

    registry = default_registry()
    ids = {registry.get(case[0]).id for case in CASES}
    assert ids == {a.id for a in registry.legacy_actions()} - {"src.actions.web.screenshot.Screenshot"}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_an_upstream_action_gives_upstreams_outputs_and_keys(runs, folder, storage, tmp_path, case):
    action_id, _, expected, primary, check = case
    run = runs[action_id]
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.job["status"] == "SUCCEEDED" and "Traceback" not in run.stdout + run.stderr
    receipt = run.job["receipts"]["action"]
    assert receipt["success"] is True and receipt.get("primary_output", "") == primary
    assert set(receipt["outputs"]) == set(expected) == set(run.job["output"])
    for name, (ptype, want) in expected.items():
        raw = receipt["outputs"][name]
        assert raw.get("ptype", "STRING") == ptype, (name, raw)  # protobuf JSON leaves STRING out
        value = decode(raw)
        if callable(want):
            assert want(value), (name, value)
        elif isinstance(want, str) and want.startswith("re:"):
            assert re.fullmatch(want[3:], value), (name, value)
        else:
            assert value == fill(want, folder), name
    written = [decode(receipt["outputs"][n]) for n, (t, _) in expected.items() if t == "KEY" or n in (
        "file", "audio_file", "gif_file")]
    for key in written:
        assert storage.exists(key), key
    if check is not None:
        local = tmp_path / Path(written[0]).name
        storage.download(written[0], local)
        info = ffprobe(local)
        assert check(info), info


def test_upstream_thumbnails_are_numbered_from_00001(runs, folder, storage):
    run = runs["vendor.ffmpeg.thumbnails.Thumbnails"]
    created = decode(run.job["receipts"]["action"]["outputs"]["thumbnails_created"])
    keys = list(storage.list_keys(folder + "thumbs/"))
    assert keys == [f"{folder}thumbs/thumb_{n:05d}.jpg" for n in range(1, created + 1)]


def test_upstream_peak_normalization_works(runs, folder, storage, tmp_path):
    assert runs["vendor.ffmpeg.normalize_audio.NormalizeAudio"].code == 0
    local = tmp_path / "n.wav"
    storage.download(folder + "tone_normalized.wav", local)
    assert abs(peak_db(local) - -3.0) < 0.3  # upstream's peak method never ran (§5)


def test_a_rerun_of_merge_from_folder_leaves_out_its_own_output(runs, folder, storage, put_job, run_worker):
    assert runs["vendor.ffmpeg.merge.MergeAudioFromFolder"].code == 0
    first = storage.get_bytes(folder + "songs/merged_output.mp3")
    again = run_worker(put_job(job_item()), RUN_MODE="RUN_ACTION",
                       ACTION_ID="vendor.ffmpeg.merge.MergeAudioFromFolder",
                       ACTION_INPUT_JSON=json.dumps({"src_prefix": folder + "songs/"}))
    assert again.code == 0, again.stdout[-3000:]
    assert storage.get_bytes(folder + "songs/merged_output.mp3") == first  # the same two files mixed again


# --- bad input -----------------------------------------------------------------------------------------


def assert_failed(run: Any, says: str) -> None:
    assert run.code == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.job["status"] == "FAILED" and says in run.job["error_message"], run.job["error_message"]
    assert "Traceback" not in run.stdout + run.stderr


def test_both_names_for_one_input_fail_naming_the_node_and_both(folder, put_job, run_worker):
    s = script([action("thumb", "vendor.ffmpeg.thumbnail.Thumbnail")],
               ["mainInput:video -> thumb:file", "mainInput:video -> thumb:key",
                "thumb:file -> mainOutput:out"])
    run = run_worker(put_job(job_item(s, input_data={"video": folder + "clip.mp4"})))
    assert_failed(run, "node 'thumb': inputs 'file' and 'key' are one input of "
                       "src.actions.vendor.ffmpeg.thumbnail.Thumbnail (its upstream name and its new name); "
                       "give only 'file'")
    assert not run.job.get("receipts")  # refused before anything ran


@pytest.mark.parametrize("inputs, says", [
    ({"file": "{F}clip.mp4", "colour": "red"},
     "src.actions.vendor.ffmpeg.probe.Probe has no input 'colour' (its inputs: file)"),
    ({"key": "{F}clip.mp4"},
     "src.actions.vendor.ffmpeg.probe.Probe has no input 'key'; this upstream id calls it 'file'"),
])
def test_an_unknown_input_fails_naming_it(folder, put_job, run_worker, inputs, says):
    run = run_worker(put_job(job_item()), RUN_MODE="RUN_ACTION", ACTION_ID="vendor.ffmpeg.probe.Probe",
                     ACTION_INPUT_JSON=json.dumps({k: fill(v, folder) for k, v in inputs.items()}))
    assert_failed(run, "node 'action': " + says)


def test_a_value_of_the_wrong_type_fails_naming_the_input_and_the_type(folder, put_job, run_worker):
    run = run_worker(put_job(job_item()), RUN_MODE="RUN_ACTION",
                     ACTION_ID="vendor.ffmpeg.thumbnail.Thumbnail",
                     ACTION_INPUT_JSON=json.dumps({"file": folder + "clip.mp4", "at_sec": True}))
    assert_failed(run, "node 'action': input 'at_sec' expects FLOAT, got True (a boolean is not a number)")


def test_a_folder_of_more_than_100_audio_files_is_refused_before_any_download(storage, put_job, run_worker):
    crowd = f"{NAMESPACE}crowd-{uuid.uuid4().hex[:8]}/"
    for n in range(101):
        storage.put_bytes(f"{crowd}{n:03d}.mp3", b"")
    run = run_worker(put_job(job_item()), RUN_MODE="RUN_ACTION",
                     ACTION_ID="vendor.ffmpeg.merge.MergeAudioFromFolder",
                     ACTION_INPUT_JSON=json.dumps({"src_prefix": crowd}))
    assert_failed(run, "the prefix holds 101 audio files; at most 100 can be merged")
    assert not storage.exists(crowd + "merged_output.mp3")


def test_an_upstream_script_chains_legacy_nodes(folder, put_job, run_worker, storage):
    # As the frontend writes it: node inputs are Parameters copied from the action, values arrive by links.
    thumb = action("thumb", "src.actions.vendor.ffmpeg.thumbnail.Thumbnail")
    thumb.inputs.extend([Parameter(var_name="format", ptype=PT.STRING, sdefault="png"),
                         Parameter(var_name="max_width_px", ptype=PT.INTEGER)])
    s = script([action("probe", "vendor.ffmpeg.probe.Probe"), static("at", 2.5), thumb],
               ["mainInput:video -> probe:file", "mainInput:video -> thumb:file", "at:value -> thumb:at_sec",
                "probe:width -> mainOutput:width", "thumb:file -> mainOutput:thumbnail"],
               inputs=[Parameter(var_name="video", ptype=PT.KEY)])
    run = run_worker(put_job(job_item(s, input_data={"video": folder + "clip.mp4"})))
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = {name: decode(value) for name, value in run.job["output"].items()}
    assert out == {"width": 320, "thumbnail": folder + "clip_thumb_2s.png"}  # 2.5 rounds half to even
    assert storage.exists(out["thumbnail"])
