"""Batched runs vs one run at a time, and per-run time vs scikit-learn's ``MLPClassifier``; one torch thread.

Three measurements, side by side in one process, median of ``--repeats``:

1. ``ravine compare`` defaults (six first-order optimizers on ``digits-mlp``,
   the problem's epochs) batched vs ``sequential=True`` — target ≥ 2.5×.
2. 16 learning rates of Adam on ``digits-mlp`` (``fit_batched`` with 16 runs vs
   16 calls of ``ravine.train.fit``) — target ≥ 3×.
3. Per-run time of (2)'s batch vs ``MLPClassifier(solver="adam")`` with the same
   budget (64-128-128-10, batch 32, same epochs, ``tol=0``) — target ≤ 0.5×.

Also the engine alone: seconds per run-step at N = 1, 6, 16 runs
(``fit_batched``, whole-split evaluation each epoch included). Every timing is
also taken in CPU seconds of this process (``ratios_cpu``), which move less than
wall seconds when other jobs share the cores; the load average is recorded.

Usage::

    python benchmarks/batched_runs.py                      # JSON to benchmarks/results/batched_runs.json
    python benchmarks/batched_runs.py --repeats 1 --epochs 5 --out /tmp/b.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch


_CPU: dict[str, list[float]] = {}


def _timed(fn: Any, key: str = "") -> float:
    """Wall seconds of ``fn()``; its CPU seconds go to ``_CPU[key]`` (steadier when other jobs share the cores)."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    _CPU.setdefault(key, []).append(time.process_time() - cpu)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default: the problem's (25)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "batched_runs.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    from ravine import problems
    from ravine.compare import compare
    from ravine.train import fit
    from ravine.train.batched import RunConfig, fit_batched

    epochs = args.epochs or problems.get("digits-mlp").epochs
    lrs = [float(v) for v in np.geomspace(1e-4, 3e-2, 16)]
    rows: dict[str, list[float]] = {k: [] for k in (
        "compare_batched", "compare_sequential", "lrs16_batched", "lrs16_sequential", "sklearn_one_run",
        "engine_n1", "engine_n6", "engine_n16")}
    inst = problems.get("digits-mlp").build(seed=0)
    steps_per_epoch = -(-len(inst.data.X_train) // 32)
    d = inst.data
    # warm-up: imports, allocator, first-call dispatch
    compare("digits-mlp", epochs=1, device="cpu")
    fit_batched("digits-mlp", ["sgd", "adam"], epochs=1, device="cpu")
    for _ in range(args.repeats):
        rows["compare_batched"].append(_timed(lambda: compare("digits-mlp", epochs=epochs, device="cpu"),
                                               "compare_batched"))
        rows["compare_sequential"].append(_timed(lambda: compare("digits-mlp", epochs=epochs, device="cpu",
                                                                 sequential=True), "compare_sequential"))
        rows["lrs16_batched"].append(_timed(lambda: fit_batched(
            "digits-mlp", [RunConfig("adam", lr=lr) for lr in lrs], epochs=epochs, device="cpu"), "lrs16_batched"))
        rows["lrs16_sequential"].append(_timed(lambda: [fit("digits-mlp", "adam", lr=lr, epochs=epochs, device="cpu",
                                                            tensorboard=False) for lr in lrs], "lrs16_sequential"))
        clf = MLPClassifier(hidden_layer_sizes=(128, 128), activation="relu", alpha=0.0, batch_size=32,
                            learning_rate_init=1e-3, max_iter=epochs, shuffle=True, random_state=0, tol=0.0,
                            n_iter_no_change=epochs + 1, solver="adam")
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            rows["sklearn_one_run"].append(_timed(lambda: clf.fit(d.X_train.numpy(), d.y_train.numpy()),
                                                     "sklearn_one_run"))
        for n in (1, 6, 16):
            rows[f"engine_n{n}"].append(_timed(lambda: fit_batched(
                "digits-mlp", [RunConfig("adam", lr=lr) for lr in lrs[:n]], epochs=epochs, device="cpu"),
                f"engine_n{n}"))
    med = {k: statistics.median(v) for k, v in rows.items()}
    cpu = {k: statistics.median(v) for k, v in _CPU.items() if k}
    run_steps = epochs * steps_per_epoch

    def ratios(m: dict[str, float]) -> dict[str, float]:
        return {"compare_speedup": m["compare_sequential"] / m["compare_batched"],
                "lrs16_speedup": m["lrs16_sequential"] / m["lrs16_batched"],
                "per_run_vs_sklearn": (m["lrs16_batched"] / 16) / m["sklearn_one_run"],
                "per_run_vs_sklearn_compare": (m["compare_batched"] / 6) / m["sklearn_one_run"]}

    result = {
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads()},
        "epochs": epochs, "repeats": args.repeats, "seconds": rows, "median_seconds": med,
        "load_average": os.getloadavg(), "cpu_seconds": _CPU, "median_cpu_seconds": cpu,
        "ratios": ratios(med), "ratios_cpu": ratios(cpu),
        "ms_per_run_step": {f"n{n}": 1000 * med[f"engine_n{n}"] / (n * run_steps) for n in (1, 6, 16)},
        "cpu_ms_per_run_step": {f"n{n}": 1000 * cpu[f"engine_n{n}"] / (n * run_steps) for n in (1, 6, 16)},
        "targets": {"compare_speedup": ">= 2.5", "lrs16_speedup": ">= 3", "per_run_vs_sklearn": "<= 0.5"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("load_average", "ratios", "ratios_cpu", "ms_per_run_step",
                                              "cpu_ms_per_run_step", "median_seconds")}, indent=2))


if __name__ == "__main__":
    main()
