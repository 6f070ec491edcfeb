"""Pure tests of the ffmpeg actions' argument building, key naming and progress parsing (issue 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from feaas.actions.base import ActionFailed
from src.actions.ffmpeg import ACTIONS, demuxers, formats
from src.actions.ffmpeg.args import auto_timeout_s
from src.actions.ffmpeg.audio import (
    loudnorm_second_pass,
    mix_filter,
    parse_loudnorm,
    parse_silences,
    sound_window,
    volume_filter,
)
from src.actions.ffmpeg.edit import concat_filter, overlay_filter, trim_window
from src.actions.ffmpeg.images import gif_filter, thumbnails_interval, waveform_filter
from src.actions.ffmpeg.naming import format_ext, output_key, split_key
from src.actions.ffmpeg.probing import MediaInfo, parse_probe
from src.actions.ffmpeg.process import explain_failure, ffmpeg_command, input_args
from src.actions.ffmpeg.progress import ProgressParser
from src.actions.ffmpeg.transcode import convert_args, scale_filter, target_bitrates_kbps

# --- ids, aliases, declared parameters ---------------------------------------------------------


def test_all_twenty_two_actions_and_their_upstream_interfaces():
    names = [a.id.removeprefix("vendor.ffmpeg.") for a in ACTIONS]
    assert names == ["probe", "convert", "extract_audio", "trim", "concat", "resize", "compress", "to_gif",
                     "overlay", "normalize_audio", "mix_audio", "adjust_volume", "trim_silence", "thumbnail",
                     "thumbnails", "waveform", "merge_audio_video", "resize_image", "add_intro_outro",
                     "edit_media", "merge_audio", "merge_audio_from_folder"]
    for action in ACTIONS:
        assert action.aliases == (), action.id  # upstream's class paths reach action.legacy instead
        assert action.legacy is not None and action.legacy.label == type(action).__name__
        assert action.legacy.class_path.startswith("vendor.ffmpeg."), action.id
        assert action.description
        declared = {p.name for p in action.inputs}
        assert {"key", "keys", "video_key", "prefix"} & declared, action.id
        for param in action.inputs:
            assert param.optional or param.default is None, (action.id, param.name)
            if param.optional:
                assert param.name in action.description or param.name == "timeout_s", (action.id, param.name)


def test_probe_declares_the_spec_outputs():
    assert [p.name for p in ACTIONS[0].outputs] == [
        "duration", "width", "height", "codec", "audio_codec", "fps", "bitrate", "format"]


# --- key naming --------------------------------------------------------------------------------


@pytest.mark.parametrize("key, suffix, ext, expected", [
    ("ns/u/clip.mp4", "small", None, "ns/u/clip_small.mp4"),
    ("ns/u/clip.MOV", "trimmed", None, "ns/u/clip_trimmed.mov"),
    ("ns/u/a.b/clip.final.mp4", "audio", ".mp3", "ns/u/a.b/clip.final_audio.mp3"),
    ("ns/u/noext", "thumb", "jpg", "ns/u/noext_thumb.jpg"),
    ("ns/u/clip.mp4", "animated", ".gif", "ns/u/clip_animated.gif"),
])
def test_output_key_next_to_input(key, suffix, ext, expected):
    assert output_key(key, suffix, ext) == expected


def test_split_key_ignores_odd_suffixes():
    assert split_key("ns/file.with space") == ("ns/file.with space", "")
    assert split_key("ns/x.tar.gz") == ("ns/x.tar", ".gz")


@pytest.mark.parametrize("raw, ext", [("webm", ".webm"), (".MP4", ".mp4"), (" mp3 ", ".mp3")])
def test_format_ext(raw, ext):
    assert format_ext(raw) == ext


@pytest.mark.parametrize("raw", ["", "mp4;rm", "../x", "a" * 20])
def test_format_ext_rejects_junk(raw):
    with pytest.raises(ActionFailed):
        format_ext(raw)


# --- the command line --------------------------------------------------------------------------


MP4 = MediaInfo(duration_s=4.0, format_name="mov,mp4,m4a,3gp,3g2,mj2", bitrate=None, demuxer="mov")
SOURCE = input_args(Path("/w/in.mp4"), MP4)


def test_command_is_nostdin_with_progress_on_stdout():
    cmd = ffmpeg_command([*SOURCE, "/w/out.mp4"])
    assert cmd[0] == "ffmpeg" and "-nostdin" in cmd
    assert cmd[cmd.index("-progress") + 1] == "pipe:1"
    assert cmd.index("-y") < cmd.index("-i") and cmd[-1] == "/w/out.mp4"


def test_inputs_are_local_files_read_by_the_probed_demuxer():
    assert SOURCE == ["-protocol_whitelist", "file", "-format_whitelist", "mov", "-f", "mov",
                      "-i", "/w/in.mp4"]
    jpg = input_args(Path("/w/in%d.jpg"), MediaInfo(duration_s=None, format_name="image2", bitrate=None,
                                                      demuxer="image2"))
    assert jpg[jpg.index("-pattern_type") + 1] == "none" and jpg[-2:] == ["-i", "/w/in%d.jpg"]
    with pytest.raises(ActionFailed, match="format is unknown"):
        input_args(Path("/w/in.mp4"), MediaInfo(duration_s=None, format_name="", bitrate=None))


@pytest.mark.parametrize("args", [
    ["-i", "/w/in.mp4", "/w/out.mp4"],
    ["-f", "mov", "-i", "/w/in.mp4", "/w/out.mp4"],
    ["-protocol_whitelist", "file,http", "-format_whitelist", "mov", "-f", "mov",
     "-i", "/w/in.mp4", "/w/o.mp4"],
    ["-protocol_whitelist", "file", "-format_whitelist", "hls,mov", "-f", "mov",
     "-i", "/w/in.mp4", "/w/o.mp4"],
    [*SOURCE, "-i", "/w/second.mp4", "/w/out.mp4"],
    ["-protocol_whitelist", "file", "-i", "/w/in.mp4", "-format_whitelist", "mov", "-f", "mov", "/w/o.mp4"],
])
def test_command_refuses_an_input_without_whitelist_and_forced_demuxer(args):
    with pytest.raises(ValueError, match="input_args"):
        ffmpeg_command(args)


def test_command_accepts_several_guarded_inputs_and_seeks():
    cmd = ffmpeg_command(["-ss", "1.0", *SOURCE, *input_args(Path("/w/b.png"), MediaInfo(
        duration_s=None, format_name="png_pipe", bitrate=None, demuxer="png_pipe")), "-f", "null", "-"])
    assert cmd.count("-i") == 2


def test_probe_names_the_demuxer_and_allow_lists_hold_no_playlist():
    info = parse_probe({"format": {"format_name": "matroska,webm"}, "streams": [{"codec_type": "audio",
                                                                                 "codec_name": "opus"}]})
    assert info.demuxer == "matroska"
    for accept in (demuxers.VIDEO, demuxers.AUDIO, demuxers.IMAGE, demuxers.ANY_MEDIA):
        assert not accept & (demuxers.REFERENCING | {"lavfi", "tty", "image2pipe", "ffmetadata", "mpl2"})
    assert "hls" not in demuxers.whitelist(demuxers.ANY_MEDIA).split(",")


def test_refusal_messages():
    assert demuxers.refusal("hls", "a/clip.mp4", demuxers.VIDEO) == (
        "unsupported input format 'hls' for a/clip.mp4: playlists and manifests are not accepted, "
        "upload the media file itself")
    assert demuxers.refusal("png_pipe", "a/x.mp4", demuxers.VIDEO).endswith("this action reads video files")
    assert "video or audio" in demuxers.refusal("tty", "a/x.mp4", demuxers.AUDIO_VIDEO)


def test_convert_args_per_container():
    webm = convert_args(SOURCE, Path("/w/out.webm"), ".webm", has_video=True, has_audio=True)
    assert webm[:len(SOURCE)] == SOURCE
    assert webm[webm.index("-c:v") + 1] == "libvpx-vp9" and webm[webm.index("-c:a") + 1] == "libopus"
    mp4 = convert_args(SOURCE, "/w/out.mp4", ".mp4", has_video=True, has_audio=False)
    assert "libx264" in mp4 and "-an" in mp4 and "+faststart" in mp4
    mp3 = convert_args(SOURCE, "/w/out.mp3", ".mp3", has_video=True, has_audio=True)
    assert "-vn" in mp3 and mp3[mp3.index("-map") + 1] == "0:a:0"
    png = convert_args(SOURCE, "/w/out.png", ".png", has_video=True, has_audio=True)
    assert png[png.index("-frames:v") + 1] == "1"
    with pytest.raises(ActionFailed, match="no audio"):
        convert_args(SOURCE, "/w/out.mp3", ".mp3", has_video=True, has_audio=False)


def test_require_supported_lists_formats():
    with pytest.raises(ActionFailed, match=r"supported: .*webm"):
        formats.require_supported(".xyz")


@pytest.mark.parametrize("w, h, keep, even, expected", [
    (641, None, True, True, "scale=640:-2"),
    (None, 360, True, True, "scale=-2:360"),
    (640, 640, True, True, "scale=640:640:force_original_aspect_ratio=decrease:force_divisible_by=2"),
    (100, 50, False, False, "scale=100:50,setsar=1"),
    (33, None, True, False, "scale=33:-1"),
])
def test_scale_filter(w, h, keep, even, expected):
    assert scale_filter(w, h, keep_aspect=keep, even=even) == expected


@pytest.mark.parametrize("w, h", [(None, None), (0, None), (9000, None), (1, None)])
def test_scale_filter_rejects(w, h):
    with pytest.raises(ActionFailed):
        scale_filter(w, h, keep_aspect=True, even=True)


def test_target_bitrates():
    video, audio = target_bitrates_kbps(10.0, 60.0, True)  # 10 MB over a minute ≈ 1333 kbit/s
    assert audio == 128 and 1100 < video < 1300
    assert target_bitrates_kbps(1.0, 60.0, False)[1] == 0
    with pytest.raises(ActionFailed, match="too small"):
        target_bitrates_kbps(0.01, 600.0, True)


def test_trim_window():
    assert trim_window(1.0, 2.5, None, 4.0) == (1.0, 1.5)
    assert trim_window(1.0, None, 10.0, 4.0) == (1.0, 3.0)
    assert trim_window(0.0, None, None, 4.0) == (0.0, None)
    with pytest.raises(ActionFailed, match="past the end"):
        trim_window(5.0, None, None, 4.0)
    with pytest.raises(ActionFailed, match="after start"):
        trim_window(2.0, 1.0, None, 4.0)
    with pytest.raises(ActionFailed, match="either end or duration"):
        trim_window(0.0, 1.0, 1.0, 4.0)


def _info(video: bool = True, audio: bool = True, duration: float = 2.0) -> MediaInfo:
    return MediaInfo(duration_s=duration, format_name="mov,mp4", bitrate=1, width=640, height=360,
                     video_codec="h264" if video else "", audio_codec="aac" if audio else "", fps=30.0)


def test_concat_filter_fills_missing_audio_with_silence():
    graph, outs = concat_filter([_info(), _info(audio=False, duration=3.0)], 1280, 720, 25.0)
    assert outs == ["[v]", "[a]"]
    assert "anullsrc=r=48000:cl=stereo,atrim=duration=3.000000" in graph
    assert graph.endswith("[v0][a0][v1][a1]concat=n=2:v=1:a=1[v][a]")
    assert "pad=1280:720" in graph and "fps=25" in graph


def test_concat_filter_audio_only_and_mixed():
    graph, outs = concat_filter([_info(video=False), _info(video=False)], 2, 2, 1)
    assert outs == ["[a]"] and "concat=n=2:v=0:a=1[a]" in graph
    with pytest.raises(ActionFailed, match="cannot join"):
        concat_filter([_info(), _info(video=False)], 2, 2, 1)


def test_overlay_filter_positions_and_validation():
    assert "overlay=x=W-w-10:y=H-h-10" in overlay_filter("bottom-right", 10, 1.0, None)
    graph = overlay_filter("top-left", 0, 0.5, 320)
    assert "scale=320:-1" in graph and "colorchannelmixer=aa=0.500" in graph and "x=0:y=0" in graph
    assert "x=(W-w)/2:y=(H-h)/2" in overlay_filter("center", 5, 1.0, None)
    for bad in (("middle", 0, 1.0), ("center", 0, 0.0), ("center", -1, 1.0)):
        with pytest.raises(ActionFailed):
            overlay_filter(*bad, None)


def test_mix_and_volume_filters():
    graph = mix_filter(2, [1.0, 0.5], "longest")
    assert "[1:a:0]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,volume=0.5[a1]" in graph
    assert graph.endswith("[a0][a1]amix=inputs=2:duration=longest:dropout_transition=0[a]")
    with pytest.raises(ActionFailed, match="one entry per key"):
        mix_filter(3, [1.0], "longest")
    with pytest.raises(ActionFailed, match="duration must be"):
        mix_filter(2, None, "forever")
    assert volume_filter(-6.0, None) == "volume=-6dB"
    assert volume_filter(None, 0.5) == "volume=0.5"
    with pytest.raises(ActionFailed):
        volume_filter(None, None)
    with pytest.raises(ActionFailed):
        volume_filter(3.0, 2.0)


LOUDNORM_STDERR = "[Parsed_loudnorm_0 @ 0x55d] \n" + """{
	"input_i" : "-27.61",
	"input_tp" : "-24.59",
	"input_lra" : "0.00",
	"input_thresh" : "-37.61",
	"output_i" : "-16.38",
	"output_tp" : "-13.35",
	"output_lra" : "0.00",
	"output_thresh" : "-26.38",
	"normalization_type" : "dynamic",
	"target_offset" : "0.38"
}
"""


def test_loudnorm_two_pass_parsing():
    measured = parse_loudnorm(LOUDNORM_STDERR)
    assert measured["input_i"] == "-27.61"
    second = loudnorm_second_pass(-16.0, -1.5, 11.0, measured)
    assert second.startswith("loudnorm=I=-16:TP=-1.5:LRA=11:measured_I=-27.61:measured_TP=-24.59")
    assert "measured_thresh=-37.61:offset=0.38:linear=true" in second
    silent = dict(measured, input_i="-inf")
    with pytest.raises(ActionFailed, match="silent"):
        loudnorm_second_pass(-16.0, -1.5, 11.0, silent)
    with pytest.raises(ActionFailed, match="no result"):
        parse_loudnorm("nothing here")


def test_silence_parsing_and_window():
    stderr = ("[silencedetect @ 0x1] silence_start: 0\n"
              "[silencedetect @ 0x1] silence_end: 1.0021 | silence_duration: 1.0021\n"
              "[silencedetect @ 0x1] silence_start: 2.9979\n")
    silences = parse_silences(stderr)
    assert silences == [(0.0, 1.0021), (2.9979, None)]
    assert sound_window(silences, 4.5) == (1.0021, 2.9979)
    assert sound_window([], 4.5) == (0.0, 4.5)
    with pytest.raises(ActionFailed, match="all silence"):
        sound_window([(0.0, None)], 2.0)


def test_picture_filters():
    assert gif_filter(10, 320).startswith("[0:v:0]fps=10,scale=320:-1:flags=lanczos,split[a][b];")
    assert "showwavespic=s=800x200:colors=0x3b82f6" in waveform_filter(800, 200, "#3b82f6")
    for color in ("red:x=1", "#12345", "blue,scale=1", "'a'"):
        with pytest.raises(ActionFailed, match="color"):
            waveform_filter(800, 200, color)
    assert thumbnails_interval(10.0, 4, None) == (2.5, 4)
    assert thumbnails_interval(10.0, None, 3.0) == (3.0, 4)
    with pytest.raises(ActionFailed, match="at most"):
        thumbnails_interval(10000.0, None, 0.5)


# --- progress, probe parsing, errors, timeouts ---------------------------------------------------


def test_progress_parser_reports_fraction_of_duration():
    parser = ProgressParser(duration_s=10.0)
    assert parser.feed("frame=10") is None
    assert parser.feed("out_time_us=2500000") == pytest.approx(0.25)
    assert parser.feed("out_time_ms=2500000") is None  # same position: nothing new
    assert parser.feed("out_time_us=N/A") is None
    assert parser.feed("out_time_us=99000000") == 1.0
    assert parser.feed("progress=end") is None and parser.done


def test_progress_parser_scaled_for_second_pass_and_unknown_duration():
    parser = ProgressParser(duration_s=4.0, offset=0.5, scale=0.5)
    assert parser.feed("out_time_us=2000000") == pytest.approx(0.75)
    unknown = ProgressParser(duration_s=None)
    assert unknown.feed("out_time_us=2000000") is None
    assert unknown.feed("progress=end") == 1.0


def test_parse_probe():
    data = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "4.010000", "bit_rate": "1234567"},
        "streams": [
            {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720,
             "avg_frame_rate": "30000/1001"},
            {"codec_type": "audio", "codec_name": "aac"},
        ],
    }
    info = parse_probe(data)
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (1280, 720, "h264", "aac")
    assert info.fps == 29.97 and info.duration_s == 4.01 and info.bitrate == 1234567 and not info.is_image
    image = parse_probe({"format": {"format_name": "png_pipe"},
                         "streams": [{"codec_type": "video", "codec_name": "png", "width": 10, "height": 5}]})
    assert image.is_image and image.duration_s is None and image.fps is None


@pytest.mark.parametrize("stderr, expected", [
    ("/tmp/x/input1.mp4: Invalid data found when processing input", "not a media file"),
    ("Unknown encoder 'libfoo'", "unsupported codec"),
    ("av_interleaved_write_frame(): No space left on device", "disk full"),
    ("Unable to find a suitable output format for '/w/out.zzz'", "unsupported output format"),
    ("Stream map '0:a:0' matches no streams.", "no stream"),
])
def test_explain_failure(stderr, expected):
    assert expected in explain_failure(stderr, 1)


def test_explain_failure_hides_local_paths():
    message = explain_failure("Error opening /tmp/work/ffmpeg-1/output.mp4 something odd", 1, ["/tmp/work/"])
    assert "/tmp/work" not in message and message.startswith("ffmpeg failed:")


def test_auto_timeout():
    assert auto_timeout_s(None) == 1800.0
    assert auto_timeout_s(3.0) == 300.0
    assert auto_timeout_s(600.0, passes=2) == 24000.0
