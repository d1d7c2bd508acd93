"""Trace and spectral density of a Hessian from Hessian-vector products alone.

**Trace.** Hutchinson: for Rademacher z (entries ±1), E[zᵀHz] = tr H, so the mean of m
samples estimates it with standard error std(zᵀHz)/√m. Hutch++ (Meyer, Musco, Musco &
Woodruff 2021) spends a third of the budget on a sketch Y = H S, takes its orthonormal
basis Q, computes tr(QᵀHQ) exactly (a third) and applies Hutchinson only to the deflated
rest (I − QQᵀ) H (I − QQᵀ) (the last third). The large outlier eigenvalues of a network
Hessian are caught by Q, so the variance that remains is that of the bulk: for the same
budget the error is much smaller. The error bar is the standard error of the Hutchinson
part (the deflated part is exact given Q).

**Density.** Stochastic Lanczos quadrature (Golub & Meurant; Ghorbani, Krishnan & Xiao
2019): m Lanczos steps from a random unit vector v give the Gauss quadrature nodes θᵢ
(eigenvalues of T) and weights τᵢ = (first component of the i-th eigenvector of T)², with
vᵀ f(H) v ≈ Σ τᵢ f(θᵢ). With f a Gaussian of width σ centred at t, averaging over probes
gives the smoothed spectral density φ(t) = (1/P) Σⱼ N(t; λⱼ, σ²), which integrates to 1.

Considered: curvlinops' ``HutchPPTraceLinearOperator`` and ``LanczosApproximateSpectrumCached``
(the peers in the benchmark; not a core dependency, see ``ravine.curvature``) and
PyHessian's ``density`` (crashes on torch 2: ``torch.eig`` was removed).

Example:
    >>> import torch
    >>> A = torch.diag(torch.arange(1.0, 51.0, dtype=torch.float64))
    >>> est = trace(A, n_products=60)      # 60 ≥ P = 50: exact
    >>> est.value, est.stderr, est.method
    (1275.0, 0.0, 'exact')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ravine.curvature.operator import Data, LossFn, Mode, as_operator
from ravine.errors import RavineError, check_int, check_range

TRACE_METHODS = ("hutch++", "hutchinson")


@dataclass
class TraceEstimate:
    """An estimate of tr H.

    Attributes:
        value: the estimate.
        stderr: its standard error (one sigma; ±1.96·stderr is a 95% interval).
        n_products: Hessian-vector products used.
        method: ``"hutch++"``, ``"hutchinson"`` or ``"exact"`` (budget ≥ P).
    """

    value: float
    stderr: float
    n_products: int
    method: str

    def as_dict(self) -> dict[str, Any]:
        """A plain dict for JSON output."""
        return {"value": self.value, "stderr": self.stderr, "n_products": self.n_products, "method": self.method}


def _rademacher(n: int, count: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n, count) entries ±1, drawn on the CPU so that every device gets the same probes."""
    return (torch.randint(0, 2, (n, count), generator=gen) * 2 - 1).to(device, dtype)


def _columns(op: Any, V: torch.Tensor) -> torch.Tensor:
    """H V, one product per column."""
    return torch.stack([op.matvec(row) for row in V.T.contiguous()], dim=1)  # contiguous probes


def trace(model: Any, loss_fn: LossFn | None = None, data: Data | None = None, n_products: int = 300,
          method: str = "hutch++", *, seed: int = 0, mode: Mode = "auto") -> TraceEstimate:
    """Estimate tr ∇²J with Hutch++ (default) or Hutchinson, Rademacher probes.

    Args:
        model: an ``nn.Module`` (with ``loss_fn`` and ``data``) or an operator / symmetric matrix.
        loss_fn, data: as in :func:`~ravine.curvature.eigenvalues`.
        n_products: the budget of Hessian-vector products (≥ P gives the exact trace,
            Σᵢ eᵢᵀ H eᵢ, with P products).
        method: ``"hutch++"`` or ``"hutchinson"``.
        seed: seed of the probes.
        mode: Hessian-vector product mode.

    Returns:
        :class:`TraceEstimate` with its standard error.

    Example:
        >>> import torch
        >>> A = torch.diag(torch.tensor([100.0, 1.0, 1.0, 1.0], dtype=torch.float64))
        >>> round(trace(A, n_products=3, method="hutchinson").value, 6)   # Rademacher: zᵀAz = tr A exactly
        103.0
    """
    if method not in TRACE_METHODS:
        raise RavineError(f"Invalid method: {method!r} (allowed: {', '.join(TRACE_METHODS)})")
    n_products = check_int("n_products", n_products, 3 if method == "hutch++" else 1)
    op = as_operator(model, loss_fn, data, mode=mode)
    n = op.size
    start = op.n_products
    if n_products >= n:
        eye = torch.eye(n, dtype=op.dtype, device=op.device)
        value = float(sum(float(eye[i] @ op.matvec(eye[i])) for i in range(n)))
        return TraceEstimate(value, 0.0, op.n_products - start, "exact")
    gen = torch.Generator().manual_seed(seed)
    if method == "hutchinson":
        Z = _rademacher(n, n_products, gen, op.dtype, op.device)
        samples = (Z * _columns(op, Z)).sum(0)
        return TraceEstimate(float(samples.mean()), _stderr(samples), op.n_products - start, "hutchinson")
    sketch = n_products // 3
    probes = n_products - 2 * sketch
    S = _rademacher(n, sketch, gen, op.dtype, op.device)
    Q, _ = torch.linalg.qr(_columns(op, S))
    exact_part = float((Q * _columns(op, Q)).sum())
    Z = _rademacher(n, probes, gen, op.dtype, op.device)
    Z = Z - Q @ (Q.T @ Z)  # (I − QQᵀ) z
    samples = (Z * _columns(op, Z)).sum(0)
    return TraceEstimate(exact_part + float(samples.mean()), _stderr(samples), op.n_products - start, "hutch++")


def _stderr(samples: torch.Tensor) -> float:
    if samples.numel() < 2:
        return math.inf
    return float(samples.double().std() / math.sqrt(samples.numel()))


# ------------------------------------------------------------------------------------- density


@dataclass
class Density:
    """A smoothed spectral density from stochastic Lanczos quadrature.

    Attributes:
        grid: points t where the density is evaluated.
        density: φ(t), integrating to 1 over t (the fraction of eigenvalues per unit of λ).
        nodes: (probes, steps) Gauss nodes θᵢ (Ritz values) of each probe.
        weights: (probes, steps) Gauss weights τᵢ (sum to 1 per probe).
        sigma: the Gaussian broadening width.
        n_products: Hessian-vector products used.
    """

    grid: torch.Tensor
    density: torch.Tensor
    nodes: torch.Tensor
    weights: torch.Tensor
    sigma: float
    n_products: int

    def as_dict(self) -> dict[str, Any]:
        """A plain dict for JSON output."""
        return {"grid": self.grid.tolist(), "density": self.density.tolist(), "nodes": self.nodes.tolist(),
                "weights": self.weights.tolist(), "sigma": self.sigma, "n_products": self.n_products}


def lanczos_tridiagonal(op: Any, v: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` Lanczos steps from ``v`` with full reorthogonalization.

    Returns:
        (theta, tau): the eigenvalues of T and the squared first components of its
        eigenvectors (Gauss quadrature nodes and weights for ``v/‖v‖``). Fewer than ``steps``
        when the Krylov space is exhausted (the quadrature is then exact).
    """
    n = op.size
    steps = min(steps, n)
    V = torch.zeros(steps, n, dtype=op.dtype, device=op.device)  # basis vectors as contiguous rows
    T = torch.zeros(steps, steps, dtype=op.dtype, device=op.device)
    V[0] = v / v.norm()
    used = steps
    for j in range(steps):
        w = op.matvec(V[j])
        basis = V[:j + 1]
        h = basis @ w
        w = w - h @ basis
        h2 = basis @ w
        w = w - h2 @ basis
        h = h + h2
        T[:j + 1, j] = h
        T[j, :j + 1] = h
        beta = w.norm()
        if j + 1 == steps:
            break
        if beta <= n * torch.finfo(op.dtype).eps * T[:j + 1, :j + 1].abs().max().clamp_min(1e-300):
            used = j + 1
            break
        V[j + 1] = w / beta
    theta, S = torch.linalg.eigh(T[:used, :used])
    return theta, S[0, :] ** 2


def density(model: Any, loss_fn: LossFn | None = None, data: Data | None = None, *, probes: int = 4,
            steps: int = 80, sigma: float | None = None, grid_size: int = 1000, seed: int = 0,
            mode: Mode = "auto") -> Density:
    """The Hessian's spectral density by stochastic Lanczos quadrature with Gaussian broadening.

    Args:
        model: an ``nn.Module`` (with ``loss_fn`` and ``data``) or an operator / symmetric matrix.
        loss_fn, data: as in :func:`~ravine.curvature.eigenvalues`.
        probes: random start vectors (Rademacher, normalized) averaged.
        steps: Lanczos steps per probe (products: probes × steps).
        sigma: broadening width (default 1% of the spread of the nodes).
        grid_size: points of the grid, which spans the nodes ± 5σ.
        seed: seed of the probes.
        mode: Hessian-vector product mode.

    Returns:
        :class:`Density`.

    Example:
        >>> import torch
        >>> A = torch.diag(torch.tensor([-1.0, 0.0, 0.0, 2.0], dtype=torch.float64))
        >>> d = density(A, probes=2, steps=4, sigma=0.05)
        >>> area = float(torch.trapezoid(d.density, d.grid))
        >>> round(area, 4)
        1.0
    """
    probes = check_int("probes", probes, 1)
    steps = check_int("steps", steps, 2)
    grid_size = check_int("grid_size", grid_size, 10)
    op = as_operator(model, loss_fn, data, mode=mode)
    start = op.n_products
    gen = torch.Generator().manual_seed(seed)
    nodes, weights = [], []
    for _ in range(probes):
        theta, tau = lanczos_tridiagonal(op, _rademacher(op.size, 1, gen, op.dtype, op.device)[:, 0], steps)
        pad = steps - theta.numel()  # an exhausted Krylov space: pad with zero-weight nodes
        nodes.append(torch.cat([theta, theta.new_full((pad,), float(theta[-1]))]).cpu().double())
        weights.append(torch.cat([tau, tau.new_zeros(pad)]).cpu().double())
    nodes_t, weights_t = torch.stack(nodes), torch.stack(weights)
    lo, hi = float(nodes_t.min()), float(nodes_t.max())
    if sigma is None:
        sigma = max(0.01 * (hi - lo), 1e-12 * max(abs(lo), abs(hi), 1.0))
    sigma = check_range("sigma", sigma, 0.0, low_inclusive=False)
    grid = torch.linspace(lo - 5 * sigma, hi + 5 * sigma, grid_size, dtype=torch.float64)
    kernel = torch.exp(-0.5 * ((grid[:, None] - nodes_t.reshape(1, -1)) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    phi = (kernel * weights_t.reshape(1, -1)).sum(1) / probes
    return Density(grid, phi, nodes_t, weights_t, float(sigma), op.n_products - start)
