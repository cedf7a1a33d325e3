"""The papers' input protocols, shown by the boxes a transform crops and the indices a sampler
picks: training crops per paper, STM's three test crops, GST's five, STM's randomly placed test
clips, StNet's evenly sampled feature sequences (issue 16's protocol defects 1-3 and 5)."""

import numpy as np
import torch
import torch.nn.functional as F

from actionrec.config import read_config
from actionrec.data.build import build_sampler, build_transform
from actionrec.data.datasets import ListEntry
from actionrec.data.features import FeatureDataset
from actionrec.data.sampling import DenseSampler, SegmentSampler
from actionrec.data.transforms import (
    FiveCrop,
    MultiScaleCrop,
    RandomCrop,
    RandomResizedCrop,
    ThreeCrop,
    train_transforms,
)


def coordinates(h, w, t=2):
    """A clip whose pixel (y, x) holds y in channel 0 and x in channel 1 (h, w <= 256)."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    frame = np.stack([yy, xx, np.zeros_like(yy)], 0).astype(np.uint8)
    return torch.from_numpy(np.repeat(frame[None], t, 0))


def box_of(crop):
    """(top, left, height, width) of an unresized crop of a coordinates() clip."""
    return int(crop[0, 0, 0, 0]), int(crop[0, 1, 0, 0]), crop.shape[-2], crop.shape[-1]


def test_random_crop_is_a_plain_crop_anywhere():
    """GST Sec. 4.2 / MSTI-Net Sec. 4.1: short side 256, a random 224 crop (here 128 and 112)."""
    pipe = train_transforms(112, short_side=128, crop="random", flip=False)
    assert [type(t).__name__ for t in pipe.transforms] == ["ResizeShortSide", "RandomCrop",
                                                           "Normalize"]
    clip = coordinates(128, 170)
    boxes = set()
    for seed in range(300):
        out = clip
        for t in pipe.transforms[:-1]:  # everything but Normalize
            out, _ = t(out, 0, np.random.default_rng(seed))
        top, left, h, w = box_of(out)
        assert (h, w) == (112, 112) and 0 <= top <= 16 and 0 <= left <= 58
        assert torch.equal(out[0, 1, 0], torch.arange(left, left + 112, dtype=torch.uint8))
        boxes.add((top, left))
    assert len({left for _, left in boxes}) > 40  # anywhere, not on a grid of fixed offsets


def test_multiscale_with_scale_one_is_not_a_random_crop():
    """The old MSTI recipe (multiscale, scales [1.0]): always the whole short side, at one of the
    13 fixed offsets, then resized: what data.crop=random replaces."""
    crop = MultiScaleCrop(112, scales=[1.0])
    boxes = {crop._crop_box(128, 170, np.random.default_rng(s)) for s in range(300)}
    assert {(h, w) for _, _, h, w in boxes} == {(128, 128)}
    assert {left for _, left, _, _ in boxes} <= {0, 10, 20, 30, 40}  # multiples of (170-128)//4


def test_random_resized_crop_boxes():
    crop = RandomResizedCrop(64)
    boxes = [crop._crop_box(128, 170, np.random.default_rng(s)) for s in range(200)]
    areas = [h * w / (128 * 170) for _, _, h, w in boxes]
    assert min(areas) < 0.2 and max(areas) > 0.8  # the Inception range, 0.08-1
    assert all(0 <= t and t + h <= 128 and 0 <= x and x + w <= 170 for t, x, h, w in boxes)
    out, _ = crop(coordinates(128, 170), 0, np.random.default_rng(0))
    assert out.shape[-2:] == (64, 64)


def test_config_chooses_the_training_crop():
    for crop, kind in (("multiscale", MultiScaleCrop), ("random", RandomCrop),
                       ("random_resized", RandomResizedCrop)):
        cfg = read_config(None, [f"data.crop={crop}"])
        assert isinstance(build_transform(cfg, train=True).transforms[1], kind)


def test_three_crops_are_squares_of_a_256_short_side_resized_to_224():
    """STM Sec. 4.2: "scale the shorter side to 256 ... three crops of 256x256 ... resize them to
    224x224", whatever the training short side."""
    cfg = read_config(None, ["data.short_side=320", "test.short_side=256", "test.crops=3"])
    pipe = build_transform(cfg, train=False, crops=3)
    assert pipe.transforms[0].size == 256 and isinstance(pipe.transforms[1], ThreeCrop)
    clip = torch.randint(0, 256, (2, 3, 256, 340), dtype=torch.uint8)
    out, _ = pipe.transforms[1](clip, 0, None)
    assert out.shape == (3, 2, 3, 224, 224)
    for view, left in zip(out, (0, 42, 84), strict=True):
        square = clip[..., :, left : left + 256].float()
        expected = F.interpolate(square, size=(224, 224), mode="bilinear", antialias=True,
                                 align_corners=False)
        assert (view.float() - expected).abs().max() < 1.5  # uint8 rounding; a shifted box: ~200
    # without test.short_side the test follows the training short side (the old coupling)
    assert build_transform(read_config(None, ["data.short_side=320"]), train=False,
                           crops=3).transforms[0].size == 320


def test_five_crops_are_corners_and_centre():
    clip = coordinates(128, 170)
    out, _ = FiveCrop(112)(clip, 0, None)
    assert [box_of(v) for v in out] == [(0, 0, 112, 112), (0, 58, 112, 112), (16, 0, 112, 112),
                                        (16, 58, 112, 112), (8, 29, 112, 112)]
    cfg = read_config(None, ["test.crops=5"])
    assert isinstance(build_transform(cfg, train=False, crops=5).transforms[1], FiveCrop)


def test_random_test_clips():
    """STM Sec. 4.2 samples its 10 test clips at random: one frame per segment still, positions
    reproducible per sample seed; even spacing stays the default."""
    even = SegmentSampler(8, num_clips=10)(300, train=False)
    sampler = SegmentSampler(8, num_clips=10, test_offsets="random")
    a = sampler(300, train=False, rng=np.random.default_rng(1))
    assert a.shape == (10, 8) and not np.array_equal(a, even)
    seg = 300 / 8
    assert ((a >= np.floor(np.arange(8) * seg)) & (a < (np.arange(8) + 1) * seg)).all()
    assert np.array_equal(a, sampler(300, train=False, rng=np.random.default_rng(1)))
    assert not np.array_equal(a, sampler(300, train=False, rng=np.random.default_rng(2)))
    dense = DenseSampler(16, num_clips=10, test_offsets="random")(300, train=False,
                                                                  rng=np.random.default_rng(0))
    starts = dense[:, 0]
    assert len(set(starts.tolist())) > 5 and (starts <= 300 - 16).all()
    assert (np.diff(dense, axis=1) == 1).all()
    cfg = read_config(None, ["test.clip_offsets=random"])
    assert build_sampler(cfg, num_clips=10).test_offsets == "random"
    assert build_sampler(read_config(None, []), num_clips=10).test_offsets == "even"


def test_feature_sequences_sampled_evenly_in_training(tmp_path):
    """StNet Sec. 4.2 (Table 1): "features of 25 frames are evenly sampled from the whole feature
    sequence to train and test all the models"."""
    np.save(tmp_path / "a.npy", np.arange(100, dtype=np.float32)[:, None].repeat(4, 1))
    ds = FeatureDataset([ListEntry("a.npy", 0, 100)], tmp_path, SegmentSampler(25), train=True)
    rows = [ds[(epoch, 0)]["clip"][:, 0].long().tolist() for epoch in range(3)]
    assert rows[0] == rows[1] == rows[2] == [4 * i + 2 for i in range(25)]  # segment centres
