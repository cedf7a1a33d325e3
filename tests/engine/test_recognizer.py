"""``actionrec.load`` and the Recognizer: one object that answers as the CLI's commands do, and
the package's public API."""

import subprocess
import sys

import numpy as np
import pytest

import actionrec
from actionrec.engine.inference import predict_videos
from actionrec.errors import CheckpointError, VideoError
from tests.conftest import tiny_config

VIDEO = "videos/move_right/0000.mp4"


@pytest.fixture(scope="module")
def recognizer(trained_tsn):
    return actionrec.load(trained_tsn, device="cpu")


def test_predict_answers_as_the_predict_command(recognizer, trained_tsn, synth_small):
    (expected,) = predict_videos(trained_tsn, [synth_small / VIDEO], device="cpu", topk=3)
    got = recognizer.predict(synth_small / VIDEO, topk=3)
    assert [c for c, _ in got] == [c for c, _ in expected.top]
    np.testing.assert_allclose([p for _, p in got], [p for _, p in expected.top], rtol=1e-6)
    scores = recognizer.scores(synth_small / VIDEO)
    assert scores.shape == (len(recognizer.classes),) and abs(scores.sum() - 1) < 1e-5


def test_input_features_and_timeline(recognizer, synth_small):
    spec = recognizer.input
    assert (spec.frames, spec.size, spec.sampler, spec.clips, spec.crops) == (4, 32, "segment",
                                                                             1, 1)
    assert recognizer.views(synth_small / VIDEO).shape == (1, 4, 3, 32, 32)
    features = recognizer.features(synth_small / VIDEO)
    assert features.shape == (4, 512) and features.abs().sum() > 0  # ResNet-18's width
    timeline = recognizer.timeline(synth_small / VIDEO, window=0.32, stride=0.16)
    assert len(timeline.windows) > 1 and all(w.probs is not None for w in timeline.windows)


def test_an_unreadable_video_is_a_video_error(recognizer, tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"not a video")
    with pytest.raises(VideoError, match=r"x\.mp4"):
        recognizer.predict(tmp_path / "x.mp4")


def test_a_config_is_checked_against_the_checkpoint(trained_tsn, synth_small, tmp_path):
    same = actionrec.load(trained_tsn, config=tiny_config(synth_small, tmp_path), device="cpu")
    assert same.classes == actionrec.load(trained_tsn, device="cpu").classes
    other = tiny_config(synth_small, tmp_path, "model.name=tsm")
    with pytest.raises(CheckpointError, match=r"does not match the config: model.name: 'tsn'"):
        actionrec.load(trained_tsn, config=other)


def test_the_public_api_is_documented_and_loads_no_torch_on_import():
    for name in actionrec.__all__:
        value = getattr(actionrec, name)
        if callable(value):  # a dict's __doc__ is dict's own: MODELS is checked by its content
            assert value.__doc__ and value.__doc__ is not type(value).__doc__, name
    assert {"tsn", "stm", "gst", "stnet", "msti"} <= set(actionrec.MODELS)
    code = "import sys, actionrec; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_features_and_single_views_take_the_centre_clip_whatever_the_test_views(
        trained_tsn, synth_small, tmp_path):
    cfg = tiny_config(synth_small, tmp_path, "test.clips=2", "test.crops=3")
    recognizer = actionrec.load(trained_tsn, config=cfg, device="cpu")
    assert recognizer.views(synth_small / VIDEO).shape[0] == 6
    centre = recognizer.views(synth_small / VIDEO, clips=1, crops=1)
    plain = actionrec.load(trained_tsn, device="cpu")  # its own config: 1 clip x 1 crop
    assert (centre == plain.views(synth_small / VIDEO)).all()
    assert (recognizer.features(synth_small / VIDEO) == plain.features(synth_small / VIDEO)).all()
