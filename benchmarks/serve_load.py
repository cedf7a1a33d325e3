"""Load on a local ``actionrec serve``: a bounded number of concurrent clients post the same clip
to ``/v1/predict``; requests/s, p50/p95 latency, the answers by status, and the server's RSS
after a warm-up and after each round (memory must not grow from round to round).

    python benchmarks/serve_load.py [--checkpoint CKPT] [--clip VIDEO] [--requests 48]
        [--concurrency 4] [--rounds 2] [--workers 1] [--queue 8] [--timeline]

Without ``--checkpoint`` the server gets the demo recipe's TSN-ResNet18 (8 frames, 32x32) with
fresh weights (load does not depend on what the weights learnt); without ``--clip``, a generated
4 s clip at 64x64. The server runs as ``actionrec serve`` in its own process on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from actionrec.config import read_config
from actionrec.data.synthetic import CLASSES, render_video, write_video
from actionrec.engine.build import model_from_config
from actionrec.engine.checkpoint import save_weights
from actionrec.report.tables import text_table
from actionrec.serve.local import local_server

RECIPE = Path(__file__).resolve().parents[1] / "actionrec/configs/demo/tsn_r18_synth.yaml"


def fresh_checkpoint(folder: Path) -> Path:
    cfg = read_config(RECIPE)
    path = folder / "tsn_r18_fresh.safetensors"
    save_weights(path, model_from_config(cfg, len(CLASSES)), cfg, list(CLASSES))
    return path


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def post(url: str, body: bytes) -> tuple[int, float]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=600) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint")
    p.add_argument("--clip")
    p.add_argument("--requests", type=int, default=48, help="per round")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--queue", type=int, default=8)
    p.add_argument("--timeline", action="store_true", help="ask for the timeline as well")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        checkpoint = Path(args.checkpoint) if args.checkpoint else fresh_checkpoint(folder)
        clip = Path(args.clip) if args.clip else folder / "clip.mp4"
        if not args.clip:
            write_video(clip, render_video(0, np.random.default_rng(0), frames=100, size=64))
        body = clip.read_bytes()
        with local_server(checkpoint, "--workers", str(args.workers), "--queue",
                          str(args.queue)) as (url, proc):
            url += "/v1/predict" + ("?timeline=true" if args.timeline else "")
            for _ in range(3):  # warm-up: first requests allocate the model's buffers
                post(url, body)
            rows, rss = [], [rss_mib(proc.pid)]
            for k in range(args.rounds):
                start = time.perf_counter()
                with ThreadPoolExecutor(args.concurrency) as pool:
                    answers = list(pool.map(lambda _: post(url, body), range(args.requests)))
                wall = time.perf_counter() - start
                rss.append(rss_mib(proc.pid))
                ok = [t for s, t in answers if s == 200]
                rows.append([str(k + 1), str(args.requests), str(len(ok)),
                             str(sum(s == 503 for s, _ in answers)),
                             str(sum(s not in (200, 503) for s, _ in answers)),
                             f"{len(ok) / wall:.2f}",
                             f"{1e3 * np.percentile(ok, 50):.0f}" if ok else "-",
                             f"{1e3 * np.percentile(ok, 95):.0f}" if ok else "-",
                             f"{rss[-2]:.0f}", f"{rss[-1]:.0f}"])
    print(f"actionrec serve: {checkpoint.name}, clip {clip.name} ({len(body) / 1024:.0f} KiB), "
          f"{args.workers} worker(s), queue {args.queue}, {args.concurrency} concurrent clients"
          + (", timeline" if args.timeline else ""))
    print(text_table(["round", "requests", "200", "503", "other", "req/s", "p50 ms", "p95 ms",
                      "RSS before MiB", "RSS after MiB"], rows))
    print(f"RSS growth over the rounds after the first: {rss[-1] - rss[1]:+.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
