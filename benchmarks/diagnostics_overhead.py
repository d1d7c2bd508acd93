"""Overhead of ravine's training instruments, and of Cockpit for comparable quantities.

Measured side by side in one run, median over ``--repeats`` interleaved repeats:

- **ravine**: ``ravine.train.fit`` on ``digits-mlp`` and ``digits-cnn`` (SGD, the
  problem's batch size) without callbacks vs with
  ``ravine.diagnostics.instruments.Instruments()`` at its default interval
  (every 20 iterations: activation mean / std / histogram, dead and saturated
  fractions, ∂L/∂h RMS, weight and gradient norms, update ratio, symmetry at
  start and end); also every iteration (``every=1``) for reference. The gradient
  noise measurement (per-sample gradients) runs once per ``ravine diagnose``, not
  per step: its one-off cost is reported separately (``noise_seconds``).
  Target: instruments / none ≤ 1.10.
- **Cockpit** (``cockpit-for-pytorch``, needs ``setuptools<81``; installed in its own
  venv, see ``--cockpit-python``): the same networks in a plain PyTorch loop,
  without vs with a ``Cockpit`` tracking the closest quantities (GradNorm,
  UpdateSize, Distance, NormTest, GradHist1d) at the same interval; its ratio
  against its own plain loop.

Usage::

    python benchmarks/diagnostics_overhead.py                        # ravine only
    python -m venv /tmp/cockpit && /tmp/cockpit/bin/pip install torch==2.13.0 \\
        cockpit-for-pytorch "setuptools<81" scikit-learn
    python benchmarks/diagnostics_overhead.py --cockpit-python /tmp/cockpit/bin/python
    python benchmarks/diagnostics_overhead.py --epochs 3 --repeats 3 --out /tmp/o.json

Writes ``benchmarks/results/diagnostics_overhead.json``: ``config`` and ``rows``
(one per problem: ``none_s``, ``instruments_s``, ``every1_s``, ``ratio`` (of the medians),
``ratio_paired`` (median of each repeat's ratio), ``ratio_every1``, ``noise_seconds``, ``cockpit_plain_s``, ``cockpit_s``,
``cockpit_ratio``). One torch thread (as the CLI uses). Times are process CPU time by default (robust on a
shared machine); ``--wall`` for wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROBLEMS = ("digits-mlp", "digits-cnn")
COCKPIT_EVERY = 20  # the Instruments' default interval


# --- ravine ----------------------------------------------------------------------------------

def _ravine_time(problem: str, variant: str, epochs: int, seed: int) -> float:
    from ravine import problems
    from ravine.diagnostics.instruments import Instruments
    from ravine.train import fit

    inst = problems.get(problem).build(seed=seed)
    recipe = problems.get(problem)
    callbacks = [] if variant == "none" else [Instruments(every=1) if variant == "every1" else Instruments()]
    start = _clock()
    fit(inst, "sgd", epochs=epochs, batch_size=recipe.batch_size, seed=seed, callbacks=callbacks,
        tensorboard=False)
    if callbacks:
        callbacks[0].result()  # the one host copy belongs to the cost
    return _clock() - start


def _clock() -> float:
    # CPU time of this process (one torch thread): on a shared machine it is far less noisy than wall
    # time, which also counts the other processes' turns on the cores. --wall switches to wall time.
    return time.perf_counter() if WALL else time.process_time()


WALL = False


def _noise_time(problem: str, seed: int) -> float:
    from ravine import problems
    from ravine.diagnostics.noise import gradient_noise

    inst = problems.get(problem).build(seed=seed)
    start = _clock()
    gradient_noise(inst.model, inst.loss_fn, inst.data.X_train, inst.data.y_train, pool=512, seed=seed)
    return _clock() - start


def _default_every() -> int:
    from ravine.diagnostics.instruments import Instruments

    return Instruments().every


def run_ravine(epochs: int, repeats: int) -> dict[str, dict[str, Any]]:
    import torch

    torch.set_num_threads(1)
    rows: dict[str, dict[str, Any]] = {}
    for problem in PROBLEMS:
        _ravine_time(problem, "none", 1, 0)  # warm-up
        times: dict[str, list[float]] = {"none": [], "instruments": [], "every1": []}
        for r in range(repeats):
            for variant in times:  # interleaved: the contenders share the machine's noise
                times[variant].append(_ravine_time(problem, variant, epochs, r))
        med = {k: statistics.median(v) for k, v in times.items()}
        # per repeat, the ratio to the run without instruments just before it: the pairs share the machine's load
        paired = statistics.median(a / b for a, b in zip(times["instruments"], times["none"], strict=True))
        rows[problem] = {"none_s": med["none"], "instruments_s": med["instruments"], "every1_s": med["every1"],
                         "ratio": med["instruments"] / med["none"], "ratio_paired": paired,
                         "ratio_every1": med["every1"] / med["none"],
                         "noise_seconds": statistics.median(_noise_time(problem, r) for r in range(3)),
                         "all_s": times}
    return rows


# --- Cockpit (run inside its own venv: no ravine import) ---------------------------------------

def _cockpit_data():
    import torch
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X - X.mean()) / X.std()
    return torch.tensor(X[:1078], dtype=torch.float32), torch.tensor(y[:1078])


def _cockpit_model(problem: str, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if problem == "digits-mlp":
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def _cockpit_time(problem: str, with_cockpit: bool, epochs: int, seed: int, batch: int = 32) -> float:
    import torch
    from torch import nn

    X, y = _cockpit_data()
    if problem == "digits-cnn":
        X = X.reshape(-1, 1, 8, 8)
    model = _cockpit_model(problem, seed)
    loss_fn = nn.CrossEntropyLoss()
    individual = nn.CrossEntropyLoss(reduction="none")
    cockpit = None
    if with_cockpit:
        from backpack import extend
        from cockpit import Cockpit
        from cockpit import quantities as q

        model, loss_fn = extend(model), extend(loss_fn)

        def tracked(step: int) -> bool:
            return step % COCKPIT_EVERY == 0

        cockpit = Cockpit(model.parameters(), quantities=[
            q.GradNorm(track_schedule=tracked), q.UpdateSize(track_schedule=tracked),
            q.Distance(track_schedule=tracked), q.NormTest(track_schedule=tracked),
            q.GradHist1d(track_schedule=tracked)])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(seed)
    start = _clock()
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            out = model(X[idx])
            loss = loss_fn(out, y[idx])
            if cockpit is None:
                loss.backward()
            else:
                info = {"batch_size": len(idx), "individual_losses": individual(out, y[idx]), "loss": loss,
                        "optimizer": opt}
                with cockpit(step, info=info):
                    loss.backward(create_graph=cockpit.create_graph(step))
            opt.step()
            step += 1
        with torch.no_grad():  # one evaluation per epoch, like the trainer
            model(X)
    return _clock() - start


def cockpit_worker(epochs: int, repeats: int) -> dict[str, dict[str, float]]:
    import torch

    torch.set_num_threads(1)
    rows = {}
    for problem in PROBLEMS:
        _cockpit_time(problem, True, 1, 0)
        plain, with_c = [], []  # (Cockpit's worker: CPU time too, see _clock)
        for r in range(repeats):
            plain.append(_cockpit_time(problem, False, epochs, r))
            with_c.append(_cockpit_time(problem, True, epochs, r))
        rows[problem] = {"cockpit_plain_s": statistics.median(plain), "cockpit_s": statistics.median(with_c),
                         "cockpit_ratio": statistics.median(with_c) / statistics.median(plain)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cockpit-python", help="python of a venv with cockpit-for-pytorch installed")
    parser.add_argument("--cockpit-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="benchmarks/results/diagnostics_overhead.json")
    parser.add_argument("--wall", action="store_true", help="wall-clock time instead of process CPU time")
    args = parser.parse_args()
    global WALL
    WALL = args.wall
    if args.cockpit_worker:
        print(json.dumps(cockpit_worker(args.epochs, args.repeats)))
        return
    load_before = os.getloadavg()
    rows = run_ravine(args.epochs, args.repeats)
    load_after = os.getloadavg()
    cockpit_note = "not run (pass --cockpit-python)"
    if args.cockpit_python:
        proc = subprocess.run([args.cockpit_python, __file__, "--cockpit-worker", "--epochs", str(args.epochs),
                               "--repeats", str(args.repeats), *(["--wall"] if args.wall else [])],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            for problem, extra in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                rows[problem].update(extra)
            cockpit_note = "ok"
        else:
            cockpit_note = "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    result = {"config": {"epochs": args.epochs, "repeats": args.repeats, "threads": 1, "optimizer": "sgd",
                         "clock": "wall" if args.wall else "process CPU time",
                         "instrument_every": _default_every(), "python": platform.python_version(),
                         "machine": platform.machine(), "cores": os.cpu_count(), "cockpit": cockpit_note,
                         # 1-minute load average before / after: other processes on the cores inflate the ratios
                         "load_before": load_before[0], "load_after": load_after[0]},
              "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    for problem, row in rows.items():
        line = (f"{problem}: none {row['none_s']:.3f}s, instruments {row['instruments_s']:.3f}s "
                f"(×{row['ratio']:.3f}, paired ×{row['ratio_paired']:.3f}), every=1 ×{row['ratio_every1']:.3f}, noise once {row['noise_seconds']:.2f}s")
        if "cockpit_ratio" in row:
            line += f"; Cockpit ×{row['cockpit_ratio']:.2f} ({row['cockpit_plain_s']:.3f}s → {row['cockpit_s']:.3f}s)"
        print(line)
    print(f"cockpit: {cockpit_note}; load average {load_before[0]:.2f} → {load_after[0]:.2f} on "
          f"{os.cpu_count()} cores; wrote {out}")


if __name__ == "__main__":
    main()
