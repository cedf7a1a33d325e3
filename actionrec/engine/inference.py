"""Testing a checkpoint on a list (``actionrec test``) and predicting video files and their
timelines (``predict``)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import Config, config_diff
from ..data.build import build_dataset, build_loader, class_names, reversal_pairs
from ..data.datasets import ListEntry
from ..errors import ActionrecError, CheckpointError, VideoError
from ..export import OnnxModel, export_onnx
from ..models.base import to_channels_last
from ..models.fuse import fold_batchnorms
from . import distributed
from .build import model_from_config, select_device
from .checkpoint import load_weights, read_metadata
from .evaluate import check_finite, collect_scores, compute_metrics, score_views, write_reports
from .overlay import write_overlay
from .timeline_report import write_timeline
from .windows import SMOOTH_WINDOWS, TOPK, check_window, slide, smooth

log = logging.getLogger(__name__)


def load_model(cfg: Config, checkpoint: str | Path, num_classes: int, *, fold_bn: bool = True):
    """The config's model with the checkpoint's weights, in eval mode on the config's device, its
    BNs folded into the convolutions unless not ``fold_bn`` (``models/fuse.py``: inference only;
    an analysis of the BNs themselves keeps them)."""
    device = select_device(cfg.train.device)
    # the checkpoint replaces every weight: skip the config's initial (pretrained) weights
    model = model_from_config(replace(cfg, model=replace(cfg.model, pretrained=None)), num_classes)
    load_weights(model, checkpoint)
    model = model.to(device).eval()
    if fold_bn:
        fold_batchnorms(model)
    if cfg.train.channels_last:
        model = to_channels_last(model)
    return model, device


# what a checkpoint's metadata may ask of the machine that reads it: metadata is data, not orders
METADATA_LIMITS = {("test", "clips"): 100, ("test", "batch_size"): 256, ("data", "size"): 1024,
                   ("model", "num_frames"): 1024, ("data", "snippet_len"): 64}


def load_checkpoint(checkpoint: str | Path, *, device: str = "auto", fold_bn: bool = True):
    """``(config, class names, model, device)`` from an actionrec checkpoint alone (the config and
    class names are in its metadata) on ``device`` (auto: CUDA where there is one; never the
    stored ``train.device``). Metadata values past ``METADATA_LIMITS`` are refused."""
    cfg, names = read_metadata(checkpoint)
    for (section, key), limit in METADATA_LIMITS.items():
        value = getattr(getattr(cfg, section), key)
        if value > limit:
            raise CheckpointError(f"{checkpoint}: metadata {section}.{key}={value} is out of "
                                  f"range (at most {limit})")
    cfg = replace(cfg, train=replace(cfg.train, device=device))
    model, device = load_model(cfg, checkpoint, len(names), fold_bn=fold_bn)
    return cfg, names, model, device


def check_checkpoint_fits(cfg: Config, names: list[str], checkpoint: str | Path) -> None:
    """A config and label map that disagree with what ``checkpoint`` was trained with: another
    model or class list is an error, another frame count a warning (evaluating a 2D model at more
    frames is common). Checkpoints without actionrec metadata are not compared."""
    try:
        saved, saved_names = read_metadata(checkpoint)
    except CheckpointError:
        return  # not found or no metadata: loading the weights says what is wrong
    differ = [f"{k}: {a!r} (checkpoint) vs {b!r} (config)"
              for k, a, b in config_diff(saved, cfg)
              if k in ("model.name", "model.backbone", "model.options")]
    if differ:
        raise CheckpointError(f"{checkpoint} does not match the config: " + "; ".join(differ))
    if saved_names != names:
        first = next((i for i, (a, b) in enumerate(zip(saved_names, names, strict=False)) if a != b),
                     min(len(saved_names), len(names)))
        raise CheckpointError(
            f"{checkpoint}: trained on {len(saved_names)} classes, data.label_map "
            f"{cfg.data.label_map} lists {len(names)}; first difference at class {first}: "
            f"{saved_names[first] if first < len(saved_names) else '-'!r} vs "
            f"{names[first] if first < len(names) else '-'!r}")
    if saved.model.num_frames != cfg.model.num_frames:
        log.warning("%s was trained at %d frames; evaluating at %d (model.num_frames)",
                    checkpoint, saved.model.num_frames, cfg.model.num_frames)


def checkpoint_clip(checkpoint: str | Path, video: str | Path, *, device: str = "auto"):
    """``(config, class names, model, first test view of video)`` for the analyses of one video
    (``cam``, ``analyze frame-predictions``), the clip on the model's device; an unreadable
    video is a VideoError."""
    cfg, names, model, device = load_checkpoint(checkpoint, device=device)
    sample = build_dataset(cfg, "test", entries=[ListEntry(str(video), 0)])[0]
    if sample["clip"] is None:
        raise VideoError(sample["bad"][0][1])
    return cfg, names, model, sample["clip"][0].to(device)


def load_for_config(cfg: Config, checkpoint: str | Path):
    """``(class names, model, device)``: the checkpoint in the config's model with the config's
    label map, both checked against what it was trained with (``check_checkpoint_fits``)."""
    names = class_names(cfg)
    check_checkpoint_fits(cfg, names, checkpoint)
    model, device = load_model(cfg, checkpoint, len(names))
    return names, model, device


def test_setup(cfg: Config, checkpoint: str | Path):
    """``(class names, model, device, loader)``: the checkpoint in the config's model and the
    loader of ``data.test_list`` (or ``val_list``) with the ``test`` views; under torchrun the
    process group joined and the loader over this rank's share of the list."""
    names, model, device = load_for_config(cfg, checkpoint)
    ctx = distributed.setup(device, cfg.train.dist_timeout)
    return names, model, device, test_loader(cfg, num_replicas=ctx.world_size, rank=ctx.rank)


def test_loader(cfg: Config, *, num_replicas: int = 1, rank: int = 0):
    """The loader of ``data.test_list`` (or ``val_list``) with the ``test`` views (rank
    ``rank``'s share of ``num_replicas``)."""
    dataset = build_dataset(cfg, "test", clips=cfg.test.clips, crops=cfg.test.crops)
    return build_loader(cfg, dataset, batch_size=cfg.test.batch_size, shuffle=False,
                        num_replicas=num_replicas, rank=rank)


def evaluate_checkpoint(cfg: Config, checkpoint: str | Path, *, out_dir: str | Path | None = None
                        ) -> tuple[dict, dict[str, Path]]:
    """Metrics of ``checkpoint`` on ``data.test_list`` (or ``val_list``) with the ``test`` views;
    reports (results.json, confusion CSV/PNG) go to ``out_dir`` (default: next to the checkpoint),
    written by rank 0 alone under torchrun (the others return no paths)."""
    out = Path(out_dir) if out_dir else Path(checkpoint).parent / f"test_{Path(checkpoint).stem}"
    main = distributed.is_main()
    if main:
        writable(out)  # before the evaluation, not after it
    with distributed.joint("testing", cfg.train.dist_timeout):
        names, model, device, loader = test_setup(cfg, checkpoint)
        scores = collect_scores(model, loader, device, amp=cfg.train.amp, desc="test")
    metrics = compute_metrics(scores.scores, scores.labels, names, reversal_pairs(cfg))
    metrics["views"] = {"clips": cfg.test.clips, "crops": cfg.test.crops}
    metrics["skipped"] = [{"path": p, "reason": r} for p, r in scores.bad]
    metrics["checkpoint"] = str(checkpoint)
    return metrics, write_reports(metrics, names, out) if main else {}


def writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it, or a one-line error naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".actionrec_probe"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ActionrecError(f"cannot write reports to {folder}: {e.strerror or e}") from None


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]] | None = None  # (class name, probability), best first
    error: str | None = None


BACKENDS = ("pytorch", "onnxruntime")


def predict_videos(checkpoint: str | Path, videos: list[str], *, topk: int = 5,
                   device: str = "auto", backend: str = "pytorch") -> list[Prediction]:
    """Top-k classes per video with the checkpoint's own config (views from ``cfg.test``).
    A file that cannot be read gets an ``error`` and the others are still predicted; scores that
    are not finite (a diverged model) are an error. ``backend`` onnxruntime: the model exported
    to ONNX (a temporary file) and run by ONNX Runtime on the CPU."""
    TOPK.check(topk, "topk")
    if backend not in BACKENDS:
        raise ActionrecError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "onnxruntime":
        if device not in ("auto", "cpu"):
            raise ActionrecError(f"backend onnxruntime runs on the CPU, not device {device!r}")
        device = "cpu"
    cfg, names, model, device = load_checkpoint(checkpoint, device=device)
    dataset = build_dataset(cfg, "test", entries=[ListEntry(str(v), 0) for v in videos],
                            clips=cfg.test.clips, crops=cfg.test.crops)
    results, runner = [], model
    with tempfile.TemporaryDirectory(prefix="actionrec_onnx_") as folder:
        for i, path in enumerate(videos):
            sample = dataset[i]
            if sample["clip"] is None:
                results.append(Prediction(str(path), error=sample["bad"][0][1]))
                continue
            if backend == "onnxruntime" and runner is model:
                # exported once, at the first clip's shape (the batch is dynamic)
                runner = OnnxModel(export_onnx(model, sample["clip"][:1],
                                               Path(folder) / "model.onnx"))
            probs = score_views(runner, sample["clip"][None].to(device), amp=cfg.train.amp).cpu()
            check_finite(probs, lambda _, path=path: str(path))
            p, idx = probs[0].topk(min(topk, len(names)))
            results.append(Prediction(str(path), [(names[j], float(q)) for j, q in
                                                  zip(idx.tolist(), p.tolist(), strict=True)]))
    if not results:
        raise ActionrecError("no video given")
    return results


def predict_timelines(checkpoint: str | Path, videos: list[str], *, out_dir: str | Path,
                      window: float | None = None, stride: float | None = None, smoothing: int = 1,
                      topk: int = 5, device: str = "auto", out_video: str | None = None,
                      progress: bool = True) -> Iterator[tuple[str, dict | None, str | None]]:
    """``(video, report, error)`` per video: its timeline written to ``out_dir/<stem>.timeline
    .json|.csv`` (``write_timeline``), scores smoothed over ``smoothing`` windows; a file that
    cannot be read gets an error and the next is still predicted. The numbers are checked
    (``check_window``, ``TOPK``, ``SMOOTH_WINDOWS``) before the checkpoint is loaded."""
    check_window(window, stride)
    TOPK.check(topk, "topk")
    SMOOTH_WINDOWS.check(smoothing, "smoothing")
    if out_video and len(videos) != 1:
        raise ActionrecError("an overlay video (out_video) is drawn for one video at a time")
    cfg, names, model, dev = load_checkpoint(checkpoint, device=device)
    for video in videos:
        try:
            timeline = slide(model, cfg, video, window=window, stride=stride, device=dev,
                             batch=cfg.test.batch_size, progress=progress)
        except VideoError as e:
            yield str(video), None, str(e)
            continue
        if timeline.video_probs() is None:
            yield str(video), None, (f"{video}: no window could be predicted: "
                                     f"{timeline.windows[0].missing}")
            continue
        smooth(timeline.windows, smoothing)
        report = write_timeline(timeline, names, topk,
                                Path(out_dir) / f"{Path(video).stem}.timeline")
        if out_video:
            report["out_video_frames"] = write_overlay(timeline, names, out_video)
        yield str(video), report, None
