"""Datasets and loaders from a config: the one place that turns ``cfg.data`` into batches."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import Config
from ..errors import ActionrecError
from ..validate import InvalidInput, check_type, load_json, read_text
from .datasets import ClipDataset, ListEntry, make_loader, parse_list, read_label_map
from .features import FeatureDataset
from .sampling import DenseSampler, SegmentSampler, SnippetSampler
from .transforms import eval_transforms, mirror_label_swap, train_transforms
from .video import MAX_PIXELS


def resolve(cfg: Config, path: str, what: str) -> str:
    """A data path as given, or relative to ``data.root`` when it does not exist as given."""
    if not path:
        hint = (f" and {cfg.data.prepared} does not exist: run `actionrec data prepare` (or give "
                "{data_file})") if cfg.data.prepared else ""
        raise ActionrecError(f"data.{what} is not set{hint}",
                             {"data_file": "read_config(..., data_file=)"})
    if os.path.exists(path) or os.path.isabs(path) or not cfg.data.root:
        return path
    return os.path.join(cfg.data.root, path)


def class_names(cfg: Config) -> list[str]:
    return read_label_map(resolve(cfg, cfg.data.label_map, "label_map"))


def reversal_pairs(cfg: Config) -> list[tuple[int, int]] | None:
    """Time-reversal class pairs of the synthetic dataset (``synth.json`` in the data root)."""
    meta = Path(cfg.data.root or ".") / "synth.json"
    if not meta.is_file():
        return None
    values = load_json(read_text(meta), str(meta))
    where = f"{meta}: reversal_pairs"
    pairs = check_type(values.get("reversal_pairs") if isinstance(values, dict) else None,
                       list[list[int]], where)
    if any(len(p) != 2 for p in pairs):
        raise InvalidInput(f"{where}: expected a list of [class, class] pairs")
    return [tuple(p) for p in pairs]


def build_sampler(cfg: Config, *, num_clips: int = 1):
    """The configured sampler (training or test behaviour is chosen per call)."""
    t, d, offsets = cfg.model.num_frames, cfg.data, cfg.test.clip_offsets
    if d.sampler == "segment":
        return SegmentSampler(t, num_clips=num_clips, test_offsets=offsets)
    if d.sampler == "snippet":
        return SnippetSampler(t, d.snippet_len, num_clips=num_clips, test_offsets=offsets)
    return DenseSampler(t, d.stride, num_clips=num_clips, test_offsets=offsets)


def build_transform(cfg: Config, *, train: bool, crops: int = 1):
    d = cfg.data
    if train:
        swap = mirror_label_swap(class_names(cfg)) if d.mirror_swap else None
        return train_transforms(d.size, short_side=d.short_side, crop=d.crop, scales=d.scales,
                                flip=d.flip, label_swap=swap)
    return eval_transforms(d.size, short_side=test_short_side(cfg), crops=crops)


def train_short_side(cfg: Config) -> int:
    """The short side training frames are resized to: ``data.short_side``, else size * 8 / 7."""
    return cfg.data.short_side or round(cfg.data.size * 8 / 7)


def test_short_side(cfg: Config) -> int:
    """The short side test frames are resized to: ``test.short_side``, else the training one."""
    return cfg.test.short_side or train_short_side(cfg)


def build_dataset(cfg: Config, split: str, *, entries: list[ListEntry] | None = None,
                  clips: int = 1, crops: int = 1, max_pixels: int = MAX_PIXELS) -> ClipDataset:
    """``split``: train (random sampling and augmentation, bad videos replaced), val or test
    (``clips`` x ``crops`` views, bad videos skipped and reported). ``entries`` given directly
    (arbitrary files to predict or analyse, paths as they are) are decoded straight to the
    transform's short side unless ``data.decode_short_side`` says otherwise: HD videos then never
    go through full-size RGB conversion. A video of frames over ``max_pixels`` is a bad video."""
    train = split == "train"
    decode_short_side = cfg.data.decode_short_side
    if entries is None:
        list_file = {"train": cfg.data.train_list, "val": cfg.data.val_list,
                     "test": cfg.data.test_list or cfg.data.val_list}[split]
        kind = "rawframes" if cfg.data.kind == "features" else cfg.data.kind
        entries = parse_list(resolve(cfg, list_file, f"{split}_list"), kind=kind,
                             num_classes=len(class_names(cfg)))
        root = cfg.data.root or None
    else:
        root = None
        decode_short_side = decode_short_side or (train_short_side(cfg) if train
                                                  else test_short_side(cfg))
    if cfg.data.kind == "features":
        return FeatureDataset(entries, root, build_sampler(cfg, num_clips=clips),
                              train=train, seed=cfg.train.seed,
                              on_error="replace" if train else "skip")
    return ClipDataset(entries, root, build_sampler(cfg, num_clips=clips),
                       build_transform(cfg, train=train, crops=crops), train=train,
                       kind=cfg.data.kind, seed=cfg.train.seed,
                       on_error="replace" if train else "skip",
                       frame_template=cfg.data.frame_template,
                       decode_short_side=decode_short_side, max_pixels=max_pixels)


def build_test_loader(cfg: Config, *, num_replicas: int = 1, rank: int = 0):
    """The loader of ``data.test_list`` (or ``val_list``) with the ``test`` views (rank
    ``rank``'s share of ``num_replicas``)."""
    dataset = build_dataset(cfg, "test", clips=cfg.test.clips, crops=cfg.test.crops)
    return build_loader(cfg, dataset, batch_size=cfg.test.batch_size, shuffle=False,
                        num_replicas=num_replicas, rank=rank)


def build_loader(cfg: Config, dataset: ClipDataset, *, batch_size: int, shuffle: bool,
                 num_replicas: int = 1, rank: int = 0):
    return make_loader(dataset, batch_size=batch_size, shuffle=shuffle,
                       num_workers=cfg.data.workers, seed=cfg.train.seed, drop_last=shuffle,
                       num_replicas=num_replicas, rank=rank)
