"""The course's curvature analyses of one point: conditioning, convexity along directions, the
curvature along the gradient and the Taylor picture of one gradient step.

**Taylor step.** Along the gradient step θ − εg, the second-order Taylor expansion is

    J(θ − εg) ≈ J(θ) − ε gᵀg + ½ ε² gᵀHg.

When gᵀHg > 0 this parabola is smallest at ε* = gᵀg / gᵀHg (the best step size along −g)
and predicts a loss *increase* beyond 2ε*. Over all directions, gradient descent on the
quadratic model is stable only for ε < 2/λ_max: along the top eigenvector the error is
multiplied by |1 − ελ_max| each step, which exceeds 1 past that. On an exact quadratic the
prediction is exact; on a network it shows how far the quadratic picture holds.

Example:
    >>> import torch
    >>> A = torch.diag(torch.tensor([1.0, 10.0], dtype=torch.float64))
    >>> condition_number(A)
    10.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ravine.curvature.lanczos import eigenvalues
from ravine.curvature.operator import Data, HessianOperator, LossFn, Mode, as_operator
from ravine.errors import RavineError, check_int, check_range


def lambda_max(model: Any, loss_fn: LossFn | None = None, data: Data | None = None, tol: float = 1e-4, *,
               seed: int = 0, mode: Mode = "auto") -> float:
    """The Hessian's largest eigenvalue λ_max to relative accuracy ``tol`` (for ``compare --curvature``).

    Gradient descent with a step ε > 2/λ_max diverges along the top eigenvector.

    Example:
        >>> import torch
        >>> round(lambda_max(torch.diag(torch.tensor([1.0, 5.0, 3.0], dtype=torch.float64))), 12)
        5.0
    """
    return eigenvalues(model, loss_fn, data, k=1, which="largest", tol=tol, seed=seed, mode=mode).lambda_max


def condition_number(model: Any, loss_fn: LossFn | None = None, data: Data | None = None, tol: float = 1e-4, *,
                     seed: int = 0, mode: Mode = "auto") -> float:
    """κ = λ_max / λ_min of the Hessian; ``inf`` when λ_min ≤ 0 (not positive definite).

    κ measures the ravine: the contours are ellipses whose axes differ by √κ, and gradient
    descent needs O(κ) steps.

    Example:
        >>> import torch
        >>> condition_number(torch.diag(torch.tensor([2.0, -1.0], dtype=torch.float64)))
        inf
    """
    res = eigenvalues(model, loss_fn, data, k=1, which="both_ends", tol=tol, seed=seed, mode=mode)
    lo, hi = res.lambda_min, res.lambda_max
    return hi / lo if lo > 0 else math.inf


def gradient_curvature(model: Any, loss_fn: LossFn | None = None, data: Data | None = None, *,
                       mode: Mode = "auto") -> float:
    """The curvature along the gradient, gᵀHg / gᵀg (a Rayleigh quotient: λ_min ≤ it ≤ λ_max).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> m = nn.Linear(2, 1, bias=False).double()
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
        >>> y = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
        >>> _ = m.weight.data.zero_()
        >>> gradient_curvature(m, nn.functional.mse_loss, (x, y))   # g ∥ e₁, H = diag(1, 4)
        1.0
    """
    op = _model_operator(model, loss_fn, data, mode)
    g = op.gradient()
    gg = float(g @ g)
    if gg == 0.0:
        raise RavineError("Invalid point: the gradient is 0 (allowed: a point with a nonzero gradient)")
    return float(g @ op.matvec(g)) / gg


@dataclass
class Convexity:
    """Curvature along given directions.

    Attributes:
        curvatures: dᵀHd / dᵀd per direction (local second derivative along the unit direction).
        convex: every curvature ≥ −tol · max |curvature| (the loss is locally convex along all of them).
        segment: per direction, whether the loss sampled along θ + t d, t ∈ [−radius, radius], has
            non-negative second differences (None when no radius was given).
    """

    curvatures: list[float]
    convex: bool
    segment: list[bool] | None = None


def is_convex(model: nn.Module, loss_fn: LossFn, data: Data, directions: torch.Tensor | list[torch.Tensor], *,
              tol: float = 1e-8, radius: float | None = None, points: int = 21, mode: Mode = "auto") -> Convexity:
    """Is the loss convex along each direction d (locally: dᵀHd ≥ 0; on a segment: sampled)?

    Args:
        model, loss_fn, data: as in :func:`~ravine.curvature.eigenvalues`.
        directions: flat directions, a (P,) tensor, a list of them, or a (m, P) tensor.
        tol: relative slack for the local test.
        radius: also sample J(θ + t d̂) for t ∈ [−radius, radius] (d̂ = d/‖d‖) at ``points``
            points and test its second differences J(t−h) − 2J(t) + J(t+h) ≥ −tol·scale.
        points: samples on the segment.
        mode: Hessian-vector product mode.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> m = nn.Linear(2, 1, bias=False).double()
        >>> x, y = torch.eye(2, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64)
        >>> is_convex(m, nn.functional.mse_loss, (x, y), torch.eye(2, dtype=torch.float64)).convex
        True
    """
    op = _model_operator(model, loss_fn, data, mode)
    dirs = [d.to(op.device, op.dtype) for d in _directions(directions, op.size)]
    curv = [float(d @ op.matvec(d)) / float(d @ d) for d in dirs]
    scale = max(abs(c) for c in curv) if curv else 0.0
    convex = all(c >= -tol * scale for c in curv)
    segment = None
    if radius is not None:
        radius = check_range("radius", radius, 0.0, low_inclusive=False)
        points = check_int("points", points, 3)
        segment = []
        ts = torch.linspace(-radius, radius, points, dtype=torch.float64)
        for d in dirs:
            unit = d / d.norm()
            vals = torch.tensor([op.loss(op.theta + float(t) * unit) for t in ts], dtype=torch.float64)
            second = vals[:-2] - 2 * vals[1:-1] + vals[2:]
            slack = tol * max(float(vals.abs().max()), 1e-300) + 10 * torch.finfo(op.dtype).eps * float(vals.abs().max())
            segment.append(bool((second >= -slack).all()))
        convex = convex and all(segment)
    return Convexity(curv, convex, segment)


@dataclass
class TaylorStep:
    """The Taylor picture of a gradient step θ − εg.

    Attributes:
        eps: the step sizes ε evaluated.
        predicted: J − ε gᵀg + ½ ε² gᵀHg for each ε.
        actual: the true J(θ − εg) for each ε.
        loss: J(θ).
        grad_sq: gᵀg.
        gHg: gᵀHg.
        curvature: gᵀHg / gᵀg, the curvature along the gradient.
        eps_star: gᵀg / gᵀHg, the step that minimizes the quadratic prediction (inf if gᵀHg ≤ 0).
        eps_increase: 2 ε*, beyond which the quadratic model predicts a higher loss along −g.
        lambda_max: the Hessian's largest eigenvalue (None if not computed).
        lr_max: 2 / λ_max, the step size above which gradient descent diverges on the quadratic model.
        best_actual_eps: the ε of the grid with the lowest true loss.
        n_products: Hessian-vector products used.
    """

    eps: list[float]
    predicted: list[float]
    actual: list[float]
    loss: float
    grad_sq: float
    gHg: float
    curvature: float
    eps_star: float
    eps_increase: float
    lambda_max: float | None
    lr_max: float | None
    best_actual_eps: float
    n_products: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A plain dict for JSON output (inf becomes null)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def taylor_step(model: Any, loss_fn: LossFn | None = None, data: Data | None = None, *,
                eps: list[float] | torch.Tensor | None = None, points: int = 41, top_eigenvalue: bool = True,
                tol: float = 1e-4, seed: int = 0, mode: Mode = "auto") -> TaylorStep:
    """Predicted vs true loss along −g, the best step ε* = gᵀg/gᵀHg and the stability limit 2/λ_max.

    Args:
        model: an ``nn.Module`` (with ``loss_fn`` and ``data``) or a :class:`HessianOperator`.
        loss_fn, data: as in :func:`~ravine.curvature.eigenvalues`.
        eps: the step sizes to evaluate (default ``points`` values from 0 to 2.5 ε*, or to
            2.5 · 2/λ_max when gᵀHg ≤ 0).
        points: size of the default grid.
        top_eigenvalue: also compute λ_max (Lanczos, ``tol``) for 2/λ_max.
        tol, seed: of the λ_max computation.
        mode: Hessian-vector product mode.

    Returns:
        :class:`TaylorStep`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> m = nn.Linear(1, 1, bias=False).double()
        >>> _ = m.weight.data.fill_(1.0)
        >>> x, y = torch.ones(4, 1, dtype=torch.float64), torch.zeros(4, 1, dtype=torch.float64)
        >>> t = taylor_step(m, nn.functional.mse_loss, (x, y))   # J = w², g = 2, H = 2
        >>> t.eps_star, t.lr_max
        (0.5, 1.0)
    """
    op = _model_operator(model, loss_fn, data, mode)
    start = op.n_products
    g = op.gradient()
    gg = float(g @ g)
    gHg = float(g @ op.matvec(g))
    loss0 = op.loss()
    curvature = gHg / gg if gg > 0 else 0.0
    eps_star = gg / gHg if gHg > 0 else math.inf
    lam = eigenvalues(op, k=1, which="largest", tol=tol, seed=seed).lambda_max if top_eigenvalue else None
    lr_max = 2.0 / lam if lam is not None and lam > 0 else (math.inf if lam is not None else None)
    if eps is None:
        ref = eps_star if math.isfinite(eps_star) else (lr_max if lr_max is not None and math.isfinite(lr_max) else 1.0)
        eps_list = torch.linspace(0.0, 2.5 * ref, check_int("points", points, 2), dtype=torch.float64).tolist()
    else:
        eps_list = [float(e) for e in (eps.tolist() if isinstance(eps, torch.Tensor) else eps)]
        if not eps_list:
            raise RavineError("Invalid eps: [] (allowed: at least one step size)")
    predicted = [loss0 - e * gg + 0.5 * e * e * gHg for e in eps_list]
    actual = [op.loss(op.theta - e * g) for e in eps_list]
    finite = [(a, e) for a, e in zip(actual, eps_list, strict=True) if math.isfinite(a)]
    best = min(finite)[1] if finite else math.nan
    notes = []
    if gHg <= 0:
        notes.append("gᵀHg ≤ 0: the loss curves down along −g; the quadratic model has no best step")
    return TaylorStep(eps_list, predicted, actual, loss0, gg, gHg, curvature, eps_star, 2 * eps_star, lam, lr_max,
                      best, op.n_products - start, notes)


# ------------------------------------------------------------------------------------ helpers


def _model_operator(model: Any, loss_fn: LossFn | None, data: Data | None, mode: Mode) -> HessianOperator:
    op = as_operator(model, loss_fn, data, mode=mode)
    if not isinstance(op, HessianOperator):
        raise RavineError(f"Invalid model: {type(model).__name__} (allowed: an nn.Module with loss_fn and data, "
                          "or a HessianOperator: this analysis needs the loss, not only H)")
    return op


def _directions(directions: torch.Tensor | list[torch.Tensor], size: int) -> list[torch.Tensor]:
    if isinstance(directions, torch.Tensor):
        dirs = [directions] if directions.ndim == 1 else list(directions)
    else:
        dirs = list(directions)
    out = []
    for d in dirs:
        d = torch.as_tensor(d)
        if d.shape != (size,) or float(d.norm()) == 0.0:
            raise RavineError(f"Invalid direction: shape {tuple(d.shape)} (allowed: a nonzero flat vector of size "
                              f"{size})")
        out.append(d)
    return out
