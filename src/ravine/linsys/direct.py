"""Direct solvers for ``A x = b`` on ``torch.linalg``: LU with partial pivoting, QR, Cholesky.

ravine writes no factorization code: ``torch.linalg.lu_factor`` / ``lu_solve``, ``qr``, ``cholesky``
and ``solve_triangular`` are LAPACK / cuSOLVER. What ravine adds is the course's bookkeeping: the
relative residual, the time, and the flop count of the algorithm (leading terms, Golub & Van Loan):

========  ==================================  =====================================
method    factorization                        solve
========  ==================================  =====================================
LU        PA = LU, ⅔ n³                        two triangular solves, 2 n²
QR        A = QR, Q formed, ⁸⁄₃ n³             Qᵀb and Rx = Qᵀb, 3 n²           
Cholesky  A = LLᵀ (SPD only), ⅓ n³             two triangular solves, 2 n²
========  ==================================  =====================================

Example:
    >>> from ravine.linsys.systems import spd
    >>> s = spd(40, kappa=10.0, seed=0)
    >>> res = cholesky(s.A, s.b)
    >>> res.final_residual < 1e-13
    True
"""

from __future__ import annotations

import torch

from ravine.errors import DataError
from ravine.linsys.result import Clock, SolveResult, mv, norm


def _result(method: str, A: torch.Tensor, b: torch.Tensor, x: torch.Tensor, seconds: float,
            flops: float) -> SolveResult:
    rel = (norm(b - mv(A, x)) / norm(b).clamp_min(torch.finfo(b.dtype).tiny)).unsqueeze(0)
    ok = bool(torch.isfinite(x).all())
    return SolveResult(method, x, rel, 0, 0, seconds, flops, ok, "direct" if ok else "diverged")


def lu(A: torch.Tensor, b: torch.Tensor) -> SolveResult:
    """Solve by LU with partial pivoting, ``PA = LU`` (``torch.linalg.lu_factor`` / ``lu_solve``).

    Flops: ⅔ n³ + 2 n².
    """
    n = A.shape[-1]
    clock = Clock(A)
    LU, pivots = torch.linalg.lu_factor(A)
    x = torch.linalg.lu_solve(LU, pivots, b.unsqueeze(-1)).squeeze(-1)
    return _result("lu", A, b, x, clock.stop(), 2 / 3 * n**3 + 2 * n**2)


def qr(A: torch.Tensor, b: torch.Tensor) -> SolveResult:
    """Solve by Householder QR, ``A = QR``, then ``R x = Qᵀ b`` (``torch.linalg.qr``, ``solve_triangular``).

    Flops: ⁴⁄₃ n³ (factorization) + 4/3 n³ to form Q explicitly + 2 n² (Qᵀb) + n² (back substitution);
    counted as 8/3 n³ + 3 n², since ``torch.linalg.qr`` returns Q formed.
    """
    n = A.shape[-1]
    clock = Clock(A)
    Q, R = torch.linalg.qr(A)
    x = torch.linalg.solve_triangular(R, (Q.mT @ b.unsqueeze(-1)), upper=True).squeeze(-1)
    return _result("qr", A, b, x, clock.stop(), 8 / 3 * n**3 + 3 * n**2)


def cholesky(A: torch.Tensor, b: torch.Tensor) -> SolveResult:
    """Solve an SPD system by Cholesky, ``A = L Lᵀ``, then ``L y = b``, ``Lᵀ x = y``.

    Flops: ⅓ n³ + 2 n².

    Raises:
        DataError: A is not positive definite (the factorization fails).
    """
    n = A.shape[-1]
    clock = Clock(A)
    L, info = torch.linalg.cholesky_ex(A)
    if bool((info != 0).any()):
        raise DataError("Invalid matrix: not positive definite (allowed for cholesky: an SPD matrix; use lu or qr)")
    x = torch.cholesky_solve(b.unsqueeze(-1), L).squeeze(-1)
    return _result("cholesky", A, b, x, clock.stop(), n**3 / 3 + 2 * n**2)
