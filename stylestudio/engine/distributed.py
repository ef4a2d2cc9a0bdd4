"""One process or many: the rank/world of a run started by ``torchrun`` (or not), and sharding.

``torchrun --nproc_per_node N`` starts N copies of the same command with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. :func:`current_world`
reads them and joins the process group once (gloo on CPU, nccl on CUDA); without them it is a
world of one and nothing is initialised, so every caller can be written for the general case.
Metrics split samples with :func:`shard` and merge with :func:`gather_rows`; the trainer splits
its batch and lets DDP average gradients.
"""
from __future__ import annotations

import atexit
import gc
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def launched_size() -> int:
    """How many processes torchrun started (1 outside it), read without joining a process group."""
    return _env_int("WORLD_SIZE", 1)


def current_world(device: torch.device | str | None = None) -> World:
    """The world this process is part of; joins the process group on first use under torchrun."""
    size = launched_size()
    world = World(_env_int("RANK", 0), size, _env_int("LOCAL_RANK", 0))
    if size > 1 and not dist.is_initialized():
        dev = torch.device(device) if device is not None else torch.device("cpu")
        backend = "nccl" if dev.type == "cuda" and dist.is_nccl_available() else "gloo"
        dist.init_process_group(backend=backend)
        atexit.register(leave)
    return world


def leave() -> None:
    """Destroy the process group while the interpreter is still whole (at exit for
    :func:`current_world`'s group; the batch calls it when its run ends): left to interpreter
    shutdown, gloo's worker threads can still hold work objects whose tensors then need the GIL as
    it is torn down, and the process aborts ("terminate called without an active exception") after
    its results were written."""
    if dist.is_initialized():
        gc.collect()  # a DDP reducer or a collective's frame left in a cycle releases its pending work now
        dist.destroy_process_group()
        gc.collect()  # and whatever still held the group, so its worker threads are joined here


def process_device(requested: str | None, world: World) -> str | None:
    """Under torchrun each process on a GPU machine takes the GPU of its local rank."""
    if world.distributed and torch.cuda.is_available() and (requested in (None, "auto", "cuda")):
        torch.cuda.set_device(world.local_rank)
        return f"cuda:{world.local_rank}"
    return requested


def shard(n: int, world: World) -> range:
    """The sample indices this rank computes (round robin, so ranks get equal work)."""
    return range(world.rank, n, world.size)


def gather_rows(rows: np.ndarray, world: World) -> np.ndarray:
    """Concatenate every rank's rows (rank order) on every rank; a world of one returns ``rows``."""
    if not world.distributed:
        return rows
    parts: list[Any] = [None] * world.size
    dist.all_gather_object(parts, np.asarray(rows))
    return np.concatenate(parts, axis=0)


def collective_device() -> torch.device:
    """Where a tensor must be for a collective of this process group: nccl reduces and gathers
    CUDA tensors only (gloo: the CPU)."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank when ``flag`` is True on any. A time budget, a cancel or a *Finish now*
    is decided by each process on its own; ranks that stopped at different steps would wait
    forever in DDP's gradient all-reduce."""
    if not world.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()
