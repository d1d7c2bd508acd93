"""``ravine compare``: train one problem with several optimizers, same seed, same budget.

Each optimizer starts from the same initial weights (the problem is built with
the same seed for every run, and this is checked), trains for the same number
of epochs with the problem's documented default learning rate for it, and is
summarized, diagnosed and drawn in one report.

Example:
    >>> from ravine.compare import compare
    >>> res = compare("breast-cancer-logreg", ["sgd", "adam"], epochs=2, progress=False)  # doctest: +SKIP
    >>> sorted(res["runs"])  # doctest: +SKIP
    ['adam', 'sgd']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ravine import optim, problems, schedules
from ravine.diagnostics.fit import diagnose_fit
from ravine.errors import ConfigError, RavineError, check_range
from ravine.train import Callback, TrainState, fit
from ravine.utils import resolve_device, write_json

DEFAULT_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")

ProgressFactory = Callable[[str], Callable[[int, int, dict[str, Any]], None]]


class EffectiveStep(Callback):
    """Records the effective learning rate of every update: the median over coordinates of |Δθ_i| / |g_i|.

    For SGD it is ε; for AdaGrad it is the median of ε / (δ + √r_i), which only
    falls as the accumulator r grows — the course's "AdaGrad's effective
    learning rate decays"; RMSProp's ε / √(δ + r_i) forgets old gradients, so it
    does not. ``g`` is the gradient the step used (left in ``.grad``);
    coordinates with g_i = 0 are skipped.
    """

    def __init__(self) -> None:
        self.step: list[int] = []
        self.value: list[float] = []
        self.epoch_end_step: list[int] = []
        self.epoch_mean: list[float] = []
        self._before: list[torch.Tensor] = []
        self._epoch_values: list[float] = []

    def on_fit_start(self, state: TrainState) -> None:
        self._before = [p.detach().clone() for p in state.model.parameters()]

    def on_iteration_end(self, state: TrainState) -> None:
        params = list(state.model.parameters())
        with torch.no_grad():
            ratios = [((p - b).abs() / p.grad.abs()).flatten()[p.grad.flatten() != 0]
                      for p, b in zip(params, self._before, strict=True) if p.grad is not None]
            for b, p in zip(self._before, params, strict=True):
                b.copy_(p)
            ratio = torch.cat(ratios) if ratios else torch.empty(0)
        if ratio.numel():
            value = float(ratio.median())
            if math.isfinite(value):
                self.step.append(state.iteration)
                self.value.append(value)
                self._epoch_values.append(value)

    def on_epoch_end(self, state: TrainState) -> None:
        if self._epoch_values:
            self.epoch_end_step.append(state.iteration)
            self.epoch_mean.append(sum(self._epoch_values) / len(self._epoch_values))
            self._epoch_values = []

    def to_dict(self) -> dict[str, list]:
        """The record in the report's format."""
        return {"step": self.step, "value": self.value, "epoch_end_step": self.epoch_end_step,
                "epoch_mean": self.epoch_mean}


def summarize(history: Mapping[str, Any], target: float | None) -> dict[str, Any]:
    """Final train loss, best validation metric (and its epoch), test metric, time and epochs to target.

    "To target" is the first epoch whose validation metric reaches ``target``
    (≥ when higher is better, ≤ otherwise); None when it never does.

    Example:
        >>> h = {"epoch": {"epoch": [0, 1, 2], "time": [0.0, 1.0, 2.0], "train_loss": [2.0, 1.0, 0.5],
        ...      "val_metric": [0.1, 0.9, 0.95]}, "iteration": {"step": [1, 2]}, "test": {"metric": 0.94},
        ...      "status": "ok", "wall_time": 2.0, "higher_is_better": True}
        >>> s = summarize(h, 0.9)
        >>> s["epochs_to_target"], s["best_val_metric"]
        (1, 0.95)
    """
    ep = history["epoch"]
    higher = history.get("higher_is_better", True)
    vals = [(v, e) for v, e in zip(ep["val_metric"], ep["epoch"], strict=True)
            if v is not None and math.isfinite(v)]
    best = (max if higher else min)(vals, default=(math.nan, None))
    reached = None
    if target is not None:
        for i, (v, e) in enumerate(zip(ep["val_metric"], ep["epoch"], strict=True)):
            if v is not None and math.isfinite(v) and (v >= target if higher else v <= target):
                reached = i
                break
    test = history.get("test") or {}
    steps = history["iteration"]["step"]
    return {
        "status": history["status"], "message": history.get("message", ""),
        "final_train_loss": ep["train_loss"][-1] if ep["train_loss"] else math.nan,
        "best_val_metric": best[0], "best_val_epoch": best[1],
        "test_metric": test.get("metric", math.nan), "test_loss": test.get("loss", math.nan),
        "epochs_run": ep["epoch"][-1] if ep["epoch"] else 0, "iterations": steps[-1] if steps else 0,
        "epochs_to_target": ep["epoch"][reached] if reached is not None else None,
        "time_to_target": ep["time"][reached] if reached is not None else None,
        "wall_time": history["wall_time"],
    }


def diagnose_history(history: Mapping[str, Any], reference_error: float) -> dict[str, Any]:
    """The course's bias / variance diagnosis of a finished run, from its history.

    The final epoch's train and validation metrics (whole splits, eval mode) become
    errors — 1 − metric where higher is better (accuracy), the metric itself
    otherwise (rmse) — and go to :func:`ravine.diagnostics.fit.diagnose_fit`.

    Example:
        >>> h = {"epoch": {"train_metric": [0.5, 0.99], "val_metric": [0.5, 0.9]}, "status": "ok",
        ...      "higher_is_better": True, "iteration": {"loss": []}}
        >>> diagnose_history(h, 0.02)["kind"]
        'overfitting (high variance)'
    """
    ep = history["epoch"]
    train_err = val_err = math.nan
    if history["status"] == "ok" and ep["train_metric"]:
        train_m, val_m = ep["train_metric"][-1], ep["val_metric"][-1]
        if history.get("higher_is_better", True):
            train_err, val_err = 1.0 - train_m, 1.0 - val_m
        else:
            train_err, val_err = train_m, val_m
    return diagnose_fit(train_err, val_err, reference_error, dict(history)).to_dict()


def _validate(problem: str, optimizers: Sequence[str], lr: Mapping[str, float], hyper: Mapping[str, Mapping],
              schedule: Mapping[str, Any] | None) -> tuple[problems.Problem, list[str]]:
    """Check every name before anything trains, so a typo costs no time."""
    recipe = problems.get(problem)
    if not optimizers:
        raise ConfigError("Invalid optimizers: empty (allowed: a comma list of " + ", ".join(optim.names()) + ")")
    names = [optim.info(name).name for name in optimizers]
    if len(set(names)) != len(names):
        raise ConfigError(f"Invalid optimizers: {', '.join(optimizers)} (allowed: each optimizer once)")
    for key in list(lr) + list(hyper):
        if key != "*" and optim.info(key).name not in names:
            raise ConfigError(f"Invalid lr/hyper key {key!r} (allowed: one of the compared optimizers: "
                              f"{', '.join(names)})")
    if schedule is not None:
        schedules.info(schedule.get("name", ""))
    return recipe, names


def compare(problem: str = "digits-mlp", optimizers: Sequence[str] | str = DEFAULT_OPTIMIZERS, *,
            epochs: int | None = None, batch_size: int | str | None = "auto",
            lr: Mapping[str, float] | None = None, hyper: Mapping[str, Mapping[str, Any]] | None = None,
            schedule: Mapping[str, Any] | str | None = None, problem_options: Mapping[str, Any] | None = None,
            target: float | None = None, seed: int = 0, device: str = "auto",
            out_dir: str | Path | None = None, progress: ProgressFactory | None = None) -> dict[str, Any]:
    """Train ``problem`` with each optimizer from the same initial weights; return (and write) the results.

    Args:
        problem: a registered problem name (``ravine problems``).
        optimizers: registered optimizer names (``ravine optimizers``).
        epochs: the budget for every run (default: the problem's).
        batch_size: minibatch size, None for full batch, "auto" for the problem's
            (full batch for full-batch methods such as Newton or L-BFGS).
        lr: learning rate per optimizer name; the key ``"*"`` sets it for all.
            Missing ones use ``problem.default_lr(name)``.
        hyper: other hyperparameters per optimizer name (``{"momentum": {"momentum": 0.5}}``).
        schedule: ``{"name": ..., **hyper}`` applied to every run.
        problem_options: options of the problem (``{"standardize": True}``).
        target: the validation metric whose first crossing is "time to target"
            (default: the problem's).
        seed: one seed for data split, initial weights and shuffling.
        device: ``cpu``, ``cuda`` or ``auto``.
        out_dir: when set, writes ``results.json``, ``report.html``, ``figures/``
            and one folder of metric files (CSV, JSONL) per optimizer.
        progress: ``progress(name) -> callback(done_iterations, total_iterations, info)``,
            for progress bars (see :func:`ravine.train.fit`).

    Returns:
        ``{"problem", "metric_name", "higher_is_better", "target", "reference_error",
        "epochs", "batch_size", "seed", "device", "schedule", "wall_time",
        "runs": {name: {"hyper", "history", "summary", "diagnosis", "effective_step"}}}``.
    """
    lr, hyper, options = dict(lr or {}), dict(hyper or {}), dict(problem_options or {})
    if isinstance(optimizers, str):
        optimizers = [name.strip() for name in optimizers.split(",") if name.strip()]
    if isinstance(schedule, str):
        schedule = {"name": schedule}
    if target is not None:
        target = check_range("target", target, error=ConfigError)
    recipe, names = _validate(problem, optimizers, lr, hyper, schedule)
    dev = resolve_device(device)
    out = Path(out_dir) if out_dir is not None else None
    start = time.perf_counter()
    budget = epochs if epochs is not None else recipe.epochs
    results: dict[str, Any] = {"problem": recipe.name, "epochs": budget, "batch_size": batch_size, "seed": seed,
                               "device": str(dev), "schedule": schedule, "problem_options": options, "runs": {}}
    initial: list[torch.Tensor] | None = None
    for name in names:
        inst = recipe.build(seed=seed, device=dev, **options)
        weights = [p.detach().clone() for p in inst.model.parameters()]
        if initial is None:
            initial = weights
        elif not all(torch.equal(a, b) for a, b in zip(initial, weights, strict=True)):
            raise RavineError(f"problem {recipe.name!r} built different initial weights for the same seed")
        run_lr = lr.get(name, lr.get("*", recipe.default_lr(name, **options)))
        tracker = EffectiveStep()
        run_batch = batch_size
        if batch_size == "auto":  # the problem's batch size; full batch for full-batch methods
            run_batch = None if optim.info(name).full_batch else recipe.batch_size
        # With one batch per epoch an EMA only lags the real loss: show it raw.
        ema = 0.0 if run_batch is None or run_batch >= len(inst.data.X_train) else 0.9
        result = fit(inst, name, epochs=budget, ema=ema,
                     batch_size=run_batch, lr=run_lr, hyper=dict(hyper.get(name, {})), schedule=schedule,
                     seed=seed, device=dev, out_dir=out / "runs" / name if out is not None else None,
                     callbacks=[tracker], progress=progress(name) if progress else None, tensorboard=False)
        history = result.history
        run_target = target if target is not None else inst.target
        summary = summarize(history, run_target)
        diagnosis = diagnose_history(history, inst.reference_error)
        results.update({"metric_name": inst.metric_name, "higher_is_better": inst.higher_is_better,
                        "target": run_target, "reference_error": inst.reference_error})
        results["runs"][name] = {"hyper": {"lr": run_lr, **hyper.get(name, {})}, "history": history,
                                 "summary": summary, "diagnosis": diagnosis,
                                 "effective_step": tracker.to_dict()}
    results["wall_time"] = time.perf_counter() - start
    if out is not None:
        from ravine.report import write_report

        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "results.json", results)
        write_report(out, results, title=f"ravine compare · {recipe.name}")
    return results
