"""A trained model ready to use: ``load(checkpoint)`` gives a ``Recognizer``, the one way the CLI,
the server, the stream reader and Python callers load a checkpoint.

A Recognizer holds the model (eval mode, BNs folded into the convolutions unless asked not to),
its class names, its config and what input it takes, and answers for a video with the test
protocol of its config: ``views`` (the clip tensors), ``scores``, ``predict`` (top classes),
``features`` (per-frame features), ``timeline`` (windows slid over a long video) and ``stream``
(windows of a live source).

A checkpoint's metadata is data, not orders: its sizes are bounded (``METADATA_LIMITS``) and its
stored ``runtime.device`` and ``runtime.threads`` never decide where and how the model runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..config import Config, config_diff, read_config
from ..data.build import build_dataset, class_names
from ..data.datasets import ListEntry
from ..data.video import MAX_PIXELS
from ..errors import ActionrecError, CheckpointError, VideoError
from ..models.fuse import fold_batchnorms
from .build import amp, in_layout, model_from_config, on_device, use_runtime
from .checkpoint import load_weights, read_metadata
from .evaluate import check_finite, score_views
from .stream import live_windows
from .windows import Timeline, Window, slide, top

log = logging.getLogger(__name__)

# what a checkpoint's metadata may ask of the machine that reads it
METADATA_LIMITS = {("test", "clips"): 100, ("test", "batch_size"): 256, ("data", "size"): 1024,
                   ("model", "num_frames"): 1024, ("data", "snippet_len"): 64}


@dataclass(frozen=True)
class InputSpec:
    """What one video becomes for the model: ``clips`` x ``crops`` views of ``frames`` frames
    (segments, snippets or a dense clip, as ``sampler`` says), each crop ``size`` pixels square."""
    frames: int
    size: int
    sampler: str
    clips: int
    crops: int


class Recognizer:
    """A model with its classes and config; see the module docstring. Build one with ``load``."""

    def __init__(self, model: torch.nn.Module, classes: list[str], config: Config,
                 device: torch.device):
        self.model, self.classes, self.config, self.device = model, classes, config, device

    @property
    def input(self) -> InputSpec:
        cfg = self.config
        return InputSpec(cfg.model.num_frames, cfg.data.size, cfg.data.sampler, cfg.test.clips,
                         cfg.test.crops)

    def views(self, video: str | Path, *, clips: int | None = None, crops: int | None = None,
              max_pixels: int = MAX_PIXELS) -> torch.Tensor:
        """``clips`` x ``crops`` views of ``video`` ``(V, ...)`` on the model's device (default:
        the config's test views; 1 x 1 is the centre clip's centre crop); a video that cannot be
        read (or whose frames are over ``max_pixels``) is a VideoError."""
        cfg = self.config
        sample = build_dataset(cfg, "test", entries=[ListEntry(str(video), 0)],
                               clips=clips or cfg.test.clips, crops=crops or cfg.test.crops,
                               max_pixels=max_pixels)[0]
        if sample["clip"] is None:
            raise VideoError(sample["bad"][0][1])
        return sample["clip"].to(self.device)

    def scores(self, video: str | Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
        """Softmax scores ``(K,)`` of ``video``, averaged over its views (``score``)."""
        return self.score(self.views(video, max_pixels=max_pixels), name=str(video))

    @torch.no_grad()
    def score(self, views: torch.Tensor, *, runner: Callable | None = None,
              name: str = "video") -> np.ndarray:
        """Softmax scores ``(K,)`` of one video's ``views``, averaged, by the model or by
        ``runner`` (another form of it, e.g. an ONNX Runtime session); scores that are not
        finite (diverged weights) are a NonFiniteOutput naming ``name``."""
        probs = score_views(runner or self.model, views[None], amp=amp(self.config)).cpu()
        check_finite(probs, lambda _: name)
        return probs[0].numpy()

    def predict(self, video: str | Path, *, topk: int = 5) -> list[tuple[str, float]]:
        """The ``topk`` best classes of ``video`` and their scores, best first."""
        return top(self.scores(video), self.classes, topk)

    def features(self, video: str | Path) -> torch.Tensor:
        """Per-frame features ``(T, C)`` of the centre clip's centre crop of ``video``."""
        return self.frame_features(self.views(video, clips=1, crops=1)).float().cpu()[0]

    @property
    def frame_features(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The model's per-frame features, ``(N, T, ...)`` clips on its device to ``(N, T, C)``
        (the 2D models have them, as StNet Table 1 uses them); an ActionrecError for a model
        without."""
        if not hasattr(self.model, "frame_features"):
            raise ActionrecError(f"{self.config.model.name} has no per-frame features")
        return torch.no_grad()(self.model.frame_features)

    def timeline(self, video: str | Path, *, window: float | None = None,
                 stride: float | None = None, progress: bool = False,
                 each_window: Callable[[], None] | None = None,
                 max_pixels: int = MAX_PIXELS) -> Timeline:
        """Scores of every ``window``-second window of ``video``, ``stride`` seconds apart
        (``engine/windows.py``)."""
        return slide(self.model, self.config, str(video), window=window, stride=stride,
                     device=self.device, batch=self.config.test.batch_size, progress=progress,
                     each_window=each_window, max_pixels=max_pixels)

    def stream(self, source: str, *, window: float | None = None, stride: float | None = None,
               reconnect: int = 3, idle_timeout: float = 10.0,
               log: Callable[[str], None] = print) -> Iterator[Window]:
        """Scored windows of a live ``source`` until it ends (``engine/stream.py``)."""
        return live_windows(self.model, self.config, source, window=window, stride=stride,
                            device=self.device, reconnect=reconnect, idle_timeout=idle_timeout,
                            log=log)


def load(checkpoint: str | Path, *, config: Config | str | Path | None = None,
         device: str | None = None, fold_bn: bool = True) -> Recognizer:
    """The Recognizer of an actionrec checkpoint.

    ``config``: None uses the config and classes in the checkpoint's metadata; a Config (or a
    YAML file) replaces them, its model and label map checked against what the checkpoint was
    trained with (another model or class list is a CheckpointError, another frame count a
    warning). ``device``: auto, cpu or cuda; None is the given config's ``runtime.device``, or
    auto for the checkpoint's own. ``fold_bn``: fold BNs into the convolutions (inference only;
    an analysis of the BNs themselves keeps them)."""
    if config is None:
        cfg, names = read_metadata(checkpoint)
        for (section, key), limit in METADATA_LIMITS.items():
            value = getattr(getattr(cfg, section), key)
            if value > limit:
                raise CheckpointError(f"{checkpoint}: metadata {section}.{key}={value} is out of "
                                      f"range (at most {limit})")
        # where and on how many threads this machine runs is never the checkpoint's to say
        cfg = replace(cfg, runtime=replace(cfg.runtime, device=device or "auto", threads=None))
    else:
        cfg = config if isinstance(config, Config) else read_config(config)
        cfg = on_device(cfg, device) if device else cfg
        names = class_names(cfg)
        _check_fits(cfg, names, checkpoint)
    torch_device = use_runtime(cfg.runtime)
    # the checkpoint replaces every weight: skip the config's initial (pretrained) weights
    model = model_from_config(replace(cfg, model=replace(cfg.model, pretrained=None)), len(names))
    load_weights(model, checkpoint)
    model = model.to(torch_device).eval()
    if fold_bn:
        fold_batchnorms(model)
    model = in_layout(model, cfg)
    return Recognizer(model, names, cfg, torch_device)


def _check_fits(cfg: Config, names: list[str], checkpoint: str | Path) -> None:
    """Another model or class list than ``checkpoint`` was trained with is an error, another
    frame count a warning (evaluating a 2D model at more frames is common). Checkpoints without
    actionrec metadata are not compared."""
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
