"""Training: SGD (or Adam) with warmup + step/cosine schedules, AMP, accumulation, clipping, resumable.

Reproducibility: every sample is seeded by ``(seed, epoch, index)`` and the shuffle order by
``(seed, epoch)``; the torch RNG (dropout) is saved in each checkpoint. In deterministic mode,
2 epochs straight and 1 epoch + ``--resume`` + 1 epoch give bit-identical weights.

Under torchrun (``distributed.py``) each process trains a ``DistributedDataParallel`` replica on
its share of every epoch: ``train.batch_size`` is per process, the global batch is
batch_size x processes x accumulate, and ``train.lr`` (for ``train.lr_batch``) is scaled to it
(``scaled_lr``). A restarted worker (``torchrun --max-restarts``) resumes from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..config import Config, TrainConfig, config_diff, dump_config
from ..data.build import build_dataset, build_loader, class_names, reversal_pairs
from ..data.datasets import BadSampleLog
from ..errors import (
    ActionrecError,
    CheckpointError,
    ConfigError,
    Interrupted,
    NonFiniteOutput,
    NoReadableVideo,
    TrainingDiverged,
)
from ..validate import InvalidInput, load_json
from . import distributed
from .build import amp, config_options, in_layout, model_from_config, seed_everything, use_runtime
from .checkpoint import (
    BEST,
    LATEST,
    CheckpointManager,
    WorkDirLock,
    atomic_write,
    load_weights,
    read_metadata,
)
from .evaluate import autocast, collect_scores, compute_metrics, to_device

log = logging.getLogger(__name__)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights only, not on BN parameters and biases."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def scaled_lr(t: TrainConfig, world_size: int) -> tuple[float, int, int]:
    """``(lr, global batch, lr_batch)``: ``train.lr`` is for a global batch of ``train.lr_batch``
    clips (default: one process's batch_size x accumulate); ``lr_scaling: linear`` scales it by
    global batch / lr_batch (Goyal et al., 2017, Sec. 2.1), ``none`` keeps it."""
    global_batch = t.batch_size * world_size * t.accumulate
    reference = t.lr_batch or t.batch_size * t.accumulate
    factor = global_batch / reference if t.lr_scaling == "linear" else 1.0
    return t.lr * factor, global_batch, reference


def lr_factor(cfg: Config, steps_per_epoch: int):
    """Multiplier of the base lr at optimizer step ``i``: linear warmup, then step or cosine."""
    t = cfg.train
    warmup = int(t.warmup_epochs * steps_per_epoch)
    total = t.epochs * steps_per_epoch

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        if t.schedule == "cosine":
            progress = (i - warmup) / max(1, total - warmup)
            floor = t.min_lr / t.lr if t.lr else 0.0
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        epoch = i / steps_per_epoch
        return t.lr_gamma ** sum(epoch >= s for s in t.lr_steps)

    return factor


# config keys that --resume may change: the rest must equal the checkpoint's config
RESUMABLE = ("train.epochs", "train.eval_every", "train.log_every", "train.keep_last",
             "runtime.device", "runtime.threads", "runtime.dist_timeout", "data.workers",
             "data.root", "data.prepared", "work_dir", "test.", "recipe.")
# the options train's errors name, as a Python caller gives them
OPTIONS = {"resume": "resume=True", "overwrite": "overwrite=True", "work_dir": "work_dir"}
RUN_FILES = ("epoch_*.safetensors", "epoch_*.state.pt", BEST, LATEST, "log.jsonl", "config.yaml")


def last_line(error: Exception) -> str:
    """The message of an error raised in a DataLoader worker, without the worker's traceback
    that PyTorch puts in front of it when re-raising it in the main process."""
    text = str(error).strip().splitlines()[-1]
    return text.removeprefix(f"{type(error).__module__}.{type(error).__qualname__}: ")


class Trainer:
    """One training run in ``cfg.work_dir``, which it locks; a context manager that closes its
    loggers (the JSONL log and TensorBoard, opened last in ``__init__``) and the lock.

    A work dir that already holds a run is refused unless ``resume`` (continue it: the config
    may differ only in ``RESUMABLE`` keys) or ``overwrite`` (delete that run's files first).
    Nothing is written before these checks pass. Under torchrun every rank makes the same checks
    on the same files; rank 0 alone holds the lock and writes.
    """

    def __init__(self, cfg: Config, *, resume: bool = False, overwrite: bool = False):
        self.cfg = cfg
        self.work_dir = Path(cfg.work_dir)
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ActionrecError(f"cannot create work dir {self.work_dir}: {e.strerror}") from None
        self.device = use_runtime(cfg.runtime)
        self.dist = distributed.setup(self.device, cfg.runtime.dist_timeout)
        self.lock = WorkDirLock(self.work_dir) if self.dist.main else None
        try:
            self._setup(resume, overwrite)
        except BaseException:
            self._release()
            raise

    def _setup(self, resume: bool, overwrite: bool) -> None:
        cfg, t = self.cfg, self.cfg.train
        config_options(cfg)  # the model keys are checked before any data is read
        if t.sync_bn and self.device.type != "cuda":
            raise ConfigError("train.sync_bn=true: PyTorch's SyncBatchNorm runs on CUDA only; on "
                              "CPU set train.bn_eval=true (every process normalises by the same "
                              "running statistics) or train.sync_bn=false (each by its own batch)")
        if self.dist.restarts:
            log.info("torchrun restart %d: resuming from the last checkpoint", self.dist.restarts)
            resume, overwrite = True, False
        found = self._claim_run(resume, overwrite)
        seed_everything(t.seed, t.deterministic)
        self.amp = amp(cfg)
        self.classes = class_names(cfg)
        self.pairs = reversal_pairs(cfg)
        self._build_loaders()
        self._build_model()
        self.start_epoch, self.best, self.best_epoch = 0, -1.0, -1
        self.last_checkpoint: Path | None = None
        if found:
            self._resume(*found)
        elif resume:
            log.info("resuming: no checkpoint in %s, starting from scratch", self.work_dir)
        self.net = (distributed.replicate(self.model, self.device) if self.dist.distributed
                    else self.model)
        if self.dist.main:
            self._open_logs(found[1].get("log") if found else None)

    def _claim_run(self, resume: bool, overwrite: bool) -> tuple[Path, dict] | None:
        """The run to continue (weights, state), or None: a run already there is refused, or
        deleted by rank 0 with ``overwrite``; leftovers of an interrupted save are removed."""
        main = self.dist.main
        self.checkpoints = CheckpointManager(self.work_dir, self.cfg.train.keep_last)
        found = self.checkpoints.latest()
        if found and not resume:
            if not overwrite:
                raise ActionrecError(
                    f"{self.work_dir} already holds a training run (latest.json: epoch "
                    f"{found[1]['epoch'] + 1}); use {{resume}} to continue it, another "
                    "{work_dir}, or {overwrite} to delete it and start over", OPTIONS)
            distributed.barrier()  # every rank has read the run before rank 0 deletes it
            if main:
                self._delete_run()
            found = None
        if found:
            self._check_resumable(found[0])
        for stale in self.checkpoints.remove_temporaries() if main else ():
            log.info("removed %s, left by an interrupted save", stale.name)
        return found

    def _build_loaders(self) -> None:
        """This rank's share of the training list (and of the validation list, if any)."""
        cfg, t = self.cfg, self.cfg.train
        world, rank = self.dist.world_size, self.dist.rank
        self.train_set = build_dataset(cfg, "train")
        self.train_loader = build_loader(cfg, self.train_set, batch_size=t.batch_size, shuffle=True,
                                         num_replicas=world, rank=rank)
        if len(self.train_loader) == 0:
            raise ActionrecError(f"train list has {len(self.train_set)} videos, fewer than one "
                                 f"batch of {t.batch_size} for each of {world} process(es)")
        self.val_loader = None
        if cfg.data.val_list:
            val_set = build_dataset(cfg, "val")
            self.val_loader = build_loader(cfg, val_set, batch_size=t.batch_size, shuffle=False,
                                           num_replicas=world, rank=rank)

    def _build_model(self) -> None:
        """The model on its device, the optimizer at the lr scaled to the global batch, the
        schedule and the AMP scaler."""
        cfg, t = self.cfg, self.cfg.train
        self.model = model_from_config(cfg, len(self.classes))
        if t.sync_bn:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.model = self.model.to(self.device)
        self.model = in_layout(self.model, cfg)
        lr, global_batch, reference = scaled_lr(t, self.dist.world_size)
        log.info("%d process(es) x batch %d x accumulate %d = global batch %d; lr %g (train.lr %g "
                 "for a global batch of %d, %s scaling)", self.dist.world_size, t.batch_size,
                 t.accumulate, global_batch, lr, t.lr, reference, t.lr_scaling)
        groups = parameter_groups(self.model, t.weight_decay)
        self.optimizer = (torch.optim.SGD(groups, lr=lr, momentum=t.momentum)
                          if t.optimizer == "sgd" else torch.optim.Adam(groups, lr=lr))
        self.steps_per_epoch = math.ceil(len(self.train_loader) / t.accumulate)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor(cfg, self.steps_per_epoch))
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.amp and self.device.type == "cuda")

    def _open_logs(self, last: dict | None) -> None:
        """Rank 0's config.yaml, log.jsonl (made to agree with the last committed epoch's record
        ``last``) and TensorBoard writer."""
        atomic_write(self.work_dir / "config.yaml", dump_config(self.cfg).encode())
        self._reconcile_log(last)
        from torch.utils.tensorboard import SummaryWriter  # slow import: only when training

        # drop the events of an epoch that was interrupted before its checkpoint
        self.tb = SummaryWriter(str(self.work_dir / "tb"),
                                purge_step=self.start_epoch * len(self.train_loader) + 1)
        self.jsonl = open(self.work_dir / "log.jsonl", "a")  # closed by close()

    def _release(self) -> None:
        if self.lock:
            self.lock.release()

    def close(self) -> None:
        for logger in ("tb", "jsonl"):
            if hasattr(self, logger):
                getattr(self, logger).close()
        self._release()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- state -------------------------------------------------------------------------------------
    def _delete_run(self) -> None:
        for pattern in RUN_FILES:
            for path in self.work_dir.glob(pattern):
                path.unlink()
        shutil.rmtree(self.work_dir / "tb", ignore_errors=True)
        log.info("deleted the previous run in %s (overwrite)", self.work_dir)

    def _check_resumable(self, weights: Path) -> None:
        """Refuse a resume whose config differs from the checkpoint's in a key outside
        ``RESUMABLE``, listing every such key with both values."""
        saved, _ = read_metadata(weights)
        changed = [(key, old, new) for key, old, new in config_diff(saved, self.cfg)
                   if not key.startswith(RESUMABLE)]
        if changed:
            raise ActionrecError(
                f"{{resume}}: the config differs from the one {weights.name} was trained with in "
                + "; ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in changed)
                + f" (only {', '.join(RESUMABLE)} may change); start a new {{work_dir}} instead",
                OPTIONS)

    def _state(self, epoch: int, line: dict) -> dict:
        state = {"epoch": epoch, "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                 "rng": torch.get_rng_state(), "best": self.best, "best_epoch": self.best_epoch,
                 "log": line, "world_size": self.dist.world_size}
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def _resume(self, weights: Path, state: dict) -> None:
        saved_world = state.get("world_size", 1)
        if saved_world != self.dist.world_size:
            log.warning("resuming a run of %d process(es) with %d: the global batch and the "
                        "per-rank shares of each epoch change from here on", saved_world,
                        self.dist.world_size)
        load_weights(self.model, weights)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            torch.set_rng_state(state["rng"])
            if "cuda_rng" in state and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng"], self.device)
            self.best_epoch, self.best = self.checkpoints.reconcile_best(state["best_epoch"],
                                                                         state["best"])
        except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as e:
            said = str(e).splitlines()[0] if str(e) else repr(e)
            raise CheckpointError(f"the training state of {weights.name} does not fit this run "
                                  f"({type(e).__name__}: {said}); start a new work dir") from None
        self.start_epoch = state["epoch"] + 1
        self.last_checkpoint = weights
        log.info("resumed from %s (epoch %d done)", weights, state["epoch"] + 1)

    def _reconcile_log(self, last: dict | None) -> None:
        """``log.jsonl`` made to hold exactly the committed epochs: records of an epoch that was
        interrupted before its checkpoint go (it is trained again), the last committed epoch's
        record comes back from its state if the process died before writing it."""
        path = self.work_dir / "log.jsonl"
        records = []
        for i, line in enumerate(path.read_text().splitlines() if path.is_file() else [], 1):
            try:
                record = load_json(line, f"{path}:{i}")
            except InvalidInput:  # a line cut short by a kill
                continue
            if isinstance(record, dict):
                records.append(record)
        kept = [r for r in records if r.get("epoch", 0) <= self.start_epoch]
        if last is not None and not any(r == last for r in kept):
            kept.append(last)
        if kept != records:
            atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept).encode())

    # -- loop ----------------------------------------------------------------------------------------
    def fit(self) -> dict:
        t = self.cfg.train
        history = []
        for epoch in range(self.start_epoch, t.epochs):
            try:
                record = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            except NoReadableVideo as e:
                raise NoReadableVideo(f"training epoch {epoch + 1}, data.train_list "
                                      f"{self.cfg.data.train_list}: {last_line(e)}") from None
            validate = self.val_loader is not None and ((epoch + 1) % t.eval_every == 0
                                                        or epoch + 1 == t.epochs)
            failure = None
            if validate:
                try:
                    record.update({f"val_{k}": v for k, v in self.validate().items()})
                except NoReadableVideo as e:  # save the epoch just trained, then fail
                    failure = (f"validation after epoch {epoch + 1}: no video of "
                               f"data.val_list {self.cfg.data.val_list} could be read ({e})")
                except NonFiniteOutput as e:  # nothing of a diverged model is saved
                    raise TrainingDiverged(
                        f"validation after epoch {epoch + 1}: {e}; nothing of this epoch was "
                        f"saved, the last good checkpoint is {self.last_checkpoint or 'none'}"
                    ) from None
            # only validated epochs compete when there is a validation list
            metric = record.get("val_top1") if self.val_loader is not None else record["train_acc"]
            is_best = metric is not None and metric > self.best
            if is_best:
                self.best, self.best_epoch = metric, epoch + 1
            line = {"step": (epoch + 1) * self.steps_per_epoch, **record}
            if self.dist.main:
                self.last_checkpoint = self.checkpoints.save(
                    epoch, self.model, self.cfg, self.classes, self._state(epoch, line),
                    is_best=is_best)
                self._log(line, prefix="epoch/")
            else:
                self.last_checkpoint = self.checkpoints.paths(epoch)[0]
            history.append(record)
            if failure:
                raise ActionrecError(f"{failure}; epoch {epoch + 1} was saved first: "
                                     f"{self.last_checkpoint}")
            log.info("epoch %d/%d: %s", epoch + 1, t.epochs,
                     ", ".join(f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float)))
        return {"history": history, "best": self.best, "best_epoch": self.best_epoch,
                "checkpoint": self.last_checkpoint, "work_dir": self.work_dir}

    def _log(self, line: dict, prefix: str = "") -> None:
        """One JSONL line (``step`` and the record) and its scalars in TensorBoard (rank 0)."""
        self.jsonl.write(json.dumps(line) + "\n")
        self.jsonl.flush()
        for k, v in line.items():
            if isinstance(v, int | float) and k not in ("epoch", "step"):
                self.tb.add_scalar(prefix + k, v, line["step"])

    def train_mode(self) -> None:
        """The model in training mode; with ``train.bn_eval`` every BatchNorm normalises by its
        running statistics (its scale and shift still learn)."""
        self.model.train()
        if self.cfg.train.bn_eval:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def train_epoch(self, epoch: int) -> dict:
        t = self.cfg.train
        self.train_mode()
        self.train_loader.sampler.set_epoch(epoch)
        bad_log = BadSampleLog(log)
        total_loss, correct, seen = 0.0, 0, 0
        start = time.perf_counter()
        micro = len(self.train_loader)
        bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}/{t.epochs}", leave=False,
                   disable=distributed.progress_disabled())
        self.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(bar):
            bad_log.update(batch["bad"])
            clip, label = to_device(batch["clip"], self.device), batch["label"].to(self.device)
            step = (i + 1) % t.accumulate == 0 or i + 1 == micro
            # gradients are averaged over the ranks once per optimizer step, not per micro-batch
            no_sync = self.net.no_sync if self.net is not self.model and not step else None
            with no_sync() if no_sync else contextlib.nullcontext():
                with autocast(self.device, self.amp):
                    logits = self.net(clip)
                    loss = nn.functional.cross_entropy(logits.float(), label)
                loss_value = loss.item()  # read once for the check, the running mean and the log
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(
                        f"non-finite loss ({loss_value}) at epoch {epoch + 1}, step {i + 1}"
                        + (f" on rank {self.dist.rank}" if self.dist.distributed else "")
                        + "; the last good checkpoint is "
                        + str(self.last_checkpoint or 'none (first epoch)'))
                self.scaler.scale(loss / t.accumulate).backward()
            if step:
                if t.clip_grad:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), t.clip_grad)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
            n = len(label)
            total_loss += loss_value * n
            correct += (logits.argmax(1) == label).sum().item()
            seen += n
            rate = seen / (time.perf_counter() - start)
            lr = self.optimizer.param_groups[0]["lr"]
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}",
                            lr=f"{lr:.2e}", clips_s=f"{rate:.1f}")
            if (i + 1) % t.log_every == 0 and self.dist.main:
                self._log({"step": epoch * micro + i + 1, "epoch": epoch + 1, "loss": loss_value,
                           "lr": lr, "clips_per_s": rate * self.dist.world_size},
                          prefix="train/")
        # the epoch's record is over every rank's samples
        total_loss, correct, seen, bad = distributed.all_sum(
            [total_loss, correct, seen, bad_log.end_epoch()])
        return {"train_loss": total_loss / seen, "train_acc": correct / seen, "lr": lr,
                "clips_per_s": seen / (time.perf_counter() - start), "bad_samples": int(bad)}

    def validate(self) -> dict:
        scores = collect_scores(self.model, self.val_loader, self.device, amp=self.amp, desc="val")
        metrics = compute_metrics(scores.scores, scores.labels, self.classes, self.pairs)
        keys = ("top1", "top5", "mean_class_accuracy", "pair_accuracy")
        return {k: metrics[k] for k in keys if k in metrics}


def train(cfg: Config, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Train ``cfg``; Ctrl-C becomes an ``Interrupted`` error naming the last checkpoint, a rank
    lost under torchrun a ``LostPeer`` error."""
    with distributed.joint("training", cfg.runtime.dist_timeout), \
            Trainer(cfg, resume=resume, overwrite=overwrite) as trainer:
        try:
            return trainer.fit()
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted; last checkpoint: {trainer.last_checkpoint or 'none yet'}"
                              + (" (continue with {resume})" if trainer.last_checkpoint else ""),
                              OPTIONS) from None
