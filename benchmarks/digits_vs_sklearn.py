"""The same MLP on digits: ravine (``ravine.train.fit``) vs scikit-learn's ``MLPClassifier``.

Both train a 64-128-128-10 ReLU network with softmax cross-entropy and no
regularization on the same standardized train split of scikit-learn's digits
(ravine's ``digits-mlp`` problem, 60/20/20 split), for the same epochs, batch
size and learning rate, with

- ``adam`` (ε = 1e-3, ρ1 = 0.9, ρ2 = 0.999, δ = 1e-8 on both sides), and
- ``momentum`` (v ← α v − ε g, α = 0.9; scikit-learn's ``solver="sgd"`` with
  ``nesterovs_momentum=False`` is the same rule).

scikit-learn is told to run every epoch (``tol=0``, ``n_iter_no_change`` larger
than the budget, no early stopping). Reported per optimizer: test accuracy and
wall time, median over ``--seeds`` seeds, and the ratios ravine / sklearn.
Targets: accuracy at least scikit-learn's within noise; time ≤ 0.5×.

Usage::

    python benchmarks/digits_vs_sklearn.py                 # JSON to benchmarks/results/digits_vs_sklearn.json
    python benchmarks/digits_vs_sklearn.py --seeds 3 --epochs 10 --out /tmp/d.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from ravine import problems
from ravine.train import fit

SETTINGS = {"adam": {"lr": 1e-3}, "momentum": {"lr": 0.02, "momentum": 0.9}}


def run_ravine(name: str, seed: int, epochs: int, batch_size: int) -> tuple[float, float]:
    inst = problems.get("digits-mlp").build(seed=seed)
    hyper = {k: v for k, v in SETTINGS[name].items() if k != "lr"}
    start = time.perf_counter()
    result = fit(inst, name, epochs=epochs, batch_size=batch_size, lr=SETTINGS[name]["lr"], hyper=hyper, seed=seed,
                 tensorboard=False)
    elapsed = time.perf_counter() - start
    return result.history["test"]["metric"], elapsed


def run_sklearn(name: str, seed: int, epochs: int, batch_size: int) -> tuple[float, float]:
    inst = problems.get("digits-mlp").build(seed=seed)
    d = inst.data
    X_train, y_train = d.X_train.numpy(), d.y_train.numpy()
    X_test, y_test = d.X_test.numpy(), d.y_test.numpy()
    common = {"hidden_layer_sizes": (128, 128), "activation": "relu", "alpha": 0.0, "batch_size": batch_size,
              "learning_rate_init": SETTINGS[name]["lr"], "max_iter": epochs, "shuffle": True, "random_state": seed,
              "tol": 0.0, "n_iter_no_change": epochs + 1, "early_stopping": False}
    if name == "adam":
        clf = MLPClassifier(solver="adam", beta_1=0.9, beta_2=0.999, epsilon=1e-8, **common)
    else:
        clf = MLPClassifier(solver="sgd", momentum=SETTINGS[name]["momentum"], nesterovs_momentum=False,
                            learning_rate="constant", **common)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    accuracy = float(np.mean(clf.predict(X_test) == y_test))
    elapsed = time.perf_counter() - start
    return accuracy, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (ravine's CLI default: 1)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/digits_vs_sklearn.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows: dict[str, Any] = {}
    for name in SETTINGS:
        acc = {"ravine": [], "sklearn": []}
        secs = {"ravine": [], "sklearn": []}
        for seed in range(args.seeds):
            # interleaved, so machine load hits both alike
            for lib, fn in (("ravine", run_ravine), ("sklearn", run_sklearn)):
                a, t = fn(name, seed, args.epochs, args.batch_size)
                acc[lib].append(a)
                secs[lib].append(t)
        med = {lib: {"accuracy": statistics.median(acc[lib]), "seconds": statistics.median(secs[lib]),
                     "accuracy_all": acc[lib], "seconds_all": secs[lib]} for lib in acc}
        rows[name] = {**med, "accuracy_diff": med["ravine"]["accuracy"] - med["sklearn"]["accuracy"],
                      "time_ratio": med["ravine"]["seconds"] / med["sklearn"]["seconds"],
                      "accuracy_std_sklearn": statistics.pstdev(acc["sklearn"])}

    print(f"digits 64-128-128-10 ReLU, {args.epochs} epochs, batch {args.batch_size}, median of {args.seeds} seeds")
    print(f"{'optimizer':<10} {'ravine acc':>10} {'sklearn acc':>11} {'diff':>7} {'ravine s':>9} {'sklearn s':>9} "
          f"{'time ratio':>10}")
    for name, r in rows.items():
        print(f"{name:<10} {r['ravine']['accuracy']:>10.4f} {r['sklearn']['accuracy']:>11.4f} "
              f"{r['accuracy_diff']:>+7.4f} {r['ravine']['seconds']:>9.3f} {r['sklearn']['seconds']:>9.3f} "
              f"{r['time_ratio']:>10.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"epochs": args.epochs, "batch_size": args.batch_size, "seeds": args.seeds, "threads": args.threads,
            "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine()}
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
