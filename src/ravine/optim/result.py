"""The result of ravine's functional solvers (``minimize``, ``least_squares``).

Modelled on ``scipy.optimize.OptimizeResult`` but a typed dataclass: the same
field names where SciPy has them (``x``, ``nit``, ``nfev``, ``njev``,
``success``, ``status``, ``message``, ``fun``, ``jac``), plus ``cost`` (the
objective value: ``fn(x)`` for ``minimize``, ``½‖r(x)‖²`` for
``least_squares``) and ``grad_norm`` (‖∇cost(x)‖∞).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass
class OptimizeResult:
    """What a functional solver returns.

    Attributes:
        x: the solution, a 1-D tensor (same dtype and device as ``x0``).
        cost: the objective at ``x`` (``fn(x)``, or ``½‖r(x)‖²`` for least squares).
        grad_norm: the infinity norm of the gradient of ``cost`` at ``x``.
        nit: iterations taken.
        nfev: objective (or residual) evaluations.
        njev: gradient (or Jacobian) evaluations.
        success: True when a stopping tolerance was met (not the iteration cap).
        status: an integer code: 0 iteration cap reached, 1 gradient tolerance,
            2 cost-change tolerance, 3 step tolerance, -1 failure (NaN/inf,
            line search could not decrease the objective).
        message: the reason in words.
        fun: the residual vector at ``x`` (least squares) or None.
        jac: the gradient at ``x`` (``minimize``) or the Jacobian (least squares), or None.
        extra: solver-specific additions (e.g. the final damping λ).

    Example:
        >>> import torch
        >>> r = OptimizeResult(x=torch.zeros(2), cost=0.0, grad_norm=0.0, nit=1, nfev=2, njev=2,
        ...                    success=True, status=1, message="gradient tolerance reached")
        >>> r.success
        True
    """

    x: torch.Tensor
    cost: float
    grad_norm: float
    nit: int
    nfev: int
    njev: int
    success: bool
    status: int
    message: str
    fun: torch.Tensor | None = None
    jac: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (tensors become lists)."""
        out = asdict(self)
        for key in ("x", "fun", "jac"):
            if isinstance(out[key], torch.Tensor):
                out[key] = out[key].detach().cpu().tolist()
        return out


# Status codes shared by the solvers (documented in OptimizeResult.status).
STATUS_MAX_ITER = 0
STATUS_GTOL = 1
STATUS_FTOL = 2
STATUS_XTOL = 3
STATUS_FAILED = -1
