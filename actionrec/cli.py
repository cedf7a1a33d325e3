"""The ``actionrec`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from .errors import ActionrecError


class CliError(ActionrecError):
    """A command-line usage error."""


# -- data ------------------------------------------------------------------------------------------
def cmd_data_info(args) -> int:
    from .data.video import probe
    from .errors import VideoError

    rows, failed = [], 0
    for path in args.paths:
        try:
            rows.append(probe(path, template=args.template) if Path(path).is_dir() else probe(path))
        except VideoError as e:
            print(f"ERROR {e}", file=sys.stderr)
            failed += 1
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        print(f"{'frames':>7} {'fps':>7} {'width':>6} {'height':>6} {'codec':<8} path")
        for r in rows:
            print(f"{r.num_frames:>7} {r.fps:>7.2f} {r.width:>6} {r.height:>6} {r.codec:<8} {r.path}")
    return 1 if failed else 0


def check_entry(path: str, kind: str, num_frames: int | None, template: str) -> None:
    """Decode every frame of one list entry; raises VideoError with the reason if it is bad."""
    from .data.video import FrameFolderReader, VideoReader
    from .errors import VideoError

    if kind == "rawframes":
        with FrameFolderReader(path, template=template, num_frames=num_frames) as r:
            for i in range(r.num_frames):
                r.read([i])
        return
    with VideoReader(path) as r:
        reported = r.reported_frames
        decoded = r.count_decoded()
        if reported is not None and decoded < reported:
            raise VideoError(f"{path}: container reports {reported} frames but only {decoded} "
                             "decode (truncated or damaged file)")


def cmd_data_check(args) -> int:
    import os

    from .data.datasets import parse_list
    from .errors import VideoError

    if not os.path.isdir(args.root):
        raise CliError(f"{args.root}: data root not found")
    entries = parse_list(args.list, kind=args.kind)
    bad = 0
    for entry in tqdm(entries, desc="checking", unit="file", disable=not sys.stderr.isatty()):
        path = os.path.join(args.root, entry.path)
        try:
            check_entry(path, args.kind, entry.num_frames, args.template)
        except VideoError as e:
            bad += 1
            reason = str(e).removeprefix(f"{path}: ")
            print(f"BAD {path}: {reason}", flush=True)
    print(f"checked {len(entries)} entries of {args.list}: {len(entries) - bad} ok, {bad} bad")
    return 1 if bad else 0


def cmd_data_synth(args) -> int:
    from .data.synthetic import SynthSpec, generate

    spec = SynthSpec(videos=args.videos, frames=args.frames, size=args.size, seed=args.seed,
                     pairs=tuple(args.pairs))
    summary = generate(args.out, spec, workers=args.workers)
    print_synth_summary(args.out, summary)
    return 0


def print_synth_summary(out, summary: dict) -> None:
    print(f"synthetic reversal-pair dataset in {out}: {summary['videos']} h264 videos "
          f"({summary['train']} train / {summary['val']} val), {summary['frames']} frames of "
          f"{summary['size']}x{summary['size']}, seed {summary['seed']}")
    print(f"  {len(summary['classes'])} classes in {len(summary['reversal_pairs'])} time-reversal "
          "pairs: " + ", ".join(f"{summary['classes'][a]}/{summary['classes'][b]}"
                                for a, b in summary["reversal_pairs"]))
    print(f"  lists: {out}/train.txt, {out}/val.txt; label map: {out}/labels.txt")


# -- engine ----------------------------------------------------------------------------------------
def _config(args):
    from .config import load_config

    cfg = load_config(args.config, args.set or [])
    if getattr(args, "work_dir", None):
        cfg.work_dir = args.work_dir
    return cfg


def cmd_train(args) -> int:
    from .engine.train import train

    cfg = _config(args)
    result = train(cfg, resume=args.resume)
    print(f"best {'val top-1' if cfg.data.val_list else 'train acc'}: {100 * result['best']:.2f} % "
          f"(epoch {result['best_epoch']}); checkpoints in {result['work_dir']}")
    return 0


def cmd_test(args) -> int:
    from .engine.evaluate import format_metrics
    from .engine.inference import evaluate_checkpoint

    cfg = _config(args)
    metrics, paths = evaluate_checkpoint(cfg, args.checkpoint, out_dir=args.out)
    if args.json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "confusion"}, indent=2))
    else:
        print(format_metrics(metrics))
        print(f"views: {cfg.test.clips} clips x {cfg.test.crops} crops; skipped: "
              f"{len(metrics['skipped'])}")
        print("reports: " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_predict(args) -> int:
    from .engine.inference import predict_videos

    results = predict_videos(args.checkpoint, args.videos, topk=args.topk)
    if args.json:
        print(json.dumps([{"path": r.path, "error": r.error,
                           "top": [{"class": c, "prob": p} for c, p in r.top or []]}
                          for r in results], indent=2))
    for r in results:
        if r.error:
            print(f"ERROR {r.error}", file=sys.stderr)
        elif not args.json:
            print(r.path)
            for name, prob in r.top:
                print(f"  {prob:7.2%}  {name}")
    return 1 if any(r.error for r in results) else 0


def cmd_models(args) -> int:
    from .models.registry import describe_models

    print(describe_models())
    return 0


# -- analysis --------------------------------------------------------------------------------------
def _model_options(args) -> dict:
    from .config import parse_overrides

    return parse_overrides(args.opt or [])


def _build_for_analysis(name: str, args, options: dict | None = None):
    """The model and a random example input; a head on feature sequences (no ``backbone``
    option, StNet Table 1) gets ``(1, frames, in_features)`` and ignores ``--backbone/--size``."""
    from .models.registry import build_model, model_options

    options = _model_options(args) if options is None else options
    defaults = model_options(name)
    if "backbone" not in defaults:
        model = build_model(name, num_classes=args.classes, num_frames=args.frames, **options)
        return model, torch_randn(1, args.frames, options.get("in_features",
                                                              defaults["in_features"]))
    model = build_model(name, num_classes=args.classes, num_frames=args.frames,
                        backbone=args.backbone, **options)
    return model, torch_randn(1, model.input_frames, 3, args.size, args.size)


def torch_randn(*shape):
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


INPUT_DEFAULTS = {"backbone": "resnet50", "frames": 8, "size": 224, "classes": 174}


def _fill_input(args, like=None) -> None:
    """Unset ``--backbone/--frames/--size/--classes`` from a paper row ``like``, else defaults."""
    for key, default in INPUT_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, getattr(like, key) if like else default)


def _versus(paper: float | None, ours: float) -> str:
    return "-" if paper is None else f"{paper:g} ({100 * (ours / paper - 1):+.1f} % ours)"


def cmd_flops(args) -> int:
    from .analysis.flops import count_macs, count_params
    from .analysis.paper import rows_for
    from .models.registry import model_options

    papers = rows_for(args.model)
    _fill_input(args, papers[0] if papers else None)
    options = _model_options(args)
    model, example = _build_for_analysis(args.model, args, options)
    params, macs = count_params(model), count_macs(model, example)
    defaults = model_options(args.model)
    same = [r for r in papers if (r.backbone, r.frames, r.size, r.classes) ==
            (args.backbone, args.frames, args.size, args.classes)
            and {**defaults, **r.options} == {**defaults, **options}]
    if args.json:
        print(json.dumps({"model": args.model, "params": params, "macs": macs,
                          "frames": args.frames, "size": args.size, "classes": args.classes,
                          "paper": [{"source": r.source, "params_m": r.params_m, "gmacs": r.gmacs}
                                    for r in same]}))
        return 0
    shape = "x".join(map(str, example.shape[1:]))
    print(f"{args.model} ({args.backbone or 'features'}, input {shape}, {args.classes} classes): "
          f"{params / 1e6:.2f} M params, {macs / 1e9:.2f} GMACs per view (multiply-accumulates, "
          "the papers' FLOPs)")
    for r in same:
        print(f"  paper, {r.source} ({r.label}): params {_versus(r.params_m, params / 1e6)}, "
              f"GMACs {_versus(r.gmacs, macs / 1e9)}")
    return 0


def cmd_tables(args) -> int:
    from .analysis.paper import PAPER_ROWS, compare, render, rows_from

    rows = rows_from(args.source) if args.source else PAPER_ROWS
    if not rows:
        sources = sorted({r.source for r in PAPER_ROWS})
        raise ActionrecError(f"no paper rows from {args.source!r}; sources: {', '.join(sources)}")
    results = compare(rows)
    if args.json:
        print(json.dumps([{"source": r["row"].source, "label": r["row"].label,
                           "input": r["row"].describe_input(), "paper_params_m": r["row"].params_m,
                           "params_m": r["params_m"], "paper_gmacs": r["row"].gmacs,
                           "gmacs": r["gmacs"], "reading": r["row"].reading,
                           "unbuilt": r["row"].unbuilt} for r in results], indent=2))
    else:
        print(render(results))
    if args.markdown:
        _write_markdown(args, "Parameters and MACs: the papers' tables beside actionrec's models",
                        render(results, markdown=True))
    return 0


def _write_markdown(args, title: str, body: str) -> None:
    """``--markdown FILE``: the table under a title and the command line that wrote it."""
    path = Path(args.markdown)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\nWritten by `{args.command_line}`.\n\n{body}\n")
    print(f"\nwritten: {path}", file=sys.stderr)


def _bench_entries(args) -> list[tuple[str, str, object]]:
    """(model, input, build) to time: the named models at ``--frames/--size/--backbone``; with
    ``--all`` every registered model (or the named ones) at its paper input and at that common
    input (feature heads: paper input only); last the TSN-ResNet50 baseline. ``{shape}`` in an
    input is filled with the model's input shape (StNet takes N frames per segment)."""
    from .analysis.paper import build, default_row
    from .models.registry import MODELS, model_options

    def common(name):
        return lambda: _build_for_analysis(name, args)

    def paper(row):
        return lambda: build(row)

    everything = [name for name in sorted(MODELS)  # tsn at the baseline's input is the baseline
                  if name != "tsn" or (args.backbone, args.frames) != ("resnet50", args.baseline_frames)]
    entries = []
    for name in args.models or everything:  # cmd_bench: models named, or --all
        row = default_row(name)
        if args.all and row:
            entries.append((name, f"paper {row.describe_input()} ({row.source})", paper(row)))
        if "backbone" in model_options(name) or not args.all:
            entries.append((name, f"{args.backbone} {{shape}}", common(name)))
    baseline = argparse.Namespace(**{**vars(args), "frames": args.baseline_frames,
                                     "backbone": "resnet50"})
    entries.append((BASELINE, "resnet50 {shape}", lambda: _build_for_analysis("tsn", baseline, {})))
    return entries


BASELINE = "tsn (baseline)"


def cmd_bench(args) -> int:
    import torch

    from .analysis.benchmark import benchmark_models, matmul_gflops
    from .analysis.flops import count_macs
    from .analysis.report import markdown_table, text_table
    from .models.base import to_channels_last

    if not args.models and not args.all:
        raise ActionrecError("bench: name models to time, or --all")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ActionrecError(f"--device {args.device}: no CUDA device on this machine")
    _fill_input(args)
    device = torch.device(args.device)
    entries = _bench_entries(args)
    models, examples, macs = {}, {}, {}
    for name, shape, make in entries:
        model, example = make()
        key = (name, shape.format(shape="x".join(map(str, example.shape[1:]))))
        with torch.device("meta"):
            macs[key] = count_macs(*make())
        model = model.to(device)
        if args.layout == "channels_last":
            to_channels_last(model)
        example = torch_randn(args.batch, *example.shape[1:])
        models[key], examples[key] = model, example.to(device)
    seconds = benchmark_models(models, examples, device=device, rounds=args.rounds)
    matmul = matmul_gflops(device=device)
    base = next(key for key in models if key[0] == BASELINE)
    rows = [{"model": name, "input": shape, "latency_s": s, "videos_per_s": args.batch / s,
             "macs": macs[name, shape], "gflops_per_s": 2 * macs[name, shape] * args.batch / s / 1e9,
             "ratio_to_tsn_r50": s / seconds[base],
             "macs_ratio_to_tsn_r50": macs[name, shape] / macs[base]}
            for (name, shape), s in seconds.items()]
    machine = {"device": str(device), "threads": torch.get_num_threads(), "batch": args.batch,
               "layout": args.layout, "matmul_gflops": matmul,
               "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=2))
        return 0
    headers = ["model", "input", "latency s", "videos/s", "GMACs", "GFLOP/s", "% matmul",
               "x TSN-R50", "MACs x TSN"]
    cells = [[r["model"], r["input"], f"{r['latency_s']:.4f}", f"{r['videos_per_s']:.2f}",
              f"{r['macs'] / 1e9:.2f}", f"{r['gflops_per_s']:.1f}",
              f"{100 * r['gflops_per_s'] / matmul:.0f}", f"{r['ratio_to_tsn_r50']:.3f}",
              f"{r['macs_ratio_to_tsn_r50']:.3f}"] for r in rows]
    legend = (f"inference, batch {args.batch}, {args.layout}, device {machine['name']} "
              f"({device}), {machine['threads']} threads; fp32 matmul (2048^3) in this run: "
              f"{matmul:.1f} GFLOP/s. GMACs: multiply-accumulates per view (the papers' FLOPs); "
              "GFLOP/s = 2 x MACs x batch / latency; x TSN-R50 = latency / the baseline's.")
    print(text_table(headers, cells) + "\n\n" + legend)
    if args.markdown:
        _write_markdown(args, "Inference speed", f"{markdown_table(headers, cells)}\n\n{legend}")
    return 0


def cmd_diagnose(args) -> int:
    from .analysis.report import text_table
    from .analysis.temporal_order import diagnose, format_diagnosis

    cfg = _config(args)
    result = diagnose(cfg, args.checkpoint, seed=args.seed)
    if args.json:
        print(json.dumps({"num_videos": result["num_videos"], "skipped": result["skipped"],
                          "orders": {order: {k: m[k] for k in ("top1", "pair_accuracy") if k in m}
                                     for order, m in result["orders"].items()}}, indent=2))
        return 0
    print(f"{args.checkpoint}: {result['num_videos']} videos, {cfg.test.clips} clip(s) x "
          f"{cfg.test.crops} crop(s); frames of every view in order, reversed, shuffled, and the "
          "middle frame repeated")
    print(text_table(*format_diagnosis(result)))
    print("drop: accuracy lost against frames in order (points). A model that ignores frame order "
          "loses nothing to reversal or shuffling.")
    return 0


def cmd_export(args) -> int:
    from .engine.inference import load_checkpoint
    from .export import export_onnx, onnx_max_abs_diff

    cfg, names, model, _ = load_checkpoint(args.checkpoint, device="cpu")
    size = cfg.data.size
    example = torch_randn(args.batch, model.input_frames, 3, size, size)
    out = export_onnx(model, example, args.out)
    diff = onnx_max_abs_diff(out, model, example)
    print(f"wrote {out}: input clips (N, {model.input_frames}, 3, {size}, {size}) normalised, "
          f"output logits (N, {len(names)}); ONNX Runtime vs PyTorch max abs diff {diff:.2e}")
    return 0 if diff <= args.tolerance else 1


def _checkpoint_clip(checkpoint: str, video: str):
    """(config, class names, model on the CPU, first test view of ``video``) for a checkpoint."""
    from .data.build import build_dataset
    from .data.datasets import ListEntry
    from .engine.inference import load_checkpoint

    cfg, names, model, _ = load_checkpoint(checkpoint, device="cpu")
    sample = build_dataset(cfg, "test", entries=[ListEntry(video, 0)])[0]
    if sample["clip"] is None:
        raise CliError(sample["bad"][0][1])
    return cfg, names, model, sample["clip"][0]


def cmd_analyze_gst_channels(args) -> int:
    from .analysis.gst_channels import write_channel_report
    from .engine.inference import load_checkpoint

    _, _, model, _ = load_checkpoint(args.checkpoint, device="cpu")
    try:
        paths = write_channel_report(model, args.out)
    except ValueError as e:
        raise CliError(f"{args.checkpoint}: {e}") from None
    print(f"wrote {paths['png']} and {paths['csv']}")
    return 0


def cmd_analyze_frame_predictions(args) -> int:
    from .analysis.frame_predictions import frame_probabilities, write_frame_predictions

    cfg, names, model, clip = _checkpoint_clip(args.checkpoint, args.video)
    try:
        probs = frame_probabilities(model, clip)
    except ValueError as e:
        raise CliError(f"{args.checkpoint}: {e}") from None
    out = Path(args.out or Path(args.checkpoint).parent / f"frames_{Path(args.video).stem}.png")
    paths = write_frame_predictions(probs, names, out, top=args.top,
                                    title=f"{Path(args.video).name}: {cfg.model.name}")
    print(f"wrote {paths['png']} and {paths['csv']}")
    return 0


def cmd_features_extract(args) -> int:
    from .engine.features import extract_features

    cfg = _config(args)
    lists = extract_features(cfg, args.checkpoint, args.out, splits=tuple(args.splits))
    for split, path in lists.items():
        print(f"{split}: {path} ({len(path.read_text().splitlines())} feature files)")
    print(f"train a head on them with data.kind=features data.root={args.out} "
          "data.train_list=train.txt data.val_list=val.txt (e.g. model.name=txb)")
    return 0


def cmd_cam(args) -> int:
    from .analysis.cam import grad_cam, save_overlay, to_images

    cfg, names, model, clip = _checkpoint_clip(args.checkpoint, args.video)
    index = None
    if args.class_name is not None:
        if args.class_name not in names:
            raise CliError(f"--class {args.class_name!r} is not a class of this checkpoint; "
                           f"classes: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}")
        index = names.index(args.class_name)
    maps, index = grad_cam(model, clip, index)
    path = save_overlay(to_images(clip, maps), maps, args.out,
                        f"{Path(args.video).name}: {cfg.model.name}, class '{names[index]}'")
    print(f"wrote {path}: {len(maps)} maps for class '{names[index]}'")
    return 0


# -- demo ------------------------------------------------------------------------------------------


def cmd_demo(args) -> int:
    from .data.synthetic import SynthSpec, generate
    from .demo import DEMO_FRAMES, DEMO_PAIRS, DEMO_SIZE, format_rows, plot_accuracies, train_recipes

    work = Path(args.work_dir)
    synth = work / "synth"
    summary = generate(synth, SynthSpec(videos=args.videos, frames=DEMO_FRAMES, size=DEMO_SIZE,
                                        seed=args.seed, pairs=DEMO_PAIRS))
    print_synth_summary(synth, summary)
    overrides = [f"train.seed={args.seed}", *([f"train.epochs={args.epochs}"] if args.epochs
                                               else []), *(args.set or [])]
    rows = train_recipes(args.models, synth, work, overrides,
                         report=lambda text: print(text, flush=True))
    plot = plot_accuracies(rows, work / "accuracy.png")
    print("\nvalidation set, best checkpoint of each model (1 clip x 1 crop):")
    print(format_rows(rows))
    tsn = next((r for r in rows if r["model"].startswith("tsn-")), None)
    if tsn:
        print("\nTSN averages per-frame scores: it tells the pairs apart but not the two "
              "directions within a pair, so its reversal-pair accuracy stays near chance (50 %).")
        above = [r["model"] for r in rows if r is not tsn and r["pair"] >= tsn["pair"] + 0.1]
        below = [r["model"] for r in rows if r is not tsn and r["model"] not in above]
        print(f"at least 10 points above TSN on reversal pairs: {', '.join(above) or 'none'}"
              + (f"; NOT: {', '.join(below)}" if below else ""))
    print(f"\nplots:       {plot} (accuracies)")
    for r in rows:
        print(f"             {r['confusion_png']} ({r['model']} confusion)")
    print(f"checkpoints: {work}/<model>/best.safetensors; logs: {work}/<model>/log.jsonl, "
          f"TensorBoard: {work}/<model>/tb")
    print(f"next:        actionrec diagnose {work}/stm/config.yaml --checkpoint "
          f"{work}/stm/best.safetensors   (does a model use time?)")
    return 0


# -- parser ----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from .demo import DEMO_MODELS, DEMO_VIDEOS, RECIPES

    p = argparse.ArgumentParser(prog="actionrec", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="inspect, check and generate datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    info = dsub.add_parser("info", help="frames, fps, size and codec of videos or frame folders")
    info.add_argument("paths", nargs="+", metavar="PATH")
    info.add_argument("--template", default="img_{:05d}.jpg", help="file names in frame folders")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_data_info)

    check = dsub.add_parser("check", help="decode every entry of a list file, report the bad ones")
    check.add_argument("list", metavar="LIST")
    check.add_argument("--root", required=True, help="folder the list's paths are relative to")
    check.add_argument("--kind", choices=["video", "rawframes"], default="video")
    check.add_argument("--template", default="img_{:05d}.jpg", help="file names in frame folders")
    check.set_defaults(func=cmd_data_check)

    synth = dsub.add_parser("synth", help="generate the synthetic time-reversal-pair dataset")
    synth.add_argument("out", metavar="OUT")
    synth.add_argument("--videos", type=int, default=600, help="total number of videos")
    synth.add_argument("--frames", type=int, default=32)
    synth.add_argument("--size", type=int, default=64)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--pairs", type=int, nargs="+", default=list(range(5)),
                       help="reversal pairs to include: 0 move, 1 rotate, 2 grow, 3 appear, "
                            "4 approach")
    synth.add_argument("--workers", type=int, default=None, help="encoding processes")
    synth.set_defaults(func=cmd_data_synth)

    tr = sub.add_parser("train", help="train a model from a YAML config")
    tr.add_argument("config", metavar="CONFIG")
    tr.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="override config keys")
    tr.add_argument("--work-dir", help="output folder (default: the config's work_dir)")
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    tr.set_defaults(func=cmd_train)

    te = sub.add_parser("test", help="evaluate a checkpoint with the config's test protocol")
    te.add_argument("config", metavar="CONFIG")
    te.add_argument("--checkpoint", required=True)
    te.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="e.g. test.clips=10 test.crops=3")
    te.add_argument("--out", help="report folder (default: next to the checkpoint)")
    te.add_argument("--json", action="store_true")
    te.set_defaults(func=cmd_test)

    pr = sub.add_parser("predict", help="top-k classes of video files")
    pr.add_argument("videos", nargs="+", metavar="VIDEO")
    pr.add_argument("--checkpoint", required=True, help="an actionrec .safetensors checkpoint")
    pr.add_argument("--topk", type=int, default=5)
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=cmd_predict)

    def model_args(parser):
        parser.add_argument("--backbone", help="default resnet50 (flops: the paper's)")
        parser.add_argument("--frames", type=int, help="default 8 (flops: the paper's input)")
        parser.add_argument("--size", type=int, help="default 224 (flops: the paper's)")
        parser.add_argument("--classes", type=int, help="default 174 (flops: the paper's)")
        parser.add_argument("--opt", nargs="+", metavar="KEY=VALUE", help="model options")

    fl = sub.add_parser("flops", help="parameters and MACs per view of a model")
    fl.add_argument("model", metavar="NAME")
    model_args(fl)
    fl.add_argument("--json", action="store_true")
    fl.set_defaults(func=cmd_flops)

    tb = sub.add_parser("tables", help="every params/FLOPs row of the papers beside our counts")
    tb.add_argument("--source", help="only rows whose source starts with this, e.g. 'GST Table 2'")
    tb.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    tb.add_argument("--json", action="store_true")
    tb.set_defaults(func=cmd_tables)

    be = sub.add_parser("bench", help="inference latency of models, beside TSN-ResNet50")
    be.add_argument("models", nargs="*", metavar="NAME", help="default with --all: every model")
    be.add_argument("--all", action="store_true",
                    help="each model at its paper input and at the common input")
    model_args(be)
    be.add_argument("--batch", type=int, default=4)
    be.add_argument("--baseline-frames", type=int, default=8,
                    help="frames of the TSN-ResNet50 baseline row (default 8, the papers' TSN)")
    be.add_argument("--rounds", type=int, default=3, help="measurement rounds, models in turns")
    be.add_argument("--layout", choices=["channels_last", "contiguous"], default="channels_last")
    be.add_argument("--device", default="cpu")
    be.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    be.add_argument("--json", action="store_true")
    be.set_defaults(func=cmd_bench)

    dg = sub.add_parser("diagnose", help="does a model use time? accuracy with frames in order, "
                                          "reversed, shuffled, one frame repeated")
    dg.add_argument("config", metavar="CONFIG")
    dg.add_argument("--checkpoint", required=True)
    dg.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="override config keys")
    dg.add_argument("--seed", type=int, default=0, help="seed of the shuffled orders")
    dg.add_argument("--json", action="store_true")
    dg.set_defaults(func=cmd_diagnose)

    ex = sub.add_parser("export", help="export a checkpoint to ONNX, checked with ONNX Runtime")
    ex.add_argument("checkpoint", metavar="CHECKPOINT")
    ex.add_argument("--out", required=True, help="output .onnx file")
    ex.add_argument("--batch", type=int, default=2, help="batch of the example input")
    ex.add_argument("--tolerance", type=float, default=1e-4, help="max abs diff allowed")
    ex.set_defaults(func=cmd_export)

    fe = sub.add_parser("features", help="per-frame features of a dataset (StNet Table 1 heads)")
    fsub = fe.add_subparsers(dest="features_command", required=True, metavar="SUBCOMMAND")
    fx = fsub.add_parser("extract", help="dump pooled per-frame features of the config's lists")
    fx.add_argument("config", metavar="CONFIG")
    fx.add_argument("--checkpoint", required=True)
    fx.add_argument("--out", required=True)
    fx.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val", "test"])
    fx.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="override config keys")
    fx.set_defaults(func=cmd_features_extract)

    an = sub.add_parser("analyze", help="the papers' analyses of a trained model")
    asub = an.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    gc = asub.add_parser("gst-channels", help="BN scales of spatial vs temporal channels "
                                              "per GST block (GST Fig. 4)")
    gc.add_argument("checkpoint", metavar="CHECKPOINT")
    gc.add_argument("--out", default="gst_channels", help="output folder")
    gc.set_defaults(func=cmd_analyze_gst_channels)
    fp = asub.add_parser("frame-predictions", help="top classes per frame of one video "
                                                   "(GST Fig. 5)")
    fp.add_argument("checkpoint", metavar="CHECKPOINT")
    fp.add_argument("video", metavar="VIDEO")
    fp.add_argument("--out", help="output PNG (a CSV is written beside it)")
    fp.add_argument("--top", type=int, default=5)
    fp.set_defaults(func=cmd_analyze_frame_predictions)

    cam = sub.add_parser("cam", help="class activation maps over the sampled frames (StNet Fig. 4)")
    cam.add_argument("checkpoint", metavar="CHECKPOINT")
    cam.add_argument("video", metavar="VIDEO")
    cam.add_argument("--class", dest="class_name", help="class to explain (default: predicted)")
    cam.add_argument("--out", required=True, help="output PNG")
    cam.set_defaults(func=cmd_cam)

    models = sub.add_parser("models", help="list the registered models and their options")
    models.set_defaults(func=cmd_models)

    demo = sub.add_parser("demo", help="TSN and the four models trained in turn on the generated "
                                          "reversal pairs, compared (make demo)")
    demo.add_argument("--work-dir", default="work_dirs/demo")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--models", nargs="+", default=list(DEMO_MODELS), choices=sorted(RECIPES),
                      help="recipes of configs/demo/ to train, in turn (default: %(default)s)")
    demo.add_argument("--videos", type=int, default=DEMO_VIDEOS,
                      help="videos in the generated dataset (default: %(default)s)")
    demo.add_argument("--epochs", type=int, help="override every recipe's epochs")
    demo.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="override recipe keys")
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    from .runtime import tune_allocator

    tune_allocator()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.command_line = "actionrec " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except (ActionrecError, FileNotFoundError) as e:  # user errors: one line, no traceback
        print(f"actionrec: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
