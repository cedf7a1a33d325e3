"""Data parallelism on ``torch.distributed``, in processes started by ``torchrun``.

``torchrun --nproc_per_node=N -m actionrec train|test|diagnose ...`` starts N copies of the
command and gives each ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and
``TORCHELASTIC_RESTART_COUNT`` when it restarts failed workers). ``setup`` joins their process
group: NCCL where the process has a CUDA device (``cuda:LOCAL_RANK``), Gloo on CPU. Without
torchrun there is one process of rank 0 and nothing here does anything.

The rules the engine keeps, so that N processes compute what one would:

- the ranks split each epoch's order (``EpochSampler``): training gives each rank the same
  number of samples (the tail of the shuffled order is dropped, as ``drop_last`` drops it in one
  process); evaluation gives rank r the entries r, r + N, ... with no padding, and the scores are
  gathered (``gather_rows``) and put back in list order before any metric;
- every rank is seeded alike and draws its random numbers (dropout) alike, so the RNG state rank 0
  saves in a checkpoint is every rank's: all ranks resume from the same files;
- only rank 0 writes (checkpoints, logs, TensorBoard, reports, progress bars, printed results);
- every collective waits at most ``runtime.dist_timeout`` seconds: a rank that dies or hangs ends
  the job with ``LostPeer`` instead of leaving the others waiting forever.
- the ranks leave a command together (``joint``): none exits while another still works.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import ActionrecError

log = logging.getLogger(__name__)

# what a backend's message says when the other side of a collective went away or never came;
# when one receive times out, Gloo signals every pair of the group, and an operation that fails
# on another pair says "Application timeout caused pair closure" (its unbound_buffer.cc)
PEER_GONE = ("Timed out", "timed out", "Connection closed by peer", "Connection reset by peer",
             "Broken pipe", "Application timeout caused pair closure",
             "NCCL communicator was aborted", "watchdog")


class LostPeer(ActionrecError):
    """A collective failed because another rank died, hung or could not be reached."""


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    restarts: int = 0  # times torchrun has restarted the workers (--max-restarts)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ActionrecError(f"environment variable {name}={value!r}: expected an integer "
                             "(torchrun sets it)") from None


def context() -> Context:
    """This process's place in the job, from torchrun's environment (rank 0 of 1 without it)."""
    ctx = Context(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0),
                  _env_int("TORCHELASTIC_RESTART_COUNT", 0))
    if not 0 <= ctx.rank < ctx.world_size:
        raise ActionrecError(f"RANK={ctx.rank} is outside WORLD_SIZE={ctx.world_size}")
    return ctx


def is_main() -> bool:
    return context().main


def progress_disabled() -> bool | None:
    """tqdm's ``disable``: None (on where there is a terminal) on rank 0, True elsewhere."""
    return None if is_main() else True


def setup(device: torch.device, timeout_s: float) -> Context:
    """Join torchrun's process group (once per process) with the backend for ``device``; the
    other ranks' log records below WARNING are dropped and the rest carry their rank. The group
    is left at exit."""
    ctx = context()
    if not ctx.distributed or dist.is_initialized():
        return ctx
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = timedelta(seconds=timeout_s)
    store, _, _ = next(dist.rendezvous("env://", ctx.rank, ctx.world_size, timeout=timeout))
    # torchrun keeps one store for all restarts: under a prefix per attempt, restarted workers
    # never read the addresses of the workers they replace (Gloo: "Connection refused")
    store = dist.PrefixStore(f"actionrec/attempt_{ctx.restarts}", store)
    dist.init_process_group(backend, store=store, rank=ctx.rank, world_size=ctx.world_size,
                            timeout=timeout)
    atexit.register(dist.destroy_process_group)  # left when the command ends
    if not ctx.main:
        root = logging.getLogger()
        root.setLevel(logging.WARNING)
        for handler in root.handlers:
            handler.setFormatter(logging.Formatter(
                f"%(levelname)s rank {ctx.rank} %(name)s: %(message)s"))
    log.info("process group: %d processes (%s), this is rank %d on %s", ctx.world_size, backend,
             ctx.rank, device)
    return ctx


@contextlib.contextmanager
def joint(what: str, timeout_s: float):
    """The part of a command that all ranks run together (``what``: "training", ...).

    A backend's error about a missing peer becomes ``LostPeer`` naming this rank, ``what`` was
    being done and the timeout. On success every rank waits for the others at the end (a
    barrier): no rank leaves while another still works (rank 0 saving the last checkpoint), and
    Gloo's worker threads have let go of this rank's last collective's tensors before the
    interpreter shuts down. Without it a rank that exits straight after its last gather can
    abort in finalisation, a worker thread freeing the gather's tensors without the GIL
    ("terminate called without an active exception", SIGABRT: 1 in 30 runs of the 2-process
    test).
    """
    ctx = context()
    try:
        yield
        barrier()
    except RuntimeError as e:
        lines = str(e).strip().splitlines() or [""]
        if not (ctx.distributed and (isinstance(e, dist.DistError)
                                     or any(s in str(e) for s in PEER_GONE))):
            raise
        raise LostPeer(f"rank {ctx.rank} of {ctx.world_size}, {what}: lost contact with the other "
                       f"processes ({lines[-1].strip()}); one of them died or hangs (collectives "
                       f"wait runtime.dist_timeout={timeout_s:g} s): its own log says why"
                       ) from None


def replicate(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    """``model`` as a DDP replica: rank 0's weights broadcast to all, gradients averaged over the
    ranks in backward, written straight into the communication buckets (no copy)."""
    # the gradient of a 1x1 kernel in channels_last differs from its bucket only in the strides
    # of size-1 dimensions (the same bytes in the same order): DDP's warning about it is moot
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None, gradient_as_bucket_view=True)


def _backend_device() -> torch.device:
    """Where a collective's tensors must be: the process's GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(values: list[float]) -> list[float]:
    """Each value summed over the ranks (as float64); the values themselves in one process."""
    if not dist.is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_backend_device())
    dist.all_reduce(t)
    return t.tolist()


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of ``t`` (any count per rank, same trailing shape), rank 0's first, on
    the CPU; ``t`` itself in one process."""
    if not dist.is_initialized():
        return t
    device = _backend_device()
    world = dist.get_world_size()
    count = torch.tensor([len(t)], device=device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    padded = torch.zeros((max(counts), *t.shape[1:]), dtype=t.dtype, device=device)
    padded[: len(t)] = t.to(device)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:n] for p, n in zip(parts, counts, strict=True)]).cpu()


def gather_json(value) -> list:
    """Every rank's JSON-able ``value``, in rank order (no pickle: JSON bytes in a tensor)."""
    data = torch.frombuffer(bytearray(json.dumps(value).encode()), dtype=torch.uint8)
    if not dist.is_initialized():
        return [value]
    rows = gather_rows(data[:, None])  # one column: rows of any count per rank
    lengths = gather_rows(torch.tensor([[len(data)]]))
    values, start = [], 0
    for (n,) in lengths.tolist():
        values.append(json.loads(bytes(rows[start : start + n, 0].tolist())))
        start += n
    return values


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()

