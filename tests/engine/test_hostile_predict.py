"""``predict``'s numbers from outside: every numeric flag is refused in one line naming it when it is
not a finite number in its range, and the library functions behind it (which the server calls
too) refuse the same values with the same ranges."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actionrec.cli import build_parser
from actionrec.engine.inference import predict_timelines
from actionrec.engine.stream import causal_smooth, live_windows
from actionrec.engine.timeline_report import window_row, write_timeline
from actionrec.engine.windows import Timeline, Window, slide, smooth, top
from actionrec.validate import InvalidInput
from tests.conftest import run

VIDEO = "clip.mp4"
CKPT = "missing.safetensors"
NAMES = [f"class{i}" for i in range(10)]

BAD_FLAGS = [
    ("--topk", "-1", "an integer in [1, 10000]"),
    ("--topk", "0", "an integer in [1, 10000]"),
    ("--topk", "2.5", "an integer in [1, 10000]"),
    ("--window", "0", "a number in (0, 86400]"),
    ("--window", "inf", "a number in (0, 86400]"),
    ("--window", "nan", "a number in (0, 86400]"),
    ("--window", "86401", "a number in (0, 86400]"),
    ("--stride", "-1", "a number in (0, 86400]"),
    ("--stride", "nan", "a number in (0, 86400]"),
    ("--smooth", "0", "an integer in [1, 10000]"),
    ("--idle-timeout", "inf", "a number in [0.001, 86400]"),
    ("--idle-timeout", "nan", "a number in [0.001, 86400]"),
    ("--idle-timeout", "0", "a number in [0.001, 86400]"),
    ("--reconnect", "-1", "an integer in [0, 100]"),
]


@pytest.mark.parametrize("mode", [[VIDEO], ["--stream", "http://127.0.0.1:9/live.ts"]],
                         ids=["file", "stream"])
@pytest.mark.parametrize("flag,value,expected", BAD_FLAGS,
                         ids=[f"{f}={v}" for f, v, _ in BAD_FLAGS])
def test_a_bad_number_is_one_line_naming_the_flag(flag, value, expected, mode, capsys):
    with pytest.raises(SystemExit) as exit:
        run(capsys, "predict", *mode, "--checkpoint", CKPT, flag, value)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and "Traceback" not in err
    line = err.splitlines()[-1]
    assert line.startswith(f"actionrec predict: error: argument {flag}: ") and value in line
    assert line.endswith(f" is not allowed; expected {expected}")


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 86400.0,
                                                                          86400.5, 1e-9]))
def test_window_flags_accept_exactly_the_finite_seconds_in_range(value):
    parser, ok = build_parser(), math.isfinite(value) and 0 < value <= 86400
    for flag in ("--window", "--stride"):
        argv = ["predict", VIDEO, "--checkpoint", CKPT, flag, repr(value)]
        if ok:
            assert getattr(parser.parse_args(argv), flag[2:]) == value
        else:
            with pytest.raises(SystemExit):
                parser.parse_args(argv)


@pytest.mark.parametrize("value", [0, -1.0, math.inf, math.nan, 1e6])
def test_the_library_refuses_a_bad_window_or_stride(value, trained_tsn, shared_data, tmp_path):
    from actionrec.engine.recognizer import load

    clip = shared_data / "videos/mmaction2/tests_data_rawvideo_dataset_part_0.mp4"
    recognizer = load(trained_tsn, device="cpu")
    cfg, model = recognizer.config, recognizer.model
    for kwargs, name in (({"window": value}, "window"), ({"stride": value}, "stride")):
        with pytest.raises(InvalidInput, match=f"^{name} \\(seconds\\): "):
            slide(model, cfg, str(clip), progress=False, **kwargs)
        with pytest.raises(InvalidInput, match=f"^{name} \\(seconds\\): "):
            next(predict_timelines(tmp_path / "not loaded.safetensors", [str(clip)],
                                   out_dir=tmp_path, **kwargs))
        with pytest.raises(InvalidInput, match=f"^{name} \\(seconds\\): "):
            next(live_windows(model, cfg, "http://127.0.0.1:9/live.ts", **kwargs))


@pytest.mark.parametrize("kwargs,where", [({"reconnect": -1}, "reconnect"),
                                          ({"reconnect": 2.5}, "reconnect"),
                                          ({"idle_timeout": math.inf}, "idle timeout"),
                                          ({"idle_timeout": math.nan}, "idle timeout")])
def test_live_windows_refuse_bad_reconnects_and_timeouts_before_opening(kwargs, where):
    with pytest.raises(InvalidInput, match=f"^{where}"):
        next(live_windows(None, None, "http://127.0.0.1:9/live.ts", **kwargs))


def test_topk_is_at_least_one_and_clipped_to_the_classes(tmp_path):
    probs = np.linspace(0.0, 1.0, len(NAMES))
    for k in (0, -1, 1.5, True):
        with pytest.raises(InvalidInput, match="^topk: "):
            top(probs, NAMES, k)
    assert [name for name, _ in top(probs, NAMES, 50)] == NAMES[::-1]
    w = Window(0.0, 1.0, probs)
    assert len(window_row(w, NAMES, 10_000)["top"]) == len(NAMES)
    timeline = Timeline("v.mp4", 25.0, 1.0, 1.0, windows=[w])
    report = write_timeline(timeline, NAMES, 10_000, tmp_path / "v.timeline")
    header = (tmp_path / "v.timeline.csv").read_text().splitlines()[0].split(",")
    assert len(header) == 2 + 2 * len(NAMES) + 1 and len(report["video_top"]) == len(NAMES)


def test_smoothing_is_at_least_one_window():
    for k in (0, -3, math.nan):
        with pytest.raises(InvalidInput, match="^smoothing: "):
            smooth([], k)
        with pytest.raises(InvalidInput, match="^smoothing: "):
            next(causal_smooth(iter([]), k))


def test_predict_videos_refuses_a_topk_below_one_naming_no_flag():
    from actionrec.engine.inference import predict_videos

    with pytest.raises(InvalidInput, match=r"^topk: 0 is not allowed; expected an integer"):
        predict_videos("missing.safetensors", ["missing.mp4"], topk=0)


def test_a_stream_of_frames_over_the_pixel_bound_is_one_line(trained_tsn, tmp_path, capsys):
    """A live source is held to ``MAX_PIXELS`` as files are: refused from its header."""
    from PIL import Image

    Image.new("RGB", (9000, 9000), (0, 90, 200)).save(tmp_path / "huge.png")
    code, _, err = run(capsys, "predict", "--checkpoint", trained_tsn, "--stream",
                       tmp_path / "huge.png", "--idle-timeout", "1")
    line = [x for x in err.splitlines() if x.startswith("actionrec")]
    assert code == 2 and "Traceback" not in err
    assert line == [f"actionrec: error: {tmp_path / 'huge.png'}: frames of 9000x9000 pixels; "
                    f"expected at most 67108864 pixels per frame"]
