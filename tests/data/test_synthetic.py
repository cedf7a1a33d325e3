import json

import numpy as np
import pytest

from actionrec.data.datasets import parse_list, read_label_map
from actionrec.data.synthetic import CLASSES, PAIRS, SynthSpec, generate, render_video
from actionrec.data.video import VideoReader
from actionrec.errors import ActionrecError


def test_layout_and_lists(synth_small):
    names = read_label_map(synth_small / "labels.txt")
    assert names == list(CLASSES) and len(names) == 2 * len(PAIRS)
    train = parse_list(synth_small / "train.txt", num_classes=len(names))
    val = parse_list(synth_small / "val.txt", num_classes=len(names))
    assert len(train) + len(val) == 40 and {e.label for e in val} == set(range(10))
    test = parse_list(synth_small / "test.txt", num_classes=len(names))
    assert len(test) == 10 and {e.label for e in test} == set(range(10))
    assert not {e.path for e in test} & {e.path for e in train + val}  # unseen videos
    info = VideoReader(synth_small / train[0].path).info
    assert (info.num_frames, info.width, info.height, info.codec) == (16, 32, 32, "h264")
    meta = json.loads((synth_small / "synth.json").read_text())
    assert meta["reversal_pairs"][0] == [0, 1] and meta["seed"] == 3


def test_the_test_split_leaves_train_and_val_as_they_were(tmp_path, synth_small):
    """Video k of a class depends on (seed, class, k) alone: whatever the size of the test split,
    the train and val lists, and their videos, are the same."""
    plain = tmp_path / "plain"
    generate(plain, SynthSpec(videos=40, frames=16, size=32, seed=3, test_fraction=0.5), workers=1)
    for split in ("train", "val"):
        assert (plain / f"{split}.txt").read_text() == (synth_small / f"{split}.txt").read_text()
    assert len((plain / "test.txt").read_text().splitlines()) == 20


def test_deterministic_for_a_seed(tmp_path, synth_small):
    again = tmp_path / "again"
    generate(again, SynthSpec(videos=40, frames=16, size=32, seed=3), workers=2)
    assert (again / "train.txt").read_text() == (synth_small / "train.txt").read_text()
    path = "videos/rotate_ccw/0000.mp4"
    a = VideoReader(synth_small / path).read(range(16))
    np.testing.assert_array_equal(a, VideoReader(again / path).read(range(16)))
    other = generate(tmp_path / "other", SynthSpec(videos=20, frames=16, size=32, seed=4), workers=1)
    assert other["seed"] == 4
    b = VideoReader(tmp_path / "other" / path).read(range(16))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("pair", range(len(PAIRS)))
def test_second_class_is_the_time_reversal_of_the_first(pair):
    """Same seed -> same scene for both classes; the backward class at start phase p equals the
    forward class started at p - advance, played backwards. With the start phase uniform, the two
    classes are therefore exact time reversals of each other in distribution."""
    frames, advance, p = 12, 0.35, 0.8
    backward = render_video(2 * pair + 1, np.random.default_rng(9), frames=frames, size=32,
                            phi0=p, advance=advance)
    forward = render_video(2 * pair, np.random.default_rng(9), frames=frames, size=32,
                           phi0=(p - advance) % 1.0, advance=advance)
    diff = np.abs(backward.astype(int) - forward[::-1].astype(int))
    assert diff.max() <= 1  # float rounding of the phase only
    assert np.abs(forward[-1].astype(int) - forward[0]).max() > 20  # and something does change


def test_frames_are_not_static_and_classes_differ():
    a = render_video(0, np.random.default_rng(1), frames=8, size=32)
    b = render_video(2, np.random.default_rng(1), frames=8, size=32)
    assert not np.array_equal(a[0], a[-1]) and not np.array_equal(a, b)


def test_spec_validation():
    """The library names the spec's fields; the CLI (tests/test_cli_data.py) its flags."""
    with pytest.raises(ActionrecError, match="^size must be even"):
        SynthSpec(size=33).validate()
    with pytest.raises(ActionrecError, match="^videos must be >= 20"):
        SynthSpec(videos=10).validate()


@pytest.mark.parametrize("text", ['{"reversal_pairs": [[0, 1], [2]]}', '[1, 2]', '{"reversal_pairs": 3}',
                                  '{"reversal_pairs": ' * 100 + "1" + "}" * 100, "\xff"])
def test_a_damaged_synth_json_is_one_line_naming_it(tmp_path, text):
    from actionrec.config import Config
    from actionrec.data.build import reversal_pairs

    (tmp_path / "synth.json").write_text(text, encoding="latin-1")
    cfg = Config()
    cfg.data.root = str(tmp_path)
    with pytest.raises(ActionrecError, match=f"^{tmp_path / 'synth.json'}"):
        reversal_pairs(cfg)
