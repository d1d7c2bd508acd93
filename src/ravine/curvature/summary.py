"""One call for the whole curvature picture of a point (what ``ravine curvature`` writes).

Example:
    >>> import torch
    >>> from torch import nn
    >>> m = nn.Linear(3, 1).double()
    >>> x = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> y = torch.zeros(20, 1, dtype=torch.float64)
    >>> s = analyze(m, nn.functional.mse_loss, (x, y), k=1, trace_products=30, density_steps=4)
    >>> s.critical_point.kind
    'minimum'
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ravine.curvature.analysis import TaylorStep, taylor_step
from ravine.curvature.critical import CriticalPoint, classify_critical_point
from ravine.curvature.lanczos import Eigen, eigenvalues
from ravine.curvature.operator import Data, HessianOperator, LossFn, Mode
from ravine.curvature.trace import Density, TraceEstimate, density, trace

Progress = Callable[[str, int, int], None]


@dataclass
class CurvatureSummary:
    """Everything ``ravine curvature`` measures at one point.

    Attributes:
        eigen: the extreme eigenvalues (:class:`~ravine.curvature.Eigen`).
        trace: tr H with its standard error.
        density: the SLQ spectral density.
        taylor: the Taylor step analysis along −g.
        critical_point: the classification from the extreme eigenvalues and ‖g‖.
        condition_number: λ_max/λ_min (inf unless λ_min > 0; needs ``which`` with both ends).
        grad_norm: ‖∇J‖.
        loss: J(θ).
        n_params, n_samples: P and N.
        hvp_mode: the Hessian-vector product mode used.
        n_products: Hessian-vector products in total.
        timings: seconds per part; ``time_s`` in total.
    """

    eigen: Eigen
    trace: TraceEstimate
    density: Density
    taylor: TaylorStep
    critical_point: CriticalPoint
    condition_number: float
    grad_norm: float
    loss: float
    n_params: int
    n_samples: int
    hvp_mode: str
    n_products: int
    time_s: float
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self, density_points: int = 200) -> dict[str, Any]:
        """Plain lists and numbers for ``curvature.json`` (inf and NaN become null when written).

        The density grid is thinned to ``density_points`` points.
        """
        step = max(1, self.density.grid.numel() // density_points)
        e = self.eigen
        return {
            "loss": self.loss, "grad_norm": self.grad_norm, "n_params": self.n_params, "n_samples": self.n_samples,
            "hvp_mode": self.hvp_mode, "hvp_count": self.n_products, "time_s": self.time_s,
            "timings": dict(self.timings),
            "eigenvalues": {"values": e.values.tolist(), "which": e.which, "tol": e.tol,
                            "error_bounds": e.error_bounds.tolist(), "converged": e.converged,
                            "n_products": e.n_products, "method": e.method,
                            "lambda_max": e.lambda_max if e.which != "smallest" else None,
                            "lambda_min": e.lambda_min if e.which != "largest" else None},
            "trace": self.trace.as_dict(),
            "condition_number": self.condition_number,
            "critical_point": self.critical_point.as_dict(),
            "taylor": self.taylor.as_dict(),
            "density": {"grid": self.density.grid[::step].tolist(), "density": self.density.density[::step].tolist(),
                        "sigma": self.density.sigma, "n_products": self.density.n_products,
                        "probes": int(self.density.nodes.shape[0]), "steps": int(self.density.nodes.shape[1])},
        }


def analyze(model: nn.Module, loss_fn: LossFn, data: Data, *, k: int = 5, which: str = "both_ends",
            tol: float = 1e-4, trace_products: int = 500, density_probes: int = 2, density_steps: int = 60,
            grad_tol: float = 1e-6, seed: int = 0, mode: Mode = "auto",
            progress: Progress | None = None) -> CurvatureSummary:
    """Extreme eigenvalues, trace, density, conditioning, critical-point kind and Taylor step at θ.

    One :class:`~ravine.curvature.HessianOperator` serves every part (one retained graph for a
    single batch).

    Args:
        model, loss_fn, data: as in :func:`~ravine.curvature.eigenvalues`.
        k, which, tol: of the eigenvalue computation.
        trace_products: Hessian-vector products for the trace (``method="auto"``).
        density_probes, density_steps: of the SLQ density.
        grad_tol: ‖g‖ below which the point counts as critical.
        seed: of every random probe.
        mode: Hessian-vector product mode.
        progress: ``progress(part, done, total)`` after each part.
    """
    op = HessianOperator(model, loss_fn, data, mode=mode)
    parts = ["eigenvalues", "trace", "density", "taylor"]
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t0
        if progress is not None:
            progress(name, parts.index(name) + 1, len(parts))
        return out

    eig = timed("eigenvalues", lambda: eigenvalues(op, k=k, which=which, tol=tol, seed=seed))  # type: ignore[arg-type]
    tr = timed("trace", lambda: trace(op, n_products=trace_products, seed=seed))
    dens = timed("density", lambda: density(op, probes=density_probes, steps=density_steps, seed=seed))
    tay = timed("taylor", lambda: taylor_step(op, top_eigenvalue=False))
    lam_max = eig.lambda_max if which != "smallest" else None
    if lam_max is not None:  # reuse the eigenvalue already computed for 2/λ_max
        tay.lambda_max = lam_max
        tay.lr_max = 2.0 / lam_max if lam_max > 0 else math.inf
    grad_norm = math.sqrt(tay.grad_sq)
    point = classify_critical_point(eigenvalues=eig, grad_norm=grad_norm, grad_tol=grad_tol)
    kappa = eig.lambda_max / eig.lambda_min if which == "both_ends" and eig.lambda_min > 0 else math.inf
    return CurvatureSummary(eig, tr, dens, tay, point, kappa, grad_norm, tay.loss, op.size, op.n_samples, op.mode,
                            op.n_products, time.perf_counter() - t_all, timings)
