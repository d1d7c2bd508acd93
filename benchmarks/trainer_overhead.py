"""Overhead of ``ravine.train.fit`` over a bare hand-written PyTorch loop.

Same problem (default ``digits-mlp``: 64-128-128-10 ReLU MLP on scikit-learn's
digits), same initial weights, same optimizer (ravine's registry ``adam``, which
is torch's Adam), same seeded shuffle, same epochs and batch size. Contenders,
interleaved in every repeat so machine load hits them alike:

- ``bare``: the minimal loop — shuffle, ``zero_grad``, forward, loss,
  ``backward``, ``step``; nothing recorded.
- ``bare_eval``: ``bare`` plus what ``fit`` measures besides the step: the loss
  value of every minibatch (``loss.item()``), and after every epoch the loss and
  metric on the whole training and validation splits (``model.eval()``,
  ``torch.no_grad()``; also once before training, fit's epoch 0), and the test
  split at the end. This is the hand-written
  loop that produces the same numbers.
- ``fit``: ``ravine.train.fit`` without an output folder (history in memory).
- ``fit_files``: ``fit`` writing checkpoints and metric files every epoch.

Reported: medians of ``--repeats`` runs (wall and process CPU time; the CPU
time and the minimum are less disturbed by other processes on a shared
machine), and the ratios fit / bare_eval (the trainer machinery; target ≤ 1.05)
and fit / bare (machinery plus the evaluations). Both loops run in one process with ``--threads`` torch threads
(default 1, so that other processes on a shared machine disturb less).

Usage::

    python benchmarks/trainer_overhead.py                   # JSON to benchmarks/results/trainer_overhead.json
    python benchmarks/trainer_overhead.py --epochs 5 --repeats 3 --out /tmp/overhead.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ravine import optim, problems
from ravine.train import fit
from ravine.utils import write_json


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) since ``start``."""
    return time.perf_counter() - start[0], time.process_time() - start[1]


def _bare(problem: str, seed: int, epochs: int, batch_size: int, lr: float,
          evaluate: bool) -> tuple[float, float]:
    """The hand-written loop; returns its (wall, CPU) time, problem build excluded."""
    inst = problems.get(problem).build(seed=seed)
    model, data, loss_fn = inst.model, inst.data, inst.loss_fn
    X, y = data.X_train, data.y_train
    opt = optim.create("adam", model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start = _clock()
    losses = []
    if evaluate:  # fit's epoch 0: the untrained model
        _eval(model, inst, X, y)
        _eval(model, inst, data.X_val, data.y_val)
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
            if evaluate:
                losses.append(loss.item())
        if evaluate:
            _eval(model, inst, X, y)
            _eval(model, inst, data.X_val, data.y_val)
    if evaluate:
        _eval(model, inst, data.X_test, data.y_test)
    return _since(start)


def _eval(model: torch.nn.Module, inst: Any, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        out = model(X)
        result = float(inst.loss_fn(out, y)), inst.metric_fn(out, y)
    model.train()
    return result


def _fit(problem: str, seed: int, epochs: int, batch_size: int, lr: float, files: bool) -> tuple[float, float]:
    inst = problems.get(problem).build(seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = _clock()
        fit(inst, "adam", lr=lr, epochs=epochs, batch_size=batch_size, seed=seed,
            out_dir=tmp if files else None, tensorboard=False)
        return _since(start)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write the JSON; returns the result dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="digits-mlp")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "trainer_overhead.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    common = (args.problem, args.seed, args.epochs, args.batch_size, args.lr)
    contenders: dict[str, Callable[[], tuple[float, float]]] = {
        "bare": lambda: _bare(*common, evaluate=False),
        "bare_eval": lambda: _bare(*common, evaluate=True),
        "fit": lambda: _fit(*common, files=False),
        "fit_files": lambda: _fit(*common, files=True),
    }
    for run in contenders.values():  # warm-up: lazy imports, allocator, first-call dispatch
        run()
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            w, c = run()
            wall[name].append(w)
            cpu[name].append(c)
    median = {name: statistics.median(values) for name, values in wall.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    best = {name: min(values) for name, values in wall.items()}
    result = {
        "benchmark": "trainer_overhead", "problem": args.problem, "optimizer": "adam", "lr": args.lr,
        "epochs": args.epochs, "batch_size": args.batch_size, "repeats": args.repeats, "threads": args.threads,
        "wall_seconds": wall, "cpu_seconds": cpu, "median_seconds": median, "median_cpu_seconds": median_cpu,
        "min_seconds": best,
        "ratio_fit_vs_bare_eval": median["fit"] / median["bare_eval"],
        "ratio_fit_vs_bare": median["fit"] / median["bare"],
        "ratio_fit_files_vs_bare_eval": median["fit_files"] / median["bare_eval"],
        "ratio_fit_vs_bare_eval_cpu": median_cpu["fit"] / median_cpu["bare_eval"],
        "ratio_fit_vs_bare_eval_min": best["fit"] / best["bare_eval"],
        "target_fit_vs_bare_eval": 1.05,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "processor": platform.processor(),
    }
    write_json(args.out, result)
    for name in contenders:
        print(f"{name:10s} median {median[name] * 1e3:8.1f} ms   min {best[name] * 1e3:8.1f} ms   "
              f"median CPU {median_cpu[name] * 1e3:8.1f} ms")
    print(f"fit / bare_eval = {result['ratio_fit_vs_bare_eval']:.3f} (median wall), "
          f"{result['ratio_fit_vs_bare_eval_min']:.3f} (min wall), "
          f"{result['ratio_fit_vs_bare_eval_cpu']:.3f} (median CPU);  fit / bare = {result['ratio_fit_vs_bare']:.3f}")
    return result


if __name__ == "__main__":
    main()
