"""Learning-rate and momentum schedules, by name.

Every schedule is a ``torch.optim.lr_scheduler.LRScheduler``: torch's own class
where it computes the course's formula (``ConstantLR``, ``StepLR``,
``ExponentialLR``, ``LambdaLR`` with a picklable multiplier), a small subclass
otherwise (``HalveOnPlateau``, ``SutskeverMomentum``). All of them have
``state_dict`` / ``load_state_dict`` and are driven the torch way: call
``scheduler.step()`` after ``optimizer.step()``.

What t counts: **t is the number of ``scheduler.step()`` calls since the
scheduler was created** (torch's ``last_epoch``); right after ``create`` t = 0
and the group's lr is ε(0). ε0 is each param group's ``initial_lr`` (its ``lr``
when the first scheduler was attached), so groups keep their own scale. Whether
a step is an epoch or an iteration is the caller's choice; ``info(name).per``
says what each schedule is meant for (the trainer steps ``"epoch"`` schedules
once per epoch, ``"iteration"`` schedules once per optimizer step).
``halve-on-plateau`` takes the validation error: ``scheduler.step(val_error)``.

``inverse-time``, ``inverse-sqrt``, ``power`` and ``piecewise`` are closed form
(ε = ε0·f(t), recomputed each step); ``constant``, ``step``, ``exponential`` and
``halve-on-plateau`` multiply the group's current lr, so they compose with other
changes to it (torch's "chainable" schedulers).

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> opt = torch.optim.SGD([w], lr=0.1)
    >>> sched = create("inverse-time", opt, k=1.0)
    >>> opt.step(); sched.step()          # t = 1: ε = 0.1 / (1 + 1·1)
    >>> round(opt.param_groups[0]["lr"], 6)
    0.05
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.optim.lr_scheduler import ConstantLR, ExponentialLR, LambdaLR, LRScheduler, StepLR

from ravine.errors import ConfigError, HyperparameterError, check_int, check_range, unknown_name

__all__ = [
    "HalveOnPlateau",
    "ScheduleInfo",
    "SutskeverMomentum",
    "create",
    "info",
    "names",
]


# --- multipliers for LambdaLR ------------------------------------------------
# Callable objects rather than lambdas: LambdaLR saves a callable object's
# __dict__ in its state_dict (it drops plain functions), so the hyperparameters
# travel with the checkpoint and the scheduler pickles.


class _InverseTime:
    def __init__(self, k: float) -> None:
        self.k = k

    def __call__(self, t: int) -> float:
        return 1.0 / (1.0 + self.k * t)


class _InverseSqrt:
    def __call__(self, t: int) -> float:
        return 1.0 / math.sqrt(t + 1.0)


class _Power:
    def __init__(self, s: float, c: float) -> None:
        self.s, self.c = s, c

    def __call__(self, t: int) -> float:
        return (1.0 + t / self.s) ** (-self.c)


class _Piecewise:
    def __init__(self, boundaries: list[int], values: list[float]) -> None:
        self.boundaries, self.values = boundaries, values

    def __call__(self, t: int) -> float:
        # bisect_right: at t == boundaries[i] the next value has already started.
        return self.values[bisect.bisect_right(self.boundaries, t)]


# --- schedules torch does not have -------------------------------------------


class HalveOnPlateau(LRScheduler):
    r"""Multiply ε by ``factor`` (default ½) whenever the validation error rises.

    .. math:: ε_{t} = \begin{cases} \max(\text{factor}·ε_{t-1}, ε_{min}) & e_t > e_{t-1} \text{ (never raised)} \\
              ε_{t-1} & \text{otherwise} \end{cases}

    Unlike ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (considered; it
    compares with the *best* value so far, so it keeps cutting while the error
    stays above its best), the course's rule compares with the *previous* epoch
    only. Call ``step(val_error)`` once per epoch; the first call sets the
    reference and never halves. ``mode="max"`` is for metrics where higher is
    better (halve when it falls).

    Example:
        >>> w = torch.nn.Parameter(torch.zeros(1))
        >>> opt = torch.optim.SGD([w], lr=1.0)
        >>> sched = HalveOnPlateau(opt)
        >>> for err in (0.9, 0.5, 0.7, 0.6):
        ...     opt.step(); sched.step(err)
        >>> opt.param_groups[0]["lr"]
        0.5
    """

    def __init__(self, optimizer: torch.optim.Optimizer, factor: float = 0.5,
                 mode: Literal["min", "max"] = "min", min_lr: float = 0.0, last_epoch: int = -1) -> None:
        self.factor = check_range("factor", factor, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        if mode not in ("min", "max"):
            raise HyperparameterError(f"Invalid mode: {mode!r} (allowed: 'min', 'max')")
        self.mode = mode
        self.min_lr = check_range("min_lr", min_lr, 0.0)
        self.previous: float | None = None
        self._reduce = False
        super().__init__(optimizer, last_epoch)

    def step(self, metric: float | torch.Tensor | None = None) -> None:  # type: ignore[override]
        """Record this epoch's validation error and halve ε if it rose."""
        if metric is None:
            if getattr(self, "_step_count", 0) != 0:  # only the constructor's own step has no metric
                raise ConfigError("halve-on-plateau needs step(metric) with the validation error; got step()")
            super().step()
            return
        current = float(metric)
        previous, self.previous = self.previous, current
        if previous is not None:
            self._reduce = current > previous if self.mode == "min" else current < previous
        super().step()
        self._reduce = False

    def get_lr(self) -> list[float]:
        """The groups' current lr, times ``factor`` (floored at ``min_lr``) when the error rose."""
        lrs = [float(group["lr"]) for group in self.optimizer.param_groups]
        if not self._reduce:
            return lrs
        # min(lr, ·): a group already below the floor is left alone, never raised.
        return [min(lr, max(lr * self.factor, self.min_lr)) for lr in lrs]


class SutskeverMomentum(LRScheduler):
    r"""The momentum schedule of Sutskever, Martens, Dahl & Hinton (ICML 2013).

    .. math:: α_t = \min\bigl(1 - 2^{-1 - \log_2(\lfloor t / 250 \rfloor + 1)},\ α_{max}\bigr)

    i.e. α = 1 − 1 / (2 (⌊t/250⌋ + 1)): 0.5, 0.75, 0.833, 0.875, ... capped at
    α_max. It sets ``param_group["momentum"]`` (read each step by ravine's
    ``momentum`` / ``nesterov``, and by ``torch.optim.SGD``) and leaves the lr
    alone, so it combines with any lr schedule. t counts iterations in the paper
    (``period`` = 250 updates), hence ``info("sutskever-momentum").per ==
    "iteration"``.

    Example:
        >>> w = torch.nn.Parameter(torch.zeros(1))
        >>> opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> sched = SutskeverMomentum(opt, max_momentum=0.99)
        >>> opt.param_groups[0]["momentum"]
        0.5
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_momentum: float = 0.99, period: int = 250,
                 last_epoch: int = -1) -> None:
        self.max_momentum = check_range("max_momentum", max_momentum, 0.0, 1.0, high_inclusive=False)
        self.period = check_int("period", period, 1)
        # ravine's sgd / rmsprop keep torch's ``momentum`` key pinned to 0: refuse them now, not at step 1
        if getattr(optimizer, "momentum_fixed", False) or not all("momentum" in g for g in optimizer.param_groups):
            raise HyperparameterError(
                f"Invalid optimizer for schedule 'sutskever-momentum': {type(optimizer).__name__} has no "
                "'momentum' hyperparameter (allowed: optimizers with a 'momentum' group key, e.g. momentum, nesterov)")
        super().__init__(optimizer, last_epoch)

    def momentum_at(self, t: int) -> float:
        """α_t for step count ``t`` (closed form)."""
        return min(1.0 - 2.0 ** (-1.0 - math.log2(t // self.period + 1)), self.max_momentum)

    def get_lr(self) -> list[float]:
        """The groups' current lr, unchanged: this schedule only moves the momentum."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:
        """Advance t and set every group's momentum to α_t."""
        super().step(epoch)
        momentum = self.momentum_at(self.last_epoch)
        for group in self.optimizer.param_groups:
            group["momentum"] = momentum

    def get_last_momentum(self) -> list[float]:
        """The momentum each group has after the last step."""
        return [group["momentum"] for group in self.optimizer.param_groups]


# --- factories: validate, then build ----------------------------------------


def _constant(optimizer: torch.optim.Optimizer) -> LRScheduler:
    # ConstantLR with factor 1 multiplies by 1 at t = 0 and never again: it keeps
    # whatever lr the group has (unlike LambdaLR(1), which would reset it to ε0).
    return ConstantLR(optimizer, factor=1.0, total_iters=0)


def _inverse_time(optimizer: torch.optim.Optimizer, k: float) -> LRScheduler:
    return LambdaLR(optimizer, _InverseTime(check_range("k", k, 0.0)))


def _exponential(optimizer: torch.optim.Optimizer, k: float) -> LRScheduler:
    # ε0·e^(−k t) = ε0·γ^t with γ = e^(−k); ExponentialLR multiplies by γ each step.
    return ExponentialLR(optimizer, gamma=math.exp(-check_range("k", k, 0.0)))


def _step(optimizer: torch.optim.Optimizer, every: int, factor: float) -> LRScheduler:
    every = check_int("every", every, 1)
    factor = check_range("factor", factor, 0.0, 1.0, low_inclusive=False)
    return StepLR(optimizer, step_size=every, gamma=factor)


def _piecewise(optimizer: torch.optim.Optimizer, boundaries: Sequence[int], values: Sequence[float]) -> LRScheduler:
    if isinstance(boundaries, str | bytes) or not isinstance(boundaries, Sequence):
        raise HyperparameterError(f"Invalid boundaries: {boundaries!r} (allowed: a list of increasing integers >= 1)")
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise HyperparameterError(f"Invalid values: {values!r} (allowed: a list of numbers >= 0)")
    bounds = [check_int("boundaries", b, 1) for b in boundaries]
    if any(b >= c for b, c in zip(bounds, bounds[1:])):
        raise HyperparameterError(
            f"Invalid boundaries: {list(boundaries)!r} (allowed: strictly increasing integers >= 1)")
    if len(values) != len(bounds) + 1:
        raise HyperparameterError(
            f"Invalid values: {len(values)} given (allowed: len(boundaries) + 1 = {len(bounds) + 1} multipliers)")
    return LambdaLR(optimizer, _Piecewise(bounds, [check_range("values", v, 0.0) for v in values]))


def _inverse_sqrt(optimizer: torch.optim.Optimizer) -> LRScheduler:
    return LambdaLR(optimizer, _InverseSqrt())


def _power(optimizer: torch.optim.Optimizer, s: float, c: float) -> LRScheduler:
    s = check_range("s", s, 0.0, low_inclusive=False)
    return LambdaLR(optimizer, _Power(s, check_range("c", c, 0.0)))


@dataclass(frozen=True)
class ScheduleInfo:
    """One schedule registry entry.

    Attributes:
        name: registry name (``"inverse-time"``).
        factory: ``factory(optimizer, **hyper) -> LRScheduler``.
        formula: the schedule on one line, t = number of ``step()`` calls.
        defaults: hyperparameter defaults (the keys ``create`` accepts).
        sets: which group hyperparameter it moves, ``"lr"`` or ``"momentum"``.
        per: what one ``step()`` is meant to be, ``"epoch"`` or ``"iteration"``.
        needs_metric: True where ``step(metric)`` takes the validation error.
    """

    name: str
    factory: Callable[..., LRScheduler]
    formula: str
    defaults: dict[str, Any]
    sets: Literal["lr", "momentum"] = "lr"
    per: Literal["epoch", "iteration"] = "epoch"
    needs_metric: bool = False


SCHEDULES: list[ScheduleInfo] = [
    ScheduleInfo("constant", _constant, "ε_t = ε0", {}),
    ScheduleInfo("inverse-time", _inverse_time, "ε_t = ε0 / (1 + k t)", {"k": 0.1}),
    ScheduleInfo("exponential", _exponential, "ε_t = ε0 · e^(−k t)", {"k": 0.05}),
    ScheduleInfo("step", _step, "ε_t = ε0 · factor^⌊t / every⌋", {"every": 10, "factor": 0.5}),
    ScheduleInfo("piecewise", _piecewise, "ε_t = ε0 · values[i], i = #{boundaries ≤ t}",
                 {"boundaries": (30, 60), "values": (1.0, 0.1, 0.01)}),
    ScheduleInfo("inverse-sqrt", _inverse_sqrt, "ε_t = ε0 / √(t + 1)", {}),
    ScheduleInfo("power", _power, "ε_t = ε0 · (1 + t/s)^(−c)", {"s": 10.0, "c": 0.75}),
    ScheduleInfo("halve-on-plateau", HalveOnPlateau,
                 "ε ← factor·ε (not below min_lr) when the validation error rises over the previous epoch",
                 {"factor": 0.5, "mode": "min", "min_lr": 0.0}, needs_metric=True),
    ScheduleInfo("sutskever-momentum", SutskeverMomentum,
                 "α_t = min(1 − 2^(−1 − log2(⌊t/period⌋ + 1)), max_momentum)",
                 {"max_momentum": 0.99, "period": 250}, sets="momentum", per="iteration"),
]

_TABLE = {entry.name: entry for entry in SCHEDULES}


def names() -> list[str]:
    """The registered schedule names, in registry order.

    Example:
        >>> names()[:3]
        ['constant', 'inverse-time', 'exponential']
    """
    return list(_TABLE)


def info(name: str) -> ScheduleInfo:
    """The registry entry for ``name``: ``.formula``, ``.defaults``, ``.per``, ...

    Example:
        >>> info("step").defaults
        {'every': 10, 'factor': 0.5}

    Raises:
        UnknownNameError: listing the known names.
    """
    if name not in _TABLE:
        raise unknown_name("schedule", name, names())
    return _TABLE[name]


def create(name: str, optimizer: torch.optim.Optimizer, **hyper: Any) -> LRScheduler:
    """Attach the named schedule to ``optimizer``; missing hyperparameters take their defaults.

    t counts ``scheduler.step()`` calls: after ``create`` t = 0 and the lr is
    ε(0); call ``step()`` after ``optimizer.step()`` (``step(val_error)`` for
    ``halve-on-plateau``).

    Example:
        >>> w = torch.nn.Parameter(torch.zeros(1))
        >>> opt = torch.optim.SGD([w], lr=0.1)
        >>> sched = create("step", opt, every=2)
        >>> for _ in range(2):
        ...     opt.step(); sched.step()
        >>> opt.param_groups[0]["lr"]
        0.05

    Raises:
        UnknownNameError: for an unknown schedule name.
        HyperparameterError: for an unknown hyperparameter or a value out of range.
        ConfigError: when ``optimizer`` is not a ``torch.optim.Optimizer``.
    """
    entry = info(name)
    unknown = sorted(set(hyper) - set(entry.defaults))
    if unknown:
        raise unknown_name(f"hyperparameter for schedule {name!r}", unknown[0], entry.defaults,
                           error=HyperparameterError)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"Invalid optimizer: {type(optimizer).__name__} (allowed: a torch.optim.Optimizer)")
    return entry.factory(optimizer, **{**entry.defaults, **hyper})
