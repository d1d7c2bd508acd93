"""Synthetic compare results for the report tests (no training needed)."""

from __future__ import annotations

import math


def history(rate: float, epochs: int = 5, per_epoch: int = 20, diverge_at: int | None = None,
            plateau: float | None = None) -> dict:
    """A history in the trainer's format whose loss decays like exp(-rate * step)."""
    steps = list(range(1, epochs * per_epoch + 1))
    loss = [max(plateau or 0.0, 2.3 * math.exp(-rate * s)) * (1 + 0.1 * math.sin(s)) for s in steps]
    status, message = "ok", ""
    if diverge_at is not None:
        steps, loss = steps[:diverge_at], loss[:diverge_at - 1] + [math.inf]
        status, message = "diverged", f"loss inf at step {diverge_at}"
    n_ep = len(steps) // per_epoch
    return {
        "iteration": {"step": steps, "epoch": [s / per_epoch for s in steps], "loss": loss,
                      "loss_ema": loss, "lr": [0.1] * len(steps), "momentum": [None] * len(steps)},
        "epoch": {"epoch": list(range(n_ep + 1)), "iteration": [e * per_epoch for e in range(n_ep + 1)],
                  "time": [0.1 * e for e in range(n_ep + 1)],
                  "train_loss": [2.3 * math.exp(-rate * e * per_epoch) for e in range(n_ep + 1)],
                  "train_metric": [min(0.99, 0.1 + 0.2 * rate * 100 * e) for e in range(n_ep + 1)],
                  "val_loss": [2.3 * math.exp(-rate * e * per_epoch) + 0.05 for e in range(n_ep + 1)],
                  "val_metric": [min(0.97, 0.1 + 0.2 * rate * 100 * e) for e in range(n_ep + 1)],
                  "lr": [0.1 / (1 + e) for e in range(n_ep + 1)]},
        "test": None if status == "diverged" else {"loss": 0.1, "metric": 0.95},
        "status": status, "message": message, "wall_time": 0.1 * n_ep,
        "metric_name": "accuracy", "higher_is_better": True,
    }


def results() -> dict:
    """Three runs: a fast one, a slow one on a plateau, and a diverged one."""
    runs = {}
    for name, hist, kind in (("adam", history(0.05), "good fit"),
                             ("sgd", history(0.005, plateau=1.5), "stalled on a plateau"),
                             ("wild", history(0.05, diverge_at=30), "diverged")):
        runs[name] = {
            "optimizer": name, "hyper": {"lr": 0.1}, "history": hist,
            "summary": {"status": hist["status"], "final_train_loss": hist["iteration"]["loss"][-1],
                        "best_val_metric": max(hist["epoch"]["val_metric"]), "best_val_epoch": 1,
                        "test_metric": None, "epochs_to_target": 3 if name == "adam" else None,
                        "time_to_target": 0.3 if name == "adam" else None, "wall_time": hist["wall_time"],
                        "epochs_run": hist["epoch"]["epoch"][-1]},
            "diagnosis": {"kind": kind, "explanation": f"{name} explanation"},
            "effective_step": {"step": hist["iteration"]["step"],
                               "value": [0.1 / math.sqrt(s) for s in hist["iteration"]["step"]],
                               "epoch_end_step": hist["epoch"]["iteration"][1:],
                               "epoch_mean": [0.1 / math.sqrt(s) for s in hist["epoch"]["iteration"][1:]]},
        }
    return {"problem": "synthetic", "metric_name": "accuracy", "target": 0.9, "epochs": 5, "runs": runs}
