"""Device and model construction shared by training, testing and prediction."""

from __future__ import annotations

import logging
import os
import random
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..config import Config, ModelConfig, RuntimeConfig
from ..data.build import build_sampler
from ..errors import ActionrecError, ConfigError
from ..models.base import to_channels_last
from ..models.fast import accelerate
from ..models.layouts import LAYOUTS, detect_layout
from ..models.pretrained import load_pretrained, read_weights
from ..models.registry import build_model, check_options, example_input, get_spec
from .distributed import context

log = logging.getLogger(__name__)
DEFAULTS = vars(ModelConfig())


def use_runtime(runtime: RuntimeConfig) -> torch.device:
    """The device of ``runtime`` (``select_device``), with this process's CPU threads set where
    ``runtime.threads`` says."""
    if runtime.threads is not None:
        torch.set_num_threads(runtime.threads)
    return select_device(runtime.device)


def on_device(cfg: Config, device: str) -> Config:
    """``cfg`` run on ``device`` (auto, cpu or cuda) instead of its ``runtime.device``."""
    return replace(cfg, runtime=replace(cfg.runtime, device=device))


def in_layout(model: nn.Module, cfg: Config) -> nn.Module:
    """``model`` in the memory format ``runtime.layout`` names."""
    return to_channels_last(model) if cfg.runtime.layout == "channels_last" else model


def amp(cfg: Config) -> bool:
    """Whether ``cfg`` runs under autocast (``runtime.precision`` amp)."""
    return cfg.runtime.precision == "amp"


def select_device(name: str) -> torch.device:
    """The device ``runtime.device`` names; CUDA is the process's own GPU under torchrun
    (``LOCAL_RANK``)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    elif name == "cuda" and not torch.cuda.is_available():
        raise ActionrecError("device cuda asked for ({device}), but this machine has no CUDA "
                             "device; ask for cpu or auto", {"device": "runtime.device"})
    if name != "cuda":
        return torch.device(name)
    local = context().local_rank
    if local >= torch.cuda.device_count():
        raise ActionrecError(f"LOCAL_RANK={local}, but this machine has "
                             f"{torch.cuda.device_count()} CUDA devices: start at most that many "
                             "processes per node (torchrun --nproc_per_node)")
    return torch.device("cuda", local)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def config_options(cfg: Config) -> dict:
    """The registry options of ``cfg.model``: its shared keys where the model takes them (a key
    set to other than its default for a model without it is an error, not dropped), its
    ``options`` (checked against the builder's signature), and for snippet models (StNet)
    ``n`` = ``data.snippet_len``, so that the frames per super-image and the sampler's snippet
    length are one value."""
    m = cfg.model
    spec = get_spec(m.name)
    own = check_options(m.name, m.options, "model.options")
    shared = {"backbone": m.backbone, "dropout": m.dropout, "partial_bn": m.partial_bn,
              "frozen_stages": m.frozen_stages}
    unused = [k for k, v in shared.items() if k not in spec.options and v != DEFAULTS[k]]
    if unused:
        raise ConfigError(f"model.{unused[0]}={shared[unused[0]]!r}: model {m.name!r} ({spec.input} "
                          f"input) takes no {unused[0]}; its options: {', '.join(spec.options)}")
    options = {k: v for k, v in shared.items() if k in spec.options}
    if spec.input == "snippets":
        n = own.get("n", cfg.data.snippet_len)
        if n != cfg.data.snippet_len:
            raise ConfigError(f"model.options.n={n} differs from data.snippet_len="
                              f"{cfg.data.snippet_len}: the frames per super-image are "
                              "data.snippet_len; set that alone")
        options["n"] = n
    return {**options, **own}


def config_example(cfg: Config, *, batch: int = 1, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """``example_input`` of the config's model at ``model.num_frames`` and ``data.size``."""
    return example_input(get_spec(cfg.model.name), frames=cfg.model.num_frames, size=cfg.data.size,
                         batch=batch, options=config_options(cfg), generator=generator)


def model_from_config(cfg: Config, num_classes: int) -> nn.Module:
    """The registry model of ``cfg.model`` (``config_options``), checked against the sampler,
    initialised from ``model.pretrained`` if set, in its fast forms (``models/fast.py``)."""
    m = cfg.model
    spec = get_spec(m.name)
    model = build_model(m.name, num_classes=num_classes, num_frames=m.num_frames,
                        **config_options(cfg))
    frames = build_sampler(cfg).frames_per_clip
    if frames != model.input_frames:
        raise ActionrecError(
            f"the {cfg.data.sampler} sampler gives {frames} frames per clip but model "
            f"{m.name!r} takes {model.input_frames} (model.num_frames x frames per super-image)"
            + ("; for StNet set data.sampler=snippet" if spec.input == "snippets" else ""))
    if m.pretrained:
        load_initial_weights(model, m.pretrained)
    return accelerate(model)


def load_initial_weights(model: nn.Module, path: str) -> None:
    """ImageNet weights (torchvision keys) go into the backbone; an actionrec checkpoint (keys
    ``backbone.*``) or another code base's (``models/layouts.py``, renamed to ours) into the
    whole model. What did not load is reported."""
    state = read_weights(path)
    layout = detect_layout(set(state))
    if layout not in (None, "torchvision"):
        renamed = {LAYOUTS[layout].rename(k): v for k, v in state.items()}
        state = {k: v for k, v in renamed.items() if k is not None}
        log.info("pretrained %s: %s layout", path, layout)
    whole = any(k.startswith("backbone.") for k in state)
    report = load_pretrained(model if whole else model.backbone, state, source=path)
    log.info("pretrained %s -> %s: %s", path, "model" if whole else "backbone", report.summary())
    if not report.loaded and not report.adapted:
        raise ActionrecError(f"{path}: no tensor of it fits the model; {report.summary()}")
