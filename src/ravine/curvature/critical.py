"""Critical points and conditioning from Hessian eigenvalues.

At a critical point (∇J = 0) the signs of the Hessian's eigenvalues name it: all
positive — a minimum; all negative — a maximum; both signs — a saddle (the course's
x² − y²); some ≈ 0 and none of the opposite sign — degenerate (the second-order test
cannot tell: the monkey saddle x³ − 3xy², a flat valley). The classification needs only
the extreme eigenvalues: λ_min > 0 means every eigenvalue is positive, λ_min < 0 < λ_max
means a saddle, whatever lies in between. So the same rule serves the full spectrum of a
small model and the two ends of a large one.

Example:
    >>> classify_critical_point(eigenvalues=[2.0, -2.0], grad_norm=0.0).kind
    'saddle'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ravine.errors import RavineError, check_range

KINDS = ("minimum", "maximum", "saddle", "degenerate")


@dataclass(frozen=True)
class CriticalPoint:
    """What the Hessian's eigenvalues say about a point.

    Attributes:
        kind: ``"minimum"``, ``"maximum"``, ``"saddle"`` or ``"degenerate"`` (from the signs of
            the eigenvalues given; see the module docstring).
        n_positive, n_negative, n_zero: counts among the eigenvalues given (all of them for a
            full spectrum, only the extremes otherwise).
        lambda_min, lambda_max: the extreme eigenvalues given.
        grad_norm: ‖∇J‖ if given, else None.
        critical: ``grad_norm <= grad_tol`` (None when no gradient norm was given). When False,
            ``kind`` describes the local curvature of a point that is not critical.
    """

    kind: str
    n_positive: int
    n_negative: int
    n_zero: int
    lambda_min: float
    lambda_max: float
    grad_norm: float | None
    critical: bool | None

    def as_dict(self) -> dict[str, Any]:
        """A plain dict for JSON output."""
        return {"kind": self.kind, "n_positive": self.n_positive, "n_negative": self.n_negative,
                "n_zero": self.n_zero, "lambda_min": self.lambda_min, "lambda_max": self.lambda_max,
                "grad_norm": self.grad_norm, "critical": self.critical}


def classify_critical_point(eigenvalues: Sequence[float] | torch.Tensor | Any, grad_norm: float | None = None,
                            tol: float = 1e-6, *, atol: float = 1e-10, grad_tol: float = 1e-6) -> CriticalPoint:
    """Classify a point from Hessian eigenvalues (all, or at least the two extremes).

    An eigenvalue counts as ≈ 0 when |λ| ≤ atol + tol · max|λ|.

    Args:
        eigenvalues: the Hessian's eigenvalues (a sequence, a tensor, or an
            :class:`~ravine.curvature.Eigen`). Must include λ_min and λ_max for the
            classification to be right.
        grad_norm: ‖∇J‖ at the point; decides ``critical``.
        tol: relative threshold for ≈ 0.
        atol: absolute threshold for ≈ 0.
        grad_tol: a point is critical when ``grad_norm <= grad_tol``.

    Returns:
        :class:`CriticalPoint`.

    Example:
        >>> p = classify_critical_point(eigenvalues=[3.0, 1.0, 0.0], grad_norm=1e-9)
        >>> p.kind, p.n_positive, p.n_zero, p.critical
        ('degenerate', 2, 1, True)
        >>> classify_critical_point(eigenvalues=[-1.0, -4.0]).kind
        'maximum'
    """
    lam = _as_values(eigenvalues)
    if lam.numel() == 0 or not torch.isfinite(lam).all():
        raise RavineError(f"Invalid eigenvalues: {lam.tolist()[:5]} (allowed: at least one finite value)")
    tol = check_range("tol", tol, 0.0)
    atol = check_range("atol", atol, 0.0)
    threshold = atol + tol * float(lam.abs().max())
    n_pos = int((lam > threshold).sum())
    n_neg = int((lam < -threshold).sum())
    n_zero = lam.numel() - n_pos - n_neg
    if n_pos and n_neg:
        kind = "saddle"
    elif n_zero:
        kind = "degenerate"
    else:
        kind = "minimum" if n_pos else "maximum"
    critical = None
    if grad_norm is not None:
        grad_norm = check_range("grad_norm", grad_norm, 0.0)
        critical = grad_norm <= grad_tol
    return CriticalPoint(kind, n_pos, n_neg, n_zero, float(lam.min()), float(lam.max()), grad_norm, critical)


def condition_number_of(eigenvalues: Sequence[float] | torch.Tensor | Any) -> float:
    """κ = λ_max / λ_min from eigenvalues including both extremes; ``inf`` unless λ_min > 0.

    Example:
        >>> condition_number_of([100.0, 3.0, 1.0])
        100.0
    """
    lam = _as_values(eigenvalues)
    lo, hi = float(lam.min()), float(lam.max())
    return hi / lo if lo > 0 else math.inf


def _as_values(eigenvalues: Any) -> torch.Tensor:
    """A float64 CPU vector from a sequence, a tensor or an ``Eigen`` result."""
    if not isinstance(eigenvalues, torch.Tensor) and hasattr(eigenvalues, "error_bounds"):
        eigenvalues = eigenvalues.values
    if isinstance(eigenvalues, torch.Tensor):
        return eigenvalues.detach().to("cpu", torch.float64).reshape(-1)
    return torch.as_tensor(list(eigenvalues), dtype=torch.float64).reshape(-1)
