"""The course's convergence rates for Ax = b, in closed form and from the iteration matrix.

A *rate* ρ is the factor by which the error (or residual) shrinks per iteration, asymptotically;
iterations to a relative tolerance τ are then ≈ ln τ / ln ρ.

================  ====================================  ================================
method            rate                                   iterations to τ grow like
================  ====================================  ================================
GD, ε = 1/λ_max   1 − 1/κ                                κ
GD, exact / best  (κ − 1)/(κ + 1)                        κ
heavy ball, CG    (√κ − 1)/(√κ + 1)                      √κ
Jacobi            ρ(I − D⁻¹A)                            —
Gauss–Seidel      ρ(I − (D + L)⁻¹A)                      —
================  ====================================  ================================

Example:
    >>> round(cg_rate(100.0), 4)
    0.8182
    >>> round(iterations_to(1e-8, gd_rate(100.0)), 1)
    921.0
"""

from __future__ import annotations

import math

import torch


def gd_rate(kappa: float) -> float:
    """(κ − 1)/(κ + 1): GD with the best fixed ε = 2/(λ_min + λ_max), and the steepest-descent bound."""
    return (kappa - 1) / (kappa + 1)


def gd_fixed_rate(kappa: float) -> float:
    """1 − 1/κ: GD with ε = 1/λ_max (the slowest eigendirection, λ_min, shrinks by 1 − λ_min/λ_max)."""
    return 1 - 1 / kappa


def cg_rate(kappa: float) -> float:
    """(√κ − 1)/(√κ + 1): CG's bound ‖e_k‖_A ≤ 2 ρ^k ‖e_0‖_A, and Polyak's heavy-ball rate."""
    root = math.sqrt(kappa)
    return (root - 1) / (root + 1)


def spectral_radius(G: torch.Tensor) -> float:
    """max |λ(G)|, the asymptotic rate of the stationary iteration e_{k+1} = G e_k."""
    return float(torch.linalg.eigvals(G).abs().max())


def jacobi_rate(A: torch.Tensor) -> float:
    """ρ(I − D⁻¹A), Jacobi's iteration matrix.

    Example:
        >>> n = 9; A = 2 * torch.eye(n, dtype=torch.float64) - torch.diag(torch.ones(n - 1, dtype=torch.float64), 1)
        >>> A = A + A.T - 2 * torch.eye(n, dtype=torch.float64)
        >>> abs(jacobi_rate(A) - math.cos(math.pi / (n + 1))) < 1e-12
        True
    """
    d = torch.diagonal(A)
    return spectral_radius(torch.eye(A.shape[-1], dtype=A.dtype, device=A.device) - A / d.unsqueeze(-1))


def gauss_seidel_rate(A: torch.Tensor) -> float:
    """ρ(I − (D + L)⁻¹A), Gauss–Seidel's iteration matrix (D + L the lower triangle of A)."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    return spectral_radius(eye - torch.linalg.solve_triangular(torch.tril(A), A, upper=False))


def iterations_to(tol: float, rate: float) -> float:
    """ln τ / ln ρ: iterations for a contraction ρ per step to reach τ (inf when ρ ≥ 1, 0 when ρ = 0)."""
    if rate >= 1:
        return math.inf
    if rate <= 0:
        return 0.0
    return math.log(tol) / math.log(rate)
