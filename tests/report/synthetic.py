"""Synthetic compare results for the report tests (no training needed)."""

from __future__ import annotations

import math

from ravine.train.results import CompareResult, History, RunResult, Summary, Verdict
from ravine.train.spec import RunSpec


def history(rate: float, epochs: int = 5, per_epoch: int = 20, diverge_at: int | None = None,
            plateau: float | None = None) -> History:
    """A history whose loss decays like exp(-rate * step)."""
    steps = list(range(1, epochs * per_epoch + 1))
    loss = [max(plateau or 0.0, 2.3 * math.exp(-rate * s)) * (1 + 0.1 * math.sin(s)) for s in steps]
    status, message = "ok", ""
    if diverge_at is not None:
        steps, loss = steps[:diverge_at], loss[:diverge_at - 1] + [math.inf]
        status, message = "diverged", f"loss inf at step {diverge_at}"
    n_ep = len(steps) // per_epoch
    h = History("accuracy", True)
    for s, v in zip(steps, loss, strict=True):
        h.iterations.append(step=s, epoch=s / per_epoch, loss=v, loss_ema=v, lr=0.1, momentum=None,
                            grad_evals=s / per_epoch, time=0.005 * s)
    for e in range(n_ep + 1):
        h.epochs.append(epoch=e, iteration=e * per_epoch, time=0.1 * e,
                        train_loss=2.3 * math.exp(-rate * e * per_epoch),
                        train_metric=min(0.99, 0.1 + 0.2 * rate * 100 * e),
                        val_loss=2.3 * math.exp(-rate * e * per_epoch) + 0.05,
                        val_metric=min(0.97, 0.1 + 0.2 * rate * 100 * e), lr=0.1 / (1 + e), grad_evals=float(e))
    h.status, h.message, h.wall_time = status, message, 0.1 * n_ep
    return h


def results() -> CompareResult:
    """Three runs: a fast one, a slow one on a plateau, and a diverged one."""
    runs = {}
    for name, hist, kind in (("adam", history(0.05), "good fit"),
                             ("sgd", history(0.005, plateau=1.5), "stalled on a plateau"),
                             ("wild", history(0.05, diverge_at=30), "diverged")):
        summary = Summary(status=hist.status, final_train_loss=hist.iterations.loss[-1],
                          best_val_metric=max(hist.epochs.val_metric), best_val_epoch=1,
                          epochs_to_target=3 if name == "adam" else None,
                          time_to_target=0.3 if name == "adam" else None, wall_time=hist.wall_time,
                          epochs_run=hist.epochs.epoch[-1])
        spec = RunSpec("synthetic", name, 0.1, 32, 640, 5, hyper={"momentum": 0.9})
        steps = hist.iterations.step
        runs[name] = RunResult(name, spec, hist, summary, Verdict(kind, f"{name} explanation"),
                               {"effective_step": {"step": steps, "value": [0.1 / math.sqrt(s) for s in steps],
                                                   "epoch_end_step": hist.epochs.iteration[1:],
                                                   "epoch_mean": [0.1 / math.sqrt(s)
                                                                  for s in hist.epochs.iteration[1:]]}})
    return CompareResult("synthetic", "accuracy", True, target=0.9, epochs=5, optimizers=list(runs), runs=runs)
