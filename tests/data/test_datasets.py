import logging
import shutil

import numpy as np
import pytest
import torch

from actionrec.data.datasets import (
    BadSampleLog,
    ClipDataset,
    EpochSampler,
    make_loader,
    parse_list,
    read_label_map,
)
from actionrec.data.sampling import SegmentSampler
from actionrec.data.transforms import eval_transforms, train_transforms
from actionrec.errors import ListFormatError, NoReadableVideo


def write(path, text):
    path.write_text(text)
    return path


def test_parse_video_and_rawframe_lists(tmp_path):
    videos = parse_list(write(tmp_path / "v.txt", "# comment\na/b c.mp4 3\n\nx.mp4\t0\n"))
    assert [(e.path, e.label, e.line) for e in videos] == [("a/b c.mp4", 3, 2), ("x.mp4", 0, 4)]
    frames = parse_list(write(tmp_path / "f.txt", "imgs 5 127\n"), kind="rawframes")
    assert (frames[0].path, frames[0].num_frames, frames[0].label) == ("imgs", 5, 127)


@pytest.mark.parametrize("text,kind,message", [
    ("a.mp4\n", "video", r"l.txt:1: wrong number of fields: 'a.mp4'; expected '<video path> <label>'"),
    ("ok.mp4 1\nb.mp4 x\n", "video", r"l.txt:2: non-integer field: 'b.mp4 x'"),
    ("a.mp4 10\n", "video", r"l.txt:1: label 10 outside the label map \[0, 10\)"),
    ("imgs 0 1\n", "rawframes", r"frame count 0 must be positive.*<frame dir> <num_frames> <label>"),
    ("# only a comment\n\n", "video", r"l.txt: list has no entries"),
])
def test_malformed_lists_name_file_line_and_format(tmp_path, text, kind, message):
    with pytest.raises(ListFormatError, match=message):
        parse_list(write(tmp_path / "l.txt", text), kind=kind, num_classes=10)


def test_label_maps(tmp_path, shared_data):
    hmdb = read_label_map(shared_data / "labels/hmdb51/class_list.txt")  # trailing spaces, no \n
    assert len(hmdb) == 51 and all(n == n.strip() for n in hmdb)
    assert len(read_label_map(shared_data / "labels/kinetics/label_map_k400.txt")) == 400
    with pytest.raises(ListFormatError, match=r"m.txt:2: blank line inside a label map"):
        read_label_map(write(tmp_path / "m.txt", "a\n\nb\n"))
    with pytest.raises(FileNotFoundError, match="nope.txt: label map not found"):
        read_label_map(tmp_path / "nope.txt")


def make_dataset(root, entries, train=True, **kw):
    transform = train_transforms(24, short_side=28) if train else eval_transforms(24, crops=3)
    sampler = SegmentSampler(4, num_clips=1 if train else 2)
    return ClipDataset(entries, root, sampler, transform, train=train, **kw)


def test_clip_shapes_train_and_multiview(synth_small):
    entries = parse_list(synth_small / "train.txt")
    train = make_dataset(synth_small, entries)
    sample = train[0]
    assert sample["clip"].shape == (4, 3, 24, 24) and sample["label"] == entries[0].label
    test = make_dataset(synth_small, entries, train=False)
    assert test[0]["clip"].shape == (6, 4, 3, 24, 24)  # 2 clips x 3 crops


def test_samples_reproducible_and_independent_of_workers(synth_small):
    ds = make_dataset(synth_small, parse_list(synth_small / "train.txt"))
    torch.testing.assert_close(ds[(1, 5)]["clip"], ds[(1, 5)]["clip"])
    assert not torch.equal(ds[(1, 5)]["clip"], ds[(2, 5)]["clip"])  # new epoch, new draw
    batches = {}
    for workers in (0, 2):
        loader = make_loader(ds, batch_size=4, shuffle=True, num_workers=workers, seed=1)
        loader.sampler.set_epoch(3)
        batches[workers] = [b["clip"] for b in loader]
    for a, b in zip(batches[0], batches[2], strict=True):
        torch.testing.assert_close(a, b)


def test_bad_videos_are_logged_once_counted_and_replaced(synth_small, tmp_path, caplog):
    root = tmp_path / "root"
    shutil.copytree(synth_small / "videos", root / "videos")
    (root / "videos/empty.mp4").write_bytes(b"")
    good = parse_list(synth_small / "train.txt")[:6]
    lst = write(tmp_path / "l.txt", "".join(f"{e.path} {e.label}\n" for e in good)
                + "videos/missing.mp4 0\nvideos/empty.mp4 1\n")
    ds = make_dataset(root, parse_list(lst))
    loader = make_loader(ds, batch_size=4, shuffle=False, num_workers=2)
    log = BadSampleLog(logging.getLogger("test"))
    with caplog.at_level(logging.WARNING, logger="test"):
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)
            seen = 0
            for batch in loader:
                log.update(batch["bad"])
                seen += len(batch["clip"])
                assert set(batch["index"].tolist()) <= set(range(6))  # only readable entries used
            assert seen == 8  # every slot filled by a replacement
            assert log.end_epoch() >= 2
    messages = [r.getMessage() for r in caplog.records]
    assert sum("missing.mp4: file not found" in m for m in messages) == 1
    assert sum("empty.mp4: empty file" in m for m in messages) == 1
    assert sum("unreadable samples replaced or skipped this epoch" in m for m in messages) == 2


def test_evaluation_skips_bad_videos(synth_small, tmp_path):
    lst = write(tmp_path / "l.txt", "videos/grow/0000.mp4 4\nvideos/gone.mp4 1\n")
    ds = make_dataset(synth_small, parse_list(lst), train=False, on_error="skip")
    batch = next(iter(make_loader(ds, batch_size=2, shuffle=False, num_workers=0)))
    assert batch["clip"].shape[0] == 1 and batch["label"].tolist() == [4]
    assert "gone.mp4: file not found" in batch["bad"][0][1]


def test_missing_root_and_all_bad(tmp_path, synth_small):
    entries = parse_list(write(tmp_path / "l.txt", "gone.mp4 0\n"))
    with pytest.raises(FileNotFoundError, match="nowhere: data root not found"):
        make_dataset(tmp_path / "nowhere", entries)
    with pytest.raises(NoReadableVideo, match="unreadable entries in a row.*actionrec data check"):
        make_dataset(tmp_path, entries)[0]


def test_rawframes_dataset(shared_data, tmp_path):
    lst = write(tmp_path / "l.txt", "mmaction2 10 2\n")
    ds = ClipDataset(parse_list(lst, kind="rawframes"), shared_data / "rawframes",
                     SegmentSampler(3), eval_transforms(112), train=False, kind="rawframes")
    sample = ds[0]
    assert sample["clip"].shape == (1, 3, 3, 112, 112) and sample["label"] == 2


def test_epoch_sampler_shards_and_shuffles():
    # evaluation: a partition of the list, no entry twice, the tail on the first ranks
    shards = [[i for _, i in EpochSampler(10, shuffle=False, num_replicas=3, rank=r)]
              for r in range(3)]
    assert [len(s) for s in shards] == [4, 3, 3]
    assert sorted(i for s in shards for i in s) == list(range(10))
    # training: equal shares, interleaved so that batches of 2 per rank make one process's
    # batches of 6, and the tail that does not share evenly dropped
    order = [i for _, i in EpochSampler(10, shuffle=True, seed=0)]
    shards = [[i for _, i in EpochSampler(10, shuffle=True, seed=0, num_replicas=3, rank=r,
                                          drop_tail=True)] for r in range(3)]
    assert all(len(s) == 3 for s in shards)
    assert [s[k] for k in range(3) for s in shards] == order[:9]
    a = [i for _, i in EpochSampler(10, shuffle=True, seed=0)]
    sampler = EpochSampler(10, shuffle=True, seed=0)
    sampler.set_epoch(1)
    b = [i for _, i in sampler]
    assert sorted(a) == sorted(b) == list(range(10)) and a != b
    assert np.all([e == 1 for e, _ in sampler])
