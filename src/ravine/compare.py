"""``ravine compare``: train one problem with several optimizers, same seed, same budget.

Each optimizer starts from the same initial weights (the problem is built with
the same seed for every run, and this is checked), trains for the same number
of epochs with the problem's documented default learning rate for it, and is
summarized, diagnosed and drawn in one report.

Example:
    >>> from ravine.compare import compare
    >>> res = compare("breast-cancer-logreg", ["sgd", "adam"], epochs=2)  # doctest: +SKIP
    >>> sorted(res.runs), res.runs["sgd"].spec.batch_size  # doctest: +SKIP
    (['adam', 'sgd'], 32)

Ctrl-C during a comparison writes ``results.json`` and the report for the runs
that finished, marks the result incomplete and raises
:class:`ravine.train.results.CompareInterrupted`; ``compare(..., resume=True)``
on the same ``out_dir`` then trains only the missing runs. Once every run has
trained, ``results.json`` is written whole even if Ctrl-C comes meanwhile; a Ctrl-C
while the report is drawn raises ``CompareInterrupted`` with nothing missing, and
``resume=True`` then only draws the report.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ravine import optim, problems, schedules
from ravine.diagnostics.curves import diagnose_history as curve_findings
from ravine.errors import ConfigError, RavineError, check_range
from ravine.train import Callback, TrainState, fit
from ravine.train.results import (CompareInterrupted, CompareResult, History, RunResult, Summary, TrainResult,
                                  Verdict)
from ravine.train.spec import RunSpec, resolve_spec
from ravine.utils import resolve_device, sigint_deferred, write_json

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


class BatchedEffectiveStep:
    """:class:`EffectiveStep` for every run of a batched computation at once (same numbers, one pass).

    Per run k: the median over coordinates of |Δθ_i| / |g_i| with g_i ≠ 0,
    computed on the stacked parameters ``(N, ...)``; like ``median``, the lower
    of the two middle values, and NaN (not recorded) when a kept ratio is NaN.

    On the CPU the ratios are computed in NumPy on zero-copy views of the
    stacked tensors and each run's median is one ``numpy.partition``
    (introselect): torch's ``nanmedian`` over the stacked rows took 3x as long,
    its boolean masks and ``where`` as long again, and this runs at every step
    (measured: it was a third of ``ravine compare``'s batched time). Elsewhere
    (GPU) it stays in torch (``nanmedian``). IEEE float arithmetic is the same in
    both, so the values equal :class:`EffectiveStep`'s.
    """

    def __init__(self, n: int) -> None:
        self.runs = [EffectiveStep() for _ in range(n)]
        self._before: list[torch.Tensor] = []
        self._ratios: Any = None  # CPU: (N, P) NumPy buffer of |Δθ| / |g|, +inf where g = 0
        self._before_np: Any = None

    def on_fit_start(self, ensemble: Any) -> None:
        self._before = [p.detach().clone() for p in ensemble.stacked]
        if all(p.device.type == "cpu" for p in ensemble.stacked):
            import numpy as np

            flat = torch.cat([p.detach().flatten(1) for p in ensemble.stacked], dim=1)
            self._before_np = flat.numpy().copy()
            self._ratios = np.empty_like(self._before_np)

    def on_steps(self, ensemble: Any, stepped: list[int], steps: list[int]) -> None:
        values = self._cpu_values(ensemble, stepped) if self._ratios is not None else self._torch_values(
            ensemble, stepped)
        for k, step, value in zip(stepped, steps, values, strict=True):
            if math.isfinite(value):
                rec = self.runs[k]
                rec.step.append(step)
                rec.value.append(value)
                rec._epoch_values.append(value)

    def _torch_values(self, ensemble: Any, stepped: list[int]) -> list[float]:
        with torch.no_grad():
            ratios = []
            for p, b in zip(ensemble.stacked, self._before, strict=True):
                g = p.grad.abs().flatten(1)
                r = (p.detach() - b).abs().flatten(1) / g
                ratios.append(torch.where(g != 0, r, torch.nan))
                b.copy_(p)
            return torch.cat(ratios, dim=1)[stepped].nanmedian(dim=1).values.tolist()

    def _cpu_values(self, ensemble: Any, stepped: list[int]) -> list[float]:
        import numpy as np

        ratios, before = self._ratios, self._before_np
        n = ensemble.n
        kept = np.zeros(n, dtype=np.int64)
        begin = 0
        with np.errstate(divide="ignore", invalid="ignore"):
            for p in ensemble.stacked:
                theta = p.detach().numpy().reshape(n, -1)
                g = np.abs(p.grad.numpy().reshape(n, -1))
                end = begin + theta.shape[1]
                r, b = ratios[:, begin:end], before[:, begin:end]
                np.subtract(theta, b, out=r)
                np.abs(r, out=r)
                np.divide(r, g, out=r)
                zero = g == 0
                np.copyto(r, np.inf, where=zero)  # past every kept ratio: the k-th smallest is the k-th kept
                kept += g.shape[1] - zero.sum(1)
                b[...] = theta
                begin = end
        out = []
        for k in stepped:
            row, m = ratios[k], int(kept[k])
            mid = (m - 1) // 2
            out.append(math.nan if m == 0 or np.isnan(row).any() else float(np.partition(row, mid)[mid]))
        return out

    def on_epoch_end(self, epoch: int, runs: list[int], steps: list[int]) -> None:
        for k, step in zip(runs, steps, strict=True):
            rec = self.runs[k]
            if rec._epoch_values:
                rec.epoch_end_step.append(step)
                rec.epoch_mean.append(sum(rec._epoch_values) / len(rec._epoch_values))
                rec._epoch_values = []


class LambdaMaxTracker(Callback):
    """λ_max of the training-loss Hessian at the start and the end of a run (``compare --curvature``).

    Gradient descent with a step ε > 2/λ_max diverges along the top eigenvector of the
    quadratic model, so comparing each run's largest learning rate with 2/λ_max tells which
    runs stepped past the stability limit (for plain and momentum GD; the adaptive methods
    rescale each coordinate, so for them it is only a reference). λ_max comes from
    :func:`ravine.curvature.lambda_max` (Lanczos, relative tolerance ``tol``) on a fixed
    sample of at most ``samples`` training points, with the model in eval mode.
    """

    def __init__(self, loss_fn: Callable[..., torch.Tensor], X: torch.Tensor, y: torch.Tensor, *,
                 samples: int = 512, tol: float = 1e-3, seed: int = 0) -> None:
        idx = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:samples].to(X.device)
        self.loss_fn, self.data, self.tol, self.seed = loss_fn, (X[idx], y[idx]), tol, seed
        self.values: dict[str, float | None] = {"start": None, "end": None}

    def _measure(self, state: TrainState) -> float | None:
        from ravine.curvature import lambda_max

        if not all(torch.isfinite(p).all() for p in state.model.parameters()):
            return None  # a diverged run has no curvature to measure
        was_training = state.model.training
        state.model.eval()
        try:
            return lambda_max(state.model, self.loss_fn, self.data, tol=self.tol, seed=self.seed)
        finally:
            state.model.train(was_training)

    def on_fit_start(self, state: TrainState) -> None:
        self.values["start"] = self._measure(state)

    def on_fit_end(self, state: TrainState) -> None:
        self.values["end"] = self._measure(state)

    def to_dict(self, history: History) -> dict[str, list]:
        """``extras["curvature"]``: λ_max at start / end, 2/λ_max, the run's largest lr, and whether it exceeded."""
        lrs = [v for v in history.iterations.lr if v is not None and math.isfinite(v)]
        lr_max = max(lrs) if lrs else math.nan
        out: dict[str, list] = {"lambda_max_start": [self.values["start"]], "lambda_max_end": [self.values["end"]],
                                "lr_max": [lr_max]}
        for when in ("start", "end"):
            lam = self.values[when]
            limit = 2.0 / lam if lam is not None and lam > 0 else None
            out[f"two_over_lambda_{when}"] = [limit]
            out[f"above_limit_{when}"] = [bool(limit is not None and lr_max > limit)]
        return out


def summarize(history: History, target: float | None) -> Summary:
    """Final train loss, best validation metric (and its epoch), test metric, time and epochs to target.

    "To target" is the first epoch whose validation metric reaches ``target``
    (≥ when higher is better, ≤ otherwise); None when it never does.

    Example:
        >>> h = History("accuracy", True)
        >>> for e, v in enumerate([0.1, 0.9, 0.95]):
        ...     h.epochs.append(epoch=e, iteration=e, time=float(e), train_loss=2.0 / (e + 1), train_metric=v,
        ...                     val_loss=1.0, val_metric=v, lr=0.1, grad_evals=float(e))
        >>> s = summarize(h, 0.9)
        >>> s.epochs_to_target, s.best_val_metric, s.time_to_target
        (1, 0.95, 1.0)
    """
    ep = history.epochs
    higher = history.higher_is_better
    vals = [(v, e) for v, e in zip(ep.val_metric, ep.epoch, strict=True) if v is not None and math.isfinite(v)]
    best = (max if higher else min)(vals, default=(math.nan, None))
    reached = None
    if target is not None:
        for i, v in enumerate(ep.val_metric):
            if v is not None and math.isfinite(v) and (v >= target if higher else v <= target):
                reached = i
                break
    test = history.test
    steps = history.iterations.step
    return Summary(status=history.status, message=history.message,
                   final_train_loss=ep.train_loss[-1] if ep.train_loss else math.nan,
                   best_val_metric=best[0], best_val_epoch=best[1],
                   test_metric=test.metric if test else math.nan, test_loss=test.loss if test else math.nan,
                   epochs_run=ep.epoch[-1] if ep.epoch else 0, iterations=steps[-1] if steps else 0,
                   epochs_to_target=ep.epoch[reached] if reached is not None else None,
                   time_to_target=ep.time[reached] if reached is not None else None, wall_time=history.wall_time)


def diagnose_history(history: History, reference_error: float | None, unit: str = "") -> Verdict:
    """The learning-curve diagnosis of a finished run (:mod:`ravine.diagnostics.curves`) as a :class:`Verdict`.

    The curves (per-epoch train / validation loss and metric, per-iteration loss)
    give findings — diverging, oscillating, plateau, too slow, underfitting,
    overfitting (only when the validation loss rose from its minimum beyond its
    noise), healthy — each with the epoch or step it began, its evidence and one
    suggestion. The verdict's ``kind`` is the most severe finding's, its
    ``explanation`` every finding's message and suggestion, ``numbers`` the final
    errors and the headline evidence, and ``extra["findings"]`` all findings.

    When the reference error is unknown (None or NaN: the user's own data), the
    avoidable bias is not judged and the explanation says so.

    Args:
        history: the run's history.
        reference_error: the error a good model reaches, in the same units; None / NaN: unknown.
        unit: what the errors are measured in, stated in the explanation
            (e.g. "rmse in target standard deviations").

    Example:
        >>> h = History("accuracy", True)
        >>> for e, (tl, vl) in enumerate([(2.3, 2.3), (0.5, 0.6), (0.2, 0.4), (0.1, 0.3)]):
        ...     h.epochs.append(epoch=e, iteration=5 * e, time=float(e), train_loss=tl, train_metric=0.99,
        ...                     val_loss=vl, val_metric=0.97, lr=0.1, grad_evals=float(e))
        >>> diagnose_history(h, 0.02).kind
        'healthy'
    """
    known = reference_error is not None and math.isfinite(reference_error)
    findings = curve_findings(history, reference_error if known else None)
    ep = history.epochs
    train_err = val_err = math.nan
    if ep.train_metric:
        train_m, val_m = ep.train_metric[-1], ep.val_metric[-1]
        train_err, val_err = (1.0 - train_m, 1.0 - val_m) if history.higher_is_better else (train_m, val_m)
    head = findings[0]
    numbers: dict[str, Any] = {"train_error": train_err, "val_error": val_err,
                               "reference_error": reference_error if known else None, **head.evidence}
    explanation = " ".join(f"{f.message} {f.suggestion}" for f in findings)
    if not known:
        explanation = (f"Train error {train_err:.4g}, validation error {val_err:.4g}. The reference error of this "
                       "data is unknown, so the avoidable bias (is the training error itself low enough?) is not "
                       "judged: compare it with what your task needs. " + explanation)
    verdict = Verdict(head.kind, explanation, numbers,
                      {"findings": [f.to_dict() for f in findings], "began_at": head.began_at,
                       "began_unit": head.unit})
    if unit:
        verdict.extra["unit"] = unit
        verdict.explanation += f" Errors are {unit}."
    return verdict


def train_result(spec: RunSpec, history: History, instance: Any, out_dir: str | Path | None = None,
                 error_unit: str = "") -> TrainResult:
    """The :class:`ravine.train.results.TrainResult` of one run (what ``ravine train`` reports).

    Example:
        >>> from ravine import problems
        >>> inst = problems.get("diabetes-linreg").build(seed=0)
        >>> spec = resolve_spec("diabetes-linreg", "sgd", instance=inst)
        >>> train_result(spec, History("rmse", False), inst).summary.status
        'ok'
    """
    return TrainResult(spec, history, summarize(history, inst_target := instance.target),
                       diagnose_history(history, instance.reference_error,
                                        error_unit if instance.metric_name == "rmse" else ""),
                       target=inst_target, reference_error=instance.reference_error,
                       out_dir=str(out_dir) if out_dir is not None else None)


def _validate(problem: str, optimizers: Sequence[str], lr: Mapping[str, float], hyper: Mapping[str, Mapping],
              schedule: Mapping[str, Any] | None) -> tuple[problems.Problem, list[str], dict, dict]:
    """Check every name before anything trains, so a typo costs no time; keys become registry names."""
    recipe = problems.get(problem)
    if not optimizers:
        raise ConfigError("Invalid optimizers: empty (allowed: a comma list of " + ", ".join(optim.names()) + ")")
    names = [optim.info(name).name for name in optimizers]
    if len(set(names)) != len(names):
        raise ConfigError(f"Invalid optimizers: {', '.join(optimizers)} (allowed: each optimizer once)")
    canon: list[dict] = [{}, {}]
    for table, out in ((lr, canon[0]), (hyper, canon[1])):
        for key, value in table.items():
            name = key if key == "*" else optim.info(key).name
            if name != "*" and name not in names:
                raise ConfigError(f"Invalid lr/hyper key {key!r} (allowed: one of the compared optimizers: "
                                  f"{', '.join(names)})")
            out[name] = value
    if schedule is not None:
        schedules.info(schedule.get("name", ""))
    return recipe, names, canon[0], canon[1]


def compare(problem: str = "digits-mlp", optimizers: Sequence[str] | str = DEFAULT_OPTIMIZERS, *,
            epochs: int | None = None, batch_size: int | str | None = "auto",
            lr: Mapping[str, float] | None = None, hyper: Mapping[str, Mapping[str, Any]] | None = None,
            schedule: Mapping[str, Any] | str | None = None, problem_options: Mapping[str, Any] | None = None,
            target: float | None = None, seed: int = 0, device: str = "auto",
            out_dir: str | Path | None = None, progress: ProgressFactory | None = None,
            resume: bool = False, callbacks: Sequence[Callback] = (), curvature: bool = False,
            sequential: bool = False) -> CompareResult:
    """Train ``problem`` with each optimizer from the same initial weights; return (and write) the results.

    Args:
        problem: a registered problem name (``ravine problems``).
        optimizers: registered optimizer names (``ravine optimizers``).
        epochs: the budget for every run (default: the problem's).
        batch_size: minibatch size, None or "full" for full batch, "auto" for the
            problem's (full batch for full-batch methods such as Newton or L-BFGS).
            Each run's resolved number is in ``runs[name].spec.batch_size``.
        lr: learning rate per optimizer name; the key ``"*"`` sets it for all.
            Missing ones use the default (:func:`ravine.train.spec.default_lr`).
        hyper: other hyperparameters per optimizer name (``{"momentum": {"momentum": 0.5}}``).
        schedule: ``{"name": ..., **hyper}`` applied to every run.
        problem_options: options of the problem (``{"standardize": True}``).
        target: the validation metric whose first crossing is "time to target"
            (default: the problem's).
        seed: one seed for data split, initial weights and shuffling.
        device: ``cpu``, ``cuda`` or ``auto``.
        out_dir: when set, writes ``results.json``, ``report.html``, ``figures/``
            and one folder of metric files (CSV, JSONL) per optimizer under ``runs/``.
        progress: ``progress(name) -> callback(done_iterations, total_iterations, info)``,
            for progress bars (see :func:`ravine.train.fit`).
        resume: continue the comparison in ``out_dir``: runs already in its
            ``results.json`` with the same resolved settings are kept, the others are trained.
        callbacks: :class:`ravine.train.Callback` objects given to every run.
        curvature: also measure λ_max of the training loss at the start and end of each run
            (``runs[name].extras["curvature"]``, see :class:`LambdaMaxTracker`).
        sequential: train every run one after another. By default the first-order
            runs that share a batch size train as one batched computation
            (:func:`ravine.train.batched.fit_batched`: same results to rounding,
            each run its own optimizer); full-batch and closure methods, models
            with BatchNorm, and runs given ``callbacks`` or
            ``curvature`` always train one at a time.

    Returns:
        A :class:`ravine.train.results.CompareResult` (``results.json`` is its ``to_json()``).

    Raises:
        CompareInterrupted: on Ctrl-C, after writing what finished (a ``KeyboardInterrupt``).
        RavineError: bad input, before anything trains.
    """
    lr, hyper, options = dict(lr or {}), dict(hyper or {}), dict(problem_options or {})
    if isinstance(optimizers, str):
        optimizers = [name.strip() for name in optimizers.split(",") if name.strip()]
    if isinstance(schedule, str):
        schedule = {"name": schedule}
    if target is not None:
        target = check_range("target", target, error=ConfigError)
    recipe, names, lr, hyper = _validate(problem, optimizers, lr, hyper, schedule)
    dev = resolve_device(device)
    out = Path(out_dir) if out_dir is not None else None
    previous = _previous(out, resume)
    start = time.perf_counter()
    requested = {"optimizers": list(optimizers), "epochs": epochs, "batch_size": batch_size, "lr": lr,
                 "hyper": hyper, "schedule": schedule, "problem_options": options, "target": target,
                 "device": device}
    result = CompareResult(recipe.name, seed=seed, device=str(dev), requested=requested, optimizers=names,
                           missing=list(names))
    specs = _resolve_all(recipe, names, lr, hyper, schedule, options, epochs, batch_size, seed, dev, result, target)
    _check_previous(previous, result, specs, out)
    initial: list[torch.Tensor] = []
    try:
        if not sequential and not callbacks and not curvature:  # per-run instruments: one at a time
            todo = [n for n in names if previous is None or n not in previous.runs]
            result.runs.update(_batched_runs(recipe, [specs[n] for n in todo], result, out, progress, initial))
        for name in names:
            if name in result.runs and (previous is None or name not in previous.runs):
                result.missing.remove(name)  # trained in a batch above
                continue
            if previous is not None and name in previous.runs:
                result.runs[name] = previous.runs[name]
            else:
                result.runs[name] = _one_run(recipe, specs[name], result, out, progress, callbacks, initial,
                                             curvature)
            result.missing.remove(name)
    except KeyboardInterrupt:
        raise _stop(result, out, start, previous) from None
    try:
        with sigint_deferred():  # once every run has trained, results.json lands whole
            result.runs = {name: result.runs[name] for name in names}
            result.wall_time = time.perf_counter() - start + (previous.wall_time if previous else 0.0)
            if out is not None:
                _write_results(out, result)
        if out is not None:
            _write_report(out, result)
    except KeyboardInterrupt:  # while the report was drawn: every run is in results.json
        raise CompareInterrupted(result, out) from None
    return result


def _stop(result: CompareResult, out: Path | None, start: float,
          previous: CompareResult | None) -> CompareInterrupted:
    """After a Ctrl-C: results.json (whole, whatever else is pressed) and, unless Ctrl-C comes again, the report."""
    try:
        with sigint_deferred():
            result.wall_time = time.perf_counter() - start + (previous.wall_time if previous else 0.0)
            if out is not None:
                _write_results(out, result)
        if out is not None:
            _write_report(out, result)
    except KeyboardInterrupt:  # a second Ctrl-C while the report was drawn
        pass
    return CompareInterrupted(result, out)


def _resolve_all(recipe: problems.Problem, names: list[str], lr: dict, hyper: dict, schedule: Any,
                 options: dict, epochs: int | None, batch_size: Any, seed: int, dev: torch.device,
                 result: CompareResult, target: float | None) -> dict[str, RunSpec]:
    """Every run's spec, before anything trains (a bad value for the last optimizer costs no time)."""
    inst = recipe.build(seed=seed, device="cpu", **options)
    result.metric_name, result.higher_is_better = inst.metric_name, inst.higher_is_better
    result.target = target if target is not None else inst.target
    result.reference_error = inst.reference_error
    specs = {name: resolve_spec(recipe.name, name, lr=lr.get(name, lr.get("*")), batch_size=batch_size,
                                epochs=epochs, hyper=hyper.get(name, {}), schedule=schedule, seed=seed, device=dev,
                                problem_options=options, instance=inst) for name in names}
    result.epochs = specs[names[0]].epochs
    return specs


def _one_run(recipe: problems.Problem, spec: RunSpec, result: CompareResult, out: Path | None,
             progress: ProgressFactory | None, callbacks: Sequence[Callback], initial: list[torch.Tensor],
             curvature: bool = False) -> RunResult:
    """Train one optimizer from the problem's initial weights (checked equal across runs) and summarize it."""
    dev = torch.device(spec.device)
    inst = recipe.build(seed=spec.seed, device=dev, **spec.problem_options)
    weights = [p.detach().clone().cpu() for p in inst.model.parameters()]
    if not initial:
        initial.extend(weights)
    elif not all(torch.equal(a, b) for a, b in zip(initial, weights, strict=True)):
        raise RavineError(f"problem {recipe.name!r} built different initial weights for the same seed")
    tracker = EffectiveStep()
    name = spec.optimizer
    extra: list[Callback] = []
    if curvature:
        extra.append(LambdaMaxTracker(inst.loss_fn, inst.data.X_train, inst.data.y_train, seed=spec.seed))
    fitted = fit(inst, spec=spec, out_dir=out / "runs" / name if out is not None else None,
                 callbacks=[tracker, *extra, *callbacks], progress=progress(name) if progress else None,
                 tensorboard=False)
    history = fitted.history
    unit = getattr(recipe, "error_unit", "") if inst.metric_name == "rmse" else ""
    return RunResult(name, spec, history, summarize(history, result.target),
                     diagnose_history(history, inst.reference_error, unit),
                     {"effective_step": tracker.to_dict(),
                      **({"curvature": extra[0].to_dict(history)} if curvature else {})})


def _batched_runs(recipe: problems.Problem, specs: list[RunSpec], result: CompareResult, out: Path | None,
                  progress: ProgressFactory | None, initial: list[torch.Tensor]) -> dict[str, RunResult]:
    """Train the first-order runs that share a batch size as batches (groups of one stay for ``_one_run``)."""
    from ravine.models.ensemble import ensemble_kind
    from ravine.train.batched import RunConfig, batchable, fit_batched

    groups: dict[tuple, list[RunSpec]] = {}
    for spec in specs:
        if batchable(spec.optimizer) and spec.closure == "none" and not spec.full_batch:
            groups.setdefault((spec.batch_size, spec.ema, spec.dtype, spec.device), []).append(spec)
    done: dict[str, RunResult] = {}
    for (batch_size, ema, dtype, device), group in groups.items():
        if len(group) < 2:
            continue
        inst = recipe.build(seed=group[0].seed, device=torch.device(device), dtype=getattr(torch, dtype),
                            **group[0].problem_options)
        if ensemble_kind(inst.model)[0] == "sequential":
            return done  # BatchNorm: every run one at a time
        weights = [p.detach().clone().cpu() for p in inst.model.parameters()]
        if not initial:
            initial.extend(weights)
        batched_tracker = BatchedEffectiveStep(len(group))
        trackers = batched_tracker.runs
        runs = [RunConfig(s.optimizer, lr=s.lr, hyper=dict(s.hyper), schedule=s.schedule or None, epochs=s.epochs)
                for s in group]
        res = fit_batched(inst, runs, batch_size=batch_size, seed=group[0].seed, device=device, ema=ema,
                          batch_hooks=[batched_tracker],
                          run_progress=[progress(s.optimizer) if progress else None for s in group],
                          out_dirs=[out / "runs" / s.optimizer if out is not None else None for s in group])
        unit = getattr(recipe, "error_unit", "") if inst.metric_name == "rmse" else ""
        for spec, fitted, tracker in zip(group, res.runs, trackers, strict=True):
            history = fitted.history
            done[spec.optimizer] = RunResult(spec.optimizer, spec, history, summarize(history, result.target),
                                             diagnose_history(history, inst.reference_error, unit),
                                             {"effective_step": tracker.to_dict(),
                                              "batched": {"with": [s.optimizer for s in group]}})
    return done


def _previous(out: Path | None, resume: bool) -> CompareResult | None:
    """The comparison to continue (``resume``), from ``out/results.json``."""
    if not resume:
        return None
    if out is None:
        raise ConfigError("Invalid resume: it needs out_dir (the folder of the comparison to continue)")
    path = out / "results.json"
    if not path.is_file():
        raise ConfigError(f"Invalid resume: {path} does not exist (nothing to continue; run without resume)")
    try:
        return CompareResult.load(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"Invalid resume: {path} is not a ravine compare result ({type(exc).__name__})") from None


def _check_previous(previous: CompareResult | None, result: CompareResult, specs: dict[str, RunSpec],
                    out: Path | None) -> None:
    """A resumed comparison keeps only finished runs trained with exactly this call's settings."""
    if previous is None:
        return
    if previous.problem != result.problem or previous.seed != result.seed:
        raise ConfigError(f"Invalid resume: {out} holds problem {previous.problem!r} seed {previous.seed}; this call "
                          f"has problem {result.problem!r} seed {result.seed} (use the same options, or a new --out)")
    for name, run in list(previous.runs.items()):
        if name not in specs:
            del previous.runs[name]
            continue
        diffs = run.spec.differences(specs[name])
        if diffs:
            raise ConfigError(f"Invalid resume: the {name} run in {out} was trained with other settings "
                              f"({'; '.join(diffs[:3])}); use the same options, or a new --out")
        if run.history.status == "interrupted":
            del previous.runs[name]


def _write_results(out: Path, result: CompareResult) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", result.to_json())


def _write_report(out: Path, result: CompareResult) -> None:
    """The report, when some run finished."""
    from ravine.report import write_report

    if result.runs:
        write_report(out, result, title=f"ravine compare · {result.problem}")
