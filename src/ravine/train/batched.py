"""Batched runs: N first-order runs that share data, architecture, batch size and minibatch order, in one pass.

Each run keeps its *own* optimizer (any first-order rule of ``ravine.optim``
with its own hyperparameters and schedule) and its own history; only the
forward and backward passes are shared: the models are stacked into a
:class:`ravine.models.ensemble.Ensemble`, one forward computes every run's
outputs ``(N, B, ...)``, the sum of the per-run mean losses is differentiated
once (each run's gradient is the slice of the stacked gradient that belongs to
it: the members never mix), and then each optimizer steps its run's
parameters, which are views into the stacked storage. For ravine's MLPs and
losses the forward and backward passes are written out
(:meth:`ravine.models.ensemble.Ensemble.loss_and_grad`), and runs of Adam or SGD
that differ only in ε skip ``Optimizer.step``'s per-run Python
(:mod:`ravine.train._stacked`): the per-step cost at 16 runs is then mostly the
matrix products and the update kernels.

A run that diverges stops (its optimizer no longer steps; its history says
where it diverged); the others go on. A run given fewer epochs stops earlier.
Models with BatchNorm (running statistics) and optimizers that need a closure
(line searches, second-order methods) have no batched form: they train one at a
time through :func:`ravine.train.fit`, and ``BatchedResult.mode`` /
``BatchedResult.message`` say so.

The histories have :func:`ravine.train.fit`'s format; a batched run matches the
same run trained alone to floating-point rounding (batched and single matrix
products sum in different orders) as long as it has no dropout (dropout draws
differ per run).

Example:
    >>> from ravine.train.batched import fit_batched
    >>> res = fit_batched("digits-mlp", [{"optimizer": "sgd", "lr": 0.1}, {"optimizer": "adam", "lr": 1e-3}],
    ...                   epochs=1)  # doctest: +SKIP
    >>> [r.history.status for r in res.runs]  # doctest: +SKIP
    ['ok', 'ok']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ravine.errors import ConfigError, check_int, check_range
from ravine.models.ensemble import Ensemble, ensemble_kind
from ravine.problems import ProblemInstance
from ravine.train._stacked import StackedUpdates
from ravine.train.loop import (
    Callback,
    FitResult,
    TrainState,
    _make_schedules,
    _momentum,
    _resolve_problem,
    _to_device,
    empty_history,
    fit,
)
from ravine.train.results import History, TestResult
from ravine.utils import resolve_device

ProgressFn = Callable[[int, int, dict[str, Any]], None]
_EVAL_ROWS = 512


@dataclass
class RunConfig:
    """One run of a batch.

    Attributes:
        optimizer: a first-order registry name (``ravine optimizers``).
        lr: learning rate ε (default: the problem's for this optimizer).
        hyper: other hyperparameters (``momentum``, ``betas``, ``weight_decay`` ...).
        schedule: as in :func:`ravine.train.fit`.
        epochs: this run's budget (default: the batch's).
        init: initial weights: None for the problem's, an ``nn.Module`` of the
            same architecture, or an int seed (the problem's model built with that seed).
        name: a label (default ``optimizer``).
    """

    optimizer: str
    lr: float | None = None
    hyper: dict[str, Any] = field(default_factory=dict)
    schedule: Any = None
    epochs: int | None = None
    init: nn.Module | int | None = None
    name: str | None = None


@dataclass
class BatchedResult:
    """What :func:`fit_batched` returns.

    Attributes:
        runs: one :class:`ravine.train.FitResult` per run, in the given order.
        mode: ``"baddbmm"``, ``"vmap"`` or ``"sequential"``.
        message: why this mode (e.g. why the runs trained one at a time).
        wall_time: seconds for the whole batch.
    """

    runs: list[FitResult]
    mode: str
    message: str
    wall_time: float


def _as_config(run: RunConfig | Mapping[str, Any] | str) -> RunConfig:
    if isinstance(run, RunConfig):
        return run
    if isinstance(run, str):
        return RunConfig(run)
    if isinstance(run, Mapping):
        unknown = sorted(set(run) - set(RunConfig.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"Invalid run key: {unknown[0]!r} (allowed: "
                              f"{', '.join(RunConfig.__dataclass_fields__)})")
        return RunConfig(**run)
    raise ConfigError(f"Invalid run: {run!r} (allowed: a RunConfig, a dict or an optimizer name)")


def batched_loss(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                 ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``f(outputs (N, B, ...), y (B, ...)) -> (N,)``: each member's mean loss, in few ops.

    ravine's own losses (cross-entropy, mse, bce) are written out batched; any
    other loss goes through ``torch.vmap``.

    Example:
        >>> from ravine.problems import cross_entropy
        >>> out, y = torch.randn(3, 5, 4), torch.randint(0, 4, (5,))
        >>> per_run = batched_loss(cross_entropy)(out, y)
        >>> bool(torch.allclose(per_run[2], cross_entropy(out[2], y)))
        True
    """
    from ravine import problems

    if loss_fn is problems.cross_entropy:
        def ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            n, b = out.shape[:2]
            flat = F.cross_entropy(out.reshape(n * b, -1), y.repeat(n), reduction="none")
            return flat.view(n, b).mean(1)
        return ce
    if loss_fn is problems.mse:
        def sq(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return (out.reshape(out.shape[0], *y.shape) - y).square().flatten(1).mean(1)
        return sq
    if loss_fn is problems.bce:
        def logistic(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            z = out.reshape(out.shape[0], *y.shape)
            return F.binary_cross_entropy_with_logits(z, y.expand_as(z), reduction="none").flatten(1).mean(1)
        return logistic
    return torch.vmap(loss_fn, in_dims=(0, None))


def _fused_loss_name(loss_fn: Callable[..., torch.Tensor]) -> str | None:
    """The name :meth:`Ensemble.loss_and_grad` knows ``loss_fn`` by (ravine's own losses), or None."""
    from ravine import problems

    names = {problems.cross_entropy: "cross_entropy", problems.mse: "mse", problems.bce: "bce"}
    return names.get(loss_fn)


def batchable(optimizer: str) -> bool:
    """True when ``optimizer`` can run in a batch (first-order: its step needs only ``.grad``, minibatches)."""
    from ravine import optim

    entry = optim.info(optimizer)
    return entry.closure == "none" and not entry.full_batch


class BatchHook:
    """Sees every run of a batch at once; override what you need (all indices are run positions).

    ``on_steps`` runs after the optimizers of ``stepped`` stepped (their ``.grad``
    still holds the gradient they used); ``on_epoch_end`` after the epoch's
    evaluation, for the runs still training, with each one's step count.
    """

    def on_fit_start(self, ensemble: Ensemble) -> None:
        """Before the first step."""

    def on_steps(self, ensemble: Ensemble, stepped: list[int], steps: list[int]) -> None:
        """After one iteration's optimizer steps; ``steps[k]`` is run ``stepped[k]``'s step count."""

    def on_epoch_end(self, epoch: int, runs: list[int], steps: list[int]) -> None:
        """After an epoch, for the runs that finished it without diverging."""


class _Run:
    """One member's optimizer, schedules and history."""

    def __init__(self, index: int, cfg: RunConfig, params: list[torch.Tensor], recipe: Any, options: dict[str, Any],
                 epochs: int, inst: ProblemInstance) -> None:
        from ravine import optim

        entry = optim.info(cfg.optimizer)
        lr = cfg.lr
        if lr is None:
            from ravine.train.spec import default_lr

            lr = default_lr(entry.name, recipe, options)[0]
        self.index, self.cfg, self.name = index, cfg, cfg.name or entry.name
        self.params = params
        self.optimizer = optim.create(entry.name, params, **{**cfg.hyper, **({"lr": lr} if lr is not None else {})})
        self.lr = float(self.optimizer.param_groups[0]["lr"])
        self.schedules = _make_schedules(cfg.schedule, self.optimizer)
        self.epochs = check_int("epochs", cfg.epochs if cfg.epochs is not None else epochs, 0, error=ConfigError)
        self.history = empty_history(inst.metric_name, inst.higher_is_better)
        self.active = self.epochs > 0
        self.wall: float | None = None
        self.grad_evals = 0.0
        self.callbacks: list[Callback] = []
        self.iter_callbacks: list[Callback] = []
        self.progress: ProgressFn | None = None
        self.names: list[str] = []
        self.view = _RunModel(self)
        self.start_loss: float | None = None
        self.ema: float | None = None
        self.lr_used = self.lr
        self.val_error = math.nan

    def diverge(self, epoch: int, iteration: int, value: float, what: str = "loss", why: str = "") -> None:
        self.history.status = "diverged"
        self.history.message = (f"diverged at epoch {epoch}, iteration {iteration}: {what} = {value:.6g}"
                                + (f" ({why})" if why else ""))
        self.active = False

    def state(self, epoch: int, loss: float = math.nan) -> TrainState:
        return TrainState(self.view, self.optimizer, self.history, epoch, len(self.history.iterations), loss)


class _RunModel(nn.Module):
    """What a :class:`ravine.train.Callback` sees as ``state.model``: this run's parameters (views, with grads)."""

    def __init__(self, run: _Run) -> None:
        super().__init__()
        self._run = [run]  # a list: not registered as a submodule

    def parameters(self, recurse: bool = True) -> Any:  # type: ignore[override]
        return iter(self._run[0].params)

    def named_parameters(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return iter(zip(self._run[0].names, self._run[0].params, strict=True))


class _Theta:
    """Evaluate each run at the course's θ (ravine's Nesterov keeps θ + αv in the parameters)."""

    def __init__(self, runs: list[_Run]) -> None:
        self.runs = runs
        self.saved: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def __enter__(self) -> None:
        with torch.no_grad():
            for run in self.runs:
                theta = getattr(run.optimizer, "theta", None)
                if theta is not None:
                    self.saved.append((run.params, [p.clone() for p in run.params]))
                    for p, t in zip(run.params, theta(), strict=True):
                        p.copy_(t)

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for params, saved in self.saved:
                for p, s in zip(params, saved, strict=True):
                    p.copy_(s)
        self.saved = []


def fit_batched(problem: ProblemInstance | str, runs: Sequence[RunConfig | Mapping[str, Any] | str], *,
                epochs: int | None = None, batch_size: int | str | None = "auto", seed: int = 0,
                device: str | torch.device | None = None, dtype: torch.dtype | None = None, ema: float = 0.9,
                divergence_factor: float = 1e6, problem_options: Mapping[str, Any] | None = None,
                progress: ProgressFn | None = None, mode: str = "auto", evaluate_test: bool = True,
                on_epoch: Callable[[int, list[History]], Sequence[int]] | None = None,
                callbacks: Sequence[Sequence[Callback]] | None = None,
                run_progress: Sequence[ProgressFn | None] | None = None,
                out_dirs: Sequence[str | Path | None] | None = None, growth_factor: float = 100.0,
                batch_hooks: Sequence[BatchHook] = ()) -> BatchedResult:
    """Train several first-order runs of one problem as one batched computation.

    Every run sees the same minibatches (shuffled by ``torch.Generator().manual_seed(seed)``
    each epoch, as :func:`ravine.train.fit` does); run ``k`` computes
    ``ℓ_k = loss(f(x; θ_k), y)`` and the batch differentiates ``Σ_k ℓ_k``, whose
    gradient with respect to ``θ_k`` is exactly ``∇ℓ_k`` (the members share no
    parameters). Each run's optimizer then steps ``θ_k``.

    Args:
        problem: a problem name or a ``ProblemInstance`` (its data are shared; its
            model is the architecture and the default initial weights).
        runs: :class:`RunConfig` objects, dicts of their fields, or optimizer names.
        epochs: default budget (a run's own ``epochs`` wins).
        batch_size: minibatch size, ``"auto"`` for the problem's, None for full batch.
        seed: the minibatch order, dropout, and the build of a named problem.
        device, dtype: where and in what precision to train.
        ema: smoothing of ``loss_ema``.
        divergence_factor: a run whose loss exceeds this × its first loss, or is not finite, stops.
        problem_options: options of a named problem.
        progress: ``progress(done_iterations, total_iterations, info)`` after each epoch.
        mode: ``"auto"`` (the fastest form the model has), ``"baddbmm"``, ``"vmap"`` or ``"sequential"``.
        evaluate_test: evaluate the test split at the end (a search passes False:
            the test split is then never read).
        on_epoch: ``on_epoch(epoch, histories) -> indices`` after each epoch's
            evaluation; the runs whose indices it returns stop there (their
            message says "stopped at epoch e"): how a pruner ends unpromising runs.
        callbacks: per run, :class:`ravine.train.Callback` objects (``state.model``
            is a module holding that run's parameters; ``.grad`` is its gradient).
        run_progress: per run, a progress function like ``progress`` (e.g. one bar per run).
        out_dirs: per run, a folder for its metric files and ``history.json`` (no checkpoints).
        growth_factor: a run whose whole-split training loss grows past this × the
            untrained model's is diverging (as in :func:`ravine.train.fit`).
        batch_hooks: :class:`BatchHook` objects that see the whole ensemble once per
            iteration (instruments that would cost N small passes as per-run callbacks).

    Returns:
        A :class:`BatchedResult` whose ``runs[k].history`` has :func:`ravine.train.fit`'s format.

    Example:
        >>> res = fit_batched("digits-mlp", ["sgd", "adam"], epochs=1, progress=None)  # doctest: +SKIP
        >>> res.mode  # doctest: +SKIP
        'baddbmm'
    """
    start = time.perf_counter()
    configs = [_as_config(r) for r in runs]
    if not configs:
        raise ConfigError("Invalid runs: empty (allowed: at least one run)")
    per_run_cbs = [list(c) for c in callbacks] if callbacks is not None else [[] for _ in configs]
    per_run_progress = list(run_progress) if run_progress is not None else [None] * len(configs)
    per_run_out = list(out_dirs) if out_dirs is not None else [None] * len(configs)
    if not len(per_run_cbs) == len(per_run_progress) == len(per_run_out) == len(configs):
        raise ConfigError("Invalid callbacks / run_progress / out_dirs: one entry per run (allowed: lists as long "
                          "as runs)")
    if mode not in ("auto", "baddbmm", "vmap", "sequential"):
        raise ConfigError(f"Invalid mode: {mode!r} (allowed: auto, baddbmm, vmap, sequential)")
    ema = check_range("ema", ema, 0.0, 1.0, high_inclusive=False, error=ConfigError)
    seed = check_int("seed", seed, 0, error=ConfigError)
    options = dict(problem_options or {})
    inst, recipe = _resolve_problem(problem, seed, device, dtype, options)
    from ravine import optim

    names = [optim.info(c.optimizer).name for c in configs]
    kind, why = ensemble_kind(inst.model)
    unbatchable = [n for n in names if not batchable(n)]
    if mode == "sequential" or kind == "sequential" or unbatchable:
        if mode != "sequential" and unbatchable:
            why = (f"{', '.join(sorted(set(unbatchable)))} need a closure or the full batch; "
                   "such runs train one at a time")
        elif mode == "sequential":
            why = "sequential mode asked for"
        results = [fit(_instance_for(problem, inst, recipe, c, seed, device, dtype, options), c.optimizer,
                       epochs=c.epochs if c.epochs is not None else epochs, batch_size=batch_size, lr=c.lr,
                       hyper=dict(c.hyper), schedule=c.schedule, seed=seed, device=device, dtype=dtype, ema=ema,
                       divergence_factor=divergence_factor, tensorboard=False, callbacks=cbs, progress=prog,
                       out_dir=folder, growth_factor=growth_factor,
                       problem_options=options if isinstance(problem, str) and c.init is None else None)
                   for c, cbs, prog, folder in zip(configs, per_run_cbs, per_run_progress, per_run_out, strict=True)]
        return BatchedResult(results, "sequential", why, time.perf_counter() - start)
    if mode != "auto":
        kind = mode
    trainer = _BatchedTrainer(inst, recipe, configs, epochs=epochs, batch_size=batch_size, seed=seed, device=device,
                              dtype=dtype, ema=ema, divergence_factor=divergence_factor, options=options,
                              kind=kind, progress=progress, evaluate_test=evaluate_test, on_epoch=on_epoch,
                              growth_factor=growth_factor)
    trainer.hooks = list(batch_hooks)
    for r, cbs, prog in zip(trainer.runs, per_run_cbs, per_run_progress, strict=True):
        r.callbacks = cbs
        r.iter_callbacks = [cb for cb in cbs if type(cb).on_iteration_end is not Callback.on_iteration_end]
        r.progress = prog
    results = trainer.run()
    for res, folder in zip(results, per_run_out, strict=True):
        if folder is not None:
            _write_run_folder(Path(folder), res.history)
    return BatchedResult(results, kind, why, time.perf_counter() - start)


def _write_run_folder(folder: Path, history: History) -> None:
    """The metric files :func:`ravine.train.fit` writes (iterations.csv, epochs.csv, ...) and ``history.json``."""
    from ravine.train.metrics import MetricsWriter
    from ravine.utils import write_json

    folder.mkdir(parents=True, exist_ok=True)
    writer = MetricsWriter(folder, False)
    try:
        writer.sync(history)
        if history.test is not None:
            writer.write_test(history.test.to_json())
    finally:
        writer.close()
    write_json(folder / "history.json", history.to_json())


def _instance_for(problem: Any, inst: ProblemInstance, recipe: Any, cfg: RunConfig, seed: int, device: Any,
                  dtype: Any, options: dict[str, Any]) -> Any:
    """What a one-at-a-time run trains: the name (rebuilt: fresh weights) or the data with this run's own model."""
    if isinstance(problem, str) and cfg.init is None:
        return problem
    model = _initial_model(inst, recipe, cfg, seed, device, dtype, options)
    return ProblemInstance(inst.data, model, inst.loss_fn, inst.residual_fn, inst.metric_fn, inst.metric_name,
                           inst.higher_is_better, inst.error_fn, inst.reference_error, inst.target)


def _initial_model(inst: ProblemInstance, recipe: Any, cfg: RunConfig, seed: int, device: Any, dtype: Any,
                   options: dict[str, Any]) -> nn.Module:
    import copy

    if cfg.init is None:
        return copy.deepcopy(inst.model)
    if isinstance(cfg.init, nn.Module):
        return copy.deepcopy(cfg.init)
    init_seed = check_int("init", cfg.init, 0, error=ConfigError)
    if recipe is None:
        raise ConfigError("Invalid init: an int seed needs a problem given by name (allowed: a model)")
    dev = next(inst.model.parameters()).device
    return recipe.build(seed=init_seed, device=dev, dtype=next(inst.model.parameters()).dtype, **options).model


class _BatchedTrainer:
    def __init__(self, inst: ProblemInstance, recipe: Any, configs: list[RunConfig], *, epochs: int | None,
                 batch_size: Any, seed: int, device: Any, dtype: Any, ema: float, divergence_factor: float,
                 options: dict[str, Any], kind: str, progress: ProgressFn | None, evaluate_test: bool,
                 on_epoch: Callable[[int, list[History]], Sequence[int]] | None = None,
                 growth_factor: float = 100.0) -> None:
        model = inst.model
        if device is None:
            first = next(iter(model.parameters()), None)
            device = first.device if first is not None else inst.data.X_train.device
        self.device = resolve_device(device)
        self.inst, self.seed, self.smooth, self.progress = inst, seed, ema, progress
        self.evaluate_test, self.on_epoch = evaluate_test, on_epoch
        self.divergence_factor = check_range("divergence_factor", divergence_factor, 1.0, error=ConfigError)
        self.growth_factor = growth_factor
        self.hooks: list[BatchHook] = []
        self.data = _to_device(inst, self.device)
        n = len(self.data.X_train)
        if n == 0:
            raise ConfigError("Invalid data: the training split is empty")
        if batch_size == "auto":
            batch_size = recipe.batch_size if recipe is not None else min(64, n)
        self.batch_size = None if batch_size in (None, "full") else check_int("batch_size", batch_size, 1, n,
                                                                               error=ConfigError)
        default_epochs = epochs if epochs is not None else (recipe.epochs if recipe is not None else 10)
        members = [_initial_model(inst, recipe, c, seed, self.device, dtype, options).to(self.device)
                   for c in configs]
        self.ens = Ensemble(members, kind)
        self.loss = batched_loss(inst.loss_fn)
        self.fused_loss = _fused_loss_name(inst.loss_fn) if self.ens.has_fused_step else None
        self.runs = [_Run(i, c, self.ens.member_params(i), recipe, options, default_epochs, inst)
                     for i, c in enumerate(configs)]
        for r in self.runs:
            r.names = self.ens.names
        self.epochs = max(r.epochs for r in self.runs)
        self.stacked = StackedUpdates(self.ens.stacked, [r.optimizer for r in self.runs])

    # --- evaluation --------------------------------------------------------------------------------

    def _outputs(self, X: torch.Tensor) -> torch.Tensor:
        was = self.ens.training
        self.ens.eval()
        try:
            with torch.no_grad():
                # row blocks whose activations (N, rows, width) stay in cache: 1.7x faster than
                # one block of 1079 rows at 16 runs of 64-128-128-10 (rows don't mix: same outputs)
                if len(X) <= _EVAL_ROWS:
                    return self.ens(X)
                return torch.cat([self.ens(X[i:i + _EVAL_ROWS]) for i in range(0, len(X), _EVAL_ROWS)], dim=1)
        finally:
            self.ens.train(was)

    def _evaluate(self, X: torch.Tensor, y: torch.Tensor, runs: list[_Run], error: bool = False
                  ) -> dict[int, tuple[float, float, float]]:
        if len(X) == 0:
            return {r.index: (math.nan, math.nan, math.nan) for r in runs}
        with _Theta(runs):
            out = self._outputs(X)
        losses = self.loss(out, y).tolist()
        inst = self.inst
        return {r.index: (losses[r.index], float(inst.metric_fn(out[r.index], y)),
                          float(inst.error_fn(out[r.index], y)) if error else math.nan) for r in runs}

    def _record_epoch(self, epoch: int, runs: list[_Run]) -> None:
        d = self.data
        needs_error = {r.index for r in runs if any(e.needs_metric for _, e in r.schedules)}
        train = self._evaluate(d.X_train, d.y_train, runs)
        val = self._evaluate(d.X_val, d.y_val, runs, error=bool(needs_error))
        now = time.perf_counter() - self.start
        for r in runs:
            r.history.epochs.append(epoch=epoch, iteration=len(r.history.iterations), time=now,
                                    train_loss=train[r.index][0], train_metric=train[r.index][1],
                                    val_loss=val[r.index][0], val_metric=val[r.index][1], lr=r.lr_used,
                                    grad_evals=r.grad_evals)
            r.val_error = val[r.index][2]

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> list[FitResult]:
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.random.default_generator.manual_seed(self.seed)  # dropout draws, as fit seeds them
            if cuda:
                torch.cuda.default_generators[cuda[0]].manual_seed(self.seed)
            self.shuffle_gen = torch.Generator().manual_seed(self.seed)
            self.start = time.perf_counter()
            self._loop()
        self.stacked.release()
        out = []
        for r in self.runs:
            r.history.wall_time = r.wall if r.wall is not None else time.perf_counter() - self.start
            params = {name: p.detach().clone() for name, p in zip(self.ens.names, r.params, strict=True)}
            model = self.ens.member_model(r.index)
            out.append(FitResult(r.history, model, r.optimizer, params, [s for s, _ in r.schedules], None))
        return out

    def _stop(self, r: _Run) -> None:
        r.active = False
        if r.wall is None:
            r.wall = time.perf_counter() - self.start

    def _loop(self) -> None:
        self._record_epoch(0, self.runs)
        for r in self.runs:
            for cb in r.callbacks:
                cb.on_fit_start(r.state(0))
        for hook in self.hooks:
            hook.on_fit_start(self.ens)
        self._progress()
        X, y = self.data.X_train, self.data.y_train
        n = len(X)
        fused = self.fused_loss if X.dim() == 2 else None
        if fused == "cross_entropy" and y.is_floating_point():  # class probabilities: autograd's path
            fused = None
        if fused is not None:
            self.ens.zero_grad_storage()
            self._bind_grads()
        size = self.batch_size or n
        per_epoch = math.ceil(n / size)
        for epoch in range(1, self.epochs + 1):
            live = [r for r in self.runs if r.active and r.epochs >= epoch]
            if not live:
                break
            for r in live:
                r.lr_used = float(r.optimizer.param_groups[0]["lr"])
            order = None if self.batch_size is None else torch.randperm(n, generator=self.shuffle_gen).to(self.device)
            for b, begin in enumerate(range(0, n, size)):
                if order is None:
                    xb, yb = X, y
                else:
                    idx = order[begin:begin + size]
                    xb, yb = X[idx], y[idx]
                if fused is not None:  # forward and backward written out, gradients overwritten in place
                    values = self.ens.loss_and_grad(xb, yb, fused).tolist()  # the one host sync per step
                else:
                    if self.ens.zero_grad_storage():  # bind each run's .grad to its slice, once
                        self._bind_grads()
                    losses = self.loss(self.ens(xb), yb)
                    losses.sum().backward()
                    values = losses.detach().tolist()  # the one host sync per step
                ep_float = epoch - 1 + (b + 1) / per_epoch
                stepped = [r for r in live if r.active and self._record(r, values[r.index], ep_float, epoch,
                                                                         len(xb) / n)]
                for k in self.stacked.step([r.index for r in stepped]):
                    self.runs[k].optimizer.step()
                for r in stepped:
                    self._after_step(r, values[r.index], epoch)
                if stepped and self.hooks:
                    idx, counts = [r.index for r in stepped], [len(r.history.iterations) for r in stepped]
                    for hook in self.hooks:
                        hook.on_steps(self.ens, idx, counts)
                if not any(r.active for r in live):
                    break
            done = [r for r in live if r.history.status == "ok"]
            self._end_epoch(epoch, done)
            if self.on_epoch is not None:
                for i in self.on_epoch(epoch, [r.history for r in self.runs]) or ():
                    r = self.runs[i]
                    if r.active and r.history.status == "ok":
                        r.history.message = f"stopped at epoch {epoch}"
                        self._stop(r)
            for r in done:
                if r.epochs == epoch:
                    self._stop(r)
            self._progress()
        self._finish()

    def _bind_grads(self) -> None:
        """Each run's ``.grad``: views of its slice of the stacked gradient storage (bound once)."""
        for r in self.runs:
            for p, g in zip(r.params, self.ens.member_grads(r.index), strict=True):
                p.grad = g

    def _record(self, r: _Run, value: float, ep_float: float, epoch: int, fraction: float) -> bool:
        """This iteration's row of run ``r``'s history; False (and the run stops) when it diverged."""
        group = r.optimizer.param_groups[0]
        lr, momentum = float(group["lr"]), _momentum(group)
        rec = r.history.iterations
        if r.start_loss is None:
            r.start_loss = r.ema = value
        r.ema = self.smooth * r.ema + (1.0 - self.smooth) * value
        r.grad_evals += fraction
        rec.step.append(len(rec.step) + 1)
        rec.epoch.append(ep_float)
        rec.loss.append(value)
        rec.loss_ema.append(r.ema)
        rec.lr.append(lr)
        rec.momentum.append(momentum)
        rec.grad_evals.append(r.grad_evals)
        rec.time.append(time.perf_counter() - self.start)
        if self._blown_up(r, value):
            r.diverge(epoch, len(rec.step), value)
            self._stop(r)
            return False
        return True

    def _after_step(self, r: _Run, value: float, epoch: int) -> None:
        """Per-iteration schedules and callbacks, after run ``r``'s optimizer stepped."""
        for sched, entry in r.schedules:
            if entry.per == "iteration":
                sched.step()
        for cb in r.iter_callbacks:
            cb.on_iteration_end(r.state(epoch, value))

    def _blown_up(self, r: _Run, value: float) -> bool:
        start = r.start_loss
        return not math.isfinite(value) or (start is not None and start > 0 and value > self.divergence_factor * start)

    def _end_epoch(self, epoch: int, runs: list[_Run]) -> None:
        if not runs:
            return
        self._record_epoch(epoch, runs)
        finished: list[_Run] = []
        for r in runs:
            train_loss = r.history.epochs.train_loss[-1]
            first = r.history.epochs.train_loss[0]
            step = len(r.history.iterations)
            if self._blown_up(r, train_loss):
                r.diverge(epoch, step, train_loss, "train loss after the epoch")
                self._stop(r)
                continue
            if math.isfinite(first) and first > 0 and train_loss > self.growth_factor * first:
                r.diverge(epoch, step, train_loss, "train loss after the epoch",
                          f"{train_loss / first:.3g} times the untrained model's {first:.4g}; "
                          "lower the learning rate")
                self._stop(r)
                continue
            for sched, entry in r.schedules:
                if entry.per == "epoch":
                    sched.step(r.val_error) if entry.needs_metric else sched.step()
            state = r.state(epoch)
            finished.append(r)
            for cb in r.callbacks:
                cb.on_epoch_end(state)
            if state.stop:
                r.history.message = f"stopped by a callback at epoch {epoch}"
                self._stop(r)
        for hook in self.hooks:
            hook.on_epoch_end(epoch, [r.index for r in finished], [len(r.history.iterations) for r in finished])

    def _finish(self) -> None:
        ok = [r for r in self.runs if r.history.status == "ok"]
        if self.evaluate_test and ok:
            test = self._evaluate(self.data.X_test, self.data.y_test, ok)
            for r in ok:
                r.history.test = TestResult(test[r.index][0], test[r.index][1])
        for r in self.runs:
            if r.wall is None:
                r.wall = time.perf_counter() - self.start
            r.history.wall_time = r.wall
            for cb in r.callbacks:
                cb.on_fit_end(r.state(r.history.epochs.epoch[-1] if r.history.epochs.epoch else 0))
        self._progress()

    def _progress(self) -> None:
        n = len(self.data.X_train)
        per_epoch = math.ceil(n / (self.batch_size or n))
        for r in self.runs:
            if r.progress is not None:
                ep = r.history.epochs
                info = {"epoch": ep.epoch[-1] if ep.epoch else 0, "epochs": r.epochs, "status": r.history.status,
                        "loss": r.ema if r.ema is not None else math.nan,
                        "val_metric": ep.val_metric[-1] if ep.val_metric else math.nan}
                r.progress(len(r.history.iterations), r.epochs * per_epoch, info)
        if self.progress is None:
            return
        total = sum(r.epochs for r in self.runs) * per_epoch
        done = sum(len(r.history.iterations) if r.active or r.history.status != "ok"
                   else r.epochs * per_epoch for r in self.runs)
        info = {"epochs": self.epochs, "runs": len(self.runs), "active": sum(r.active for r in self.runs),
                "diverged": sum(r.history.status == "diverged" for r in self.runs)}
        self.progress(done, total, info)
