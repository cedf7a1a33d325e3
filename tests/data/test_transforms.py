import numpy as np
import pytest
import torch

from actionrec.data.datasets import read_label_map
from actionrec.data.transforms import (
    CenterCrop,
    Flip,
    MultiScaleCrop,
    Normalize,
    ResizeShortSide,
    ThreeCrop,
    eval_transforms,
    from_frames,
    mirror_label_swap,
    train_transforms,
)


def clip_of(t=4, h=240, w=320, same=True, seed=0):
    g = np.random.default_rng(seed)
    frame = g.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frames = np.repeat(frame[None], t, 0) if same else g.integers(0, 256, (t, h, w, 3), np.uint8)
    return from_frames(frames)


def test_layout_and_resize():
    clip = clip_of()
    assert clip.shape == (4, 3, 240, 320) and clip.dtype == torch.uint8
    out, _ = ResizeShortSide(128)(clip, 0, None)
    assert out.shape == (4, 3, 128, 171) and out.dtype == torch.uint8


def test_one_crop_and_flip_decision_per_clip():
    clip = clip_of(t=6, same=True)
    pipe = train_transforms(112)
    for seed in range(10):
        out, _ = pipe(clip, 0, np.random.default_rng(seed))
        assert out.shape == (6, 3, 112, 112) and out.dtype == torch.float32
        for t in range(1, 6):  # identical frames stay identical: same crop, same flip
            torch.testing.assert_close(out[t], out[0])


def test_multiscale_crop_sizes_and_offsets():
    crop = MultiScaleCrop(224, more_fix_crop=False)
    seen = set()
    for seed in range(200):
        top, left, h, w = crop._crop_box(256, 340, np.random.default_rng(seed))
        assert (h, w) in {(a, b) for a in (256, 224, 192, 168) for b in (256, 224, 192, 168)}
        assert abs([256, 224, 192, 168].index(h) - [256, 224, 192, 168].index(w)) <= 1
        assert top in (0, (256 - h) // 4 * 2, (256 - h) // 4 * 4)
        seen.add((top == 0, left == 0))
    assert len(seen) == 4  # corners on both axes occur


def test_flip_swaps_mirror_labels():
    clip = clip_of(t=2)
    out, label = Flip(1.0, {3: 7})(clip, 3, np.random.default_rng(0))
    torch.testing.assert_close(out, clip.flip(-1))
    assert label == 7
    _, label = Flip(0.0, {3: 7})(clip, 3, np.random.default_rng(0))
    assert label == 3


def test_something_something_mirror_pairs(shared_data):
    names = read_label_map(shared_data / "labels/sthv2/label_map_mmaction2.txt")
    assert len(names) == 174
    swap = mirror_label_swap(names)
    a = names.index("Pushing something from left to right")
    b = names.index("Pushing something from right to left")
    assert swap[a] == b and swap[b] == a
    assert all(swap[swap[i]] == i for i in swap)  # an involution
    assert all("left" in names[i].lower() or "right" in names[i].lower() for i in swap)


def test_three_and_ten_crop():
    clip = clip_of(t=3, h=224, w=298)
    out, _ = ThreeCrop(224)(clip, 0, None)
    assert out.shape == (3, 3, 3, 224, 224)
    torch.testing.assert_close(out[0], clip[..., :, :224])
    torch.testing.assert_close(out[2], clip[..., :, -224:])
    ten, _ = eval_transforms(200, crops=10)(clip, 0, None)
    assert ten.shape == (10, 3, 3, 200, 200)
    torch.testing.assert_close(ten[5], ten[0].flip(-1))
    one, _ = eval_transforms(112, crops=1)(clip, 0, None)
    assert one.shape == (3, 3, 112, 112)
    with pytest.raises(ValueError, match="crops must be 1, 3, 5 or 10"):
        eval_transforms(112, crops=7)


def test_center_crop_and_normalize_values():
    clip = from_frames(np.full((1, 10, 12, 3), 255, np.uint8))
    out, _ = CenterCrop(8)(clip, 0, None)
    assert out.shape == (1, 3, 8, 8)
    norm, _ = Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))(out, 0, None)
    torch.testing.assert_close(norm[0, :, 0, 0], torch.tensor([1.0, 2.0, 1.0]))
    assert norm.is_contiguous()
