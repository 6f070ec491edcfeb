"""The upstream worker's interface of every action (issue 12, LEGACY_ACTIONS.md §1–§2, §5), without ffmpeg.

One table row per upstream action, written from LEGACY_ACTIONS.md §2 (not from the code): its inputs with
ptypes and defaults, its outputs with ptypes, its primary output. Then the key rules (splitext, round half
to even, extension replacement), the value mappings onto the one implementation, the engine's refusals of
bad input, and the catalogue entries REGISTER_ACTIONS will publish.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from feaas.actions.base import Action, ActionContext, ActionFailed, Param
from feaas.actions.legacy import LegacyAction, class_paths
from feaas.errors import InvalidScript
from feaas.objects import ParameterType as PT
from feaas.psee.engine import Engine
from feaas.psee.invoke import run_action
from feaas.stopping import StopSignal
from src.actions import default_registry
from tests.support.scripts import action, script
from tests.unit.test_engine_core import make_env

REGISTRY = default_registry()
REQ = object()  # upstream had no default: a node must give it
FF = "vendor.ffmpeg."
S, K, N, F, B, L, P = PT.STRING, PT.KEY, PT.INTEGER, PT.FLOAT, PT.BOOLEAN, PT.LIST, PT.PREFIX
SELECT = PT.FIXED_LIST_SINGLE_SELECT

# (id relative to src.actions, inputs (name, ptype, default | REQ | None), outputs (name, ptype), primary)
TABLE: list[tuple[str, list[tuple[str, int, Any]], list[tuple[str, int]], str]] = [
    ("sys.debug.nap.Nap", [("seconds", N, 0)], [("slept_seconds", N), ("message", S)], ""),
    ("web.screenshot.Screenshot",  # declared defaults applied (§5)
     [("url", PT.URL, REQ), ("width", N, 1200), ("height", N, 800),
      ("dest_prefix", P, "{hostname}/{username}/screenshots/")], [("dest_key", K)], "dest_key"),
    (FF + "probe.Probe", [("file", S, REQ)],
     [("duration", F), ("width", N), ("height", N), ("codec", S), ("audio_codec", S), ("fps", F),
      ("bitrate", N), ("format", S)], "duration"),
    (FF + "convert.Convert", [("file", S, REQ), ("format", S, REQ)], [("file", S)], "file"),
    (FF + "extract_audio.ExtractAudio", [("video_file", S, REQ), ("format", S, "mp3")],
     [("audio_file", S)], "audio_file"),
    (FF + "trim.Trim",
     [("file", S, REQ), ("start_time", S, "0"), ("end_time", S, None), ("duration", S, None)],
     [("file", S)], "file"),
    (FF + "concat.Concat", [("files", L, REQ), ("output_format", S, None)], [("file", S)], "file"),
    (FF + "resize.Resize",  # file or the undeclared src_key: one of them (checked when it runs)
     [("file", S, None), ("scalar", F, None), ("preset", S, None), ("width", N, None), ("height", N, None),
      ("out_format", S, None)], [("file", S)], "file"),
    (FF + "resize.ResizeImage", [("src_key", K, REQ), ("scalar", F, REQ), ("out_format", SELECT, REQ)],
     [("dest_key", K)], "dest_key"),
    (FF + "compress.Compress", [("file", S, REQ), ("quality", S, "medium"), ("target_size_mb", F, None)],
     [("file", S), ("size_reduction", F)], "file"),
    (FF + "to_gif.ToGif",
     [("video_file", S, REQ), ("start_time", S, "0"), ("duration", F, 5.0), ("fps", N, 10),
      ("width", N, 480)],
     [("gif_file", S)], "gif_file"),
    (FF + "overlay.Overlay",
     [("video_file", S, REQ), ("image_file", S, REQ), ("position", S, "bottomright"), ("padding", N, 10),
      ("opacity", F, 1.0), ("scale", F, 1.0)], [("file", S)], "file"),
    (FF + "normalize_audio.NormalizeAudio",
     [("file", S, REQ), ("target_level", F, -16.0), ("method", S, "loudnorm")], [("file", S)], "file"),
    (FF + "mix_audio.MixAudio",
     [("file", S, REQ), ("audio_track", S, REQ), ("main_volume", F, 1.0), ("mix_volume", F, 0.3),
      ("loop_audio", B, True), ("mix_mode", S, "mix")], [("file", S)], "file"),
    (FF + "adjust_volume.AdjustVolume", [("file", S, REQ), ("gain_db", F, REQ)], [("file", S)], "file"),
    (FF + "add_intro_outro.AddIntroOutro",
     [("body", S, REQ), ("intro", S, None), ("outro", S, None), ("crossfade_sec", F, 0.0)],
     [("file", S)], "file"),
    (FF + "trim_silence.TrimSilence",
     [("file", S, REQ), ("threshold_db", F, -50.0), ("min_silence_sec", F, 0.5), ("from_start", B, True),
      ("from_end", B, True)], [("file", S)], "file"),
    (FF + "thumbnail.Thumbnail",
     [("file", S, REQ), ("at_sec", F, 0.0), ("format", S, "jpg"), ("max_width_px", N, 0)],
     [("file", S)], "file"),
    (FF + "thumbnails.Thumbnails",  # username was injected upstream; the declared fps default applies
     [("username", PT.USERNAME, None), ("src_key", K, REQ), ("thumbnail_prefix", P, REQ),
      ("thumbnail_ext", SELECT, REQ), ("thumbnails_per_second", N, 1)],
     [("thumbnails_created", N), ("dest_prefix", P)], "thumbnails_created"),
    (FF + "waveform.Waveform",
     [("file", S, REQ), ("width_px", N, 1200), ("height_px", N, 200), ("color", S, "#3da9fc"),
      ("bg_color", S, "#ffffff")], [("file", S)], "file"),
    (FF + "merge.MergeAudioVideo", [("audio_key", K, REQ), ("video_key", K, REQ)], [("dest_key", K)],
     "dest_key"),
    (FF + "merge.MergeAudio", [("audio_key1", K, REQ), ("audio_key2", K, REQ)], [("dest_key", K)],
     "dest_key"),
    (FF + "merge.MergeAudioFromFolder", [("src_prefix", P, REQ)], [("dest_key", K)], "dest_key"),
    (FF + "edit.EditMedia",  # hostname/username were injected upstream; dest_key was declared optional
     [("hostname", PT.HOSTNAME, None), ("username", PT.USERNAME, None), ("media_key", K, REQ),
      ("edit_remove_from", N, REQ), ("edit_remove_until", N, REQ), ("dest_key", K, None)], [("dest_key", K)],
     "dest_key"),
]
ROW_IDS = [row[0].rpartition(".")[2] for row in TABLE]


def legacy(class_path: str) -> LegacyAction:
    found = REGISTRY.get("src.actions." + class_path)
    assert isinstance(found, LegacyAction)
    return found


def test_the_table_is_every_upstream_action():
    assert len(TABLE) == 24
    assert sorted(a.id for a in REGISTRY.legacy_actions()) == sorted("src.actions." + row[0] for row in TABLE)


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_every_spelling_reaches_the_upstream_interface(row):
    class_path = row[0]
    spellings = ["src.actions." + class_path, class_path]
    if class_path.startswith("vendor."):
        spellings.append(class_path.removeprefix("vendor."))  # relative to upstream's first search path
    found = {id(REGISTRY.get(s)) for s in spellings}
    assert found == {id(legacy(class_path))}
    assert legacy(class_path).id == "src.actions." + class_path
    assert legacy(class_path).target in REGISTRY.actions()  # the one implementation, under its own id


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_inputs_outputs_ptypes_defaults_and_primary_output(row):
    class_path, inputs, outputs, primary = row
    action = legacy(class_path)
    published = [p for p, spec in zip(action.inputs, action.interface.inputs, strict=True) if spec.published]
    assert [(p.name, p.ptype) for p in published] == [(name, ptype) for name, ptype, _ in inputs]
    for param, (name, _, default) in zip(published, inputs, strict=True):
        if default is REQ:
            assert not param.optional and param.default is None, name
        else:
            assert param.optional and param.default == default, name
    assert [(p.name, p.ptype) for p in action.outputs] == outputs
    assert action.primary_output == primary or (primary == outputs[0][0] and action.primary_output is None)


@pytest.mark.parametrize("row", TABLE, ids=ROW_IDS)
def test_the_catalogue_entry_is_upstreams_register_actions_entry(row):
    class_path, inputs, outputs, _ = row
    entry = next(e for e in REGISTRY.legacy_catalogue() if e["class_path"] == "src.actions." + class_path)
    assert entry["action_id"] == entry["class_path"] == "src.actions." + class_path
    assert entry["label"] == class_path.rpartition(".")[2] and entry["short_desc"] == ""
    assert [p["var_name"] for p in entry["params"]] == [name for name, _, _ in inputs]
    assert [p.get("ptype", "STRING") for p in entry["params"]] == [PT.Name(t) for _, t, _ in inputs]
    assert [p["var_name"] for p in entry["outputs"]] == [name for name, _ in outputs]
    assert entry["implements"] == legacy(class_path).target.id


def test_parameter_json_is_plus_engines_form():
    entries = {e["label"]: e for e in REGISTRY.legacy_catalogue()}
    shot = {p["var_name"]: p for p in entries["Screenshot"]["params"]}
    assert shot["url"] == {"var_name": "url", "ptype": "URL", "hint": "http(s) URL; a bare host gets https://"}
    assert shot["width"]["idefault"] == "1200" and shot["width"]["optional"] is True
    assert shot["width"]["validations"] == [{"vtype": "GREATER_THAN", "ival": "50"},
                                            {"vtype": "LESS_THAN", "ival": "1920"}]
    assert entries["Screenshot"]["outputs"] == [{"var_name": "dest_key", "ptype": "KEY"}]
    assert entries["Convert"]["params"][0] == {"var_name": "file"}  # STRING is left out
    out_format = entries["ResizeImage"]["params"][2]
    assert out_format["ptype"] == "FIXED_LIST_SINGLE_SELECT"
    assert [o["value"] for o in out_format["svals"]] == ["png", "gif", "jpg", "jpeg"]
    assert entries["NormalizeAudio"]["params"][1]["ddefault"] == -16.0
    assert entries["TrimSilence"]["params"][3]["bdefault"] is True
    media_key = entries["EditMedia"]["params"][2]
    assert media_key["validations"] == [{"vtype": "ENDS_WITH", "svals": [".mp3", ".wav"]}]


@pytest.mark.parametrize("text, paths", [
    ("src.actions.vendor.ffmpeg.probe.Probe", [FF + "probe.Probe"]),
    ("ffmpeg.probe.Probe", ["ffmpeg.probe.Probe", FF + "probe.Probe"]),
    (" web.screenshot.Screenshot ", ["web.screenshot.Screenshot", "vendor.web.screenshot.Screenshot"]),
    (FF + "probe", []),
    ("Probe", []),
])
def test_class_paths_is_string_work(text, paths):
    assert class_paths(text) == paths


# --- output keys ---------------------------------------------------------------------------------

KEYS: list[tuple[str, dict[str, Any], str, str]] = [
    # (class path, upstream inputs, input key, the key upstream wrote)
    (FF + "convert.Convert", {"format": "MP4"}, "h/u/clip.MOV", "h/u/clip_converted.mp4"),
    (FF + "convert.Convert", {"format": ".webm"}, "h/u/my.clip.v2.mkv", "h/u/my.clip.v2_converted.webm"),
    (FF + "convert.Convert", {"format": "mp3"}, "h/u/dir.x/noext", "h/u/dir.x/noext_converted.mp3"),
    (FF + "extract_audio.ExtractAudio", {"format": "mp3"}, "h/u/clip.mp4", "h/u/clip_audio.mp3"),
    (FF + "trim.Trim", {}, "h/u/Clip.MP4", "h/u/Clip_trimmed.MP4"),  # the extension as written
    (FF + "trim.Trim", {}, "h/u/.hidden", "h/u/.hidden_trimmed"),  # only a leading dot: none
    (FF + "trim.Trim", {}, "h/u/a.tar.gz", "h/u/a.tar_trimmed.gz"),  # the last dot-suffix
    (FF + "concat.Concat", {"files": ["h/u/a.MKV"]}, "h/u/a.MKV", "h/u/a_concat.MKV"),
    (FF + "concat.Concat", {"files": ["h/u/a"]}, "h/u/a", "h/u/a_concat.mp4"),
    (FF + "concat.Concat", {"files": ["h/u/a.mp4"], "output_format": "MKV"}, "h/u/a.mp4",
     "h/u/a_concat.mkv"),
    (FF + "resize.Resize", {"scalar": 0.5}, "h/u/c.mp4", "h/u/c_r0.5.mp4"),
    (FF + "resize.Resize", {"scalar": 2.0, "preset": "720p"}, "h/u/c.mp4", "h/u/c_r2.0.mp4"),
    (FF + "resize.Resize", {"preset": "720p", "width": 10}, "h/u/c.mp4", "h/u/c_720p.mp4"),
    (FF + "resize.Resize", {"width": 640}, "h/u/c.mp4", "h/u/c_640xauto.mp4"),
    (FF + "resize.Resize", {"height": 360, "out_format": ".PNG"}, "h/u/c.mp4", "h/u/c_autox360.png"),
    (FF + "resize.Resize", {"width": 64, "height": 48}, "h/u/c.jpg", "h/u/c_64x48.jpg"),
    (FF + "resize.ResizeImage", {"scalar": 2.0, "out_format": ".GIF"}, "h/u/p.png", "h/u/p_r2.0.gif"),
    (FF + "compress.Compress", {}, "h/u/c.avi", "h/u/c_compressed.avi"),
    (FF + "to_gif.ToGif", {}, "h/u/c.mp4", "h/u/c_gif.gif"),
    (FF + "overlay.Overlay", {}, "h/u/c.mov", "h/u/c_watermarked.mov"),
    (FF + "normalize_audio.NormalizeAudio", {}, "h/u/a.wav", "h/u/a_normalized.wav"),
    (FF + "mix_audio.MixAudio", {}, "h/u/c.mp4", "h/u/c_mixed.mp4"),
    (FF + "adjust_volume.AdjustVolume", {"gain_db": -6.0}, "h/u/a.wav", "h/u/a_vol-6db.wav"),
    (FF + "adjust_volume.AdjustVolume", {"gain_db": -6.5}, "h/u/a.wav", "h/u/a_vol-6db.wav"),  # half even
    (FF + "adjust_volume.AdjustVolume", {"gain_db": 2.5}, "h/u/a.wav", "h/u/a_vol2db.wav"),
    (FF + "adjust_volume.AdjustVolume", {"gain_db": 3.5}, "h/u/a.wav", "h/u/a_vol4db.wav"),
    (FF + "adjust_volume.AdjustVolume", {"gain_db": 0.0}, "h/u/a.wav", "h/u/a_vol0db.wav"),
    (FF + "add_intro_outro.AddIntroOutro", {}, "h/u/body.mp4", "h/u/body_with_intro_outro.mp4"),
    (FF + "trim_silence.TrimSilence", {}, "h/u/a.mp3", "h/u/a_desilenced.mp3"),
    (FF + "thumbnail.Thumbnail", {"at_sec": 2.5, "format": "jpg"}, "h/u/c.mp4", "h/u/c_thumb_2s.jpg"),
    (FF + "thumbnail.Thumbnail", {"at_sec": 3.5, "format": ".PNG"}, "h/u/c.mp4", "h/u/c_thumb_4s.png"),
    (FF + "thumbnail.Thumbnail", {"at_sec": -3.0, "format": "jpg"}, "h/u/c.mp4", "h/u/c_thumb_0s.jpg"),
    (FF + "waveform.Waveform", {"width_px": 300, "height_px": 60}, "h/u/a.wav",
     "h/u/a_waveform_300x60.png"),
    (FF + "waveform.Waveform", {"width_px": 0, "height_px": 0}, "h/u/a.wav", "h/u/a_waveform_1200x200.png"),
    (FF + "merge.MergeAudioVideo", {}, "h/u/v.mov", "h/u/v_merged.mp4"),
    (FF + "merge.MergeAudio", {}, "h/u/a.wav", "h/u/a_merged.mp3"),
]


def key_rule(class_path: str, inputs: dict[str, Any]) -> Any:
    interface = legacy(class_path).interface
    assert interface.configure is not None
    return interface.configure(inputs)["output"]


@pytest.mark.parametrize("class_path, inputs, src, expected", KEYS,
                         ids=[f"{k[0].rpartition('.')[2]}-{k[3].rpartition('/')[2]}" for k in KEYS])
def test_upstream_output_keys(class_path, inputs, src, expected):
    rule = key_rule(class_path, inputs)
    ext = rule.ext.of_source(src, rule.ext.given(inputs))
    assert rule.key(src, ext) == expected
    if "_trimmed" not in expected:  # the odd names there are key-rule cases only
        # the key's extension is the file type
        assert rule.ext.of_dest(expected, ext) == "." + expected.rpartition(".")[2].lower()


def test_editmedias_key_is_new_in_the_jobs_namespace():
    rule = key_rule(FF + "edit.EditMedia", {})
    key = rule.key("host/ada@x.com/talks/a.wav", "")
    assert re.fullmatch(r"host/ada@x\.com/ffmpeg/[0-9a-f-]{36}\.wav", key), key
    assert rule.key("host/ada@x.com/talks/a.wav", "") != key


@pytest.mark.parametrize("class_path, inputs, src, message", [
    (FF + "compress.Compress", {}, "h/u/c.webm", "unsupported output format 'webm'"),  # no H.264 in webm
    (FF + "thumbnail.Thumbnail", {"at_sec": 1.0, "format": "gif"}, "h/u/c.mp4",
     "unsupported output format 'gif'"),
    (FF + "resize.ResizeImage", {"scalar": 1.0, "out_format": "bmp"}, "h/u/p.png",
     "unsupported output format 'bmp'"),
    (FF + "trim.Trim", {}, "h/u/noext", r"unsupported output format '\(none\)'"),
])
def test_an_upstream_key_naming_a_type_the_action_cannot_write_is_refused(class_path, inputs, src, message):
    rule = key_rule(class_path, inputs)
    with pytest.raises(ActionFailed, match=message):
        rule.ext.of_dest(rule.key(src, ""), "")


# --- upstream's values, mapped onto the one implementation ---------------------------------------


class Sizes:
    """Object sizes: 1000 bytes for every key but the output, 400."""

    def check_key(self, key: str) -> str:
        return key

    def size(self, key: str) -> int:
        return 400 if key == "h/u/out" else 1000


class Spy(Action):
    """Stands in for an implementation: records the inputs it is given, returns ``produced``."""

    def __init__(self, target: Action, produced: dict[str, Any]) -> None:
        self.id, self.inputs, self.outputs = target.id, target.inputs, target.outputs
        self.produced = produced
        self.seen: dict[str, Any] = {}

    def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
        self.seen.update(inputs)
        return dict(self.produced)


def ours(class_path: str, inputs: dict[str, Any], produced: dict[str, Any] | None = None,
         tmp_path: Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the implementation's inputs, upstream's outputs) for upstream's ``inputs`` (defaults applied)."""
    real = legacy(class_path)
    spy = Spy(real.target, produced or {"dest_key": "h/u/out", "keys": []})
    wrapped = LegacyAction(spy, real.interface)
    given = {p.name: p.default for p in wrapped.inputs if p.default is not None} | inputs
    ctx = ActionContext(storage=Sizes(), tmp_dir=tmp_path or Path("/nonexistent"),  # type: ignore[arg-type]
                        cancel=threading.Event(), log=logging.getLogger("test"))
    outputs = wrapped.run(ctx, given)
    return spy.seen, outputs


@pytest.mark.parametrize("class_path, inputs, expected", [
    (FF + "trim.Trim", {"file": "k.mp4", "start_time": "00:01:02.5", "end_time": "70"},
     {"key": "k.mp4", "start": 62.5, "end": 70.0, "duration": 0.0}),  # end_time is absolute (§5)
    (FF + "trim.Trim", {"file": "k.mp4", "end_time": "5", "duration": "2"},
     {"start": 0.0, "end": 0.0, "duration": 2.0}),  # duration wins, as upstream
    (FF + "trim.Trim", {"file": "k.mp4", "start_time": "1:30", "duration": "500ms"},
     {"start": 90.0, "duration": 0.5}),
    (FF + "to_gif.ToGif", {"video_file": "k.mp4", "start_time": "2.5"},
     {"key": "k.mp4", "start": 2.5, "duration": 5.0, "fps": 10, "width": 480}),
    (FF + "compress.Compress", {"file": "k.mp4", "quality": "low"}, {"crf": 32, "preset": "medium"}),
    (FF + "compress.Compress", {"file": "k.mp4"}, {"crf": 26, "preset": "medium"}),
    (FF + "compress.Compress", {"file": "k.mp4", "quality": "HIGH"}, {"crf": 20}),
    (FF + "compress.Compress", {"file": "k.mp4", "quality": "best"}, {"crf": 26}),
    (FF + "compress.Compress", {"file": "k.mp4", "target_size_mb": 10.0},
     {"crf": 0, "target_size_mb": 10.48576}),  # upstream's MB were MiB
    (FF + "overlay.Overlay", {"video_file": "v", "image_file": "i"},
     {"key": "v", "overlay_key": "i", "position": "bottom-right", "margin": 10, "overlay_scale": 1.0}),
    (FF + "overlay.Overlay", {"video_file": "v", "image_file": "i", "position": "TopLeft", "scale": 0.5},
     {"position": "top-left", "overlay_scale": 0.5, "scale": 0.0}),  # upstream's scale: the image's own size
    (FF + "overlay.Overlay", {"video_file": "v", "image_file": "i", "position": "middle"},
     {"position": "bottom-right"}),  # unknown words meant bottom right upstream
    (FF + "mix_audio.MixAudio", {"file": "m.mp4", "audio_track": "t.mp3", "mix_mode": "ducking"},
     {"keys": ["m.mp4", "t.mp3"], "volumes": [1.0, 0.3], "loop": True, "mode": "duck", "duration": "first"}),
    (FF + "mix_audio.MixAudio", {"file": "m", "audio_track": "t", "loop_audio": False,
                                          "mix_mode": "replace"}, {"loop": False, "mode": "replace"}),
    (FF + "normalize_audio.NormalizeAudio", {"file": "a", "method": "peak", "target_level": -1.0},
     {"method": "peak", "target_lufs": -1.0}),
    (FF + "normalize_audio.NormalizeAudio", {"file": "a", "method": "ebu"}, {"method": "rms"}),
    (FF + "trim_silence.TrimSilence", {"file": "a"},
     {"mode": "edges", "threshold_db": -50.0, "min_silence_s": 0.5}),
    (FF + "trim_silence.TrimSilence", {"file": "a", "from_end": False}, {"mode": "start"}),
    (FF + "trim_silence.TrimSilence", {"file": "a", "from_start": False}, {"mode": "end"}),
    (FF + "adjust_volume.AdjustVolume", {"file": "a", "gain_db": 0.0}, {"volume": 1.0}),
    (FF + "adjust_volume.AdjustVolume", {"file": "a", "gain_db": -6.0}, {"gain_db": -6.0, "volume": 0.0}),
    (FF + "thumbnail.Thumbnail", {"file": "c", "at_sec": -2.0}, {"time": 0.0, "width": 0, "format": "jpg"}),
    (FF + "thumbnails.Thumbnails",
     {"src_key": "c", "thumbnail_prefix": "p", "thumbnail_ext": ".png", "thumbnails_per_second": 4},
     {"key": "c", "dest_prefix": "p", "format": ".png", "interval": 0.25}),
    (FF + "thumbnails.Thumbnails",
     {"src_key": "c", "thumbnail_prefix": "p", "thumbnail_ext": "jpg", "thumbnails_per_second": 0},
     {"interval": 1.0}),
    (FF + "waveform.Waveform", {"file": "a", "width_px": 0},
     {"width": 1200, "height": 200, "background": "#ffffff", "color": "#3da9fc"}),
    (FF + "resize.Resize", {"src_key": "c.mp4", "scalar": 0.5},
     {"key": "c.mp4", "scale": 0.5, "keep_aspect": False}),
    (FF + "resize.Resize", {"file": "c.mp4", "preset": "720p"}, {"preset": "720p", "scale": 0.0}),
    (FF + "resize.ResizeImage", {"src_key": "p", "scalar": 2.0, "out_format": "GIF"},
     {"key": "p", "scale": 2.0, "format": "GIF"}),
    (FF + "edit.EditMedia", {"media_key": "a.wav", "edit_remove_from": 1500, "edit_remove_until": 2250},
     {"key": "a.wav", "remove_start": 1.5, "remove_end": 2.25}),
    (FF + "merge.MergeAudioVideo", {"audio_key": "a.mp3", "video_key": "v.mp4"},
     {"audio_key": "a.mp3", "video_key": "v.mp4", "shortest": False}),  # upstream kept the longer
    (FF + "merge.MergeAudioFromFolder", {"src_prefix": "h/u/songs/"}, {"prefix": "h/u/songs/"}),
    (FF + "add_intro_outro.AddIntroOutro", {"body": "b", "outro": "o", "crossfade_sec": 1.0},
     {"key": "b", "outro_key": "o", "crossfade_s": 1.0}),
])
def test_upstream_values_map_onto_the_implementations_inputs(class_path, inputs, expected):
    seen, _ = ours(class_path, inputs)
    assert {k: seen.get(k) for k in expected} == expected


@pytest.mark.parametrize("class_path, inputs, message", [
    (FF + "trim.Trim", {"file": "k", "start_time": "soon"}, "start_time must be a time"),
    (FF + "trim_silence.TrimSilence", {"file": "a", "from_start": False, "from_end": False},
     "At least one of from_start/from_end must be true"),
    (FF + "mix_audio.MixAudio", {"file": "m", "audio_track": "t", "mix_mode": "blend"},
     "mix_mode must be one of mix, replace, ducking"),
    (FF + "resize.Resize", {"file": "a.mp4", "src_key": "b.mp4", "width": 10},
     "give either file or src_key, not both"),
    (FF + "resize.Resize", {"width": 10}, r"missing input: file \(or src_key\)"),
    (FF + "resize.Resize", {"file": "a.mp4", "scalar": -1.0}, "scalar must be > 0"),
    (FF + "convert.Convert", {"file": "  ", "format": "mp4"}, "missing input: file"),
    (FF + "concat.Concat", {"files": []}, "missing input: files"),
    (FF + "merge.MergeAudioVideo", {"audio_key": "a.m4a", "video_key": "v.mp4"},
     "audio_key must end with one of .aif .cda .mid .mp3 .mpa .ogg .wav .wma .wpl, got 'a.m4a'"),
    (FF + "merge.MergeAudio", {"audio_key1": "a.mp3", "audio_key2": "b.flac"}, "audio_key2 must end with"),
    (FF + "edit.EditMedia", {"media_key": "a.ogg", "edit_remove_from": 0, "edit_remove_until": 1},
     "media_key must end with one of .mp3 .wav"),
    ("web.screenshot.Screenshot", {"url": "example.com", "width": 50},
     "width must be greater than 50, got 50"),
    ("web.screenshot.Screenshot", {"url": "example.com", "height": 1080}, "height must be less than 1080"),
])
def test_upstream_values_the_action_refuses(class_path, inputs, message):
    with pytest.raises(ActionFailed, match=message):
        ours(class_path, inputs)


def test_upstream_outputs_are_renamed_and_recomputed():
    produced = {"duration": 4.0, "width": 320, "height": 240, "codec": "h264", "audio_codec": "aac",
                "fps": 25.0, "bitrate": 784_999, "format": "mov,mp4"}
    assert ours(FF + "probe.Probe", {"file": "c"}, produced)[1] == {**produced, "bitrate": 784}  # kbit/s
    made = {"dest_prefix": "h/u/th/", "keys": ["h/u/th/thumb_00001.jpg", "h/u/th/thumb_00002.jpg"]}
    assert ours(FF + "thumbnails.Thumbnails",
                {"src_key": "c", "thumbnail_prefix": "h/u/th", "thumbnail_ext": "jpg"}, made)[1] == {
        "thumbnails_created": 2, "dest_prefix": "h/u/th/"}
    assert ours(FF + "trim.Trim", {"file": "c"})[1] == {"file": "h/u/out"}
    assert ours(FF + "compress.Compress", {"file": "c"})[1] == {"file": "h/u/out", "size_reduction": 60.0}


def test_upstream_nap_clamps_and_says_slept_for(tmp_path):
    nap = legacy("sys.debug.nap.Nap")
    ctx = ActionContext(storage=None, tmp_dir=tmp_path, cancel=threading.Event(),  # type: ignore[arg-type]
                        log=logging.getLogger("test"))
    assert nap.run(ctx, {"seconds": -5}) == {"slept_seconds": 0, "message": "Slept for 0 seconds"}
    seen, _ = ours("sys.debug.nap.Nap", {"seconds": 5000}, {"slept_seconds": 3600.0})
    assert seen["seconds"] == 3600


def test_the_receipt_carries_upstreams_ptypes_and_primary_output(tmp_path):
    def ctx(node_id: str, tmp_dir: Path) -> ActionContext:
        return ActionContext(storage=None, tmp_dir=tmp_dir, cancel=threading.Event(),  # type: ignore[arg-type]
                             log=logging.getLogger("test"))

    receipt, outputs = run_action("n", legacy("sys.debug.nap.Nap"), {"seconds": 0}, {}, ctx, tmp_path)
    assert receipt.success and receipt.primary_output == ""
    assert receipt.outputs["slept_seconds"].ptype == PT.INTEGER and receipt.outputs["message"].sval == \
        "Slept for 0 seconds"

    class Keyed(Action):
        id = "test.keyed"
        outputs = (Param("where", PT.PREFIX), Param("key", PT.KEY), Param("n", PT.INTEGER))

        def run(self, ctx: ActionContext, inputs: dict[str, Any]) -> dict[str, Any]:
            return {"key": "h/u/a.png", "where": "h/u/", "n": 2}

    receipt, outputs = run_action("k", Keyed(), {}, {}, ctx, tmp_path)
    assert outputs["key"] == "h/u/a.png"  # registers keep plain values
    assert [(n, receipt.outputs[n].ptype) for n in ("where", "key", "n")] == [
        ("where", PT.PREFIX), ("key", PT.KEY), ("n", PT.INTEGER)]
    assert receipt.primary_output == "where"


# --- bad input in a script: named node, input and expectation ------------------------------------


def prepare(s: Any) -> Any:
    return Engine(REGISTRY).prepare(s)


def test_a_legacy_node_with_both_names_for_one_input_is_refused():
    s = script([action("thumb", FF + "thumbnail.Thumbnail")],
               ["mainInput:a -> thumb:file", "mainInput:b -> thumb:key"])
    expected = (r"node 'thumb': inputs 'file' and 'key' are one input of "
                r"src\.actions\.vendor\.ffmpeg\.thumbnail\.Thumbnail .*give only 'file'")
    with pytest.raises(InvalidScript, match=expected):
        prepare(s)


def test_a_legacy_node_using_only_the_new_name_is_told_the_upstream_one():
    s = script([action("thumb", FF + "thumbnail.Thumbnail")], ["mainInput:a -> thumb:key"])
    with pytest.raises(InvalidScript) as err:
        prepare(s)
    assert ("node 'thumb': src.actions.vendor.ffmpeg.thumbnail.Thumbnail has no input 'key'; "
            "this upstream id calls it 'file'") in str(err.value)
    assert "required input 'file'" in str(err.value)


@pytest.mark.parametrize("action_id, key", [(FF + "probe.Probe", "file"), (FF + "probe", "key")])
def test_an_unknown_input_is_refused_for_legacy_and_new_ids_alike(action_id, key):
    given_as_value = script([action("p", action_id, colour="red")], [f"mainInput:a -> p:{key}"])
    given_by_link = script([action("p", action_id)], [f"mainInput:a -> p:{key}", "mainInput:b -> p:colour"])
    for s in (given_as_value, given_by_link):
        expected = rf"node 'p': \S+ has no input 'colour' \(its inputs: {key}\)"
        with pytest.raises(InvalidScript, match=expected):
            prepare(s)


def test_a_value_of_the_wrong_type_fails_the_node_naming_the_input(tmp_path):
    stop = StopSignal()
    engine = Engine(REGISTRY)
    s = script([action("thumb", "ffmpeg.thumbnail.Thumbnail", file="h/u/c.mp4", at_sec="soon")])
    result = engine.run(engine.prepare(s), make_env(tmp_path, stop), stop)
    assert result.failed_node == "thumb"
    assert result.error_message == ("node 'thumb' (ffmpeg.thumbnail.Thumbnail) failed: node 'thumb': "
                                    "input 'at_sec' expects FLOAT, got 'soon' (not a number)")
