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
    mp.spawn(_worker, args=(nproc, port, device, fn, args, os.getpid()), nprocs=nproc, join=True)


def die_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """End this process when ``parent_pid`` dies, even by SIGKILL (no orphaned ranks keep training).

    On Linux the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``,
    through ctypes; ``torch.multiprocessing`` sets nothing of the kind). Elsewhere, and as a
    fallback, a daemon thread polls ``os.getppid()`` every ``poll_s`` seconds.

    Example:
        >>> die_with_parent(os.getppid())  # doctest: +SKIP
    """
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="ravine-parent-watch", daemon=True).start()


def _worker(rank: int, nproc: int, port: int, device: str, fn: Callable[..., Any], args: tuple,
            parent_pid: int | None = None) -> None:
    if parent_pid is not None:
        die_with_parent(parent_pid)
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


class CPUSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    r"""Batch normalization with statistics over the *global* batch of every rank, on any device.

    ``torch.nn.SyncBatchNorm`` refuses CPU tensors (its kernels are CUDA-only), and ravine's
    data-parallel training runs on the CPU with gloo. This module all-reduces the per-channel
    sums Σx, Σx² and the count (``torch.distributed.nn.functional.all_reduce``, which has a
    backward), so training mode normalizes with the global mean μ and biased variance σ²:

    .. math:: y = \gamma\,(x - \mu)/\sqrt{\sigma^2 + \epsilon} + \beta,

    and the running statistics follow the global batch (unbiased variance, as BatchNorm). Without
    an initialized process group, or in eval mode, it is a plain BatchNorm.

    Example:
        >>> bn = CPUSyncBatchNorm(3)
        >>> bn(torch.randn(4, 3)).shape
        torch.Size([4, 3])
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        channels, dims = x.shape[1], [0, *range(2, x.dim())]
        count = x.new_full((1,), x.numel() // channels)
        stats = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        total, total_sq, n = stats[:channels], stats[channels:2 * channels], stats[-1]
        mean = total / n
        var = (total_sq / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - factor).add_(factor * mean.detach())
                unbiased = var.detach() * (n / (n - 1)).clamp_min(0.0) if float(n) > 1 else var.detach()
                self.running_var.mul_(1 - factor).add_(factor * unbiased)
        shape = [1, channels] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Every BatchNorm in ``module`` synchronized across ranks: ``torch.nn.SyncBatchNorm`` on CUDA,
    :class:`CPUSyncBatchNorm` elsewhere. Parameters and buffers are the same tensors (an optimizer
    built on the module keeps working); children are replaced in place, the root is returned.

    Example:
        >>> net = convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm1d(2)), torch.device("cpu"))
        >>> type(net[0]).__name__
        'CPUSyncBatchNorm'
    """
    if device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, CPUSyncBatchNorm):
        sync = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats)
        if module.affine:
            sync.weight, sync.bias = module.weight, module.bias
        if module.track_running_stats:
            sync.running_mean, sync.running_var = module.running_mean, module.running_var
            sync.num_batches_tracked = module.num_batches_tracked
        sync.train(module.training)
        return sync
    for name, child in module.named_children():
        converted = convert_sync_batchnorm(child, device)
        if converted is not child:
            setattr(module, name, converted)
    return module
