"""Line searches for the second-order optimizers (and the small helpers the methods share).

Two searches along a descent direction d from θ (φ(t) = f(θ + t d), φ'(0) = gᵀd < 0):

- :func:`backtracking` — Armijo sufficient decrease φ(t) ≤ φ(0) + c₁ t φ'(0), shrinking t by
  safeguarded quadratic interpolation. Needs only function values (Newton, Newton-CG).
- :func:`strong_wolfe` — Armijo plus the strong curvature condition |φ'(t)| ≤ c₂ |φ'(0)|
  (Nocedal & Wright, *Numerical Optimization*, Algorithms 3.5 and 3.6: bracketing, then zoom
  with cubic interpolation). BFGS and L-BFGS need it so that yᵀs > 0 keeps the update positive definite.

Written here rather than reusing ``torch.optim.lbfgs._strong_wolfe`` (private API, tied to
LBFGS's closure and state, and it turns an inf/NaN trial loss into NaN steps); SciPy's
``line_search`` works on NumPy arrays. Both searches treat a non-finite trial value as "step too
long" and shrink, so an overshoot into an overflow region is not a divergence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ravine.errors import ClosureError, DivergenceError
from ravine.optim.result import STATUS_FTOL, STATUS_GTOL, STATUS_XTOL


@dataclass
class LineSearchResult:
    """Outcome of a line search.

    Attributes:
        t: accepted step length (0.0 when no acceptable step was found).
        f: φ(t).
        gtd: φ'(t) (NaN for backtracking, which does not evaluate it).
        payload: what φ returned with the accepted value (e.g. the flat gradient).
        nfev: evaluations of φ.
        success: True when the conditions were met (Armijo, or strong Wolfe).
    """

    t: float
    f: float
    gtd: float
    payload: Any
    nfev: int
    success: bool


def cubic_minimizer(t1: float, f1: float, g1: float, t2: float, f2: float, g2: float,
                    low: float, high: float) -> float:
    """Minimizer in [low, high] of the cubic through (t1, f1, f1'=g1) and (t2, f2, f2'=g2).

    Nocedal & Wright eq. (3.59): d₁ = g₁ + g₂ − 3 (f₁ − f₂)/(t₁ − t₂),
    d₂ = sign(t₂ − t₁) √(d₁² − g₁g₂),
    t = t₂ − (t₂ − t₁)(g₂ + d₂ − d₁)/(g₂ − g₁ + 2d₂).
    Falls back to the midpoint of [low, high] when the cubic has no real minimizer.

    Example:
        >>> round(cubic_minimizer(0.0, 0.0, -1.0, 2.0, 0.0, 1.0, 0.0, 2.0), 6)  # (t-1)^2 - 1 shape
        1.0
    """
    try:
        d1 = g1 + g2 - 3.0 * (f1 - f2) / (t1 - t2)
        disc = d1 * d1 - g1 * g2
        if disc < 0 or not math.isfinite(disc):
            return 0.5 * (low + high)
        d2 = math.copysign(math.sqrt(disc), t2 - t1)
        t = t2 - (t2 - t1) * (g2 + d2 - d1) / (g2 - g1 + 2.0 * d2)
    except ZeroDivisionError:
        return 0.5 * (low + high)
    if not math.isfinite(t):
        return 0.5 * (low + high)
    return min(max(t, low), high)


def backtracking(phi: Callable[[float], tuple[float, Any]], f0: float, gtd0: float, t: float = 1.0, *,
                 c1: float = 1e-4, max_evals: int = 30) -> LineSearchResult:
    """Backtracking Armijo search: the first t in t, ~t/2, ... with φ(t) ≤ φ(0) + c₁ t φ'(0).

    Each shrink takes the minimizer of the quadratic through φ(0), φ'(0), φ(t), kept in
    [0.1 t, 0.5 t]; a non-finite φ(t) shrinks by 10.

    Args:
        phi: ``phi(t) -> (value, payload)``.
        f0: φ(0).
        gtd0: φ'(0) = gᵀd (< 0 for a descent direction).
        t: the first trial step (1 for Newton).
        c1: sufficient-decrease constant.
        max_evals: evaluations before giving up (``success=False``, ``t=0``).

    Example:
        >>> res = backtracking(lambda t: ((t - 0.25) ** 2, None), 0.0625, -0.5)
        >>> res.success and res.f < 0.0625
        True
    """
    for nfev in range(1, max_evals + 1):
        f, payload = phi(t)
        if math.isfinite(f) and f <= f0 + c1 * t * gtd0:
            return LineSearchResult(t, f, math.nan, payload, nfev, True)
        if not math.isfinite(f):
            t *= 0.1
            continue
        denom = 2.0 * (f - f0 - gtd0 * t)
        t_quad = -gtd0 * t * t / denom if denom > 0 else 0.5 * t
        t = min(max(t_quad, 0.1 * t), 0.5 * t)
    return LineSearchResult(0.0, f0, gtd0, None, max_evals, False)


def strong_wolfe(phi: Callable[[float], tuple[float, float, Any]], f0: float, gtd0: float, t: float = 1.0,
                 *, c1: float = 1e-4, c2: float = 0.9, max_evals: int = 25,
                 t_min_width: float = 1e-12) -> LineSearchResult:
    """Strong-Wolfe line search (Nocedal & Wright Alg. 3.5 with zoom, Alg. 3.6, cubic interpolation).

    Finds t with φ(t) ≤ φ(0) + c₁ t φ'(0) and |φ'(t)| ≤ c₂ |φ'(0)|.

    Args:
        phi: ``phi(t) -> (value, derivative along d, payload)``.
        f0: φ(0).
        gtd0: φ'(0) < 0.
        t: first trial step.
        c1: sufficient-decrease constant (0 < c1 < c2 < 1).
        c2: curvature constant.
        max_evals: evaluations of φ at most.
        t_min_width: stop zooming when the bracket is narrower than this (in t units).

    Returns:
        The strong-Wolfe point, or (``success=False``) the best Armijo point found, or t = 0.

    Example:
        >>> res = strong_wolfe(lambda t: ((t - 2) ** 2, 2 * (t - 2), None), 4.0, -4.0)
        >>> res.success
        True
    """
    best = LineSearchResult(0.0, f0, gtd0, None, 0, False)  # best Armijo point so far
    prev = (0.0, f0, gtd0, None)
    nfev = 0
    while nfev < max_evals:
        f, gtd, payload = phi(t)
        nfev += 1
        cur = (t, f, gtd, payload)
        finite = math.isfinite(f) and math.isfinite(gtd)
        if not finite or f > f0 + c1 * t * gtd0 or (nfev > 1 and f >= prev[1]):
            return _zoom(phi, f0, gtd0, prev, cur, c1, c2, max_evals - nfev, nfev, best, t_min_width)
        best = LineSearchResult(t, f, gtd, payload, nfev, False)
        if abs(gtd) <= -c2 * gtd0:
            return LineSearchResult(t, f, gtd, payload, nfev, True)
        if gtd >= 0:
            return _zoom(phi, f0, gtd0, cur, prev, c1, c2, max_evals - nfev, nfev, best, t_min_width)
        # Extrapolate: cubic step, at least a bit past t and at most 10 t.
        t_next = cubic_minimizer(prev[0], prev[1], prev[2], t, f, gtd, t + 0.01 * (t - prev[0]), 10.0 * t)
        prev, t = cur, t_next
    best.nfev = nfev
    return best


def _zoom(phi, f0, gtd0, lo, hi, c1, c2, evals_left, nfev, best, t_min_width) -> LineSearchResult:
    """Shrink the bracket [lo, hi] (lo: lowest Armijo point) until a strong-Wolfe point is found."""
    for _ in range(max(evals_left, 0)):
        a, b = sorted((lo[0], hi[0]))
        if b - a < t_min_width:
            break
        width = b - a
        if math.isfinite(hi[1]) and math.isfinite(hi[2]):
            t = cubic_minimizer(lo[0], lo[1], lo[2], hi[0], hi[1], hi[2], a, b)
        else:
            t = 0.5 * (a + b)
        if min(t - a, b - t) < 0.1 * width:  # too close to an end: bisect so the bracket shrinks
            t = 0.5 * (a + b)
        f, gtd, payload = phi(t)
        nfev += 1
        cur = (t, f, gtd, payload)
        if not (math.isfinite(f) and math.isfinite(gtd)) or f > f0 + c1 * t * gtd0 or f >= lo[1]:
            hi = cur
            continue
        if abs(gtd) <= -c2 * gtd0:
            return LineSearchResult(t, f, gtd, payload, nfev, True)
        if gtd * (hi[0] - lo[0]) >= 0:
            hi = lo
        lo = cur
        best = LineSearchResult(t, f, gtd, payload, nfev, False)
    best.nfev = nfev
    return best


# ---------------------------------------------------------------------------------------------
# Helpers shared by the methods that use the searches (see ravine.optim._flat).


def loss_value(loss: Any, who: str) -> float:
    """The float value of a closure's scalar loss; ClosureError when it is not a scalar."""
    if isinstance(loss, torch.Tensor):
        if loss.numel() != 1:
            raise ClosureError(f"{who}: the closure must return a scalar loss (got shape {tuple(loss.shape)})")
        return float(loss.detach().reshape(()))
    if isinstance(loss, int | float):
        return float(loss)
    raise ClosureError(f"{who}: the closure must return the loss as a tensor (got {type(loss).__name__})")


def check_finite(value: float, what: str, who: str, n_iter: int) -> None:
    """Raise DivergenceError when ``value`` is NaN or inf."""
    if not math.isfinite(value):
        raise DivergenceError(f"{who}: {what} is {value} at iteration {n_iter}; "
                              "the parameters were left at the last finite point")


def converged(group: dict[str, Any], grad_max: float | None, f_prev: float, f: float,
              step_max: float) -> tuple[int, str] | None:
    """The stopping tests after an accepted step, in order: gradient, cost change, step.

    ``‖g‖∞ ≤ tolerance_grad``, ``|f_prev − f| ≤ tolerance_change``,
    ``max|Δθ| ≤ tolerance_step``; returns ``(status, message)`` or None.

    Example:
        >>> converged({"tolerance_grad": 1e-7, "tolerance_change": 1e-9, "tolerance_step": 1e-9}, 1.0, 2.0, 1.0, 0.5)
    """
    if grad_max is not None and grad_max <= group["tolerance_grad"]:
        return STATUS_GTOL, "gradient tolerance reached"
    if abs(f_prev - f) <= group["tolerance_change"]:
        return STATUS_FTOL, "cost-change tolerance reached"
    if step_max <= group["tolerance_step"]:
        return STATUS_XTOL, "step tolerance reached"
    return None
