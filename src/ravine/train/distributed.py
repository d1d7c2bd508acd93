"""Data-parallel training with ``torch.distributed`` (DDP): launch, shard, reduce.

Every process holds the whole (small, in-memory) data set and draws the same
shuffled global minibatch from the same seed; rank r trains on its contiguous
slice of it, and ``DistributedDataParallel`` averages the gradients. Because
DDP averages per-rank *means*, each rank scales its loss by
``n_r · world / B`` before ``backward`` so the update equals the one of the
global batch mean even when ``B`` is not divisible by the world size:

    (1/W) Σ_r (n_r W / B) ∇ mean_r = (1/B) Σ_r n_r ∇ mean_r = ∇ mean over the batch.

Launching: :func:`launch` spawns N processes with ``torch.multiprocessing``
(gloo on CPU, nccl on CUDA). Under ``torchrun`` the environment variables
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` are already set and
:func:`init_from_env` joins that group instead. DDP itself comes from PyTorch;
ravine only writes the shard arithmetic and the launch glue.

Example:
    >>> shard(torch.arange(5), rank=1, world=2)
    tensor([2, 3, 4])
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ravine.errors import RavineError


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the current process group, ``(0, 1)`` outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(indices: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous slice of a global minibatch (sizes differ by at most 1)."""
    n = len(indices)
    return indices[rank * n // world:(rank + 1) * n // world]


def reduce_mean(local_mean: torch.Tensor, n_local: int, n_global: int) -> torch.Tensor:
    """The global batch mean from each rank's mean over ``n_local`` samples (an all-reduce)."""
    total = local_mean.detach() * n_local
    dist.all_reduce(total)
    return total / n_global


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (e.g. its RNG state), in rank order."""
    _, size = world()
    if size == 1:
        return [obj]
    out: list[Any] = [None] * size
    dist.all_gather_object(out, obj)
    return out


def backend_for(device: torch.device) -> str:
    """``"nccl"`` for CUDA devices, ``"gloo"`` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def init_from_env(device: torch.device) -> bool:
    """Join the process group described by torchrun's environment variables.

    Returns True when a group with more than one process was joined (or already
    exists), False when the environment describes a single process.
    """
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or "RANK" not in os.environ:
        return False
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", os.environ["RANK"])) % torch.cuda.device_count())
    dist.init_process_group(backend_for(device), timeout=timedelta(minutes=10))
    return True


def free_port() -> int:
    """A TCP port that was free a moment ago, for ``MASTER_PORT``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(nproc: int, fn: Callable[..., Any], *args: Any, device: str = "cpu") -> None:
    """Run ``fn(*args)`` in ``nproc`` processes joined in one process group.

    ``fn`` must be importable (a module-level function) because the processes
    are started with the ``spawn`` method. Each process sees torchrun's
    environment variables and an initialised group; on CPU each gets
    ``cpu_count // nproc`` threads so the processes do not oversubscribe cores.

    Example:
        >>> launch(2, my_module.train_one, config)  # doctest: +SKIP
    """
    import torch.multiprocessing as mp

    if nproc < 1:
        raise RavineError(f"Invalid nproc: {nproc!r} (allowed: integer >= 1)")
    port = free_port()
    mp.spawn(_worker, args=(nproc, port, device, fn, args), nprocs=nproc, join=True)


def _worker(rank: int, nproc: int, port: int, device: str, fn: Callable[..., Any], args: tuple) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(nproc),
                       "LOCAL_WORLD_SIZE": str(nproc), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    dist.init_process_group(backend_for(dev), rank=rank, world_size=nproc, timeout=timedelta(minutes=10))
    try:
        fn(*args)
        # Every rank finishes its collectives before any tears gloo down: a rank that exits
        # while a peer is still sending aborts ("terminate called without an active exception").
        dist.barrier()
    finally:
        dist.destroy_process_group()
