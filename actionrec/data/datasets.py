"""List-file datasets, bad-sample handling and the DataLoader set-up.

List files are the field's plain text formats, whitespace separated, ``#`` comments and blank
lines skipped; labels are 0-based class indices:

- videos:     ``<path> <label>``
- raw frames: ``<dir> <num_frames> <label>``

Paths are relative to a root folder (``root=None``: used as given). A label map file holds one
class name per line (line ``i`` is class ``i``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import ListFormatError, NoReadableVideo, VideoError
from .sampling import FrameSampler
from .transforms import from_frames
from .video import MAX_PIXELS, FrameFolderReader, VideoReader

log = logging.getLogger(__name__)

FORMATS = {"video": "<video path> <label>", "rawframes": "<frame dir> <num_frames> <label>"}


@dataclass(frozen=True)
class ListEntry:
    path: str
    label: int
    num_frames: int | None = None
    line: int = 0


def read_text(path: str | os.PathLike) -> str:
    """A list or label map's text: UTF-8 with or without a byte-order mark; anything else (UTF-16,
    Latin-1 bytes) is a ListFormatError naming the file and the first bad byte."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ListFormatError(f"{path}: not UTF-8 text (byte {e.start}: {data[e.start]:#04x}); "
                              "save it as UTF-8") from None
    if "\x00" in text:  # UTF-16 without a byte-order mark decodes, with a NUL in every ASCII char
        raise ListFormatError(f"{path}: holds NUL bytes (UTF-16?); save it as UTF-8")
    return text


def read_label_map(path: str | os.PathLike) -> list[str]:
    """Class names, one per line; surrounding whitespace is ignored, trailing blank lines too."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: label map not found")
    names = [line.strip() for line in read_text(path).splitlines()]
    while names and not names[-1]:
        names.pop()
    for i, name in enumerate(names):
        if not name:
            raise ListFormatError(f"{path}:{i + 1}: blank line inside a label map (one class per line)")
    if not names:
        raise ListFormatError(f"{path}: label map is empty")
    return names


def parse_list(path: str | os.PathLike, *, kind: str = "video",
               num_classes: int | None = None) -> list[ListEntry]:
    """Entries of a list file; raises ListFormatError naming file, line and expected format."""
    if kind not in FORMATS:
        raise ValueError(f"unknown list kind {kind!r}; expected one of {sorted(FORMATS)}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: list file not found")
    expected = FORMATS[kind]
    entries = []
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.rsplit(None, 1 if kind == "video" else 2)

        def bad(why: str, lineno=lineno, line=line) -> ListFormatError:
            return ListFormatError(f"{path}:{lineno}: {why}: {line!r}; expected '{expected}'")

        if len(fields) != (2 if kind == "video" else 3):
            raise bad("wrong number of fields")
        try:
            numbers = [int(x) for x in fields[1:]]
        except ValueError:
            raise bad("non-integer field") from None
        label = numbers[-1]
        if label < 0 or (num_classes is not None and label >= num_classes):
            limit = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise bad(f"label {label} outside the label map {limit}")
        frames = numbers[0] if kind == "rawframes" else None
        if frames is not None and frames < 1:
            raise bad(f"frame count {frames} must be positive")
        entries.append(ListEntry(fields[0], label, frames, lineno))
    if not entries:
        raise ListFormatError(f"{path}: list has no entries; expected lines '{expected}'")
    return entries


class ClipDataset(Dataset):
    """Clips of the videos (or frame folders) of a list file.

    ``dataset[i]`` (or ``dataset[(epoch, i)]``, what EpochSampler yields) returns a dict:
    ``clip`` float ``(T, C, H, W)`` when training, ``(V, T, C, H, W)`` for testing (V = temporal
    clips x crops); ``label``; ``index`` (the entry actually used); ``bad``: ``(path, reason)`` of
    every unreadable entry met on the way.

    Unreadable entries (missing, empty, truncated, undecodable) never crash the loop.
    ``on_error="replace"`` (training) substitutes another entry, chosen reproducibly;
    ``"skip"`` (evaluation) returns ``clip=None`` so the entry is left out of the metrics and
    reported; ``"raise"`` raises the VideoError.

    Randomness comes from ``numpy.random.default_rng([seed, epoch, index])``: a sample is the
    same whatever the number of workers or the order in which they run.
    """

    def __init__(self, entries: Sequence[ListEntry], root: str | os.PathLike | None,
                 sampler: FrameSampler, transform: Callable, *, train: bool,
                 kind: str = "video", seed: int = 0, on_error: str = "replace",
                 frame_template: str = "img_{:05d}.jpg", decode_short_side: int | None = None,
                 max_retries: int = 10, decoder_threads: int = 1,
                 max_pixels: int = MAX_PIXELS):
        if root is not None and not os.path.isdir(root):
            raise FileNotFoundError(f"{root}: data root not found")
        if on_error not in ("replace", "skip", "raise"):
            raise ValueError(f"on_error must be replace, skip or raise, got {on_error!r}")
        if not entries:
            raise ValueError("dataset has no entries")
        self.entries, self.sampler, self.transform = list(entries), sampler, transform
        self.root = None if root is None else str(root)
        self.train, self.kind, self.seed, self.on_error = train, kind, seed, on_error
        self.frame_template, self.decode_short_side = frame_template, decode_short_side
        self.max_retries, self.decoder_threads = max_retries, decoder_threads
        self.max_pixels = max_pixels
        self._num_frames: dict[int, int] = {}  # per process: container-less videos are costly

    def __len__(self) -> int:
        return len(self.entries)

    def path_of(self, index: int) -> str:
        path = self.entries[index].path
        return path if self.root is None else os.path.join(self.root, path)

    def _open(self, index: int):
        entry = self.entries[index]
        path = self.path_of(index)
        if self.kind == "rawframes":
            return FrameFolderReader(path, template=self.frame_template, num_frames=entry.num_frames)
        return VideoReader(path, threads=self.decoder_threads, max_pixels=self.max_pixels)

    def load(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        """Decode, sample and transform one entry; raises VideoError if it cannot be read."""
        with self._open(index) as reader:
            if index not in self._num_frames:
                self._num_frames[index] = reader.num_frames
            idx = self.sampler(self._num_frames[index], train=self.train, rng=rng)
            frames = reader.read(idx.reshape(-1), short_side=self.decode_short_side)
        clip = from_frames(frames).unflatten(0, idx.shape)  # (K, F, C, H, W)
        clip, label = self.transform(clip, self.entries[index].label, rng)
        if self.train:
            return clip.squeeze(0), label
        return clip.reshape(-1, *clip.shape[-4:]), label

    def __getitem__(self, key) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, epoch, index])
        bad = []
        for _ in range(self.max_retries + 1):
            try:
                clip, label = self.load(index, rng)
                return {"clip": clip, "label": label, "index": index, "bad": bad}
            except VideoError as e:
                if self.on_error == "raise":
                    raise
                bad.append((self.path_of(index), str(e)))
                if self.on_error == "skip":
                    return {"clip": None, "label": self.entries[index].label, "index": index,
                            "bad": bad}
                index = int(rng.integers(len(self)))
        raise NoReadableVideo(f"{len(bad)} unreadable entries in a row, the last: {bad[-1][1]}; "
                              "run `actionrec data check` on the list")


def collate(samples: list[dict]) -> dict:
    """Stack the readable samples; ``bad`` gathers every unreadable entry met in the batch."""
    good = [s for s in samples if s["clip"] is not None]
    return {
        "clip": torch.stack([s["clip"] for s in good]) if good else None,
        "label": torch.tensor([s["label"] for s in good], dtype=torch.long),
        "index": torch.tensor([s["index"] for s in good], dtype=torch.long),
        "bad": [b for s in samples for b in s["bad"]],
    }


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys so that ClipDataset seeds each sample by epoch even inside
    persistent workers; shuffles with ``(seed, epoch)``. With ``num_replicas`` ranks, rank r
    takes positions r, r + num_replicas, ... of the order, so no sample is seen twice in an
    epoch; ``drop_tail`` (training) first cuts the order to a multiple of ``num_replicas``, so
    that every rank gets the same count and rank-by-rank batches of B make the batches of
    ``num_replicas`` x B that one process would draw."""

    def __init__(self, size: int, *, shuffle: bool, seed: int = 0, num_replicas: int = 1,
                 rank: int = 0, drop_tail: bool = False):
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0
        self.used = size - size % num_replicas if drop_tail else size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(range(self.rank, self.used, self.num_replicas))

    def __iter__(self):
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        else:
            order = np.arange(self.size)
        return iter([(self.epoch, int(i))
                     for i in order[self.rank : self.used : self.num_replicas]])


def make_loader(dataset: ClipDataset, *, batch_size: int, shuffle: bool, num_workers: int = 2,
                seed: int = 0, drop_last: bool = False, num_replicas: int = 1,
                rank: int = 0) -> DataLoader:
    """DataLoader over an EpochSampler (``drop_last`` also drops the tail that does not share
    evenly over the ranks); call ``loader.sampler.set_epoch(e)`` every epoch."""
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed, num_replicas=num_replicas,
                           rank=rank, drop_tail=drop_last)
    # its own generator: creating the iterator must not consume the global torch RNG, or a resumed
    # run would draw different dropout masks than an uninterrupted one
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate, drop_last=drop_last,
                      generator=torch.Generator().manual_seed(seed),
                      persistent_workers=num_workers > 0,
                      prefetch_factor=4 if num_workers > 0 else None)


class BadSampleLog:
    """Logs each unreadable file once (path and reason) and counts them per epoch."""

    def __init__(self, logger: logging.Logger = log):
        self.logger, self.seen, self.epoch_count = logger, set(), 0

    def update(self, bad: list[tuple[str, str]]) -> None:
        for path, reason in bad:
            self.epoch_count += 1
            if path not in self.seen:
                self.seen.add(path)
                self.logger.warning("unreadable sample skipped: %s", reason)

    def end_epoch(self) -> int:
        """Bad samples met this epoch (and reset); logs a summary when there were any."""
        n, self.epoch_count = self.epoch_count, 0
        if n:
            self.logger.warning("%d unreadable samples replaced or skipped this epoch "
                                "(%d distinct files so far)", n, len(self.seen))
        return n
