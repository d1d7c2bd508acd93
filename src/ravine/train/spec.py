"""One run's settings, resolved once: :class:`RunSpec` and :func:`resolve_spec`.

Every rule that turns what a user asked for into what a run uses lives here,
and ``ravine compare``, ``ravine train``, the config file and :func:`ravine.train.fit`
all go through it:

- **learning rate** (:func:`default_lr`): the caller's; else the problem's table
  for the optimizer (an option such as ``standardize`` or the task of a user's
  file — regression or classification — may pick its own table); else the
  registry's ``train_lr``; else the optimizer's default ``lr``.
- **batch size**: ``"auto"`` is the problem's (64 for a custom instance),
  or the whole training split for full-batch methods (Newton, BFGS, LM, ...);
  ``"full"`` / None is the whole split; a default larger than the split becomes
  the split; a number the user gave must be 1 … n_train. The spec always holds
  the number (``full_batch`` says when it is the whole split).
- **epochs**: the caller's, else the problem's (10 for a custom instance); 1 … ``MAX_EPOCHS``.
- **hyperparameters**: every one the optimizer takes, defaults included
  (momentum, betas, eps, ...), read back from the optimizer built on a probe
  parameter — so bad values fail here, before any data is touched.
- **schedule**: each table with its defaults filled in.
- **closure kind** from the optimizer registry; **device** resolved (``auto`` →
  ``cpu`` or ``cuda``); **problem options** with the problem's defaults.

Example:
    >>> spec = resolve_spec("digits-mlp", "momentum", n_train=1078)
    >>> spec.lr, spec.batch_size, spec.hyper["momentum"], spec.closure
    (0.02, 32, 0.9, 'none')
    >>> resolve_spec("digits-mlp", "lbfgs", n_train=1078).batch_size  # a full-batch method
    1078
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ravine.errors import ConfigError, check_int, check_range, unknown_name

MAX_EPOCHS = 100_000
DTYPES = ("float32", "float64")
CLOSURE_KINDS = ("none", "loss", "graph", "residual")


def _plain(value: Any) -> Any:
    """Tuples to lists etc.: the value as it reads back from JSON (so specs compare equal after a round trip)."""
    return json.loads(json.dumps(value, default=str))


@dataclass
class RunSpec:
    """The resolved settings of one training run (everything :func:`ravine.train.fit` needs to repeat it).

    Attributes:
        problem: the problem's registry name ("" for a custom instance).
        optimizer: the optimizer's registry name (the class name for an optimizer object).
        lr: the learning rate ε.
        lr_source: where ``lr`` came from: ``"given"``, ``"problem"`` (its table),
            ``"registry"`` (``train_lr``) or ``"optimizer default"``.
        batch_size: rows per minibatch, a number ≤ ``n_train``.
        full_batch: True when ``batch_size == n_train`` (one step per epoch, no shuffle).
        n_train: rows of the training split.
        epochs: passes over the training split.
        schedule: schedule tables ``{"name", **hyper}`` with their defaults filled in.
        hyper: every other hyperparameter of the optimizer, defaults included.
        closure: the closure kind (``none``, ``loss``, ``graph``, ``residual``).
        seed: data split, initial weights, shuffle.
        device: ``"cpu"``, ``"cuda:0"``, ...
        dtype: ``"float32"`` or ``"float64"``.
        ema: smoothing of the recorded loss EMA (0 for full batch: nothing to smooth).
        problem_options: the problem's options, defaults included.

    Example:
        >>> spec = resolve_spec("diabetes-linreg", "sgd", batch_size="full", n_train=264)
        >>> spec.full_batch, RunSpec.from_json(spec.to_json()) == spec
        (True, True)
    """

    problem: str
    optimizer: str
    lr: float
    batch_size: int
    n_train: int
    epochs: int
    lr_source: str = "given"
    full_batch: bool = False
    schedule: list[dict[str, Any]] = field(default_factory=list)
    hyper: dict[str, Any] = field(default_factory=dict)
    closure: str = "none"
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    ema: float = 0.9
    problem_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.schedule = _plain(self.schedule)
        self.hyper = _plain(self.hyper)
        self.problem_options = _plain(self.problem_options)

    def to_json(self) -> dict[str, Any]:
        """A flat dict of plain values (lists, numbers, strings)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        """Read :meth:`to_json`'s dict (unknown keys are ignored, for newer files)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def differences(self, other: RunSpec) -> list[str]:
        """``["lr: 0.1 != 0.05", ...]`` — the fields where ``other`` differs (for resume checks)."""
        a, b = self.to_json(), other.to_json()
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b.get(k)]


def default_lr(optimizer: str, recipe: Any = None, options: Mapping[str, Any] | None = None,
               task: str | None = None) -> tuple[float, str]:
    """The learning rate a run of ``optimizer`` uses when none is given, and where it came from.

    The rule, first match wins: the problem's ``option_lr`` table for an option's
    value (e.g. ``standardize=True``), its ``task_lr`` table for the task
    (``"regression"`` / ``"classification"``, for the user's files), its ``lr``
    table; then the registry's ``train_lr``; then the optimizer's default ``lr``.

    Args:
        optimizer: a registry name or alias.
        recipe: the :class:`ravine.problems.Problem`, or None for a custom instance.
        options: the problem options in force (only those in ``option_lr`` matter).
        task: ``"regression"`` or ``"classification"`` (only problems with ``task_lr`` use it).

    Example:
        >>> from ravine import problems
        >>> default_lr("sgd", problems.get("noisy-quadratic"))
        (0.5, 'problem')
        >>> default_lr("adam")
        (0.001, 'registry')
    """
    from ravine import optim

    entry = optim.info(optimizer)
    if recipe is not None:
        table: dict[str, float] = dict(recipe.lr)
        if task is not None:
            table.update(getattr(recipe, "task_lr", {}).get(task, {}))
        for key, value in (options or {}).items():
            if key in recipe.option_lr:
                table.update(recipe.option_lr[key].get(value, {}))
        for name in (optimizer, entry.name):
            if name in table:
                return float(table[name]), "problem"
    if entry.train_lr is not None:
        return float(entry.train_lr), "registry"
    return float(entry.defaults.get("lr", 1.0)), "optimizer default"


def resolve_batch_size(batch_size: int | str | None, n_train: int, *, default: int | None,
                       full_batch_method: bool = False) -> tuple[int, bool]:
    """``(rows per minibatch, full_batch)`` from what was asked.

    Args:
        batch_size: a positive integer, ``"auto"``, ``"full"`` or None (full).
        n_train: rows of the training split.
        default: the problem's batch size for ``"auto"`` (None: full batch).
        full_batch_method: ``"auto"`` means the whole split for these methods.

    Raises:
        ConfigError: a number outside 1 … n_train, or any other value.

    Example:
        >>> resolve_batch_size("auto", 5, default=32)  # a 5-row training split: the default shrinks
        (5, True)
        >>> resolve_batch_size(4, 5, default=32)
        (4, False)
    """
    if n_train < 1:
        raise ConfigError("Invalid data: the training split is empty")
    if batch_size == "auto":
        size = n_train if full_batch_method or default is None else min(int(default), n_train)
    elif batch_size is None or batch_size == "full":
        size = n_train
    elif isinstance(batch_size, str):
        raise ConfigError(f"Invalid batch_size: {batch_size!r} (allowed: a positive integer, 'full' or 'auto')")
    else:
        size = check_int("batch_size", batch_size, 1, error=ConfigError)
        if size > n_train:
            raise ConfigError(f"Invalid batch_size: {size} (allowed: 1 to {n_train}, the rows of the training "
                              "split; or 'full' / 'auto')")
    return size, size == n_train


def resolve_hyper(optimizer: str, lr: float, hyper: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every hyperparameter ``optimizer`` takes except lr, defaults filled in, validated by building it.

    Example:
        >>> resolve_hyper("adam", 1e-3, {"betas": (0.8, 0.99)})["betas"], resolve_hyper("adam", 1e-3, {})["eps"]
        ([0.8, 0.99], 1e-08)
    """
    import torch

    from ravine import optim

    entry = optim.info(optimizer)
    hyper = dict(hyper or {})
    if "lr" in hyper:
        raise ConfigError("Invalid hyper: 'lr' (allowed: give the learning rate once, as lr, not among the "
                          "other hyperparameters)")
    probe = torch.nn.Parameter(torch.zeros(1))
    opt = optim.create(entry.name, [probe], lr=lr, **hyper)
    group = opt.param_groups[0]
    merged = {**entry.defaults, **hyper}
    return _plain({k: group.get(k, v) for k, v in merged.items() if k != "lr"})


def resolve_schedule(schedule: str | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
                     ) -> list[dict[str, Any]]:
    """Schedule tables with the registry's defaults filled in, validated on a probe optimizer.

    Example:
        >>> resolve_schedule("inverse-time")
        [{'name': 'inverse-time', 'k': 0.1}]
    """
    if schedule is None:
        return []
    import torch

    from ravine import schedules

    if isinstance(schedule, str):
        schedule = {"name": schedule}
    tables = [schedule] if isinstance(schedule, Mapping) else list(schedule)
    out = []
    for table in tables:
        if not isinstance(table, Mapping) or not isinstance(table.get("name"), str):
            raise ConfigError(f"Invalid schedule: {table!r} (allowed: a table with 'name' and its hyperparameters)")
        entry = schedules.info(table["name"])
        given = {k: v for k, v in table.items() if k != "name"}
        probe = torch.nn.Parameter(torch.zeros(1))
        schedules.create(entry.name, torch.optim.SGD([probe], lr=0.1, momentum=0.9), **given)
        out.append({"name": entry.name, **entry.defaults, **given})
    return _plain(out)


def resolve_spec(problem: Any, optimizer: str, *, lr: float | None = None, batch_size: int | str | None = "auto",
                 epochs: int | None = None, hyper: Mapping[str, Any] | None = None,
                 schedule: Any = None, seed: int = 0, device: Any = "auto", dtype: str = "float32",
                 ema: float | None = None, problem_options: Mapping[str, Any] | None = None,
                 instance: Any = None, n_train: int | None = None) -> RunSpec:
    """Turn (problem, optimizer, what the caller set) into the :class:`RunSpec` a run uses.

    The rules are in the module docstring. Nothing trains; the problem is built
    only when neither ``instance`` nor ``n_train`` says how many training rows
    there are (and, for the user's files, whether the task is regression).

    Args:
        problem: a registry name, or a :class:`ravine.problems.ProblemInstance` (custom).
        optimizer: a registry name or alias.
        lr: ε; None for the default (:func:`default_lr`).
        batch_size: an integer, ``"auto"``, ``"full"`` or None (full).
        epochs: None for the problem's.
        hyper: the optimizer's other hyperparameters (not lr).
        schedule: a name, a table ``{"name", ...}`` or a list of tables.
        seed, device, dtype: as in :func:`ravine.train.fit`.
        ema: loss-EMA smoothing; None: 0.9, or 0 for full batch.
        problem_options: options of a named problem.
        instance: the built instance, when the caller has it (saves a build).
        n_train: the training rows, when known without building.

    Raises:
        RavineError: any unknown name or value out of range, with the allowed values.

    Example:
        >>> resolve_spec("diabetes-linreg", "adam", lr=0.01, epochs=3, n_train=264).to_json()["hyper"]
        {'betas': [0.9, 0.999], 'eps': 1e-08, 'weight_decay': 0.0, 'l1': 0.0}
    """
    from ravine import optim
    from ravine.utils import resolve_device

    recipe = None
    if isinstance(problem, str):
        from ravine import problems

        recipe = problems.get(problem)
    elif instance is None:
        instance = problem
    entry = optim.info(optimizer)
    options = dict(problem_options or {})
    if recipe is not None:
        unknown = sorted(set(options) - set(recipe.options))
        if unknown:
            raise unknown_name(f"option for problem {recipe.name!r}", unknown[0], recipe.options, error=ConfigError)
        options = {**recipe.options, **options}
    elif options:
        raise ConfigError("problem_options only apply to a problem given by name")
    seed = check_int("seed", seed, 0, error=ConfigError)
    if dtype not in DTYPES:
        raise ConfigError(f"Invalid dtype: {dtype!r} (allowed: {', '.join(DTYPES)})")
    dev = str(resolve_device(device))
    if epochs is None:
        epochs = recipe.epochs if recipe is not None else 10
    epochs = check_int("epochs", epochs, 1, MAX_EPOCHS, error=ConfigError)
    if instance is None and (n_train is None or (recipe is not None and getattr(recipe, "task_lr", None))):
        instance = recipe.build(seed=seed, device="cpu", **options)
    if instance is not None:
        n_train = len(instance.data.X_train)
    task = None
    if instance is not None:
        task = "regression" if instance.metric_name == "rmse" else "classification"
    source = "given"
    if lr is None:
        lr, source = default_lr(entry.name, recipe, options, task)
    lr = _check_lr(lr)
    default_batch = recipe.batch_size if recipe is not None else 64
    size, full = resolve_batch_size(batch_size, int(n_train), default=default_batch,
                                    full_batch_method=entry.full_batch)
    if ema is None:
        ema = 0.0 if full else 0.9
    ema = check_range("ema", ema, 0.0, 1.0, high_inclusive=False, error=ConfigError)
    return RunSpec(problem=recipe.name if recipe is not None else "", optimizer=entry.name, lr=lr,
                   lr_source=source, batch_size=size, full_batch=full, n_train=int(n_train), epochs=epochs,
                   schedule=resolve_schedule(schedule), hyper=resolve_hyper(entry.name, lr, hyper),
                   closure=entry.closure, seed=seed, device=dev, dtype=dtype, ema=ema, problem_options=options)


def _check_lr(lr: Any) -> float:
    """ε > 0 and finite (a value that underflowed to 0, e.g. 1e-400, is refused too)."""
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise ConfigError(f"Invalid lr: {lr!r} (allowed: a number > 0)") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"Invalid lr: {lr!r} (allowed: a finite number > 0)")
    return value


__all__ = ["CLOSURE_KINDS", "DTYPES", "MAX_EPOCHS", "RunSpec", "default_lr", "resolve_batch_size",
           "resolve_hyper", "resolve_schedule", "resolve_spec"]
