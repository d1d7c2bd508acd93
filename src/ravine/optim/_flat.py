"""One flat-parameter base for the second-order family, and its descent iteration.

:class:`FlatParamOptimizer` treats the parameters as one vector θ (newton, newton-cg, bfgs,
lbfgs, gauss-newton, levenberg, levenberg-marquardt). It owns, once for all of them:

- hyperparameter checks: one ``_checks`` table per class, run on the defaults and on every param
  group (the same mechanism as the first-order rules, :class:`~ravine.optim.first_order._CheckedGroups`),
  plus ``_check_group`` for conditions across keys (c1 < c2);
- param groups: several are accepted. The least-squares methods scale each group's part of the
  step by its ``lr``; the line-search methods need the same hyperparameters in every group
  (a group with ``lr = 0`` is frozen) and refuse groups that differ, naming the key;
- parameters read from ``param_groups`` at every step (never cached on the instance), so
  ``add_param_group``, ``copy.deepcopy`` and pickling keep working;
- dtypes: real float32 / float64 only — complex and half precision are refused by name when the
  optimizer or a group is built (the Cholesky / QR / SVD solves have no half kernels on the CPU,
  and a complex θ is not a real vector for a line search);
- data parallel: where ``torch.distributed`` is initialized with more than one process, the
  values computed from the data are averaged (loss, gradient, Hessian, Hessian-vector products)
  or gathered (residuals and Jacobian rows) across ranks, so every rank takes the same step, the
  one a single process takes on the union of the shards (equal shard sizes; see
  :meth:`FlatParamOptimizer.mean_across_ranks`);
- ``state["stalled"]``: True after a step that could not lower the loss although θ is not at a
  minimum (a step that fails only because θ has converged is not a stall), with one warning.

:class:`DescentMethod` is the iteration of Newton, Newton-CG, BFGS and L-BFGS: a direction
(``_direction``), then a line search (:mod:`ravine.optim.line_search`), with hooks for the
curvature memory of the quasi-Newton methods.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ravine.errors import ClosureError, HyperparameterError, check_int, check_range
from ravine.optim.first_order import _CheckedGroups, check_hyperparameters, split_params
from ravine.optim.line_search import (LineSearchResult, backtracking, check_finite, converged, loss_value,
                                      strong_wolfe)
from ravine.optim.result import STATUS_FAILED, STATUS_FTOL, STATUS_GTOL, STATUS_MAX_ITER

_REAL_DTYPES = (torch.float32, torch.float64)


def distributed_world() -> int:
    """The number of processes in the default group, 1 when ``torch.distributed`` is not initialized.

    Example:
        >>> distributed_world()
        1
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size()


def mean_across_ranks(value: torch.Tensor) -> torch.Tensor:
    """The average of ``value`` over the processes of the default group (``value`` itself with one).

    Each rank's loss is the mean over its shard, so with equal shards the average of the
    ranks' losses, gradients and Hessians is the full-batch one. A new tensor is returned
    (the caller's, e.g. a gradient with its graph, is left alone).

    Example:
        >>> mean_across_ranks(torch.ones(2))
        tensor([1., 1.])
    """
    world = distributed_world()
    if world == 1:
        return value
    out = value.detach().clone()
    torch.distributed.all_reduce(out)
    return out / world


class FlatParamOptimizer(_CheckedGroups, torch.optim.Optimizer):
    """Base of the methods that treat all parameters as one vector θ (see the module docstring).

    Subclasses set ``method_name``, ``_checks`` and ``_group_lr_scales``; the method's state
    (counters, curvature memory, λ) lives under the first parameter, so ``load_state_dict`` casts
    it to the parameters' device and dtype.
    """

    method_name = "flat"
    _checks: dict[str, Callable[[Any], Any]] = {}
    # True: each group's lr scales its part of the step (least squares). False: lr is a line-search
    # setting, the same for every moving group (lr = 0 freezes a group).
    _group_lr_scales = False

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        check_hyperparameters(defaults, self._checks)
        self._check_group(defaults)
        super().__init__(split_params(params)[0], defaults)
        if not self._all_params():
            raise HyperparameterError(f"Invalid params: {self.method_name} got no parameter that requires grad")

    # -- parameters -------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group`` after the checks, refusing complex and half-precision tensors by name."""
        params = param_group["params"]
        for p in [params] if isinstance(params, torch.Tensor) else list(params):
            if isinstance(p, torch.Tensor) and p.dtype not in _REAL_DTYPES:
                why = ("a complex θ is not a real vector for the line search and the solves; optimize "
                       "torch.view_as_real(p) instead" if p.is_complex() else
                       "the Cholesky / QR / SVD solves have no half-precision kernels and its rounding "
                       "defeats the line search; keep the parameters in float32")
                raise HyperparameterError(f"Invalid dtype for {self.method_name}: {p.dtype} (allowed: float32, "
                                          f"float64); {why}")
        super().add_param_group(param_group)

    def _all_params(self) -> list[torch.Tensor]:
        # Frozen parameters (requires_grad=False) are constants of the loss, not unknowns.
        return [p for group in self.param_groups for p in group["params"] if p.requires_grad]

    @property
    def _params(self) -> list[torch.Tensor]:
        """The unknowns, read from ``param_groups`` (deepcopy / pickle / add_param_group safe)."""
        if self._group_lr_scales:
            return self._all_params()
        return [p for group in self.param_groups if group["lr"] != 0 for p in group["params"] if p.requires_grad]

    @property
    def _numel(self) -> int:
        return sum(p.numel() for p in self._params)

    def _check_groups_agree(self) -> None:
        """Moving groups must share every hyperparameter (the method solves for all of θ jointly)."""
        if self._group_lr_scales or len(self.param_groups) == 1:
            return
        moving = [g for g in self.param_groups if g["lr"] != 0]
        if not moving:
            raise HyperparameterError(f"Invalid lr for {self.method_name}: 0 in every param group (allowed: > 0 in "
                                      "at least one)")
        for key, value in moving[0].items():
            if key != "params" and any(g.get(key) != value for g in moving[1:]):
                raise HyperparameterError(
                    f"Invalid param groups for {self.method_name}: {key!r} differs between groups (allowed: the "
                    "same hyperparameters in every group, lr = 0 to freeze one; the step solves for all "
                    "parameters jointly)")

    @property
    def flat_state(self) -> dict[str, Any]:
        """The method's state (counters, history), kept under the first parameter."""
        state = self.state[self._all_params()[0]]
        for key in ("n_iter", "func_evals", "grad_evals", "hess_evals"):
            state.setdefault(key, 0)
        return state

    def _flat_params(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self._params])

    @torch.no_grad()
    def _set_flat(self, vec: torch.Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.copy_(vec[offset:offset + n].view_as(p))
            offset += n

    def _flat_grad(self) -> torch.Tensor:
        params = self._params
        if all(p.grad is None for p in params):
            raise ClosureError(f"{self.method_name}: the closure left no gradients; it must zero the grads, "
                               "compute the loss, call loss.backward() and return the loss")
        return torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in params])

    # -- data parallel ----------------------------------------------------------------------------
    mean_across_ranks = staticmethod(mean_across_ranks)

    def _mean_loss(self, f: float, like: torch.Tensor) -> float:
        if distributed_world() == 1:
            return f
        return float(self.mean_across_ranks(torch.tensor(f, dtype=like.dtype, device=like.device)))

    # -- status -----------------------------------------------------------------------------------
    def _finish(self, status: int, message: str) -> None:
        state = self.flat_state
        state["status"], state["message"] = status, message

    def _set_stalled(self, stalled: bool, why: str = "") -> None:
        """``state["stalled"]`` for callers (the trainer stops on it); one warning per optimizer."""
        state = self.flat_state
        state["stalled"] = stalled
        if stalled and not state.get("stall_warned", False):
            state["stall_warned"] = True
            warnings.warn(f"{self.method_name} cannot decrease the loss: {why}", RuntimeWarning, stacklevel=3)


def at_rounding_floor(f: float, predicted_change: float, dtype: torch.dtype) -> bool:
    """True when a step's first-order predicted change of the loss, t₀·gᵀd, is too small to show
    in f at this precision: |t₀·gᵀd| ≤ 64·eps·max(|f|, tiny). A line search that then finds no
    decrease is at a minimum to rounding (converged), not stalled."""
    info = torch.finfo(dtype)
    return abs(predicted_change) <= 64 * info.eps * max(abs(f), info.tiny)


# ------------------------------------------------------------------------------- descent methods


# What to do when a framework's training step hands a closure that calls backward() itself.
FRAMEWORK_ADVICE = ("; under Lightning use manual optimization (self.automatic_optimization = False, then "
                    "opt.step(closure) with your own closure); under skorch override NeuralNet.train_step; or use "
                    "bfgs / lbfgs / line-search-gd, which take a backward() closure")


def _check_line_search(value: Any) -> None:
    if not (value in ("strong_wolfe", "armijo") or callable(value)):
        raise HyperparameterError(f"Invalid line_search: {value!r} "
                                  "(allowed: 'strong_wolfe', 'armijo' or a callable (theta, d, f, g) -> t)")


DESCENT_CHECKS: dict[str, Callable[[Any], Any]] = {
    "lr": lambda v: check_range("lr", v, 0.0, low_inclusive=False),
    "max_iter": lambda v: check_int("max_iter", v, 1),
    "max_ls": lambda v: check_int("max_ls", v, 1),
    "tolerance_grad": lambda v: check_range("tolerance_grad", v, 0.0),
    "tolerance_change": lambda v: check_range("tolerance_change", v, 0.0),
    "tolerance_step": lambda v: check_range("tolerance_step", v, 0.0),
    "c1": lambda v: check_range("c1", v, 0.0, 1.0, low_inclusive=False, high_inclusive=False),
    "c2": lambda v: check_range("c2", v, 0.0, 1.0, low_inclusive=False, high_inclusive=False),
    "line_search": _check_line_search,
}


@dataclass
class Point:
    """The loss at the current θ and what was computed with it.

    Attributes:
        f: the loss (averaged across ranks).
        g: the flat gradient (detached, averaged across ranks), or None when not evaluated.
        loss: the closure's loss tensor with its graph ("graph" closures), else None.
        grads: per-parameter gradients with their graph (for Hessian products), else None.
    """

    f: float
    g: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    grads: tuple[torch.Tensor, ...] | None = None


class DescentMethod(FlatParamOptimizer):
    """The iteration of Newton, Newton-CG, BFGS and L-BFGS: direction, then a line search.

    One ``step(closure)`` runs up to ``max_iter`` iterations (default 1, so that a training loop
    calling ``step`` once per iteration sees one iteration per call) and stops early on
    ‖g‖∞ ≤ tolerance_grad, |Δf| ≤ tolerance_change or max|Δθ| ≤ tolerance_step.
    ``line_search``: ``"strong_wolfe"`` (Nocedal & Wright Alg. 3.5/3.6; the gradient at the
    accepted point is reused by the next iteration), ``"armijo"`` (backtracking on values) or a
    callable ``(theta, d, f, g) -> t`` (one evaluation at the step it returns, e.g. the exact step
    on a quadratic).

    Subclasses: ``closure_kind`` (``"graph"``: the closure returns the loss with its graph and
    the optimizer differentiates; ``"loss"``: torch's LBFGS convention), ``_direction``, and
    optionally ``_first_trial``, ``_new_gradient`` / ``_accepted`` / ``_reset_curvature``
    (curvature memory).
    """

    closure_kind = "loss"
    _checks = DESCENT_CHECKS

    def _check_group(self, group: dict[str, Any]) -> None:
        if "c1" in group and "c2" in group:
            check_range("c2", group["c2"], group["c1"], 1.0, low_inclusive=False, high_inclusive=False)

    # -- hooks ------------------------------------------------------------------------------------
    def _direction(self, point: Point) -> torch.Tensor:
        raise NotImplementedError

    def _first_trial(self, point: Point, gtd: float) -> float:
        """The line search's first step (lr: 1 is the full Newton / quasi-Newton step)."""
        return self.param_groups[0]["lr"]

    def _new_gradient(self, g: torch.Tensor) -> None:
        """Called with the gradient at the start of every iteration (quasi-Newton: complete (s, y))."""

    def _accepted(self, s: torch.Tensor, g: torch.Tensor) -> None:
        """Called after an accepted step s = t d from the point whose gradient was g."""

    def _reset_curvature(self) -> None:
        """Forget the curvature memory (the direction was not a descent direction)."""

    # -- evaluation -------------------------------------------------------------------------------
    def _closure_help(self) -> str:
        if self.closure_kind == "graph":
            return (f"{self.method_name} needs a closure that returns the loss built from the parameters, with "
                    "autograd on and without backward(): step(lambda: loss_fn(model(X), y))")
        return (f"{self.method_name} needs a closure that zeroes grads, computes the loss, calls backward() and "
                "returns the loss")

    def _evaluate(self, closure: Callable[[], Any], with_grad: bool = True, strict: bool = True) -> Point:
        with torch.enable_grad():
            loss = closure()
        state = self.flat_state
        state["func_evals"] += 1
        f = loss_value(loss, self.method_name)
        params = self._params
        f = self._mean_loss(f, params[0])
        if self.closure_kind == "loss":
            state["grad_evals"] += 1
            return Point(f, self.mean_across_ranks(self._flat_grad()))
        if not (isinstance(loss, torch.Tensor) and loss.requires_grad and loss.grad_fn is not None):
            raise ClosureError(f"{self.method_name}: the closure returned a loss without its graph (detached, "
                               "under torch.no_grad(), or after backward() as Lightning's automatic optimization "
                               f"does). {self._closure_help()}{FRAMEWORK_ADVICE}")
        if not with_grad or not math.isfinite(f):
            return Point(f, None, loss, None)
        return self._with_gradient(Point(f, None, loss, None), strict)

    def _with_gradient(self, point: Point, strict: bool = True) -> Point:
        """g = ∇f with its graph kept (create_graph) for the Hessian or Hessian-vector products."""
        params = self._params
        try:
            with torch.enable_grad():
                grads = torch.autograd.grad(point.loss.reshape(()), params, create_graph=True, allow_unused=True)
        except RuntimeError as exc:
            if "backward through the graph a second time" not in str(exc):
                raise
            raise ClosureError(f"{self.method_name}: the closure called backward() on its loss, which freed the "
                               f"graph the optimizer differentiates (skorch's train_step does). "
                               f"{self._closure_help()}{FRAMEWORK_ADVICE}") from None
        grads = tuple(torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True))
        g_flat = self.mean_across_ranks(torch.cat([g.reshape(-1) for g in grads]).detach())
        self.flat_state["grad_evals"] += 1
        if strict:  # at a line-search trial point a non-finite gradient only means "step too long"
            check_finite(float(g_flat.abs().sum()), "the gradient", self.method_name, self.flat_state["n_iter"])
        return Point(point.f, g_flat, point.loss, grads)

    # -- the iteration ----------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> torch.Tensor:  # type: ignore[override]
        """Run up to ``max_iter`` iterations; returns the loss at the starting point."""
        if closure is None:
            raise ClosureError(self._closure_help())
        self._check_groups_agree()
        group, state = self.param_groups[0], self.flat_state
        if state.get("numel", self._numel) != self._numel:  # a group was added or frozen: new unknowns
            self._reset_curvature()
            state.pop("s", None)
            state.pop("prev_grad", None)
        state["numel"] = self._numel
        point = self._evaluate(closure)
        check_finite(point.f, "the loss", self.method_name, state["n_iter"])
        first = torch.as_tensor(point.f)
        status, message = STATUS_MAX_ITER, "max_iter iterations done"
        stalled = False
        for _ in range(group["max_iter"]):
            if point.g is None:  # the Armijo search returned only the loss
                point = self._with_gradient(point)
            g = point.g
            check_finite(float(g.abs().sum()), "the gradient", self.method_name, state["n_iter"])
            self._new_gradient(g)
            if g.abs().max() <= group["tolerance_grad"]:
                status, message = STATUS_GTOL, "gradient tolerance reached"
                break
            d = self._direction(point)
            gtd = float(g @ d)
            if not gtd < 0:  # not a descent direction (zero curvature, lost definiteness): steepest descent
                self._reset_curvature()
                d, gtd = -g, -float(g @ g)
            t0 = self._first_trial(point, gtd)
            f = point.f
            point = None  # free the double-backward graph before the line search
            ls = self._line_search(closure, f, g, d, gtd, t0)
            if ls.t == 0.0:
                point = Point(f, g)
                if at_rounding_floor(f, gtd * t0, g.dtype):
                    status, message = STATUS_FTOL, ("ftol: the first trial's predicted decrease is below the "
                                                    "loss's rounding; a minimum to this precision")
                else:
                    status, message = STATUS_FAILED, "line search found no decrease, away from a minimum"
                    stalled = True
                break
            state["n_iter"] += 1
            state["prev_loss"] = f
            self._accepted(ls.t * d, g)
            point = ls.payload
            stop = converged(group, None if point.g is None else float(point.g.abs().max()), f, point.f,
                             ls.t * float(d.abs().max()))
            if stop is not None:
                status, message = stop
                break
        self._finish(status, message)
        self._set_stalled(stalled, "the line search found no lower loss along the search direction")
        return first

    def _line_search(self, closure: Callable[[], Any], f: float, g: torch.Tensor, d: torch.Tensor, gtd: float,
                     t0: float) -> LineSearchResult:
        """Search along d from θ; θ is left at the accepted point (or back at θ when none)."""
        group = self.param_groups[0]
        x0 = self._flat_params()
        last: list[float | None] = [None]

        def at(t: float, with_grad: bool) -> Point:
            self._set_flat(x0 + t * d)
            last[0] = t
            return self._evaluate(closure, with_grad=with_grad, strict=False)

        def phi_value(t: float) -> tuple[float, Point]:
            point = at(t, False)
            return point.f, point

        def phi_wolfe(t: float) -> tuple[float, float, Point]:
            point = at(t, True)
            if point.g is None or not math.isfinite(point.f):
                return point.f, math.nan, point
            return point.f, float(point.g @ d), point

        kind = group["line_search"]
        if callable(kind):
            t = float(kind(x0.clone(), d.clone(), f, g.clone()))
            f_t, gtd_t, point = phi_wolfe(t)
            ok = math.isfinite(f_t)
            ls = LineSearchResult(t if ok else 0.0, f_t, gtd_t, point, 1, ok)
        elif kind == "armijo":
            ls = backtracking(phi_value, f, gtd, t0, c1=group["c1"], max_evals=group["max_ls"])
        else:
            ls = strong_wolfe(phi_wolfe, f, gtd, t0, c1=group["c1"], c2=group["c2"], max_evals=group["max_ls"])
        if ls.t == 0.0:
            self._set_flat(x0)
        elif last[0] != ls.t:  # the search ended on a rejected trial point: go back to the accepted one
            self._set_flat(x0 + ls.t * d)
        return ls
