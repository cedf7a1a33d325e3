"""The demo: TSN and the papers' four models trained one after the other on the generated
reversal-pair dataset (``actionrec demo``, ``make demo``), and the same comparison at a larger
scale (``benchmarks/synthetic_accuracy.py``).

Each model trains with its recipe in ``actionrec/configs/demo/<name>_<backbone>_synth.yaml``
(package data: ``pip install .`` ships them); validation top-1 picks its best checkpoint, which
is scored on the test split (videos that neither training nor that choice saw): top-1 over all
classes, and reversal-pair accuracy -- the share of videos scored above their time-reversed twin
class, 50 % by construction for any model that ignores frame order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent / "configs" / "demo"
RECIPES = {path.name.split("_r")[0]: path for path in sorted(CONFIGS.glob("*_synth.yaml"))}
DEMO_MODELS = ("tsn", "stm", "gst", "stnet", "msti")  # the baseline and the papers' four
# the generated set: move and rotate pairs (4 classes); the recipes crop 32x32. On all 5 pairs the
# 2D models also learn direction in 8 epochs, MSTI-Net's from-scratch 3D ResNet did not in 16.
DEMO_VIDEOS, DEMO_FRAMES, DEMO_SIZE, DEMO_PAIRS = 480, 32, 32, (0, 1)


def run_demo(work: Path, *, models: Sequence[str] = DEMO_MODELS, videos: int = DEMO_VIDEOS,
             seed: int = 0, epochs: int | None = None, overrides: Sequence[str] = (),
             report=print) -> list[dict]:
    """``actionrec demo``: generate the dataset in ``work/synth``, train and score each model's
    recipe in turn, plot the accuracies; ``report`` gets every line to show. One row per model.
    A demo always starts afresh: it replaces the dataset and runs it made in ``work`` before."""
    from .data.synthetic import SynthSpec, format_summary, generate

    synth = work / "synth"
    summary = generate(synth, SynthSpec(videos=videos, frames=DEMO_FRAMES, size=DEMO_SIZE,
                                        seed=seed, pairs=DEMO_PAIRS), overwrite=True)
    report(format_summary(synth, summary))
    overrides = [f"train.seed={seed}", *([f"train.epochs={epochs}"] if epochs else []), *overrides]
    rows = train_recipes(list(models), synth, work, overrides, report=report)
    plot = plot_accuracies(rows, work / "accuracy.png")
    report("\ntest set, best checkpoint of each model by validation top-1 (1 clip x 1 crop):")
    report(format_rows(rows))
    if any(r["model"].startswith("tsn-") for r in rows):
        report(verdict(rows))
    report(f"\nplots:       {plot} (accuracies)")
    for r in rows:
        report(f"             {r['confusion_png']} ({r['model']} confusion)")
    report(f"checkpoints: {work}/<model>/best.safetensors; logs: {work}/<model>/log.jsonl, "
           f"TensorBoard: {work}/<model>/tb")
    report(f"next:        actionrec diagnose {work}/stm/config.yaml --checkpoint "
           f"{work}/stm/best.safetensors   (does a model use time?)")
    return rows


def verdict(rows: list[dict]) -> str:
    """Which models beat TSN (a row of ``rows``) by at least 10 points of reversal-pair accuracy."""
    tsn = next(r for r in rows if r["model"].startswith("tsn-"))
    above = [r["model"] for r in rows if r is not tsn and r["pair"] >= tsn["pair"] + 0.1]
    below = [r["model"] for r in rows if r is not tsn and r["model"] not in above]
    return ("\nTSN averages per-frame scores: it tells the pairs apart but not the two directions "
            "within a pair, so its reversal-pair accuracy stays near chance (50 %).\n"
            f"at least 10 points above TSN on reversal pairs: {', '.join(above) or 'none'}"
            + (f"; NOT: {', '.join(below)}" if below else ""))


def train_recipes(models: list[str], synth: Path, work: Path, overrides: Sequence[str] = (),
                  *, report=print) -> list[dict]:
    """Train and evaluate each model's recipe on the dataset in ``synth``; one row per model.
    ``report`` gets the table so far after each model."""
    from .config import read_config
    from .data.build import class_names
    from .engine.build import model_from_config
    from .engine.inference import evaluate_checkpoint
    from .engine.train import train
    from .report.flops import count_params

    rows = []
    for name in models:
        cfg = read_config(RECIPES[name], [f"data.root={synth}", f"work_dir={work / name}",
                                          *overrides])
        report(f"\n[{len(rows) + 1}/{len(models)}] training {name}-{cfg.model.backbone} "
               f"({cfg.model.num_frames} frames, {cfg.data.size}x{cfg.data.size}, "
               f"{cfg.train.epochs} epochs) ...")
        start = time.perf_counter()
        result = train(cfg, overwrite=True)
        minutes = (time.perf_counter() - start) / 60
        checkpoint = result["work_dir"] / "best.safetensors"
        metrics, paths = evaluate_checkpoint(cfg, checkpoint)
        params = count_params(model_from_config(cfg, len(class_names(cfg))))
        rows.append({"model": f"{name}-{cfg.model.backbone}", "params_m": params / 1e6,
                     "top1": metrics["top1"], "pair": metrics["pair_accuracy"],
                     "identity": metrics["pair_identity_accuracy"], "minutes": minutes,
                     "checkpoint": checkpoint, "confusion_png": paths["confusion_png"]})
        report(format_rows(rows))
    return rows


def format_rows(rows: list[dict]) -> str:
    from .report.tables import text_table

    headers = ["model", "params M", "top-1 %", "reversal-pair %", "pair identity %", "train min"]
    return text_table(headers, [[r["model"], f"{r['params_m']:.2f}", f"{100 * r['top1']:.1f}",
                                 f"{100 * r['pair']:.1f}", f"{100 * r['identity']:.1f}",
                                 f"{r['minutes']:.1f}"] for r in rows])


def plot_accuracies(rows: list[dict], path: Path) -> Path:
    """Bars of reversal-pair and top-1 accuracy per model, with the 50 % line of order-blind models."""
    from .report.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2, 3.5))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [100 * r["pair"] for r in rows], 0.4, label="reversal-pair")
    ax.bar([i + 0.2 for i in x], [100 * r["top1"] for r in rows], 0.4, label="top-1")
    ax.axhline(50, color="gray", linestyle="--", linewidth=1, label="order-blind (pairs)")
    ax.set_xticks(list(x), [r["model"] for r in rows])
    ax.set_ylabel("test accuracy %")
    ax.set_ylim(0, 100)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
