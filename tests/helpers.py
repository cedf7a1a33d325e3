"""Helpers that test files share (fixtures live in the conftest.py files): synthetic action
videos, models with random BN statistics, a pickle that runs code, annotation files."""

from __future__ import annotations

import csv
import io

import numpy as np
import torch

from actionrec.data.synthetic import render_video

FPS = 25  # the frame rate of the videos ``scenes`` is written at


def scenes(labels, frames_each: int, size: int = 48):
    """Synthetic actions one after another (a generator: nothing is held)."""
    for k, label in enumerate(labels):
        yield from render_video(label, np.random.default_rng(k), frames=frames_each, size=size)


def randomised(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with random BN affine parameters and running statistics (seeded), in place: no
    BN at its initial value (a zero-init scale, unit statistics) hides a layer."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
            m.running_mean.uniform_(-0.2, 0.2, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
    return model


class Payload:
    """Unpickling this creates a file: a stand-in for code an attacker would run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def touch(path):
    """An empty file at ``path``, its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def kinetics_csv(rows, labelled=True, is_cc=True):
    """A Kinetics annotation CSV of ``rows`` as the dataset distributes it."""
    buf = io.StringIO()
    header = ["label"] * labelled + ["youtube_id", "time_start", "time_end", "split"] + ["is_cc"] * is_cc
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(list(row) + [0] * is_cc)
    return buf.getvalue()
