"""Training: SGD (or Adam) with warmup + step/cosine schedules, AMP, accumulation, clipping, resumable.

Reproducibility: every sample is seeded by ``(seed, epoch, index)`` and the shuffle order by
``(seed, epoch)``; the torch RNG (dropout) is saved in each checkpoint. In deterministic mode,
2 epochs straight and 1 epoch + ``--resume`` + 1 epoch give bit-identical weights.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..config import Config, dump_config
from ..data.build import build_dataset, build_loader, class_names, reversal_pairs
from ..data.datasets import BadSampleLog
from ..errors import ActionrecError, TrainingDiverged
from ..models.base import to_channels_last
from .build import model_from_config, seed_everything, select_device
from .checkpoint import CheckpointManager, load_weights
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


class Trainer:
    """One training run in ``cfg.work_dir``; a context manager that closes its loggers (the
    JSONL log and TensorBoard, opened last in ``__init__``)."""

    def __init__(self, cfg: Config, *, resume: bool = False):
        self.cfg = cfg
        self.work_dir = Path(cfg.work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        t = cfg.train
        seed_everything(t.seed, t.deterministic)
        self.device = select_device(t.device)
        self.amp = t.amp
        self.classes = class_names(cfg)
        self.pairs = reversal_pairs(cfg)
        self.train_set = build_dataset(cfg, "train")
        self.train_loader = build_loader(cfg, self.train_set, batch_size=t.batch_size, shuffle=True)
        if len(self.train_loader) == 0:
            raise ActionrecError(f"train list has {len(self.train_set)} videos, fewer than one "
                                 f"batch of {t.batch_size}")
        self.val_loader = None
        if cfg.data.val_list:
            val_set = build_dataset(cfg, "val")
            self.val_loader = build_loader(cfg, val_set, batch_size=t.batch_size, shuffle=False)
        self.model = model_from_config(cfg, len(self.classes)).to(self.device)
        if t.channels_last:
            self.model = to_channels_last(self.model)
        groups = parameter_groups(self.model, t.weight_decay)
        self.optimizer = (torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum)
                          if t.optimizer == "sgd" else torch.optim.Adam(groups, lr=t.lr))
        self.steps_per_epoch = math.ceil(len(self.train_loader) / t.accumulate)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor(cfg, self.steps_per_epoch))
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.amp and self.device.type == "cuda")
        self.checkpoints = CheckpointManager(self.work_dir, t.keep_last)
        self.start_epoch, self.best, self.best_epoch = 0, -1.0, -1
        self.last_checkpoint: Path | None = None
        (self.work_dir / "config.yaml").write_text(dump_config(cfg))
        if resume:
            self._resume()
        from torch.utils.tensorboard import SummaryWriter  # slow import: only when training

        self.tb = SummaryWriter(str(self.work_dir / "tb"))
        self.jsonl = open(self.work_dir / "log.jsonl", "a")  # closed by close()

    def close(self) -> None:
        self.tb.close()
        self.jsonl.close()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- state -------------------------------------------------------------------------------------
    def _state(self, epoch: int) -> dict:
        state = {"epoch": epoch, "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                 "rng": torch.get_rng_state(), "best": self.best, "best_epoch": self.best_epoch}
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def _resume(self) -> None:
        found = self.checkpoints.latest()
        if found is None:
            log.info("--resume: no checkpoint in %s, starting from scratch", self.work_dir)
            return
        weights, state = found
        load_weights(self.model, weights)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.start_epoch = state["epoch"] + 1
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.last_checkpoint = weights
        log.info("resumed from %s (epoch %d done)", weights, state["epoch"] + 1)

    # -- loop ----------------------------------------------------------------------------------------
    def fit(self) -> dict:
        t = self.cfg.train
        history = []
        for epoch in range(self.start_epoch, t.epochs):
            record = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            if self.val_loader is not None and ((epoch + 1) % t.eval_every == 0
                                                or epoch + 1 == t.epochs):
                record.update({f"val_{k}": v for k, v in self.validate().items()})
            metric = record.get("val_top1", record["train_acc"])
            is_best = metric > self.best
            if is_best:
                self.best, self.best_epoch = metric, epoch + 1
            self.last_checkpoint = self.checkpoints.save(
                epoch, self.model, self.cfg, self.classes, self._state(epoch), is_best=is_best)
            self._log(record, step=(epoch + 1) * self.steps_per_epoch, prefix="epoch/")
            history.append(record)
            log.info("epoch %d/%d: %s", epoch + 1, t.epochs,
                     ", ".join(f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float)))
        return {"history": history, "best": self.best, "best_epoch": self.best_epoch,
                "checkpoint": self.last_checkpoint, "work_dir": self.work_dir}

    def _log(self, record: dict, step: int, prefix: str = "") -> None:
        self.jsonl.write(json.dumps({"step": step, **record}) + "\n")
        self.jsonl.flush()
        for k, v in record.items():
            if isinstance(v, int | float) and k != "epoch":
                self.tb.add_scalar(prefix + k, v, step)

    def train_epoch(self, epoch: int) -> dict:
        t = self.cfg.train
        self.model.train()
        self.train_loader.sampler.set_epoch(epoch)
        bad_log = BadSampleLog(log)
        total_loss, correct, seen = 0.0, 0, 0
        start = time.perf_counter()
        micro = len(self.train_loader)
        bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}/{t.epochs}", leave=False,
                   disable=None)
        self.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(bar):
            bad_log.update(batch["bad"])
            clip, label = to_device(batch["clip"], self.device), batch["label"].to(self.device)
            with autocast(self.device, self.amp):
                logits = self.model(clip)
                loss = nn.functional.cross_entropy(logits.float(), label)
            loss_value = loss.item()  # read once for the check, the running mean and the log
            if not math.isfinite(loss_value):
                raise TrainingDiverged(
                    f"non-finite loss ({loss_value}) at epoch {epoch + 1}, step {i + 1}; the last "
                    f"good checkpoint is {self.last_checkpoint or 'none (first epoch)'}")
            self.scaler.scale(loss / t.accumulate).backward()
            if (i + 1) % t.accumulate == 0 or i + 1 == micro:
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
            if (i + 1) % t.log_every == 0:
                self._log({"epoch": epoch + 1, "loss": loss_value, "lr": lr, "clips_per_s": rate},
                          step=epoch * micro + i + 1, prefix="train/")
        return {"train_loss": total_loss / seen, "train_acc": correct / seen, "lr": lr,
                "clips_per_s": seen / (time.perf_counter() - start),
                "bad_samples": bad_log.end_epoch()}

    def validate(self) -> dict:
        scores = collect_scores(self.model, self.val_loader, self.device, amp=self.amp, desc="val")
        metrics = compute_metrics(scores.scores, scores.labels, self.classes, self.pairs)
        keys = ("top1", "top5", "mean_class_accuracy", "pair_accuracy")
        return {k: metrics[k] for k in keys if k in metrics}


def train(cfg: Config, *, resume: bool = False) -> dict:
    with Trainer(cfg, resume=resume) as trainer:
        return trainer.fit()
