"""Iterative solvers for ``A x = b`` in torch: Jacobi, Gauss–Seidel, CG, PCG, and the anti-examples.

Every solver is device- and batch-agnostic: ``A`` has shape ``(..., n, n)`` and ``b`` ``(..., n)``;
the scalars (α, β, ε) are per system of the batch, and the loop stops when every system has reached
``‖b − A x_k‖ ≤ tol · ‖b‖`` (or after ``max_iter``, or when a residual blows up: ``"diverged"``).
All start from x₀ = 0.

Considered: ``scipy.sparse.linalg.cg`` (NumPy only, its callback sees x but not the residual, no
batches, no GPU), pyamg's relaxations (NumPy/SciPy sparse only). Neither gives residual histories of
torch tensors side by side, so the loops are written here, each a few lines from the course's formula.

Gradient descent and heavy-ball momentum on f(x) = ½ xᵀAx − bᵀx (whose gradient is A x − b, whose
minimizer solves the system) are here as the course's *anti-examples*: their iteration counts grow
like κ and √κ, and each iteration costs what a CG iteration costs.

Example:
    >>> from ravine.linsys.systems import spd
    >>> s = spd(100, kappa=100.0, seed=0)
    >>> res = cg(s.A, s.b, tol=1e-10)
    >>> res.converged and res.iterations < 100
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ravine.errors import DataError, check_int, check_range
from ravine.linsys.result import Clock, SolveResult, mv, norm

Preconditioner = Callable[[torch.Tensor], torch.Tensor]

_BLOWUP = 1e12  # a relative residual this large means the iteration diverges


class _Monitor:
    """Records relative residuals and decides when to stop."""

    def __init__(self, b: torch.Tensor, tol: float, max_iter: int) -> None:
        self.bnorm = norm(b).clamp_min(torch.finfo(b.dtype).tiny)
        self.tol = check_range("tol", tol, 0.0, 1.0, low_inclusive=False, high_inclusive=False, error=DataError)
        self.max_iter = check_int("max_iter", max_iter, 1, error=DataError)
        self.rows: list[torch.Tensor] = []
        self.status = "max_iter"

    def done(self, r: torch.Tensor) -> bool:
        rel = norm(r) / self.bnorm
        self.rows.append(rel)
        worst = float(rel.max())  # one device sync per iteration: the price of stopping on time
        if worst <= self.tol:
            self.status = "converged"
            return True
        if not math.isfinite(worst) or worst > _BLOWUP:
            self.status = "diverged"
            return True
        return False

    def result(self, method: str, x: torch.Tensor, iterations: int, matvecs: int, clock: Clock,
               flops: float, **info: float) -> SolveResult:
        seconds = clock.stop()
        return SolveResult(method, x, torch.stack(self.rows), iterations, matvecs, seconds, flops,
                           self.status == "converged", self.status, dict(info))


def _check(A: torch.Tensor, b: torch.Tensor) -> int:
    if A.ndim < 2 or A.shape[-1] != A.shape[-2] or b.shape != A.shape[:-1]:
        raise DataError(f"Invalid system: A {tuple(A.shape)}, b {tuple(b.shape)} "
                        "(allowed: A (..., n, n) and b (..., n))")
    return int(A.shape[-1])


def _diagonal(A: torch.Tensor) -> torch.Tensor:
    d = torch.diagonal(A, dim1=-2, dim2=-1)
    if bool((d == 0).any()):
        raise DataError("Invalid matrix: a zero on the diagonal (allowed for jacobi, gauss-seidel and their "
                        "preconditioners: a non-zero diagonal)")
    return d


def _stationary(name: str, A: torch.Tensor, b: torch.Tensor, tol: float, max_iter: int,
                solve: Callable[[torch.Tensor], torch.Tensor], solve_flops: int) -> SolveResult:
    """The stationary iteration ``x_{k+1} = x_k + M⁻¹ (b − A x_k)`` from x₀ = 0, ``solve`` applying M⁻¹
    (D⁻¹ for Jacobi, (D + L)⁻¹ for Gauss–Seidel); flops: a 2n² matvec per residual plus
    ``solve_flops`` per sweep."""
    n = _check(A, b)
    mon = _Monitor(b, tol, max_iter)
    clock = Clock(A)
    x = torch.zeros_like(b)
    k = 0
    while True:
        r = b - mv(A, x)
        if mon.done(r) or k == mon.max_iter:
            break
        x = x + solve(r)
        k += 1
    return mon.result(name, x, k, k + 1, clock, (k + 1) * 2 * n * n + k * solve_flops)


def jacobi(A: torch.Tensor, b: torch.Tensor, tol: float = 1e-8, max_iter: int = 10_000) -> SolveResult:
    """Jacobi iteration, ``x_{k+1} = x_k + D⁻¹ (b − A x_k)`` with D = diag(A).

    Converges iff the spectral radius of the iteration matrix ``I − D⁻¹A`` is < 1 (e.g. when A is
    strictly diagonally dominant); that radius is its rate. One matvec per sweep.
    """
    _check(A, b)
    d = _diagonal(A)
    return _stationary("jacobi", A, b, tol, max_iter, lambda r: r / d, solve_flops=0)


def gauss_seidel(A: torch.Tensor, b: torch.Tensor, tol: float = 1e-8, max_iter: int = 10_000) -> SolveResult:
    """Gauss–Seidel, ``(D + L) x_{k+1} = b − U x_k``, i.e. ``x_{k+1} = x_k + (D + L)⁻¹ (b − A x_k)``.

    L and U are the strict lower and upper triangles of A. Each sweep is one matvec and one triangular
    solve (``torch.linalg.solve_triangular``) — the same arithmetic as the element-by-element sweep,
    but batched and on the device. Converges for SPD or strictly diagonally dominant A; its rate is
    the spectral radius of ``I − (D + L)⁻¹ A``.
    """
    _check(A, b)
    _diagonal(A)
    lower = torch.tril(A)
    return _stationary("gauss-seidel", A, b, tol, max_iter,
                       lambda r: torch.linalg.solve_triangular(lower, r.unsqueeze(-1), upper=False).squeeze(-1),
                       solve_flops=int(A.shape[-1]) ** 2)


def jacobi_preconditioner(A: torch.Tensor) -> Preconditioner:
    """``M = diag(A)``: ``M⁻¹ r = r / diag(A)``.

    Example:
        >>> A = torch.tensor([[4.0, 1.0], [1.0, 2.0]])
        >>> jacobi_preconditioner(A)(torch.tensor([4.0, 2.0]))
        tensor([1., 1.])
    """
    d = _diagonal(A)
    return lambda r: r / d


def ssor_preconditioner(A: torch.Tensor, omega: float = 1.0) -> Preconditioner:
    """Symmetric SOR: ``M = ω/(2 − ω) · (D/ω + L) (D/ω)⁻¹ (D/ω + Lᵀ)`` for symmetric A = L + D + Lᵀ.

    Applying ``M⁻¹`` is a forward and a backward triangular solve. M is SPD for 0 < ω < 2, so PCG
    applies. (Incomplete Cholesky IC(0) keeps A's sparsity pattern; on the dense matrices here it
    would be the full Cholesky factor, i.e. a direct solve, so SSOR is the second preconditioner.)
    """
    omega = check_range("omega", omega, 0.0, 2.0, low_inclusive=False, high_inclusive=False, error=DataError)
    d = _diagonal(A) / omega
    lower = torch.tril(A, -1) + torch.diag_embed(d)
    upper = lower.mT
    scale = (2 - omega) / omega

    def apply(r: torch.Tensor) -> torch.Tensor:
        y = torch.linalg.solve_triangular(lower, r.unsqueeze(-1), upper=False).squeeze(-1) * d
        return scale * torch.linalg.solve_triangular(upper, y.unsqueeze(-1), upper=True).squeeze(-1)

    return apply


def _dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u * v).sum(-1)


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    # a system of the batch that has converged exactly has den = 0: it stays put
    return torch.where(den != 0, num / torch.where(den != 0, den, 1.0), 0.0)


def cg(A: torch.Tensor, b: torch.Tensor, tol: float = 1e-8, max_iter: int = 10_000,
       preconditioner: Preconditioner | None = None, *, name: str | None = None,
       precond_flops: float = 0.0) -> SolveResult:
    """(Preconditioned) conjugate gradients for SPD A.

    .. math::
        r_0 = b − A x_0,\\ z_0 = M^{-1} r_0,\\ p_0 = z_0;\\quad
        α_k = \\frac{r_kᵀ z_k}{p_kᵀ A p_k},\\ x_{k+1} = x_k + α_k p_k,\\ r_{k+1} = r_k − α_k A p_k,\\
        z_{k+1} = M^{-1} r_{k+1},\\ β_k = \\frac{r_{k+1}ᵀ z_{k+1}}{r_kᵀ z_k},\\ p_{k+1} = z_{k+1} + β_k p_k

    Without a preconditioner (M = I) the A-norm error contracts at least like
    ``2 ((√κ − 1)/(√κ + 1))^k``; in exact arithmetic CG ends in at most n steps. One matvec per step.
    """
    n = _check(A, b)
    mon = _Monitor(b, tol, max_iter)
    clock = Clock(A)
    apply = preconditioner if preconditioner is not None else (lambda r: r)
    x = torch.zeros_like(b)
    r = b.clone()
    z = apply(r)
    p = z
    rz = _dot(r, z)
    k = 0
    while not mon.done(r) and k < mon.max_iter:
        Ap = mv(A, p)
        alpha = _safe_div(rz, _dot(p, Ap)).unsqueeze(-1)
        x = x + alpha * p
        r = r - alpha * Ap
        z = apply(r)
        rz_new = _dot(r, z)
        p = z + _safe_div(rz_new, rz).unsqueeze(-1) * p
        rz = rz_new
        k += 1
    label = name or ("cg" if preconditioner is None else "pcg")
    return mon.result(label, x, k, k, clock, k * (2 * n * n + precond_flops))


def pcg(A: torch.Tensor, b: torch.Tensor, tol: float = 1e-8, max_iter: int = 10_000,
        preconditioner: str = "jacobi", omega: float = 1.0) -> SolveResult:
    """CG preconditioned by ``"jacobi"`` (M = diag A) or ``"ssor"`` (see :func:`ssor_preconditioner`).

    Example:
        >>> from ravine.linsys.systems import diagonally_dominant
        >>> s = diagonally_dominant(50, seed=0)
        >>> pcg(s.A, s.b, preconditioner="ssor").converged
        True
    """
    n = _check(A, b)
    if preconditioner == "jacobi":
        return cg(A, b, tol, max_iter, jacobi_preconditioner(A), name="pcg-jacobi", precond_flops=n)
    if preconditioner == "ssor":
        return cg(A, b, tol, max_iter, ssor_preconditioner(A, omega), name="pcg-ssor", precond_flops=2 * n * n)
    raise DataError(f"Invalid preconditioner: {preconditioner!r} (allowed: jacobi, ssor)")


def spectrum_bounds(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """λ_min and λ_max of symmetric A (``torch.linalg.eigvalsh``; the course assumes them known)."""
    lam = torch.linalg.eigvalsh(A)
    return lam[..., 0], lam[..., -1]


def gradient_descent(A: torch.Tensor, b: torch.Tensor, tol: float = 1e-8, max_iter: int = 100_000,
                     lr: float | torch.Tensor | None = None, line_search: bool = False) -> SolveResult:
    """Gradient descent on f(x) = ½ xᵀAx − bᵀx: ``x_{k+1} = x_k + ε r_k`` with r_k = b − A x_k = −∇f.

    ``lr=None`` takes ε = 1/λ_max (the error along λ_min then shrinks by 1 − 1/κ per step);
    ``line_search=True`` takes the exact minimizer along −∇f, ``ε_k = r_kᵀr_k / r_kᵀ A r_k``
    (steepest descent; f − f* contracts by at least ((κ − 1)/(κ + 1))² per step). Either way the
    iterations to a tolerance grow like κ. One matvec per step (the residual is updated, not recomputed).
    """
    n = _check(A, b)
    mon = _Monitor(b, tol, max_iter)
    if lr is None and not line_search:
        lr = 1.0 / spectrum_bounds(A)[1]
    clock = Clock(A)  # the spectrum is given in the course's analysis: not timed
    eps = torch.as_tensor(lr, dtype=b.dtype, device=b.device) if lr is not None else None
    if eps is not None and not bool((eps > 0).all()):
        raise DataError(f"Invalid lr: {lr} (allowed: lr > 0)")
    x = torch.zeros_like(b)
    r = b.clone()
    k = 0
    while not mon.done(r) and k < mon.max_iter:
        Ar = mv(A, r)
        step = _safe_div(_dot(r, r), _dot(r, Ar)) if line_search else eps
        step = torch.as_tensor(step).unsqueeze(-1) if torch.as_tensor(step).ndim else step
        x = x + step * r
        r = r - step * Ar
        k += 1
    name = "gd-exact" if line_search else "gd"
    info = {} if line_search else {"lr": float(torch.as_tensor(lr).max())}
    return mon.result(name, x, k, k, clock, k * 2 * n * n, **info)


def heavy_ball(A: torch.Tensor, b: torch.Tensor, tol: float = 1e-8, max_iter: int = 100_000,
               lr: float | None = None, momentum: float | None = None) -> SolveResult:
    """Heavy-ball momentum on f(x) = ½ xᵀAx − bᵀx: ``v ← α v + ε r_k``, ``x ← x + v``.

    Defaults are Polyak's optimal constants for eigenvalues in [μ, L], κ = L/μ:
    ``ε = 4 / (√L + √μ)²`` and ``α = ((√κ − 1)/(√κ + 1))²``; the error then contracts like
    ((√κ − 1)/(√κ + 1))^k (times a factor growing linearly in k), CG's rate — but needs μ and L,
    which CG does not. One matvec per step.
    """
    n = _check(A, b)
    mon = _Monitor(b, tol, max_iter)
    if lr is None or momentum is None:
        mu, L = spectrum_bounds(A)
        if not bool((mu > 0).all()):
            raise DataError("Invalid matrix: not positive definite (allowed for momentum: an SPD matrix)")
        root = (L / mu).sqrt()
        # per system of a batch: each gets the constants of its own spectrum
        eps = (4 / (L.sqrt() + mu.sqrt()) ** 2).unsqueeze(-1) if lr is None else None
        alpha = (((root - 1) / (root + 1)) ** 2).unsqueeze(-1) if momentum is None else None
    eps = eps if lr is None else check_range("lr", lr, 0.0, low_inclusive=False, error=DataError)
    alpha = alpha if momentum is None else check_range("momentum", momentum, 0.0, 1.0, high_inclusive=False,
                                                       error=DataError)
    clock = Clock(A)  # the spectrum is given in the course's analysis: not timed
    x = torch.zeros_like(b)
    v = torch.zeros_like(b)
    r = b.clone()
    k = 0
    while not mon.done(r) and k < mon.max_iter:
        v = alpha * v + eps * r
        x = x + v
        r = b - mv(A, x)
        k += 1
    return mon.result("momentum", x, k, k, clock, k * 2 * n * n, lr=float(torch.as_tensor(eps).max()),
                      momentum=float(torch.as_tensor(alpha).max()))


def newton_least_squares(X: torch.Tensor, y: torch.Tensor, w0: torch.Tensor | None = None) -> SolveResult:
    """One Newton step on the least-squares loss L(w) = ½ ‖X w − y‖², from ``w0`` (default 0).

    ``w₁ = w₀ − H⁻¹ ∇L(w₀)`` with ∇L and H = XᵀX taken by autograd (``torch.autograd.functional``),
    not from the formula: L is quadratic, so its second-order Taylor model is exact and w₁ *is* the
    least-squares solution, whatever w₀. The residuals are those of the normal equations,
    ‖Xᵀ(X w − y)‖ / ‖Xᵀy‖, before and after the step.

    Example:
        >>> X = torch.randn(30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        >>> y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
        >>> newton_least_squares(X, y).x
        tensor([ 1.0000, -2.0000,  0.5000], dtype=torch.float64)
    """
    if X.ndim != 2 or y.shape != X.shape[:1]:
        raise DataError(f"Invalid least-squares data: X {tuple(X.shape)}, y {tuple(y.shape)} "
                        "(allowed: X (m, n) and y (m,))")
    m, n = X.shape
    w = torch.zeros(n, dtype=X.dtype, device=X.device) if w0 is None else w0.detach().clone()

    def loss(w: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((X @ w - y) ** 2).sum()

    bnorm = norm(X.T @ y).clamp_min(torch.finfo(X.dtype).tiny)
    clock = Clock(X)
    # torch.autograd.functional, not torch.func: the latter's first call loads vmap machinery for seconds
    g0 = torch.autograd.functional.vjp(loss, w)[1]
    H = torch.autograd.functional.hessian(loss, w)
    w1 = w - torch.linalg.solve(H, g0)
    seconds = clock.stop()
    g1 = X.T @ (X @ w1 - y)
    rows = torch.stack([norm(g0) / bnorm, norm(g1) / bnorm])
    # flops: the Hessian XᵀX (2 m n²), the gradient (4 m n), the LU solve (⅔ n³)
    return SolveResult("newton", w1, rows, 1, 0, seconds, 2 * m * n * n + 4 * m * n + 2 / 3 * n**3,
                       bool(torch.isfinite(w1).all()), "converged")
