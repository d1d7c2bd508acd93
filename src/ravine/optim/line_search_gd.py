"""Gradient descent with a line search on the step size (the course's example).

One gradient per step, then trial points θ − η g:

- ``mode="best"`` (default): η runs over ``lr × candidates`` (default
  ``lr × [0.1, 0.5, 1, 5, 10]``) and the lowest loss wins, even when it is
  higher than the loss at θ (the course's rule: pick the best of the list).
- ``mode="armijo"``: backtracking from η = lr, η ← ``shrink`` · η (default 0.5)
  until the sufficient decrease L(θ − η g) ≤ L(θ) − c η ‖g‖² holds (c = 1e-4),
  at most ``max_backtracks`` times; if it never holds, the best trial point
  that lowers the loss is taken, else θ stays put (η = 0).

torch.optim.LBFGS's strong-Wolfe search was considered; it is tied to L-BFGS
directions and does not offer the course's candidate list, so the search is
written here. Trial losses are evaluated under ``torch.no_grad()``: the closure
must call ``loss.backward()`` only when ``torch.is_grad_enabled()`` (see
:class:`LineSearchGD`).

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([3.0]))
    >>> opt = LineSearchGD([w], lr=0.1)
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = (w ** 2).sum()
    ...     if torch.is_grad_enabled():
    ...         loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> opt.last_step_size, w.data  # η = 0.1 × 5 lands on the minimum
    (0.5, tensor([0.]))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ravine.errors import ClosureError, DivergenceError, HyperparameterError, check_int, check_range
from ravine.optim.first_order import _CHECKS, Params, _CheckedGroups, regularized, split_params
from ravine.optim._flat import distributed_world, mean_across_ranks
from ravine.optim.registry import OptimizerInfo

MODES = ("best", "armijo")
DEFAULT_CANDIDATES = (0.1, 0.5, 1.0, 5.0, 10.0)


def _check_candidates(value: Any) -> None:
    try:
        items = list(value)
    except TypeError:
        items = []
    if not items:
        raise HyperparameterError(f"Invalid candidates: {value!r} (allowed: a non-empty list of numbers > 0)")
    for x in items:
        check_range("candidates", x, 0.0, low_inclusive=False)


def _check_mode(value: Any) -> None:
    if value not in MODES:
        raise HyperparameterError(f"Invalid mode: {value!r} (allowed: {', '.join(MODES)})")


_LINE_SEARCH_CHECKS: dict[str, Callable[[Any], Any]] = {
    **_CHECKS,
    "lr": lambda v: check_range("lr", v, 0.0, low_inclusive=False),
    "candidates": _check_candidates,
    "mode": _check_mode,
    "c": lambda v: check_range("c", v, 0.0, 1.0, low_inclusive=False, high_inclusive=False),
    "shrink": lambda v: check_range("shrink", v, 0.0, 1.0, low_inclusive=False, high_inclusive=False),
    "max_backtracks": lambda v: check_int("max_backtracks", v, 0),
}


class LineSearchGD(_CheckedGroups, torch.optim.Optimizer):
    r"""Gradient descent whose step η is chosen by a line search on the loss.

    Each ``step(closure)`` evaluates g once (``closure()`` with grad enabled),
    then L(θ − η g) for trial η under ``torch.no_grad()``; with several param
    groups, group k moves by m · lr_k for a common multiplier m. The closure
    must therefore look like::

        def closure():
            opt.zero_grad()
            loss = loss_fn(model(X), y)
            if torch.is_grad_enabled():  # trial points are evaluated without grad
                loss.backward()
            return loss

    ``weight_decay`` λ and ``l1`` λ₁ are part of the searched objective:
    L(θ) + λ/2 ‖θ‖² + λ₁ ‖θ‖₁, with direction g + λθ + λ₁ sign θ.

    Where to read the chosen step: ``group["last_step_size"]`` per group (η of
    that group, 0.0 before the first step), :attr:`last_step_size` (the first
    group's), and, as in ``torch.optim.LBFGS``, the state of the first
    parameter: ``last_step_size`` (the first group's η), ``last_multiplier`` (m),
    ``last_loss`` (objective at the new θ) and ``func_evals`` (closure calls so far). After the step ``p.grad`` holds
    the gradient at the start point. ``step`` returns the loss at the start point.

    Args:
        params: tensors or param-group dicts.
        lr: the base step ε > 0.
        candidates: multipliers of ``lr`` tried in mode ``"best"`` (non-empty, each > 0).
        mode: ``"best"`` or ``"armijo"``.
        c: sufficient-decrease constant in (0, 1).
        shrink: backtracking factor in (0, 1).
        max_backtracks: the most shrinks in mode ``"armijo"`` (integer ≥ 0).
        weight_decay: λ ≥ 0.
        l1: λ₁ ≥ 0.

    The search options (``candidates``, ``mode``, ``c``, ``shrink``,
    ``max_backtracks``) are read from the first param group.

    A closure that calls ``backward()`` unconditionally (skorch's ``train_step``,
    Lightning's automatic optimization) is detected at the first trial point and the
    trial points are then evaluated with autograd on (slower, same steps). Under
    ``torch.distributed`` the loss and the gradient are averaged over the ranks, so every
    rank picks the same η (equal shard sizes: the full-batch step).
    """

    _checks = _LINE_SEARCH_CHECKS

    def __init__(self, params: Params, lr: float = 0.1, candidates: tuple[float, ...] = DEFAULT_CANDIDATES,
                 mode: str = "best", c: float = 1e-4, shrink: float = 0.5, max_backtracks: int = 30,
                 weight_decay: float = 0.0, l1: float = 0.0) -> None:
        defaults = {"lr": lr, "candidates": tuple(candidates) if _iterable(candidates) else candidates,
                    "mode": mode, "c": c, "shrink": shrink, "max_backtracks": max_backtracks,
                    "weight_decay": weight_decay, "l1": l1}
        for key, check in self._checks.items():
            if key in defaults:
                check(defaults[key])
        self._extra_defaults = {"last_step_size": 0.0}
        super().__init__(split_params(params)[0], defaults)

    @property
    def last_step_size(self) -> float:
        """η chosen by the last step for the first param group (0.0 before any step)."""
        return float(self.param_groups[0]["last_step_size"])

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One line-search step; ``closure`` is required (see the class docstring)."""
        if closure is None:
            raise ClosureError("line-search-gd needs a closure: step(closure) with closure() returning the loss")
        with torch.enable_grad():
            loss = closure()
        start_value = _mean_loss(loss) + self._penalty()
        _average_grads(self.param_groups)
        moving = self._moving_groups()
        saved_grads = {p: p.grad for _, params, _, _ in moving for p in params}
        for p in saved_grads:
            p.grad = None  # the closure's zero_grad must not touch g; under no_grad nothing refills it
        try:
            multiplier, value, evals = self._search(closure, moving, start_value)
        except BaseException:
            for _, params, start, _ in moving:  # leave θ where the step found it
                torch._foreach_copy_(params, start)
            raise
        finally:
            for p, g in saved_grads.items():
                p.grad = g
        self._record(multiplier, value, evals)
        return loss

    def _moving_groups(self) -> list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]]:
        """Per group: (group, params with a gradient, their start values, their directions)."""
        out = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                grads = [p.grad for p in params]
                out.append((group, params, [p.detach().clone() for p in params], regularized(params, grads, group)))
        return out

    def _search(self, closure: Callable[[], Any], moving: list, start_value: float) -> tuple[float, float, int]:
        opts = self.param_groups[0]
        if opts["mode"] == "best":
            trials = [(m, self._value_at(closure, moving, m)) for m in opts["candidates"]]
            multiplier, value = min(trials, key=lambda t: t[1] if math.isfinite(t[1]) else math.inf)
        else:
            slope = sum(float(group["lr"]) * sum(float(d.pow(2).sum()) for d in dirs)
                        for group, _, _, dirs in moving)
            trials, m = [], 1.0
            for _ in range(int(opts["max_backtracks"]) + 1):
                trials.append((m, self._value_at(closure, moving, m)))
                if trials[-1][1] <= start_value - opts["c"] * m * slope:
                    break
                m *= opts["shrink"]
            multiplier, value = trials[-1]
            if not value <= start_value - opts["c"] * multiplier * slope:
                multiplier, value = min(trials, key=lambda t: t[1] if math.isfinite(t[1]) else math.inf)
                if not value < start_value:
                    multiplier, value = 0.0, start_value
        if not math.isfinite(value):
            raise DivergenceError(f"line-search-gd: the loss is not finite at any trial step (loss at start: "
                                  f"{start_value:g}, lr: {opts['lr']:g})")
        if trials[-1][0] != multiplier:
            self._move_to(moving, multiplier)
        return multiplier, value, len(trials) + 1

    def _move_to(self, moving: list, multiplier: float) -> None:
        """θ ← θ_start − m · lr · d for every group (exactly the same arithmetic for every trial)."""
        for group, params, start, dirs in moving:
            torch._foreach_copy_(params, start)
            torch._foreach_add_(params, dirs, alpha=-multiplier * group["lr"])

    def _value_at(self, closure: Callable[[], Any], moving: list, multiplier: float) -> float:
        self._move_to(moving, multiplier)
        state = self.state[self.param_groups[0]["params"][0]]
        if not state.get("trial_with_grad", False):
            try:
                return _mean_loss(closure()) + self._penalty()
            except RuntimeError as exc:
                if "does not require grad" not in str(exc):
                    raise
            # The closure calls backward() unconditionally (skorch's train_step, Lightning's automatic
            # optimization): evaluate trial points with autograd on from now on. p.grad is restored by step.
            state["trial_with_grad"] = True
        with torch.enable_grad():
            return _mean_loss(closure()) + self._penalty()

    def _penalty(self) -> float:
        """λ/2 ‖θ‖² + λ₁ ‖θ‖₁ over the groups that have them."""
        total = 0.0
        for group in self.param_groups:
            if group["weight_decay"]:
                total += 0.5 * group["weight_decay"] * sum(float(p.pow(2).sum()) for p in group["params"])
            if group["l1"]:
                total += group["l1"] * sum(float(p.abs().sum()) for p in group["params"])
        return total

    def _record(self, multiplier: float, value: float, evals: int) -> None:
        for group in self.param_groups:
            group["last_step_size"] = multiplier * float(group["lr"])
        state = self.state[self.param_groups[0]["params"][0]]
        state["last_step_size"] = self.param_groups[0]["last_step_size"]
        state["last_multiplier"] = multiplier
        state["last_loss"] = value
        state["func_evals"] = state.get("func_evals", 0) + evals


def _mean_loss(loss: Any) -> float:
    """The loss as a float, averaged over the ranks of an initialized process group."""
    value = _as_float(loss)
    if distributed_world() == 1:
        return value
    return float(mean_across_ranks(torch.tensor(value, dtype=torch.float64)))


def _average_grads(param_groups: list[dict[str, Any]]) -> None:
    """p.grad ← the average over ranks (a no-op with one process; idempotent under DDP, which already averaged)."""
    if distributed_world() == 1:
        return
    for group in param_groups:
        for p in group["params"]:
            if p.grad is not None:
                p.grad = mean_across_ranks(p.grad)


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return not isinstance(value, str)


def _as_float(loss: Any) -> float:
    if isinstance(loss, torch.Tensor):
        loss = loss.detach()
    try:
        return float(loss)
    except (TypeError, ValueError, RuntimeError):
        raise ClosureError(f"the closure must return the loss as a number or a one-element tensor, "
                           f"got {type(loss).__name__}") from None


OPTIMIZERS: list[OptimizerInfo] = [
    OptimizerInfo(
        "line-search-gd",
        LineSearchGD,
        "θ ← θ − η g, η = argmin L(θ − η g) over lr × candidates (armijo: backtrack from lr)",
        {"lr": 0.1, "candidates": DEFAULT_CANDIDATES, "mode": "best", "c": 1e-4, "shrink": 0.5,
         "max_backtracks": 30, "weight_decay": 0.0, "l1": 0.0},
        closure="loss",
        train_lr=1.0,  # full-batch digits MLP: best mode then tries η from 0.1 to 10
        full_batch=True,
    ),
]
