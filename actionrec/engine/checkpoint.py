"""Training checkpoints: safe to load, written atomically, resumable, never lost.

A checkpoint of epoch ``e`` is two files in the work dir:

- ``epoch_XXXX.safetensors``: the model weights, with the config and class names in its metadata
  (so ``actionrec predict`` needs nothing else);
- ``epoch_XXXX.state.pt``: optimizer, scheduler, AMP scaler, RNG states, epoch, best metric and
  the epoch's log record, only tensors and plain Python values, so it loads with
  ``torch.load(weights_only=True)``.

``best.safetensors`` holds the best weights so far, with their epoch and metric in its metadata.
A save writes, each to a temporary name renamed into place: the epoch's weights, its state, the
best weights (when the epoch is the best) and last ``latest.json``, the commit point that names
the newest complete pair. A process killed at any instant therefore leaves the previous
checkpoint loadable and a best file at least as new as what ``latest.json`` records; ``--resume``
reconciles the two (``reconcile_best``) and deletes the temporaries of interrupted saves. Files
are written with the process's umask. ``WorkDirLock`` keeps a second run out of a work dir.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import io
import json
import os
import pickle
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from .. import files
from ..config import Config, read_config
from ..errors import ActionrecError, CheckpointError
from ..files import TEMPORARY
from ..models.pretrained import read_weights
from ..validate import InvalidInput, inside, load_json, raised_as, read_text

LATEST = "latest.json"
BEST = "best.safetensors"
LOCK = ".lock"


atomic_write = functools.partial(files.atomic_write, error=CheckpointError)


def save_weights(path: Path, model: nn.Module, cfg: Config, class_names: list[str], *,
                 best: tuple[int, float] | None = None) -> None:
    """The weights with the config and class names as metadata; ``best`` = (epoch, metric) of
    a best checkpoint."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps(cfg.to_dict()), "classes": json.dumps(class_names),
            "format": "actionrec-1"}
    _write(Path(path), state, meta, best)


def _write(path: Path, tensors: dict, meta: dict, best: tuple[int, float] | None) -> None:
    if best is not None:
        meta = {**meta, "best_epoch": str(best[0]), "best_metric": repr(best[1])}
    atomic_write(path, save(tensors, metadata=meta))


def _metadata(path: str) -> dict:
    try:
        with safe_open(path, "pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file: {e}") from None


def best_record(path: str | os.PathLike) -> tuple[int, float] | None:
    """(epoch, metric) stored in a best checkpoint; None where it holds none (older files)."""
    meta = _metadata(str(path))
    try:
        return int(meta["best_epoch"]), float(meta["best_metric"])
    except (KeyError, ValueError):
        return None


def read_metadata(path: str | os.PathLike) -> tuple[Config, list[str]]:
    """Config and class names stored in an actionrec ``.safetensors`` checkpoint."""
    path = str(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    if not path.endswith(".safetensors"):
        raise CheckpointError(f"{path}: expected an actionrec .safetensors checkpoint")
    meta = _metadata(path)
    if "config" not in meta or "classes" not in meta:
        raise CheckpointError(f"{path}: no actionrec config and classes in its metadata (not "
                              "written by actionrec train?); use `actionrec test CONFIG "
                              "--checkpoint` instead")
    with raised_as(CheckpointError):
        values, names = (load_json(meta[key], f"{path}: metadata {key!r}")
                         for key in ("config", "classes"))
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise CheckpointError(f"{path}: metadata 'classes' must be a non-empty list of names")
    try:
        cfg = read_config(None, data=values, source=f"{path} metadata")
    except ActionrecError as e:
        raise CheckpointError(str(e)) from None
    return cfg, names


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


class WorkDirLock:
    """An exclusive POSIX record lock (``fcntl.lockf``) on ``work_dir/.lock``: a second run on the
    same work dir is refused, naming the live process that holds the lock (asked of the kernel,
    ``F_GETLK``). The lock belongs to the process alone: children it forks (DataLoader workers) do
    not inherit it, so it is free the moment its owner dies, even while they live on. The file
    also holds the owner's pid, for a person reading it. A second lock on the same work dir in the
    same process is refused too (POSIX locks never conflict within one process)."""

    held: set[Path] = set()  # work dirs this process holds

    def __init__(self, work_dir: str | os.PathLike):
        path = Path(work_dir) / LOCK
        self.key = path.resolve()
        if self.key in WorkDirLock.held:
            raise ActionrecError(_in_use(work_dir, os.getpid(), path))
        try:
            self.file = open(path, "a+")  # held until release()
        except OSError as e:
            raise ActionrecError(f"cannot write in work dir {work_dir}: {e.strerror}") from None
        while True:
            try:
                fcntl.lockf(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EACCES, errno.EAGAIN):
                    self.file.close()
                    raise ActionrecError(f"cannot lock {path}: {e.strerror}") from None
            holder = _holder(self.file)
            if holder is not None:  # else: released since; try again
                self.file.close()
                raise ActionrecError(_in_use(work_dir, holder, path))
        WorkDirLock.held.add(self.key)
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()

    def release(self) -> None:
        if not self.file.closed:
            WorkDirLock.held.discard(self.key)
            self.file.close()  # closing frees the process's record locks on the file


FLOCK = "hhqqi4x"  # Linux's struct flock: type, whence, start, len, pid


def _holder(file) -> int | None:
    """The pid of the process holding a lock that conflicts with an exclusive lock of the whole
    ``file`` (0: a process outside this pid namespace), or None when there is none now."""
    query = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    kind, _, _, _, pid = struct.unpack(FLOCK, fcntl.fcntl(file, fcntl.F_GETLK, query))
    return None if kind == fcntl.F_UNLCK else pid


def _in_use(work_dir, pid: int, path: Path) -> str:
    holder = f"pid {pid}" if pid else "a process of another pid namespace"
    return (f"{work_dir} is in use by another training run ({holder}, lock {path}); wait for it "
            f"or choose another work dir")


class CheckpointManager:
    """Saves epoch checkpoints into ``work_dir``, keeps the last ``keep_last`` and the best."""

    def __init__(self, work_dir: str | os.PathLike, keep_last: int = 2):
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1 (the latest checkpoint is kept), got {keep_last}")
        self.dir = Path(work_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keep_last = keep_last

    def remove_temporaries(self) -> list[Path]:
        """Delete what interrupted saves left (call while holding the work dir's lock)."""
        stale = sorted(self.dir.glob(TEMPORARY.format(name="*", pid="*")))
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def paths(self, epoch: int) -> tuple[Path, Path]:
        stem = self.dir / f"epoch_{epoch:04d}"
        return stem.with_suffix(".safetensors"), stem.with_suffix(".state.pt")

    def save(self, epoch: int, model: nn.Module, cfg: Config, class_names: list[str],
             state: dict, *, is_best: bool) -> Path:
        """Write epoch ``epoch`` (0-based); ``state["best"]``/``["best_epoch"]`` are recorded in
        the best file when ``is_best``. ``latest.json`` is written last: the commit."""
        weights, state_path = self.paths(epoch)
        save_weights(weights, model, cfg, class_names)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(state_path, buffer.getvalue())
        if is_best:
            save_weights(self.dir / BEST, model, cfg, class_names,
                         best=(state["best_epoch"], state["best"]))
        latest = {"epoch": epoch, "weights": weights.name, "state": state_path.name}
        atomic_write(self.dir / LATEST, json.dumps(latest).encode())
        self._prune(epoch)
        return weights

    def reconcile_best(self, best_epoch: int, best: float) -> tuple[int, float]:
        """The (epoch, metric) of the best checkpoint after a resume, with ``best.safetensors``
        made to agree. A save killed after writing the best file and before its commit leaves a
        newer best than the state records: it is a trained model of this run, so it is kept and
        adopted. A best file older than the state records (written by an earlier actionrec, which
        committed first) is rewritten from the best epoch's own weights where they are kept."""
        path = self.dir / BEST
        exists = path.is_file()
        record = best_record(path) if exists else None  # None too for a file without a record
        if record is not None and record[0] > best_epoch:
            return record
        stale = not exists or (record is not None and record[0] < best_epoch)
        source = self.paths(best_epoch - 1)[0]
        if best_epoch > 0 and stale and source.is_file():
            _write(path, read_weights(source), _metadata(str(source)), (best_epoch, best))
        return best_epoch, best

    def _prune(self, newest: int) -> None:
        for weights in sorted(self.dir.glob("epoch_*.safetensors")):
            epoch = int(weights.stem.split("_")[1])
            if epoch <= newest - self.keep_last:
                for p in self.paths(epoch):
                    p.unlink(missing_ok=True)

    def latest(self) -> tuple[Path, dict] | None:
        """(weights path, training state) of the newest complete checkpoint, or None. A
        ``latest.json`` that is not what training writes, names a file outside the work dir or a
        state file that cannot be read is a ``CheckpointError`` naming the file."""
        pointer = self.dir / LATEST
        if not pointer.is_file():
            return None
        with raised_as(CheckpointError):
            info = load_json(read_text(pointer), str(pointer))
            if not (isinstance(info, dict) and all(isinstance(info.get(k), str) for k in
                                                   ("weights", "state"))):
                raise InvalidInput(f"{pointer}: expected {{\"epoch\": N, \"weights\": FILE, "
                                   f"\"state\": FILE}} as training writes it")
            weights, state_path = (inside(self.dir, info[k], f"{pointer}: {k!r}")
                                   for k in ("weights", "state"))
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"{state_path}: named by {pointer} but missing") from None
        except pickle.UnpicklingError as e:
            raise CheckpointError(f"{state_path}: refused, not a plain state file: {e}") from None
        except (RuntimeError, EOFError, OSError) as e:  # torch.load's errors on a damaged file
            raise CheckpointError(f"{state_path}: not a readable training state: "
                                  f"{str(e).strip().splitlines()[0]}") from None
        if not (isinstance(state, dict) and type(state.get("epoch")) is int
                and state["epoch"] >= 0):
            raise CheckpointError(f"{state_path}: not a training state; expected a dict holding "
                                  f"its epoch (an integer >= 0)")
        return weights, state
