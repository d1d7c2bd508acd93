"""The training loop: :func:`fit` trains one problem with one optimizer and records everything.

Minibatches are drawn from in-memory tensors with a seeded shuffle each epoch
(``torch.utils.data.DataLoader`` was considered: for data sets that fit in
memory its per-batch collation costs more than the step of a small network,
and it hides the shuffle order that a bit-identical resume must restore).
The optimizer's step is driven the way its registry entry asks (see
``ravine.optim.registry``): plain ``backward(); step()``, or a closure that
returns the loss, the loss graph, or the residual vector.

Example:
    >>> import torch
    >>> from ravine.train import fit, make_instance
    >>> g = torch.Generator().manual_seed(0)
    >>> X, y = torch.randn(64, 3, generator=g), torch.randn(64, 1, generator=g)
    >>> inst = make_instance(torch.nn.Linear(3, 1), (X, y, X, y, X, y), torch.nn.functional.mse_loss)
    >>> result = fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.1), epochs=2, batch_size=16)
    >>> result.history.status, len(result.history.iterations.loss), result.spec.batch_size
    ('ok', 8, 16)
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ravine.errors import CheckpointError, ClosureError, ConfigError, DivergenceError, check_int, check_range
from ravine.data import Splits
from ravine.problems import ProblemInstance
from ravine.train import distributed as ddp
from ravine.train.checkpoint import (CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state,
                                     weights_mismatch)
from ravine.train.metrics import MetricsWriter
from ravine.train.results import History, TestResult, TrainingInterrupted
from ravine.train.spec import RunSpec, resolve_spec
from ravine.utils import resolve_device

CLOSURE_KINDS = ("none", "loss", "graph", "residual")
# Keys of the run config a resumed run must share with its checkpoint (epochs may grow).
_RESUME_KEYS = ("optimizer", "lr", "hyper", "schedule", "batch_size", "seed", "closure", "ema")
_EVAL_CHUNK = 4096  # rows per forward pass when evaluating a whole split


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        history: the training history (:class:`ravine.train.results.History`).
        model: the trained model (the plain module, never the DDP wrapper).
        optimizer: the optimizer, in its final state.
        final_params: detached copies of the final parameters, by name.
        schedules: the schedules driven during training (possibly empty).
        out_dir: the run folder, when files were written.
        spec: the resolved settings of the run (:class:`ravine.train.spec.RunSpec`).
    """

    history: History
    model: nn.Module
    optimizer: torch.optim.Optimizer
    final_params: dict[str, torch.Tensor]
    schedules: list[Any] = field(default_factory=list)
    out_dir: Path | None = None
    spec: RunSpec | None = None

    @property
    def status(self) -> str:
        """``"ok"``, ``"diverged"`` or ``"interrupted"``."""
        return self.history.status


@dataclass
class TrainState:
    """What a :class:`Callback` sees; set ``stop = True`` to end training after this epoch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int
    iteration: int
    loss: float = math.nan
    stop: bool = False


class Callback:
    """Hooks into :func:`fit`; override the ones you need.

    ``on_iteration_end`` is only called for callbacks that override it, so the
    others add no per-iteration cost.
    """

    def on_fit_start(self, state: TrainState) -> None:
        """Before the first epoch (after a resume has restored the state)."""

    def on_iteration_end(self, state: TrainState) -> None:
        """After every optimizer step."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After each epoch's evaluation, schedule step and checkpoint."""

    def on_fit_end(self, state: TrainState) -> None:
        """After the final test evaluation (or the divergence)."""


ProgressFn = Callable[[int, int, dict[str, Any]], None]


def empty_history(metric_name: str, higher_is_better: bool) -> History:
    """A :class:`ravine.train.results.History` with no rows yet (kept for older callers).

    Example:
        >>> empty_history("accuracy", True).status
        'ok'
    """
    return History(metric_name, higher_is_better)


def make_instance(model: nn.Module, data: Splits | Sequence[torch.Tensor],
                  loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                  metric_fn: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
                  metric_name: str = "loss", higher_is_better: bool = False,
                  residual_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                  reference_error: float = 0.0, target: float = math.nan) -> ProblemInstance:
    """Wrap your own model and data as a :class:`ravine.problems.ProblemInstance`.

    Args:
        model: the network.
        data: a ``Splits`` or ``(X_train, y_train, X_val, y_val, X_test, y_test)``.
        loss_fn: ``loss_fn(outputs, y)``, the batch mean.
        metric_fn: defaults to the loss itself (lower is better).

    Example:
        >>> X = torch.randn(8, 2); y = torch.randn(8, 1)
        >>> inst = make_instance(torch.nn.Linear(2, 1), (X, y) * 3, torch.nn.functional.mse_loss)
        >>> inst.metric_name
        'loss'
    """
    splits = data if isinstance(data, Splits) else Splits(*data)
    if metric_fn is None:
        def metric_fn(out: torch.Tensor, y: torch.Tensor) -> float:
            return float(loss_fn(out, y))
    metric = metric_fn

    def error_fn(out: torch.Tensor, y: torch.Tensor) -> float:
        value = metric(out, y)
        return 1.0 - value if higher_is_better else value

    return ProblemInstance(splits, model, loss_fn, residual_fn, metric, metric_name, higher_is_better,
                           error_fn, reference_error, target)


def fit(problem: ProblemInstance | str | tuple | dict,
        optimizer: str | torch.optim.Optimizer | Callable[..., Any] = "adam", *,
        epochs: int | None = None, batch_size: int | None | str = "auto", lr: float | None = None,
        hyper: dict[str, Any] | None = None, schedule: str | dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        seed: int = 0, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
        ema: float | None = None, eval_every: int | None = None, out_dir: str | Path | None = None,
        resume: bool = False, callbacks: Sequence[Callback] = (), progress: ProgressFn | None = None,
        divergence_factor: float = 1e6, raise_on_divergence: bool = False, closure: str | None = None,
        problem_options: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
        tensorboard: bool = True, spec: RunSpec | None = None, growth_factor: float = 100.0) -> FitResult:
    """Train ``problem`` with ``optimizer`` and record the history.

    Per iteration: the minibatch loss ℓ_t (before the step), its EMA
    ``m_t = s·m_{t−1} + (1−s)·ℓ_t`` (``m_1 = ℓ_1``, s = ``ema``), lr and momentum.
    Per epoch: train and validation loss and metric (eval mode, no grad). At the
    end: test loss and metric (the test split is touched only there). Training
    stops at once when ℓ_t is NaN / inf or ℓ_t > ``divergence_factor``·ℓ_1: the
    history gets status ``"diverged"`` and a message with the step and value,
    and the last good checkpoint is kept. A run whose whole-split training loss
    after an epoch is more than ``growth_factor`` times the untrained model's
    (orders of magnitude worse) is stopped as diverging too. Ctrl-C marks the
    history ``"interrupted"``, keeps the last checkpoint and raises
    :class:`ravine.train.results.TrainingInterrupted` (a ``KeyboardInterrupt``).

    The settings are resolved once by :func:`ravine.train.spec.resolve_spec`
    (default lr, batch size, epochs, every hyperparameter); ``result.spec`` holds them.

    Args:
        problem: a ``ProblemInstance``, a problem name (``ravine.problems.names()``),
            or parts: ``(model, data, loss_fn)`` or a dict of :func:`make_instance` arguments.
        optimizer: a registry name (``ravine.optim.names()``), an optimizer
            instance over the problem's model, or a factory ``f(params)``.
        epochs: passes over the training split (default: the named problem's, else 10).
        batch_size: minibatch size; None for full batch; "auto" for the problem's
            default (64 for an instance).
        lr: learning rate ε (default: the problem's lr for this optimizer, else
            the registry's ``train_lr``); for an optimizer object it overrides
            every param group's lr when given.
        hyper: other optimizer hyperparameters (``momentum``, ``betas``, ...).
        schedule: a schedule name (``ravine.schedules.names()``), ``{"name": "step",
            "every": 10}``, or a list of such tables (e.g. an lr schedule and
            ``sutskever-momentum``). Epoch schedules step after each epoch
            (``halve-on-plateau`` gets the validation error), iteration ones
            after each optimizer step.
        seed: drives the shuffle, dropout, and the build of a named problem.
        device: where to train (default: where the model is; "auto" for a name).
        ema: smoothing s of ``loss_ema`` in [0, 1) (default 0.9; 0 for full batch).
        eval_every: also validate every this many iterations.
        out_dir: when set, write checkpoints and metric files there.
        resume: continue from ``out_dir``'s checkpoint (bit-identical to an
            uninterrupted run on the same device).
        callbacks: :class:`Callback` objects.
        progress: ``progress(done_iterations, total_iterations, info)``, called
            at the start and after every epoch (e.g. to drive a Rich bar).
        divergence_factor: the blow-up ratio that counts as divergence.
        raise_on_divergence: raise ``DivergenceError`` (after writing files).
        closure: the closure kind for an optimizer instance (default: "loss"
            for ``torch.optim.LBFGS``, else "none").
        problem_options: options for building a named problem.
        config: extra settings stored in the checkpoint (e.g. the config file).
        tensorboard: also write TensorBoard scalars when available.
        spec: a resolved :class:`ravine.train.spec.RunSpec`; when given it replaces
            optimizer (a name), epochs, batch_size, lr, hyper, schedule, seed, device,
            dtype, ema and problem_options.
        growth_factor: the whole-split loss growth over epoch 0 that counts as diverging.

    Example:
        >>> result = fit("digits-mlp", "adam", epochs=2, seed=0)  # doctest: +SKIP
        >>> result.history.epochs.val_metric  # doctest: +SKIP
    """
    if spec is not None:
        optimizer, epochs, batch_size, lr, hyper = spec.optimizer, spec.epochs, spec.batch_size, spec.lr, spec.hyper
        schedule, seed, device, ema = spec.schedule or None, spec.seed, spec.device, spec.ema
        dtype = getattr(torch, spec.dtype)
        problem_options = {} if not isinstance(problem, str) else spec.problem_options
    trainer = _Trainer(problem, optimizer, epochs=epochs, batch_size=batch_size, lr=lr, hyper=hyper or {},
                       schedule=schedule, seed=seed, device=device, dtype=dtype, ema=ema, eval_every=eval_every,
                       out_dir=out_dir, callbacks=callbacks, progress=progress,
                       divergence_factor=divergence_factor, closure=closure,
                       problem_options=problem_options or {}, config=config or {}, tensorboard=tensorboard,
                       growth_factor=growth_factor)
    result = trainer.run(resume)
    if raise_on_divergence and result.history.status == "diverged":
        raise DivergenceError(result.history.message)
    return result


def _resolve_problem(problem: Any, seed: int, device: Any, dtype: Any,
                     options: dict[str, Any]) -> tuple[ProblemInstance, Any]:
    """The instance to train, and the named ``Problem`` recipe (None for an instance)."""
    if isinstance(problem, dict):  # parts: make_instance's arguments by name
        problem = make_instance(**problem)
    elif isinstance(problem, tuple | list):  # parts: (model, data, loss_fn[, ...])
        problem = make_instance(*problem)
    if isinstance(problem, ProblemInstance):
        if options:
            raise ConfigError("problem_options only apply to a problem given by name")
        return problem, None
    if isinstance(problem, str):
        from ravine import problems

        recipe = problems.get(problem)
        inst = recipe.build(seed=seed, device=resolve_device(device or "auto"),
                            dtype=dtype or torch.float32, **options)
        return inst, recipe
    raise ConfigError(f"Invalid problem: {type(problem).__name__} (allowed: a problem name or a ProblemInstance)")


def _to_device(inst: ProblemInstance, device: torch.device) -> Splits:
    d = inst.data
    moved = [t.to(device) for t in (d.X_train, d.y_train, d.X_val, d.y_val, d.X_test, d.y_test)]
    inst.model.to(device)
    return Splits(*moved, feature_names=d.feature_names)


def _make_optimizer(optimizer: Any, model: nn.Module, lr: float | None, hyper: dict[str, Any],
                    closure: str | None) -> tuple[torch.optim.Optimizer, str, str, float]:
    """Create the optimizer; returns (optimizer, name, closure kind, lr).

    For a name, ``lr`` and ``hyper`` are the resolved ones (:func:`ravine.train.spec.resolve_spec`).
    """
    if closure is not None and closure not in CLOSURE_KINDS:
        raise ConfigError(f"Invalid closure: {closure!r} (allowed: {', '.join(CLOSURE_KINDS)})")
    if isinstance(optimizer, str):
        from ravine import optim

        entry = optim.info(optimizer)
        opt = optim.create(entry.name, model.parameters(), **{**hyper, "lr": lr})
        return opt, entry.name, closure or entry.closure, float(opt.param_groups[0]["lr"])
    if hyper:
        raise ConfigError(f"Invalid hyper: {sorted(hyper)} (allowed: only with an optimizer given by name; "
                          "set them on the optimizer object instead)")
    if not isinstance(optimizer, torch.optim.Optimizer):
        if not callable(optimizer):
            raise ConfigError(f"Invalid optimizer: {optimizer!r} (allowed: a name, an Optimizer or a factory)")
        optimizer = optimizer(model.parameters())
    if lr is not None:  # an explicit lr overrides the object's, in every param group
        for group in optimizer.param_groups:
            group["lr"] = check_range("lr", lr, 0.0, low_inclusive=False, error=ConfigError)
    if closure is None:
        closure = "loss" if isinstance(optimizer, torch.optim.LBFGS) else "none"
    return optimizer, type(optimizer).__name__, closure, float(optimizer.param_groups[0]["lr"])


def _make_schedules(schedule: Any, optimizer: torch.optim.Optimizer) -> list[tuple[Any, Any]]:
    """[(scheduler, ScheduleInfo)] from one ``{"name": ..., **hyper}`` table or a list of them."""
    if schedule is None:
        return []
    from ravine import schedules

    if isinstance(schedule, str):
        schedule = {"name": schedule}
    tables = [schedule] if isinstance(schedule, dict) else list(schedule)
    out = []
    for table in tables:
        if not isinstance(table, dict) or "name" not in table:
            raise ConfigError(f"Invalid schedule: {table!r} (allowed: a table with 'name' and its hyperparameters)")
        hyper = {k: v for k, v in table.items() if k != "name"}
        out.append((schedules.create(table["name"], optimizer, **hyper), schedules.info(table["name"])))
    return out


@contextlib.contextmanager
def _course_params(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Evaluate at the course's θ for optimizers whose parameters hold another point.

    ravine's Nesterov keeps the look-ahead point θ + αv in the parameters and
    offers ``theta()``; losses and metrics are reported at θ. The parameters are
    restored bit for bit afterwards, so training (and resume) is unaffected.
    """
    theta = getattr(optimizer, "theta", None)
    if theta is None:
        yield
        return
    params = [p for group in optimizer.param_groups for p in group["params"]]
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, t in zip(params, theta(), strict=True):
            p.copy_(t)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, t in zip(params, saved, strict=True):
                p.copy_(t)


def _evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, inst: ProblemInstance,
              want_error: bool = False) -> tuple[float, float, float]:
    """(loss, metric, error) of ``model`` on a whole split, in eval mode and without grad."""
    if len(X) == 0:
        return math.nan, math.nan, math.nan
    was_training = model.training
    model.eval()  # dropout off, batch norm uses its running statistics
    try:
        with torch.no_grad():
            if len(X) <= _EVAL_CHUNK:
                out = model(X)
            else:
                out = torch.cat([model(X[i:i + _EVAL_CHUNK]) for i in range(0, len(X), _EVAL_CHUNK)])
            loss = float(inst.loss_fn(out, y))
            metric = float(inst.metric_fn(out, y))
            error = float(inst.error_fn(out, y)) if want_error else math.nan
    finally:
        model.train(was_training)
    return loss, metric, error


def _momentum(group: dict[str, Any]) -> float | None:
    if "momentum" in group:
        return float(group["momentum"])
    if "betas" in group:
        return float(group["betas"][0])
    return None


def _plain(value: Any) -> Any:
    """Tuples -> lists etc., so a config compares equal after a save/load round trip."""
    return json.loads(json.dumps(value, default=str))


class _Trainer:
    """The state of one :func:`fit` call (split up so each method fits on a screen)."""

    def __init__(self, problem: Any, optimizer: Any, *, epochs: int | None, batch_size: Any, lr: float | None,
                 hyper: dict[str, Any], schedule: Any, seed: int, device: Any, dtype: Any, ema: float | None,
                 eval_every: int | None, out_dir: Any, callbacks: Sequence[Callback], progress: ProgressFn | None,
                 divergence_factor: float, closure: str | None, problem_options: dict[str, Any],
                 config: dict[str, Any], tensorboard: bool, growth_factor: float = 100.0) -> None:
        self.seed = check_int("seed", seed, 0, error=ConfigError)
        self.eval_every = None if not eval_every else check_int("eval_every", eval_every, 1, error=ConfigError)
        self.divergence_factor = check_range("divergence_factor", divergence_factor, 1.0, error=ConfigError)
        self.growth_factor = check_range("growth_factor", growth_factor, 1.0, error=ConfigError)
        self.inst, recipe = _resolve_problem(problem, self.seed, device, dtype, problem_options)
        model = self.inst.model
        if device is None:
            first = next(iter(model.parameters()), None)
            device = first.device if first is not None else self.inst.data.X_train.device
        self.device = resolve_device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.data = _to_device(self.inst, self.device)
        self.model = model
        self.spec = self._resolve(recipe, optimizer, epochs, batch_size, lr, hyper, schedule, dtype, ema,
                                  problem_options)
        self.epochs, self.ema = self.spec.epochs, self.spec.ema
        # None: one full batch per epoch, in order (no shuffle); the spec keeps the number.
        self.batch_size = None if self.spec.full_batch else self.spec.batch_size
        self.optimizer, self.opt_name, self.closure_kind, self.lr = _make_optimizer(
            optimizer, model, self.spec.lr if isinstance(optimizer, str) else lr,
            self.spec.hyper if isinstance(optimizer, str) else hyper, closure)
        self.spec.closure = self.closure_kind
        if not isinstance(optimizer, str):  # an optimizer object: record what it holds
            group = self.optimizer.param_groups[0]
            self.spec.optimizer, self.spec.lr, self.spec.lr_source = self.opt_name, self.lr, "given"
            self.spec.hyper = _plain({k: v for k, v in group.items() if k not in ("params", "lr")})
        if self.closure_kind == "residual" and self.inst.residual_fn is None:
            raise ClosureError(f"optimizer {self.opt_name!r} needs residuals, but this problem has no residual_fn "
                               "(allowed: problems with a sum-of-squares loss, e.g. loss 'mse')")
        self.schedules = _make_schedules(self.spec.schedule or None, self.optimizer)
        self.rank, self.world = ddp.world()
        self.out_dir = Path(out_dir) if out_dir is not None and self.rank == 0 else None
        self.ckpt_path = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
        self.callbacks, self.progress, self.tensorboard = list(callbacks), progress, tensorboard
        self.run_config = _plain({"optimizer": self.opt_name, "lr": self.lr, "hyper": hyper, "schedule": schedule,
                                  "batch_size": self.batch_size, "seed": self.seed, "closure": self.closure_kind,
                                  "ema": self.ema, "epochs": self.epochs, "eval_every": self.eval_every,
                                  "divergence_factor": self.divergence_factor, "world_size": self.world,
                                  "user": config, "spec": self.spec.to_json()})
        self.history = History(self.inst.metric_name, self.inst.higher_is_better)

    def _resolve(self, recipe: Any, optimizer: Any, epochs: Any, batch_size: Any, lr: Any, hyper: dict[str, Any],
                 schedule: Any, dtype: Any, ema: Any, problem_options: dict[str, Any]) -> RunSpec:
        """The run's :class:`RunSpec`: by :func:`resolve_spec` for a named optimizer, else from the object."""
        dtype_name = str(dtype or torch.float32).removeprefix("torch.")
        if isinstance(optimizer, str):
            target = recipe.name if recipe is not None else self.inst
            return resolve_spec(target, optimizer, lr=lr, batch_size=batch_size, epochs=epochs, hyper=hyper,
                                schedule=schedule, seed=self.seed, device=self.device, dtype=dtype_name, ema=ema,
                                problem_options=problem_options, instance=self.inst)
        from ravine.train.spec import resolve_batch_size, resolve_schedule

        n = len(self.data.X_train)
        size, full = resolve_batch_size(batch_size, n, default=recipe.batch_size if recipe is not None else 64)
        epochs = check_int("epochs", recipe.epochs if epochs is None and recipe is not None else
                           (10 if epochs is None else epochs), 1, error=ConfigError)
        ema = (0.0 if full else 0.9) if ema is None else check_range("ema", ema, 0.0, 1.0, high_inclusive=False,
                                                                      error=ConfigError)
        return RunSpec(problem=recipe.name if recipe is not None else "", optimizer="", lr=math.nan,
                       batch_size=size, n_train=n, epochs=epochs, full_batch=full,
                       schedule=resolve_schedule(schedule), seed=self.seed, device=str(self.device),
                       dtype=dtype_name, ema=ema, problem_options=problem_options)

    # --- the run -------------------------------------------------------------------------------

    def run(self, resume: bool) -> FitResult:
        """Train (or continue) and return the result; the caller's global RNG is left as it was."""
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            # Dropout draws from the global generator: seed it per rank inside the fork.
            torch.random.default_generator.manual_seed(self.seed + self.rank)
            if cuda:
                torch.cuda.default_generators[cuda[0]].manual_seed(self.seed + self.rank)
            self.shuffle_gen = torch.Generator().manual_seed(self.seed)
            self.epoch, self.iteration, self.ema_value, self.start_loss, time_offset = 0, 0, None, None, 0.0
            self.grad_evals, self.calls = 0.0, [0]
            if resume:
                time_offset = self._restore()
            self.train_model = self._wrap_ddp()
            self.step_fn = self._make_step()
            self.writer = MetricsWriter(self.out_dir, self.tensorboard) if self.out_dir is not None else None
            self.start_time = time.perf_counter() - time_offset
            try:
                self._loop()
            except KeyboardInterrupt:
                self._interrupted()
                raise TrainingInterrupted(self.history, self.out_dir) from None
            finally:
                if self.writer is not None:
                    self.writer.close()
        params = {name: p.detach().clone() for name, p in self.model.named_parameters()}
        return FitResult(self.history, self.model, self.optimizer, params,
                         [s for s, _ in self.schedules], self.out_dir, self.spec)

    def _interrupted(self) -> None:
        """Ctrl-C: the history says so; the checkpoint of the last finished epoch stays as it was."""
        hist = self.history
        hist.status = "interrupted"
        kept = hist.epochs.epoch[-1] if hist.epochs.epoch else 0
        hist.message = (f"interrupted (Ctrl-C) in epoch {self.epoch + 1}, iteration {self.iteration}; "
                        f"the checkpoint of epoch {kept} is kept")
        hist.wall_time = time.perf_counter() - self.start_time

    def _loop(self) -> None:
        state = TrainState(self.model, self.optimizer, self.history, self.epoch, self.iteration)
        if not self.history.epochs.epoch:
            self._record_epoch(0, float(self.optimizer.param_groups[0]["lr"]))
            self._save(0)
        for cb in self.callbacks:
            cb.on_fit_start(state)
        self._report_progress()
        for epoch in range(self.epoch + 1, self.epochs + 1):
            lr_used = float(self.optimizer.param_groups[0]["lr"])
            if not self._train_epoch(epoch):
                break
            if self._end_epoch(epoch, lr_used):
                break
        self._finish()

    def _finish(self) -> None:
        hist = self.history
        if hist.status == "ok":
            with _course_params(self.optimizer):
                loss, metric, _ = _evaluate(self.model, self.data.X_test, self.data.y_test, self.inst)
            hist.test = TestResult(loss, metric)
        hist.wall_time = time.perf_counter() - self.start_time
        if self.writer is not None:
            self.writer.sync(hist)
            if hist.test is not None:
                self.writer.write_test(hist.test.to_json())
            from ravine.utils import write_json

            write_json(self.out_dir / "history.json", hist.to_json())
        state = TrainState(self.model, self.optimizer, hist, self.epoch, self.iteration)
        for cb in self.callbacks:
            cb.on_fit_end(state)
        self._report_progress()

    def _report_progress(self) -> None:
        if self.progress is None:
            return
        n = len(self.data.X_train)
        per_epoch = 1 if self.batch_size is None else math.ceil(n / self.batch_size)
        ep, it = self.history.epochs, self.history.iterations
        info = {"epoch": self.epoch, "epochs": self.epochs, "status": self.history.status,
                "loss": it.loss_ema[-1] if self.iteration and it.loss_ema else math.nan,
                "val_metric": ep.val_metric[-1] if ep.val_metric else math.nan}
        self.progress(self.iteration, self.epochs * per_epoch, info)

    def _batches(self) -> Any:
        """This epoch's minibatches: ``(x, y, global batch size)``; this rank's shard under DDP."""
        X, y = self.data.X_train, self.data.y_train
        n = len(X)
        if self.batch_size is None:
            order = torch.arange(n, device=self.device) if self.world > 1 else None
        else:
            order = torch.randperm(n, generator=self.shuffle_gen).to(self.device)
        size = self.batch_size or n
        for start in range(0, n, size):
            if order is None:
                yield X, y, n
                continue
            idx = order[start:start + size]
            n_batch = len(idx)
            if self.world > 1:
                idx = ddp.shard(idx, self.rank, self.world)
            yield X[idx], y[idx], n_batch

    def _train_epoch(self, epoch: int) -> bool:
        """One pass over the training split; False when training diverged."""
        n = len(self.data.X_train)
        batches = math.ceil(n / (self.batch_size or n))
        rec = self.history.iterations
        steps, epochs, losses, emas, lrs, moms = rec.step, rec.epoch, rec.loss, rec.loss_ema, rec.lr, rec.momentum
        evals, times = rec.grad_evals, rec.time
        per_iter = [s for s, entry in self.schedules if entry.per == "iteration"]
        iter_callbacks = [cb for cb in self.callbacks if type(cb).on_iteration_end is not Callback.on_iteration_end]
        group, smooth, step_fn, calls = self.optimizer.param_groups[0], self.ema, self.step_fn, self.calls
        iteration, ema, grad_evals = self.iteration, self.ema_value, self.grad_evals
        for b, (xb, yb, n_batch) in enumerate(self._batches()):
            lr, momentum = float(group["lr"]), _momentum(group)
            calls[0] = 0
            value = float(step_fn(xb, yb, n_batch))  # the one host sync per step (divergence needs it)
            iteration += 1
            grad_evals += max(calls[0], 1) * n_batch / n
            if self.start_loss is None:
                self.start_loss = ema = value
            ema = smooth * ema + (1.0 - smooth) * value
            steps.append(iteration)
            epochs.append(epoch - 1 + (b + 1) / batches)
            losses.append(value)
            emas.append(ema)
            lrs.append(lr)
            moms.append(momentum)
            evals.append(grad_evals)
            times.append(time.perf_counter() - self.start_time)
            for sched in per_iter:
                sched.step()
            if self._blown_up(value):
                self.iteration, self.ema_value, self.grad_evals = iteration, ema, grad_evals
                self._diverged(epoch, value)
                return False
            if (self.eval_every and iteration % self.eval_every == 0) or iter_callbacks:
                self.iteration, self.ema_value, self.grad_evals = iteration, ema, grad_evals
                self._iteration_hooks(epoch, epochs[-1], value, iter_callbacks)
        self.iteration, self.ema_value, self.grad_evals = iteration, ema, grad_evals
        return True

    def _iteration_hooks(self, epoch: int, epoch_float: float, value: float, callbacks: list[Callback]) -> None:
        if self.eval_every and self.iteration % self.eval_every == 0:
            self._record_eval(epoch_float)
        if callbacks:
            state = TrainState(self.model, self.optimizer, self.history, epoch, self.iteration, value)
            for cb in callbacks:
                cb.on_iteration_end(state)

    def _diverged(self, epoch: int, value: float, what: str = "loss", why: str = "") -> None:
        self.history.status = "diverged"
        self.history.message = (f"diverged at epoch {epoch}, iteration {self.iteration}: {what} = {value:.6g}"
                                + (f" ({why})" if why else ""))
        self.epoch = epoch

    def _record_eval(self, epoch: float) -> None:
        with _course_params(self.optimizer):
            loss, metric, _ = _evaluate(self.model, self.data.X_val, self.data.y_val, self.inst)
        self.history.evals.append(step=self.iteration, epoch=epoch, val_loss=loss, val_metric=metric)

    def _record_epoch(self, epoch: int, lr_used: float) -> float:
        """Evaluate on train and validation, append the epoch row; returns the validation error."""
        needs_error = any(entry.needs_metric for _, entry in self.schedules)
        with _course_params(self.optimizer):
            train_loss, train_metric, _ = _evaluate(self.model, self.data.X_train, self.data.y_train, self.inst)
            val_loss, val_metric, val_error = _evaluate(self.model, self.data.X_val, self.data.y_val, self.inst,
                                                        want_error=needs_error)
        self.history.epochs.append(epoch=epoch, iteration=self.iteration, time=time.perf_counter() - self.start_time,
                                   train_loss=train_loss, train_metric=train_metric, val_loss=val_loss,
                                   val_metric=val_metric, lr=lr_used, grad_evals=self.grad_evals)
        return val_error

    def _blown_up(self, value: float) -> bool:
        start = self.start_loss
        return not math.isfinite(value) or (start is not None and start > 0 and value > self.divergence_factor * start)

    def _grew(self, train_loss: float) -> bool:
        """The whole-split training loss is orders of magnitude above the untrained model's."""
        first = self.history.epochs.train_loss[0]
        return math.isfinite(first) and first > 0 and train_loss > self.growth_factor * first

    def _end_epoch(self, epoch: int, lr_used: float) -> bool:
        """Evaluate, step the schedules, checkpoint; True when training must stop."""
        self.epoch = epoch
        val_error = self._record_epoch(epoch, lr_used)
        train_loss = self.history.epochs.train_loss[-1]
        if self._blown_up(train_loss):  # the epoch's last step broke the weights: never checkpoint them
            self._diverged(epoch, train_loss, "train loss after the epoch")
            return True
        if self._grew(train_loss):
            first = self.history.epochs.train_loss[0]
            self._diverged(epoch, train_loss, "train loss after the epoch",
                           f"{train_loss / first:.3g} times the untrained model's {first:.4g}; "
                           "lower the learning rate")
            return True
        for sched, entry in self.schedules:
            if entry.per == "epoch":
                sched.step(val_error) if entry.needs_metric else sched.step()
        state = TrainState(self.model, self.optimizer, self.history, epoch, self.iteration)
        for cb in self.callbacks:
            cb.on_epoch_end(state)
        self._save(epoch)
        self._report_progress()
        return state.stop or self._stalled(epoch) or self._converged(epoch)

    def _converged(self, epoch: int) -> bool:
        """A full-batch least-squares solver whose last step found θ a minimum to rounding
        (``state["status"]`` 1, 2 or 3: gtol / ftol / xtol, as SciPy's codes): further epochs would
        only repeat the rejected trials, so stop and say so. A minibatch step proves nothing about
        the whole training loss, so only full-batch runs stop."""
        if not self.spec.full_batch:
            return False
        done = [s for s in self.optimizer.state.values() if isinstance(s, dict) and s.get("status") in (1, 2, 3)]
        if not done:
            return False
        self.history.message = f"converged at epoch {epoch}: {self.opt_name} {done[0].get('message', '')}".rstrip()
        return True

    def _stalled(self, epoch: int) -> bool:
        """A second-order solver that reports ``state["stalled"]`` cannot lower the loss: stop, and say so."""
        if not any(isinstance(s, dict) and s.get("stalled") for s in self.optimizer.state.values()):
            return False
        self.history.message = (f"stopped at epoch {epoch}: {self.opt_name} cannot decrease the training loss "
                                "any further (its steps all raised it); try another optimizer or lr")
        return True

    # --- checkpoints ---------------------------------------------------------------------------

    def _save(self, epoch: int) -> None:
        """Checkpoint (rank 0 only; every rank contributes its RNG state) and flush the metric files."""
        if self.ckpt_path is None:
            return
        rngs = ddp.gather_objects(rng_state(self.shuffle_gen, self.device))
        if self.out_dir is None:  # not rank 0
            return
        state = {"epoch": epoch, "iteration": self.iteration, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "schedule": [s.state_dict() for s, _ in self.schedules],
                 "rng": rngs[0], "rng_ranks": rngs, "history": self.history.to_json(), "config": self.run_config,
                 "ema_value": self.ema_value, "start_loss": self.start_loss}
        save_checkpoint(self.ckpt_path, state)
        if self.writer is not None:
            self.writer.sync(self.history)

    def _restore(self) -> float:
        """Load the checkpoint into model, optimizer, schedules, RNGs; returns the elapsed time so far."""
        if self.ckpt_path is None:
            raise ConfigError("resume needs out_dir (the folder of the run to continue)")
        path = self.ckpt_path
        ckpt = load_checkpoint(path)
        self._check_compatible(ckpt.get("config"), path)
        why = weights_mismatch(self.model, ckpt.get("model"))
        if why is not None:
            raise CheckpointError(f"Invalid checkpoint: {path} does not fit this run's model ({why}; allowed: the "
                                  "checkpoint of a run of the same problem and problem options)")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            for (sched, _), sd in zip(self.schedules, ckpt["schedule"], strict=True):
                sched.load_state_dict(sd)
            rngs = ckpt["rng_ranks"]
            rng = rngs[self.rank] if len(rngs) == self.world else ckpt["rng"]
            self.history = History.from_json(ckpt["history"])
            self.epoch, self.iteration = int(ckpt["epoch"]), int(ckpt["iteration"])
            self.ema_value, self.start_loss = ckpt["ema_value"], ckpt["start_loss"]
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"checkpoint {path} does not fit this model / optimizer ({detail})") from None
        set_rng_state(rng, self.shuffle_gen, self.device)
        if self.epoch > self.epochs:
            raise CheckpointError(f"Invalid epochs: {self.epochs} (checkpoint {path} is at epoch {self.epoch} already; "
                                  f"allowed when resuming: epochs >= {self.epoch})")
        last = self.history.epochs.grad_evals[-1] if self.history.epochs.grad_evals else 0.0
        self.grad_evals = last if math.isfinite(last) else 0.0
        times = self.history.epochs.time
        return float(times[-1]) if times else 0.0

    def _check_compatible(self, saved: Any, path: Path) -> None:
        if not isinstance(saved, dict):
            raise CheckpointError(f"checkpoint {path} has no run config")
        for key in _RESUME_KEYS:
            if saved.get(key) != self.run_config[key]:
                raise CheckpointError(
                    f"Invalid {key}: {self.run_config[key]!r} (checkpoint {path} was written with {key}="
                    f"{saved.get(key)!r}; allowed when resuming: the checkpoint's settings, only epochs may change)")

    # --- one optimizer step per closure kind -----------------------------------------------------

    def _wrap_ddp(self) -> nn.Module:
        if self.world == 1:
            return self.model
        if self.closure_kind not in ("none", "loss"):
            raise ConfigError(f"optimizer {self.opt_name!r} (closure {self.closure_kind!r}) cannot run on several "
                              "processes (allowed with nproc > 1: optimizers with closure 'none' or 'loss')")
        from torch.nn.parallel import DistributedDataParallel

        # each rank would otherwise normalize with its own shard's statistics (the course's advice)
        self.model = ddp.convert_sync_batchnorm(self.model, self.device)
        ids = [self.device.index or 0] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids)

    def _make_step(self) -> Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]:
        """``step(xb, yb, n_batch) -> loss before the step`` (the global batch mean under DDP)."""
        model, opt, loss_fn, world = self.train_model, self.optimizer, self.inst.loss_fn, self.world
        kind, name, calls = self.closure_kind, self.opt_name, self.calls

        def local_loss(xb: torch.Tensor, yb: torch.Tensor, n_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
            """(loss to backprop, loss to record): DDP rescales so the averaged gradient is the batch mean's."""
            if world == 1:
                loss = loss_fn(model(xb), yb)
                return loss, loss.detach()
            if len(xb) == 0:  # a last batch smaller than the world: this rank contributes zero gradient
                loss = model(xb).sum() * 0.0
            else:
                loss = loss_fn(model(xb), yb)
            return loss * (len(xb) * world / n_batch), ddp.reduce_mean(loss, len(xb), n_batch)

        if kind == "none" and world == 1:
            def plain_step(xb: torch.Tensor, yb: torch.Tensor, n_batch: int) -> torch.Tensor:
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                return loss.detach()
            return plain_step

        if kind == "none":
            def step(xb: torch.Tensor, yb: torch.Tensor, n_batch: int) -> torch.Tensor:
                opt.zero_grad(set_to_none=True)
                loss, value = local_loss(xb, yb, n_batch)
                loss.backward()
                opt.step()
                return value
            return step

        def step_with_closure(xb: torch.Tensor, yb: torch.Tensor, n_batch: int) -> torch.Tensor:
            first: list[torch.Tensor] = []

            def closure() -> torch.Tensor:
                if kind == "loss":
                    # Line searches evaluate trial points under no_grad: then only the value is wanted.
                    grad = torch.is_grad_enabled()
                    if grad:
                        calls[0] += 1  # a gradient evaluation (trial values under no_grad are not)
                        opt.zero_grad(set_to_none=True)
                    loss, value = local_loss(xb, yb, n_batch)
                    if grad:
                        loss.backward()
                    # Detached: the backward is done; under DDP every rank's line search must see the same loss.
                    out = value
                elif kind == "graph":
                    calls[0] += 1
                    out = loss_fn(model(xb), yb)
                    value = out.detach()
                else:  # residual: loss = ½‖r‖²
                    calls[0] += 1
                    out = self.inst.residual_fn(model(xb), yb)
                    value = 0.5 * out.detach().square().sum()
                if not first:
                    first.append(value)
                return out

            opt.step(closure)
            if not first:
                raise ClosureError(f"optimizer {name!r} (closure {kind!r}) never called its closure")
            return first[0]

        return step_with_closure
