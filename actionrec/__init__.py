"""actionrec: StNet, STM, GST and MSTI-Net for video action recognition, in PyTorch.

The public API is what this module exports (``__all__``); the modules under it are the
implementation and may change between versions::

    import actionrec

    recognizer = actionrec.load("work_dirs/gst/best.safetensors")
    recognizer.predict("clip.mp4")            # [("juggling", 0.91), ...]
    recognizer.timeline("long.mp4", window=2)  # scores of each 2-second window

    cfg = actionrec.read_config("configs/gst/gst_r50_8f_sthv1.yaml", ["train.epochs=1"])
    actionrec.train(cfg)                        # or: with actionrec.Trainer(cfg) as t: t.fit()
    model = actionrec.build_model("stm", num_classes=174, num_frames=8)

- ``load``, ``Recognizer``, ``InputSpec``: a trained checkpoint ready to use (``engine/recognizer``).
- ``build_model``, ``MODELS``: the model registry (``models/registry``); ``actionrec models``
  lists each model's options.
- ``read_config``, ``Config``: experiment configs (``config``).
- ``Trainer``, ``train``: training (``engine/train``).
- ``ActionrecError``: the base of every error bad input causes (``errors``).

Names are imported when first used: ``import actionrec`` alone loads no PyTorch.
"""

from __future__ import annotations

import importlib

# public name -> (module, name in it)
_EXPORTS = {
    "load": ("actionrec.engine.recognizer", "load"),
    "Recognizer": ("actionrec.engine.recognizer", "Recognizer"),
    "InputSpec": ("actionrec.engine.recognizer", "InputSpec"),
    "build_model": ("actionrec.models.registry", "build_model"),
    "MODELS": ("actionrec.models.registry", "MODELS"),
    "read_config": ("actionrec.config", "read_config"),
    "Config": ("actionrec.config", "Config"),
    "Trainer": ("actionrec.engine.train", "Trainer"),
    "train": ("actionrec.engine.train", "train"),
    "ActionrecError": ("actionrec.errors", "ActionrecError"),
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'actionrec' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
