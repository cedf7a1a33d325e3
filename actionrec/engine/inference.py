"""Testing a checkpoint on a list (``actionrec test``) and predicting video files (``predict``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import Config
from ..data.build import build_dataset, build_loader, class_names, reversal_pairs
from ..data.datasets import ListEntry
from ..errors import ActionrecError, VideoError
from ..models.base import to_channels_last
from .build import model_from_config, select_device
from .checkpoint import load_weights, read_metadata
from .evaluate import collect_scores, compute_metrics, score_views, write_reports

log = logging.getLogger(__name__)


def load_model(cfg: Config, checkpoint: str | Path, num_classes: int):
    """The config's model with the checkpoint's weights, in eval mode on the config's device."""
    device = select_device(cfg.train.device)
    # the checkpoint replaces every weight: skip the config's initial (pretrained) weights
    model = model_from_config(replace(cfg, model=replace(cfg.model, pretrained=None)), num_classes)
    load_weights(model, checkpoint)
    model = model.to(device).eval()
    if cfg.train.channels_last:
        model = to_channels_last(model)
    return model, device


def load_checkpoint(checkpoint: str | Path, *, device: str | None = None):
    """``(config, class names, model, device)`` from an actionrec checkpoint alone (the config and
    class names are in its metadata); ``device`` overrides the stored ``train.device``."""
    cfg, names = read_metadata(checkpoint)
    if device is not None:
        cfg.train.device = device
    model, device = load_model(cfg, checkpoint, len(names))
    return cfg, names, model, device


def checkpoint_clip(checkpoint: str | Path, video: str | Path, *, device: str = "cpu"):
    """``(config, class names, model, first test view of video)`` for the analyses of one video
    (``cam``, ``analyze frame-predictions``); an unreadable video is a VideoError."""
    cfg, names, model, _ = load_checkpoint(checkpoint, device=device)
    sample = build_dataset(cfg, "test", entries=[ListEntry(str(video), 0)])[0]
    if sample["clip"] is None:
        raise VideoError(sample["bad"][0][1])
    return cfg, names, model, sample["clip"][0]


def test_setup(cfg: Config, checkpoint: str | Path):
    """``(class names, model, device, loader)``: the checkpoint in the config's model and the
    loader of ``data.test_list`` (or ``val_list``) with the ``test`` views."""
    names = class_names(cfg)
    model, device = load_model(cfg, checkpoint, len(names))
    dataset = build_dataset(cfg, "test", clips=cfg.test.clips, crops=cfg.test.crops)
    loader = build_loader(cfg, dataset, batch_size=cfg.test.batch_size, shuffle=False)
    return names, model, device, loader


def evaluate_checkpoint(cfg: Config, checkpoint: str | Path, *, out_dir: str | Path | None = None
                        ) -> tuple[dict, dict[str, Path]]:
    """Metrics of ``checkpoint`` on ``data.test_list`` (or ``val_list``) with the ``test`` views;
    reports (results.json, confusion CSV/PNG) go to ``out_dir`` (default: next to the checkpoint)."""
    names, model, device, loader = test_setup(cfg, checkpoint)
    scores = collect_scores(model, loader, device, amp=cfg.train.amp, desc="test")
    metrics = compute_metrics(scores.scores, scores.labels, names, reversal_pairs(cfg))
    metrics["views"] = {"clips": cfg.test.clips, "crops": cfg.test.crops}
    metrics["skipped"] = [{"path": p, "reason": r} for p, r in scores.bad]
    metrics["checkpoint"] = str(checkpoint)
    out = Path(out_dir) if out_dir else Path(checkpoint).parent / f"test_{Path(checkpoint).stem}"
    return metrics, write_reports(metrics, names, out)


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]] | None = None  # (class name, probability), best first
    error: str | None = None


def predict_videos(checkpoint: str | Path, videos: list[str], *, topk: int = 5
                   ) -> list[Prediction]:
    """Top-k classes per video with the checkpoint's own config (views from ``cfg.test``).
    A file that cannot be read gets an ``error`` and the others are still predicted."""
    cfg, names, model, device = load_checkpoint(checkpoint)
    dataset = build_dataset(cfg, "test", entries=[ListEntry(str(v), 0) for v in videos],
                            clips=cfg.test.clips, crops=cfg.test.crops)
    results = []
    for i, path in enumerate(videos):
        sample = dataset[i]
        if sample["clip"] is None:
            results.append(Prediction(str(path), error=sample["bad"][0][1]))
            continue
        probs = score_views(model, sample["clip"][None].to(device), amp=cfg.train.amp)[0].cpu()
        p, idx = probs.topk(min(topk, len(names)))
        results.append(Prediction(str(path), [(names[j], float(q)) for j, q in
                                              zip(idx.tolist(), p.tolist(), strict=True)]))
    if not results:
        raise ActionrecError("no video given")
    return results
