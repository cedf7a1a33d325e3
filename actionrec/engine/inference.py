"""Testing a checkpoint on a list (``actionrec test``) and predicting video files and their
timelines (``predict``)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..data.build import build_test_loader, reversal_pairs
from ..errors import ActionrecError, VideoError
from ..export import OnnxModel, export_onnx
from . import distributed
from .build import amp
from .evaluate import collect_scores, compute_metrics, write_reports
from .overlay import write_overlay
from .recognizer import load
from .timeline_report import write_timeline
from .windows import SMOOTH_WINDOWS, TOPK, check_window, smooth, top

log = logging.getLogger(__name__)


def evaluate_checkpoint(cfg: Config, checkpoint: str | Path, *, out_dir: str | Path | None = None
                        ) -> tuple[dict, dict[str, Path]]:
    """Metrics of ``checkpoint`` on ``data.test_list`` (or ``val_list``) with the ``test`` views;
    reports (results.json, confusion CSV/PNG) go to ``out_dir`` (default: next to the checkpoint),
    written by rank 0 alone under torchrun (the others return no paths)."""
    out = Path(out_dir) if out_dir else Path(checkpoint).parent / f"test_{Path(checkpoint).stem}"
    main = distributed.is_main()
    if main:
        writable(out)  # before the evaluation, not after it
    with distributed.joint("testing", cfg.runtime.dist_timeout):
        recognizer, loader = recognizer_and_loader(cfg, checkpoint)
        scores = collect_scores(recognizer.model, loader, recognizer.device, amp=amp(cfg),
                                desc="test")
    metrics = compute_metrics(scores.scores, scores.labels, recognizer.classes,
                              reversal_pairs(cfg))
    metrics["views"] = {"clips": cfg.test.clips, "crops": cfg.test.crops}
    metrics["skipped"] = [{"path": p, "reason": r} for p, r in scores.bad]
    metrics["checkpoint"] = str(checkpoint)
    return metrics, write_reports(metrics, recognizer.classes, out) if main else {}


def recognizer_and_loader(cfg: Config, checkpoint: str | Path):
    """``(recognizer, loader)``: the checkpoint in the config's model (``load``) and the loader
    of its test list; under torchrun the process group joined and the loader over this rank's
    share of the list."""
    recognizer = load(checkpoint, config=cfg)
    ctx = distributed.setup(recognizer.device, cfg.runtime.dist_timeout)
    return recognizer, build_test_loader(cfg, num_replicas=ctx.world_size, rank=ctx.rank)


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
    recognizer = load(checkpoint, device=device)
    results, runner = [], None
    with tempfile.TemporaryDirectory(prefix="actionrec_onnx_") as folder:
        for path in videos:
            try:
                views = recognizer.views(path)
            except VideoError as e:
                results.append(Prediction(str(path), error=str(e)))
                continue
            if backend == "onnxruntime" and runner is None:
                # exported once, at the first readable video's shape (the batch is dynamic)
                runner = OnnxModel(export_onnx(recognizer.model, views[:1],
                                               Path(folder) / "model.onnx"))
            probs = recognizer.score(views, runner=runner, name=str(path))
            results.append(Prediction(str(path), top(probs, recognizer.classes, topk)))
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
    recognizer = load(checkpoint, device=device)
    names = recognizer.classes
    for video in videos:
        try:
            timeline = recognizer.timeline(video, window=window, stride=stride,
                                           progress=progress)
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
