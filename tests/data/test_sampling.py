import numpy as np
import pytest

from actionrec.data.sampling import DenseSampler, SegmentSampler, SnippetSampler


def rng(seed=0):
    return np.random.default_rng(seed)


def test_segment_train_one_random_frame_per_segment():
    s = SegmentSampler(8)
    for seed in range(20):
        idx = s(80, train=True, rng=rng(seed))
        assert idx.shape == (1, 8)
        segment = idx[0] // 10
        np.testing.assert_array_equal(segment, np.arange(8))  # one frame in each 10-frame segment
    draws = np.stack([s(80, train=True, rng=rng(seed))[0] for seed in range(200)])
    assert len(np.unique(draws[:, 0])) == 10  # every frame of the first segment gets drawn


def test_segment_test_centres_and_multi_clip():
    np.testing.assert_array_equal(SegmentSampler(4)(40, train=False), [[5, 15, 25, 35]])
    idx = SegmentSampler(4, num_clips=2)(40, train=False)
    np.testing.assert_array_equal(idx, [[2, 12, 22, 32], [7, 17, 27, 37]])


@pytest.mark.parametrize("n", [1, 3, 7])
def test_short_videos_repeat_frames_evenly(n):
    idx = SegmentSampler(8)(n, train=False)[0]
    assert idx.min() >= 0 and idx.max() < n
    assert np.all(np.diff(idx) >= 0)  # time order kept
    assert len(np.unique(idx)) == n  # every frame used, repeated evenly
    train = SegmentSampler(8)(n, train=True, rng=rng())[0]
    assert train.max() < n and np.all(np.diff(train) >= 0)


def test_snippets_are_consecutive_inside_their_segment():
    s = SnippetSampler(num_segments=7, snippet_len=5)
    for seed in range(20):
        idx = s(140, train=True, rng=rng(seed)).reshape(7, 5)
        np.testing.assert_array_equal(np.diff(idx, axis=1), 1)
        assert np.all(idx[:, 0] // 20 == np.arange(7)) and np.all(idx[:, -1] // 20 == np.arange(7))
    test = s(140, train=False).reshape(7, 5)
    np.testing.assert_array_equal(test[:, 0], np.arange(7) * 20 + 7)  # centred: 7 + 5 + 8 = 20


def test_snippets_of_a_short_video_clamp_to_last_frame():
    idx = SnippetSampler(num_segments=3, snippet_len=5)(4, train=False)
    assert idx.shape == (1, 15) and idx.max() == 3 and idx.min() == 0


def test_dense_clips():
    s = DenseSampler(clip_len=16, stride=2)
    for seed in range(20):
        idx = s(100, train=True, rng=rng(seed))[0]
        np.testing.assert_array_equal(np.diff(idx), 2)
        assert 0 <= idx[0] and idx[-1] < 100
    np.testing.assert_array_equal(s(100, train=False)[0], np.arange(34, 66, 2))
    multi = DenseSampler(clip_len=16, stride=2, num_clips=10)(300, train=False)
    assert multi.shape == (10, 16)
    assert np.all(np.diff(multi[:, 0]) > 0) and multi[0, 0] == 0 and multi[-1, -1] < 300
    short = DenseSampler(clip_len=16, stride=2)(10, train=True, rng=rng())[0]
    assert short.max() == 9 and np.all(np.diff(short) >= 0)


def test_deterministic_given_seed_and_guards():
    s = SegmentSampler(8)
    np.testing.assert_array_equal(s(300, train=True, rng=rng(5)), s(300, train=True, rng=rng(5)))
    assert not np.array_equal(s(300, train=True, rng=rng(5)), s(300, train=True, rng=rng(6)))
    with pytest.raises(ValueError, match="0 frames"):
        s(0, train=False)
    with pytest.raises(ValueError, match="random generator"):
        s(10, train=True)
