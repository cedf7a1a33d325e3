"""Shared fixtures: the real clips of ../shared/data and generated videos."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from actionrec.data.synthetic import SynthSpec, generate, write_video

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ACTIONREC_SHARED_DATA", REPO.parent / "shared" / "data"))

# The clips of ../shared/data/SOURCES.md with their true frame counts.
SHARED_CLIPS = {
    "mmaction2/demo_demo.mp4": 280,
    "paddlevideo/data_example.avi": 131,
    "decord/flipping_a_pancake.mkv": 310,
    "mmaction2/tests_data_test.mp4": 300,
    "mmaction2/tests_data_rawvideo_dataset_part_0.mp4": 32,
    "mmaction2/tests_data_test.avi": 164,
    "mmaction2/demo_demo_skeleton.mp4": 72,
}

INDEX_BITS = 8  # frames that encode their own index: up to 256 frames


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED / "SOURCES.md").is_file():
        pytest.fail(f"real test data not found at {SHARED}: clone the repo next to shared/ "
                    "or set ACTIONREC_SHARED_DATA")
    return SHARED


def index_frames(n: int, size: int = 64) -> np.ndarray:
    """``n`` frames whose index is written as 8 big black/white blocks (robust to compression)."""
    frames = np.full((n, size, size, 3), 128, np.uint8)
    block = size // 4
    for i in range(n):
        for b in range(INDEX_BITS):
            y, x = divmod(b, 4)
            frames[i, y * block : (y + 1) * block, x * block : (x + 1) * block] = 255 * ((i >> b) & 1)
    return frames


def decode_index(frame: np.ndarray) -> int:
    block = frame.shape[0] // 4
    value = 0
    for b in range(INDEX_BITS):
        y, x = divmod(b, 4)
        cell = frame[y * block + 2 : (y + 1) * block - 2, x * block + 2 : (x + 1) * block - 2]
        value |= int(cell.mean() > 128) << b
    return value


# name -> (file suffix, codec, encoder options): h264 with short GOPs and B-frames (seekable),
# mkv (no frame count in the container), XviD-style mpeg4 in AVI with B-frames (not seekable).
INDEX_VIDEO_KINDS = {
    "mp4-h264": (".mp4", "libx264", {"g": "10", "bf": "2", "crf": "10"}),
    "mkv-h264": (".mkv", "libx264", {"g": "12", "bf": "3", "crf": "10"}),
    "avi-mpeg4": (".avi", "mpeg4", {"g": "15", "bf": "2", "qscale": "2"}),
}


@pytest.fixture(scope="session")
def index_videos(tmp_path_factory) -> dict[str, tuple[Path, int]]:
    """Videos of 150 frames whose frame i shows the number i."""
    out = tmp_path_factory.mktemp("index_videos")
    n = 150
    frames = index_frames(n)
    videos = {}
    for name, (suffix, codec, options) in INDEX_VIDEO_KINDS.items():
        path = out / f"index{suffix}"
        write_video(path, frames, codec=codec, options=options)
        videos[name] = (path, n)
    return videos


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """A small synthetic dataset (40 videos of 16 frames at 32x32)."""
    out = tmp_path_factory.mktemp("synth_small")
    generate(out, SynthSpec(videos=40, frames=16, size=32, seed=3), workers=1)
    return out


def perturb_norms(model, seed: int = 0) -> None:
    """Every BatchNorm's scale, shift and running statistics drawn at random (in place): with
    the defaults, and zero-initialised last BNs, whole modules can add nothing to a test."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                for t, low, high in ((m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2),
                                     (m.running_mean, -0.2, 0.2), (m.running_var, 0.5, 1.5)):
                    t.copy_(torch.empty(t.shape).uniform_(low, high, generator=g))


def calibrate_norms(model, example, seed: int = 0) -> None:
    """Weights as a trained network has them (in place): ``perturb_norms``'s random BN scales
    and shifts (no zero-initialised scale hides a block), with the running statistics those of
    ``example``, so activations stay of order one. Leaves the model in eval mode."""
    import torch

    perturb_norms(model, seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: one batch sets the statistics
    with torch.no_grad():
        model.train()(example)
    for m in norms:
        m.momentum = 0.1
    model.eval()


@contextmanager
def torch_threads(n: int):
    """PyTorch computing on ``n`` threads inside the block (some of its kernel choices depend on
    the count: a test of one path must not depend on the machine's cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def sigint_default() -> None:
    """``preexec_fn`` of a child the test sends Ctrl-C: SIGINT as a terminal delivers it, also when
    the suite itself runs with SIGINT ignored (a background job of a non-interactive shell), which
    every child would inherit and Python would keep."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(capsys, *argv) -> tuple[int, str, str]:
    """``actionrec ARGV...`` in this process: (exit status, stdout, stderr)."""
    from actionrec.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tiny_config(synth: Path, work_dir: Path, *overrides: str):
    """TSN-R18, 4 frames of 32x32 on the small synthetic set: a 2-epoch run takes seconds."""
    from actionrec.config import read_config

    return read_config(None, [
        "model.name=tsn", "model.backbone=resnet18", "model.num_frames=4", "model.dropout=0.5",
        f"data.root={synth}", "data.train_list=train.txt", "data.val_list=val.txt",
        "data.label_map=labels.txt", "data.size=32", "data.short_side=32", "data.flip=false",
        "data.workers=0", "train.epochs=2", "train.batch_size=6", "train.lr=0.01",
        "train.schedule=step", "train.lr_steps=[1]", "train.deterministic=true",
        "test.batch_size=4", f"work_dir={work_dir}", *overrides])


@pytest.fixture(scope="session")
def trained_tsn(synth_small, tmp_path_factory) -> Path:
    """The best checkpoint of a tiny 2-epoch TSN run."""
    from actionrec.engine.train import train

    work = tmp_path_factory.mktemp("trained_tsn")
    train(tiny_config(synth_small, work))
    return work / "best.safetensors"


def edit_checkpoint(src: Path, dst: Path, *, tensors=None, config=None) -> Path:
    """A copy of an actionrec checkpoint with ``tensors(dict)`` and ``config(dict)`` applied to
    its weights and to the config in its metadata (each edits in place)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    weights = load_file(src)
    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
    values = json.loads(meta["config"])
    if tensors:
        tensors(weights)
    if config:
        config(values)
    save_file(weights, str(dst), metadata={**meta, "config": json.dumps(values)})
    return dst
