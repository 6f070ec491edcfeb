"""The single-output media template and its declarations (issue 15 §6), without ffmpeg.

What the template promises: an action's own parameters, a list input's size and the output format
are checked before anything is downloaded; the default output key follows the declared rule; the
passes of a multi-pass action share one time limit and split the progress evenly.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from feaas.actions.base import ActionContext, ActionFailed
from feaas.errors import NamespaceViolation
from src.actions.ffmpeg import ACTIONS, demuxers, formats
from src.actions.ffmpeg.args import DEST_KEY, TIMEOUT
from src.actions.ffmpeg.probing import MediaInfo
from src.actions.ffmpeg.spec import (
    AUDIO_INPUT,
    SAME_AV_EXT,
    FixedExt,
    FormatInput,
    MediaInput,
    Needs,
    OutputKey,
    SameExt,
)
from src.actions.ffmpeg.template import MediaAction, Passes

NAMESPACE = "host/alice/"


class UntouchedStorage:
    """Storage that fails the test on any call but the namespace check."""

    namespace = NAMESPACE

    def check_key(self, key: str) -> str:
        if not key.startswith(NAMESPACE):
            raise NamespaceViolation(f"key {key!r} is outside your namespace {NAMESPACE!r}")
        return key

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"storage.{name} was called")


def context(tmp_path: Path) -> ActionContext:
    return ActionContext(storage=UntouchedStorage(), tmp_dir=tmp_path,
                         cancel=threading.Event(), log=logging.getLogger("test"))


def action(action_id: str) -> MediaAction:
    found = next(a for a in ACTIONS if a.id == action_id)
    assert isinstance(found, MediaAction)
    return found


def info(*, video: bool = False, audio: bool = False, image: bool = False) -> MediaInfo:
    return MediaInfo(duration_s=None if image else 4.0, format_name="mov", bitrate=None,
                     video_codec="h264" if video else "", audio_codec="aac" if audio else "", is_image=image)


# --- declarations ------------------------------------------------------------------------------


def test_media_actions_declare_their_inputs_in_one_order():
    single = [a for a in ACTIONS if isinstance(a, MediaAction)]
    assert len(single) == 20  # all but probe and thumbnails (several outputs)
    for a in single:
        if a.id != "vendor.ffmpeg.merge_audio_from_folder":  # it lists its media itself, from a prefix
            assert a.inputs == (*(s.param for s in a.sources), *a.params, DEST_KEY, TIMEOUT), a.id
        assert [p.name for p in a.outputs] == ["dest_key"]


@pytest.mark.parametrize("needs, met", [
    (Needs.ANY, [True, True, True]),
    (Needs.AUDIO, [False, True, False]),
    (Needs.PICTURE, [True, False, True]),
    (Needs.VIDEO, [True, False, False]),
])
def test_needs(needs, met):
    kinds = [info(video=True), info(audio=True), info(video=True, image=True)]
    assert [needs.met_by(k) for k in kinds] == met


def test_a_refused_input_names_the_users_key():
    keys = MediaInput("keys", demuxers.AUDIO_VIDEO, Needs.AUDIO, "{key} has no audio stream", count=(2, 3))
    with pytest.raises(ActionFailed, match=r"^host/alice/v\.mp4 has no audio stream$"):
        keys.require("host/alice/v.mp4", info(video=True))
    AUDIO_INPUT.require("host/alice/a.mp3", info(audio=True))


@pytest.mark.parametrize("given, expected", [
    (["a", "  ", "", "b"], ["a", "b"]),
    (["a", "b", "c"], ["a", "b", "c"]),
])
def test_a_list_input_drops_blank_keys(given, expected):
    keys = MediaInput("keys", demuxers.AUDIO_VIDEO, count=(2, 3))
    assert keys.given({"keys": given}) == expected


@pytest.mark.parametrize("given", [None, [], ["a"], ["a", "b", "c", "d"]])
def test_a_list_input_of_the_wrong_size_is_refused(given):
    keys = MediaInput("keys", demuxers.AUDIO_VIDEO, count=(2, 3))
    with pytest.raises(ActionFailed, match=r"^keys must list between 2 and 3 files, got \d$"):
        keys.given({"keys": given})


# --- the output key ----------------------------------------------------------------------------


def test_same_ext_keeps_the_inputs_container_or_refuses():
    rule = OutputKey("trimmed", SAME_AV_EXT)
    ext = rule.ext.of_source("host/alice/clip.MKV", rule.ext.given({}))
    assert (ext, rule.key("host/alice/clip.MKV", ext)) == (".mkv", "host/alice/clip_trimmed.mkv")
    with pytest.raises(ActionFailed, match="unsupported output format 'png'"):
        rule.ext.of_source("host/alice/still.png", "")


def test_same_ext_with_a_fallback():
    rule = SameExt(formats.AUDIO_EXTS, otherwise=".m4a")
    assert rule.of_source("a/song.mp3", "") == ".mp3"
    assert rule.of_source("a/clip.mp4", "") == ".m4a"


def test_format_input_reads_the_format_before_any_work():
    rule = FormatInput(allowed=formats.IMAGE_EXTS, default="jpg")
    assert rule.given({}) == ".jpg" and rule.given({"format": "PNG"}) == ".png"
    with pytest.raises(ActionFailed, match="unsupported output format 'mp4'"):
        rule.given({"format": "mp4"})
    with pytest.raises(ActionFailed, match="invalid format"):
        FormatInput().given({})


def test_fixed_ext_and_a_dest_key_that_picks_its_own():
    rule = FixedExt(".png", dest_picks=formats.IMAGE_EXTS)
    assert rule.given({}) == ".png"
    assert rule.of_dest("a/wave.webp", ".png") == ".webp"
    assert rule.of_dest("a/wave.bin", ".png") == ".png"
    assert FixedExt(".gif").of_dest("a/x.png", ".gif") == ".gif"


def test_the_key_pattern_is_data():
    upstream = OutputKey("thumb", FixedExt(".jpg"), pattern="{base}/{suffix}{ext}")
    assert upstream.key("a/clip.mp4", ".jpg") == "a/clip/thumb.jpg"


# --- the run: checks before any download ------------------------------------------------------


@pytest.mark.parametrize("action_id, inputs, message", [
    ("vendor.ffmpeg.trim", {"key": "host/alice/a.mp4", "start": -1.0}, "start must be zero or a positive"),
    ("vendor.ffmpeg.compress", {"key": "host/alice/a.mp4", "preset": "warp"}, "preset must be one of"),
    ("vendor.ffmpeg.convert", {"key": "host/alice/a.mp4", "format": "exe"},
     "unsupported output format 'exe'"),
    ("vendor.ffmpeg.mix_audio", {"keys": ["host/alice/a.mp3"]}, "keys must list between 2 and 32"),
    ("vendor.ffmpeg.mix_audio", {"keys": ["host/alice/a.mp3", "host/alice/b.mp3"], "duration": "all"},
     "duration must be one of"),
    ("vendor.ffmpeg.concat", {"keys": [f"host/alice/{n}.mp4" for n in range(101)]},
     "keys must list between 2 and 100 files, got 101"),
    ("vendor.ffmpeg.overlay", {"key": "host/alice/a.mp4", "overlay_key": "host/alice/l.png", "scale": 2.0},
     "scale is a fraction"),
    ("vendor.ffmpeg.trim", {"key": "host/bob/a.mp4"}, "outside your namespace"),
    ("vendor.ffmpeg.trim", {"key": "host/alice/a.png"}, "unsupported output format 'png'"),
    ("vendor.ffmpeg.trim", {"key": "host/alice/a.mp4", "dest_key": "host/bob/b.mp4"},
     "outside your namespace"),
    ("vendor.ffmpeg.merge_audio_video", {"video_key": "", "audio_key": "host/alice/a.mp3"},
     "missing input: video_key"),
])
def test_bad_parameters_fail_before_anything_is_downloaded(tmp_path, action_id, inputs, message):
    with pytest.raises(ActionFailed, match=message):
        action(action_id).run(context(tmp_path), inputs)
    assert list(tmp_path.iterdir()) == []  # the work directory is gone too


# --- passes ------------------------------------------------------------------------------------


def test_passes_share_one_time_limit_and_split_the_progress():
    passes = Passes(total_s=100.0, count=2)
    first_timeout, first = passes.next(10.0)
    second_timeout, second = passes.next(5.0)
    assert first_timeout == 100.0 and 1.0 <= second_timeout <= 100.0
    assert first.feed("out_time_us=10000000") == 0.5  # all of pass 1 is the first half
    assert second.feed("out_time_us=2500000") == 0.75  # half of pass 2
    assert second.feed("progress=end") == 1.0


def test_a_late_pass_still_gets_a_second():
    passes = Passes(total_s=0.0, count=2)
    passes.next(None)
    assert passes.next(None)[0] == 1.0
