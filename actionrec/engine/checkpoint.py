"""Training checkpoints: safe to load, written atomically, resumable.

A checkpoint of epoch ``e`` is two files in the work dir:

- ``epoch_XXXX.safetensors``: the model weights, with the config and class names in its metadata
  (so ``actionrec predict`` needs nothing else);
- ``epoch_XXXX.state.pt``: optimizer, scheduler, AMP scaler, RNG states, epoch and best metric,
  only tensors and plain Python values, so it loads with ``torch.load(weights_only=True)``.

Each file is written to a temporary name and renamed into place; ``latest.json`` (also renamed
into place) names the newest complete pair. A process killed at any moment therefore leaves the
previous checkpoint loadable. ``best.safetensors`` holds the best weights so far.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..config import Config, load_config
from ..errors import CheckpointError
from ..models.pretrained import read_weights

LATEST = "latest.json"
BEST = "best.safetensors"


def _atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename the result onto ``path`` (same folder, so atomic)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_weights(path: Path, model: nn.Module, cfg: Config, class_names: list[str]) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps(cfg.to_dict()), "classes": json.dumps(class_names),
            "format": "actionrec-1"}
    _atomic(Path(path), lambda tmp: save_file(state, str(tmp), metadata=meta))


def read_metadata(path: str | os.PathLike) -> tuple[Config, list[str]]:
    """Config and class names stored in an actionrec ``.safetensors`` checkpoint."""
    path = str(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    if not path.endswith(".safetensors"):
        raise CheckpointError(f"{path}: expected an actionrec .safetensors checkpoint")
    try:
        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file: {e}") from None
    if "config" not in meta:
        raise CheckpointError(f"{path}: no actionrec config in its metadata (not written by "
                              "actionrec train?); use `actionrec test CONFIG --checkpoint` instead")
    return load_config(None, data=json.loads(meta["config"])), json.loads(meta["classes"])


def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a checkpoint into ``model`` exactly; a checkpoint of another architecture is an error
    listing the keys that do not fit."""
    state = read_weights(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        def few(keys):
            return ", ".join(keys[:5]) + (f" ... ({len(keys)})" if len(keys) > 5 else "")

        parts = [f"{name} {few(keys)}" for name, keys in
                 (("missing:", missing), ("unexpected:", unexpected), ("shape mismatch:", shapes))
                 if keys]
        raise CheckpointError(f"{path}: does not fit the model ({type(model).__name__}); "
                              + "; ".join(parts))
    model.load_state_dict(state)


class CheckpointManager:
    """Saves epoch checkpoints into ``work_dir``, keeps the last ``keep_last`` and the best."""

    def __init__(self, work_dir: str | os.PathLike, keep_last: int = 2):
        self.dir = Path(work_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keep_last = keep_last

    def paths(self, epoch: int) -> tuple[Path, Path]:
        stem = self.dir / f"epoch_{epoch:04d}"
        return stem.with_suffix(".safetensors"), stem.with_suffix(".state.pt")

    def save(self, epoch: int, model: nn.Module, cfg: Config, class_names: list[str],
             state: dict, *, is_best: bool) -> Path:
        weights, state_path = self.paths(epoch)
        save_weights(weights, model, cfg, class_names)
        _atomic(state_path, lambda tmp: torch.save(state, tmp))
        latest = {"epoch": epoch, "weights": weights.name, "state": state_path.name}
        _atomic(self.dir / LATEST, lambda tmp: tmp.write_text(json.dumps(latest)))
        if is_best:
            save_weights(self.dir / BEST, model, cfg, class_names)
        self._prune(epoch)
        return weights

    def _prune(self, newest: int) -> None:
        for weights in sorted(self.dir.glob("epoch_*.safetensors")):
            epoch = int(weights.stem.split("_")[1])
            if epoch <= newest - self.keep_last:
                for p in self.paths(epoch):
                    p.unlink(missing_ok=True)

    def latest(self) -> tuple[Path, dict] | None:
        """(weights path, training state) of the newest complete checkpoint, or None."""
        pointer = self.dir / LATEST
        if not pointer.is_file():
            return None
        info = json.loads(pointer.read_text())
        weights, state_path = self.dir / info["weights"], self.dir / info["state"]
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"{state_path}: named by {pointer} but missing") from None
        except pickle.UnpicklingError as e:
            raise CheckpointError(f"{state_path}: refused, not a plain state file: {e}") from None
        return weights, state
