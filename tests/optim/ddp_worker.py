"""Run every second-order and line-search optimizer on 2 gloo ranks, and once on the full batch.

Used by ``test_distributed.py`` (one launch for all optimizers, to keep CI time down):
``python ddp_worker.py OUT.pt``. Each rank holds half the rows of a nonlinear least-squares
problem r(w) = tanh(X w) − y; it writes the parameters every optimizer reached after a few
steps; the parent adds the one-process full-batch run.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

NAMES = ["newton", "newton-cg", "bfgs", "lbfgs", "gauss-newton", "levenberg", "levenberg-marquardt",
         "line-search-gd"]
STEPS = 3


def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    y = torch.tanh(X @ torch.tensor([0.5, -1.0, 0.8], dtype=torch.float64)) + 0.05 * torch.randn(
        8, generator=gen, dtype=torch.float64)
    return X, y


def run_all(X: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    import ravine.optim

    out = {}
    for name in NAMES:
        w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        opt = ravine.optim.create(name, [w])
        kind = ravine.optim.info(name).closure

        def residual():
            return torch.tanh(X @ w) - y

        def graph():
            return 0.5 * residual().pow(2).mean()

        def loss():
            opt.zero_grad()
            value = 0.5 * residual().pow(2).mean()
            if torch.is_grad_enabled():
                value.backward()
            return value

        closure = {"residual": residual, "graph": graph, "loss": loss}[kind]
        for _ in range(STEPS):
            opt.step(closure)
        out[name] = w.detach().clone()
    return out


def batchnorm_stats(X: torch.Tensor, distributed: bool) -> dict[str, torch.Tensor]:
    """Running statistics and input gradient of a BatchNorm net after two training forwards."""
    from ravine.train.distributed import convert_sync_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4, dtype=torch.float64), torch.nn.BatchNorm1d(4, dtype=torch.float64))
    if distributed:
        net = convert_sync_batchnorm(net, torch.device("cpu"))
    x = X.clone().requires_grad_(True)
    for _ in range(2):
        out = net(x)
    (out ** 3).sum().backward()
    return {"running_mean": net[1].running_mean.clone(), "running_var": net[1].running_var.clone(),
            "out": out.detach(), "x_grad": x.grad.clone(), "type": type(net[1]).__name__}


def rank_main(rank: int, world: int, port: int, path: str) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        X, y = data()
        rows = slice(rank * 4, rank * 4 + 4)
        torch.save({**run_all(X[rows], y[rows]), "batchnorm": batchnorm_stats(X[rows], True)}, f"{path}.rank{rank}")
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    out_path = sys.argv[1]
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    mp.spawn(rank_main, args=(2, free_port, out_path), nprocs=2)
    torch.save({"ranks": [torch.load(f"{out_path}.rank{r}") for r in range(2)], "single": {**run_all(*data()), "batchnorm": batchnorm_stats(data()[0], False)}},
               out_path)
