"""``actionrec features extract``: per-frame pooled features of a dataset, as ``.npy`` files and
list files that ``data.kind: features`` reads back (StNet Table 1's head-only setting)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..config import Config
from ..data.build import build_dataset, build_loader
from .recognizer import load


@torch.no_grad()
def extract_features(cfg: Config, checkpoint: str | Path, out_dir: str | Path, *,
                     splits: tuple[str, ...] = ("train", "val")) -> dict[str, Path]:
    """For each split: ``out/<split>/<i>.npy`` of shape (model.num_frames, C), evenly sampled with
    the test transform, and ``out/<split>.txt`` in the list format ``<file> <frames> <label>``."""
    recognizer = load(checkpoint, config=cfg)
    features_of = recognizer.frame_features  # a model without them: an error before any work
    out = Path(out_dir)
    lists = {}
    for split in splits:
        list_file = getattr(cfg.data, f"{split}_list")
        if not list_file:
            continue
        # every split is read with the deterministic test protocol (1 clip, centre crop)
        dataset = build_dataset(replace(cfg, data=replace(cfg.data, test_list=list_file)), "test")
        loader = build_loader(cfg, dataset, batch_size=cfg.test.batch_size, shuffle=False)
        (out / split).mkdir(parents=True, exist_ok=True)
        lines = []
        for batch in tqdm(loader, desc=f"features {split}", leave=False, disable=None):
            if batch["clip"] is None:
                continue
            clips = batch["clip"][:, 0].to(recognizer.device)
            features = features_of(clips).float().cpu().numpy()
            for index, label, feats in zip(batch["index"].tolist(), batch["label"].tolist(),
                                           features, strict=True):
                name = f"{split}/{index:06d}.npy"
                np.save(out / name, feats)
                lines.append(f"{name} {len(feats)} {label}")
        lists[split] = out / f"{split}.txt"
        lists[split].write_text("\n".join(lines) + "\n")
    return lists
