"""``actionrec train CONFIG``: train a model (resumable)."""

from __future__ import annotations

from .common import add_config, add_set, read_config


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config")
    add_config(p)
    add_set(p)
    p.add_argument("--work-dir", help="output folder (default: the config's work_dir)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--resume", action="store_true", help="continue from the last checkpoint "
                     "(the config may change only in epochs, evaluation, logging and workers)")
    how.add_argument("--overwrite", action="store_true",
                     help="delete the run already in the work dir and start over")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engine.distributed import is_main
    from ..engine.train import train

    cfg = read_config(args)
    result = train(cfg, resume=args.resume, overwrite=args.overwrite)
    if is_main():  # under torchrun, rank 0 reports for all
        what = "val top-1" if cfg.data.val_list else "train acc"
        print(f"best {what}: {100 * result['best']:.2f} % (epoch {result['best_epoch']}); "
              f"checkpoints in {result['work_dir']}")
    return 0
