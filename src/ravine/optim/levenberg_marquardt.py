r"""Gauss–Newton, Levenberg and Levenberg–Marquardt: optimizers and a functional solver.

The loss is :math:`F(\theta) = \tfrac12 \lVert r(\theta) \rVert^2` for a residual
vector ``r`` with Jacobian ``J``, gradient ``g = Jᵀr``. Each step solves

- ``gauss-newton``:        (JᵀJ) δ = Jᵀr,
- ``levenberg``:           (JᵀJ + λ I) δ = Jᵀr,
- ``levenberg-marquardt``: (JᵀJ + λ D²) δ = Jᵀr, D² = diag(JᵀJ) (its running
  maximum over the iterations, as MINPACK does, so the scaling never shrinks),

and moves θ ← θ − ε δ. The damped systems are solved as the least-squares
problem ``min ‖[J; √λ D] δ − [r; 0]‖`` — the same solution as the normal
equations, without squaring J's condition number (NIST's Lanczos, Thurber and
MGH10 need that accuracy): for n ≤ 128 (and m ≥ n) from one factorization per
Jacobian, J D⁻¹ = U S Vᵀ, after which each trial λ costs a few n-vector
operations (:class:`Spectral`, as MINPACK factors J once and solves each trial
in the n x n space); for larger n by QR of the stacked matrix. When there are
fewer residuals than parameters (m < n) the solve happens in the m x m space instead:
``δ = D⁻²Jᵀ y`` with ``(J D⁻² Jᵀ + λ I) y = r``. No inverse is ever formed.
The functional solver runs small problems (n ≤ 128, m ≥ n) on the host in
float64 NumPy around the torch residual and Jacobian (:func:`_solve_host`).

λ is adapted after every trial step (trust-region logic). With the gain ratio
ρ = (actual decrease of F) / (decrease predicted by the linear model), a step
with ρ > 10⁻⁴ is accepted and λ falls by Nielsen's rule λ ← λ·max(1/3,
1 − (2ρ − 1)³); a rejected step raises λ until the scaled step ‖Dδ‖ is 0.3 of
the rejected one (MINPACK's trust-region cut, solved for λ from the SVD of
J D⁻¹; Nielsen's λ ← λ·ν, ν ← 2ν for problems too large for an SVD, and always
in the ``torch.optim`` optimizers, where it trains MLPs much faster). λ0 is
tiny by default (1e-20), so the first trial is in effect the Gauss–Newton
step, as with MINPACK's large initial trust region: a too-long step costs one
evaluation, a too-short first step can commit the iteration to a far-away
valley (NIST's MGH10 from start 1). In the optimizers a rejected trial restarts λ at
least at τ·max diag(JᵀJ) (τ = 1e-3; τ relative to D² for LM), the λ0 of Madsen,
Nielsen & Tingleff, so ``max_tries`` = 10 trials reach a useful damping within one
step (see :meth:`Damping.update`). The functional solver also refuses a step
after which a column of J has collapsed to 1e-8 of its largest norm so far: the
parameter has lost its influence (e.g. exp(−b·x) with b → ∞), a plateau at
infinity rather than a minimum (NIST's BoxBOD from start 1). Gauss–Newton has
no λ; it halves the step until F decreases (damped Gauss–Newton), so it is
still a descent method.

Why not a library: SciPy's ``least_squares`` is NumPy-only (no autograd
Jacobian, no GPU, not a ``torch.optim`` optimizer); the PyPI
``torch-levenberg-marquardt`` is a training loop, not a ``torch.optim``
optimizer, and factorizes the normal matrix JᵀJ + λI (QR, Cholesky or LU).

For an ``nn.Module`` whose samples are independent, pass the residuals as
:class:`SampleResiduals` (``opt.step(SampleResiduals(model, x, y))``): the
optimizers then take J sample by sample (``vmap`` over samples), O(m·n) work
instead of O(m²·n) through the whole batch.

Example:
    >>> import torch
    >>> t = torch.linspace(0, 1, 20, dtype=torch.float64)
    >>> y = 2.0 * torch.exp(-3.0 * t)
    >>> res = least_squares(lambda b: b[0] * torch.exp(-b[1] * t) - y, torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> [round(v, 6) for v in res.x.tolist()]
    [2.0, 3.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ravine.errors import (ClosureError, DivergenceError, HyperparameterError, RavineError, check_int, check_range,
                           unknown_name)
from ravine.optim._flat import FlatParamOptimizer, distributed_world
from ravine.optim._jacobian import JacMode, check_jacobian_memory, flat_jacobian, params_jacobian
from ravine.optim.registry import OptimizerInfo
from ravine.optim.result import (STATUS_FAILED, STATUS_FTOL, STATUS_GTOL, STATUS_MAX_ITER, STATUS_XTOL,
                                 OptimizeResult)

Method = Literal["lm", "gn", "levenberg", "levenberg-marquardt", "gauss-newton"]
METHODS = {"lm": "levenberg-marquardt", "gn": "gauss-newton", "levenberg": "levenberg"}
_ACCEPT = 1e-4  # minimum gain ratio ρ for a step to count as a decrease
_LAMBDA_MIN, _LAMBDA_MAX = 1e-30, 1e30
_MAX_HALVINGS = 40  # Gauss–Newton backtracking: 2^-40 ≈ 1e-12
_NOISE = 64  # |Δcost| below _NOISE·eps·cost is rounding, not progress
_SHRINK = 0.3  # a rejected step's successor is this fraction of its scaled length (MINPACK cuts by 0.1-0.5)
_SVD_MAX = 1024  # above this min(m, n), rejections grow λ by ν instead of solving for the radius
_HOST_MAX_N, _HOST_MAX_ENTRIES = 128, 2**22  # least_squares runs :func:`_solve_host` up to these n, m·n
_SPECTRAL_MAX = 128  # up to this n (and m ≥ n), trials use the factorization of J (:class:`Spectral`)
_COLLAPSE = 1e-16  # a Jacobian column below this fraction of its running max (squared) has collapsed
# The optimizers' λ floor on a rejection: τ (LM, relative to D²) or τ·max diag(JᵀJ) (Levenberg), the
# λ0 = τ·max diag(JᵀJ) of Madsen, Nielsen & Tingleff (2004, eq. 3.14) with their τ for a poor start.
_TAU = 1e-3


# ---------------------------------------------------------------- linear algebra


def _triangular_lstsq(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """min ‖A x − b‖ for a tall A of full column rank, by reduced QR."""
    Q, R = torch.linalg.qr(A)
    return torch.linalg.solve_triangular(R, (Q.mT @ b).unsqueeze(1), upper=True).squeeze(1)


def scaled_gram(J: torch.Tensor, scale_sq: torch.Tensor, block: int = 256) -> torch.Tensor:
    """K Kᵀ with K = J D⁻¹ (m x m): the matrix of the m < n solve in :func:`damped_step`, independent of λ.

    For m > 2·``block`` only the block lower triangle is multiplied and mirrored (torch has
    no symmetric rank-k product): ~55 % of the flops, measured 1.3-1.6x faster at m = 1000,
    n = 10⁴ on one CPU thread.

    Example:
        >>> J = torch.randn(600, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(scaled_gram(J, torch.full((40,), 4.0, dtype=torch.float64)), J @ J.T / 4)
        True
    """
    K = J / scale_sq.sqrt()
    m = K.shape[0]
    if m <= 2 * block:
        return K @ K.mT
    G = K.new_empty(m, m)
    for i in range(0, m, block):
        G[i:i + block, :i + block] = K[i:i + block] @ K[:i + block].mT
        G[:i, i:i + block] = G[i:i + block, :i].mT
    return G


def damped_step(J: torch.Tensor, r: torch.Tensor, lam: float, scale_sq: torch.Tensor,
                gram: torch.Tensor | None = None) -> torch.Tensor:
    """Solve (JᵀJ + λ D²) δ = Jᵀr for λ > 0 (D² = ``scale_sq`` > 0), without forming JᵀJ when m ≥ n.

    ``gram``: :func:`scaled_gram` of (J, D²) when m < n, to share it between trials of one J.

    Example:
        >>> J = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
        >>> r = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        >>> d = damped_step(J, r, 0.5, torch.ones(2, dtype=torch.float64))
        >>> torch.allclose((J.T @ J + 0.5 * torch.eye(2, dtype=torch.float64)) @ d, J.T @ r)
        True
    """
    m, n = J.shape
    if m >= n:
        A = torch.cat([J, math.sqrt(lam) * torch.diag(scale_sq.sqrt())])
        b = torch.cat([r, r.new_zeros(n)])
        return _triangular_lstsq(A, b)
    # Fewer residuals than parameters: push-through identity, an m x m solve.
    G = (scaled_gram(J, scale_sq) if gram is None else gram).clone()
    G.diagonal().add_(lam)
    L, info = torch.linalg.cholesky_ex(G)
    if int(info) != 0:  # λ negligible and K rank-deficient: damp just enough for the factorization
        G.diagonal().add_(m * torch.finfo(J.dtype).eps * float(G.diagonal().max()))
        L, info = torch.linalg.cholesky_ex(G)
    if int(info) != 0:  # pragma: no cover - G has non-finite entries
        raise DivergenceError("the damped m x m system could not be factorized (non-finite Jacobian?)")
    y = torch.cholesky_solve(r.unsqueeze(1), L).squeeze(1)
    return (J.mT @ y) / scale_sq


def gauss_newton_step(J: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Solve (JᵀJ) δ = Jᵀr: QR of J (m ≥ n) or the minimum-norm δ = Jᵀ(JJᵀ)⁻¹r by Cholesky (m < n).

    A rank-deficient J (singular JᵀJ) falls back to a tiny Levenberg damping
    λ = n·eps·max diag(JᵀJ), which picks (nearly) the minimum-norm solution.

    Example:
        >>> J = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
        >>> r = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        >>> torch.allclose(gauss_newton_step(J, r), torch.linalg.lstsq(J, r.unsqueeze(1)).solution.squeeze(1))
        True
    """
    m, n = J.shape
    eps = torch.finfo(J.dtype).eps
    if m >= n:
        Q, R = torch.linalg.qr(J)
        diag = R.diagonal().abs()
        if bool(diag.min() > n * eps * diag.max()):
            return torch.linalg.solve_triangular(R, (Q.mT @ r).unsqueeze(1), upper=True).squeeze(1)
    else:
        L, info = torch.linalg.cholesky_ex(J @ J.mT)
        if int(info) == 0:
            y = torch.cholesky_solve(r.unsqueeze(1), L).squeeze(1)
            if bool(torch.isfinite(y).all()):
                return J.mT @ y
    col_sq = (J * J).sum(0)
    lam = max(float(col_sq.max()), 1.0) * n * eps
    return damped_step(J, r, lam, torch.ones_like(col_sq))


def predicted_decrease(J: torch.Tensor, g: torch.Tensor, delta: torch.Tensor) -> float:
    """½‖r‖² − ½‖r − Jδ‖² = δ·g − ½‖Jδ‖²: the decrease the linear model promises for θ − δ."""
    Jd = J @ delta
    return float(delta @ g - 0.5 * (Jd @ Jd))


def nielsen_update(lam: float, nu: float, rho: float) -> tuple[float, float]:
    """λ, ν after a step with gain ratio ρ (Nielsen 1999): shrink on success, grow geometrically on failure.

    Example:
        >>> nielsen_update(1.0, 2.0, 1.0)
        (0.3333333333333333, 2.0)
        >>> nielsen_update(1.0, 2.0, -1.0)
        (2.0, 4.0)
    """
    if rho > _ACCEPT:
        return min(max(lam * max(1 / 3, 1 - (2 * rho - 1) ** 3), _LAMBDA_MIN), _LAMBDA_MAX), 2.0
    return min(lam * nu, _LAMBDA_MAX), min(nu * 2, 2.0**60)


def lambda_for_radius(J: torch.Tensor, r: torch.Tensor, scale_sq: torch.Tensor, radius: float,
                      lam_low: float) -> float:
    """The λ ≥ lam_low with ‖D δ(λ)‖ ≈ radius (within 1 %), by bisection on log λ.

    With J D⁻¹ = U S Vᵀ, ‖Dδ(λ)‖ = ‖s ⊙ Uᵀr / (s² + λ)‖, which falls monotonically in λ.

    Example:
        >>> J = torch.eye(2, dtype=torch.float64); r = torch.ones(2, dtype=torch.float64)
        >>> round(lambda_for_radius(J, r, torch.ones(2, dtype=torch.float64), 2**0.5 / 2, 1e-9), 1)  # δ = r/(1+λ)
        1.0
    """
    K = J / scale_sq.sqrt()
    _, s, Vh = torch.linalg.svd(K, full_matrices=False)
    c = (K @ Vh.mT).mT @ r  # K V = U S, so this is s ⊙ Uᵀr
    return _lambda_for_norm(c, s * s, radius, lam_low)


def _lambda_for_norm(sc: torch.Tensor | np.ndarray, s2: torch.Tensor | np.ndarray, radius: float,
                     lam_low: float) -> float:
    # ‖sc / (s2 + λ)‖ = radius by bisection on log λ. The ~20-60 evaluations run on host float64
    # arrays: a NumPy expression on n ≤ 1024 numbers costs a fraction of a torch call.
    sc_h, s2_h = (_host(t) if isinstance(t, torch.Tensor) else t for t in (sc, s2))

    def norm(lam: float) -> float:
        return float(np.linalg.norm(sc_h / (s2_h + lam)))

    lo, hi = max(lam_low, 1e-300), max(lam_low, 1e-300) * 10
    while norm(hi) > radius and hi < _LAMBDA_MAX:
        lo, hi = hi, hi * 10
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if norm(mid) > radius else (lo, mid)
        if hi / lo < 1.01:
            break
    return hi


@dataclass
class Spectral:
    """J D⁻¹ = (Q U) S Vᵀ for one (J, r, D), from the QR of J and the SVD of the n x n R D⁻¹ (m ≥ n).

    Every damped step of that J is then a few n-vector operations: with c = Uᵀ Qᵀ r,

        D δ(λ) = V y,  y = s ⊙ c / (s² + λ),   ‖D δ‖ = ‖y‖,
        ½‖r‖² − ½‖r − Jδ‖² = ½ Σ (s c)² (s² + 2λ) / (s² + λ)²   (no cancellation),

    the minimizer of ‖[J; √λ D] δ − [r; 0]‖ as the stacked QR gives it, with the same
    conditioning (J's, not JᵀJ's). MINPACK likewise factors J once per Jacobian and solves each
    trial in the n x n space; on NIST's problems (n ≤ 9) the trials then cost a handful of small
    tensor operations instead of a QR of the (m + n) x n stacked matrix each.

    Example:
        >>> J = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
        >>> r = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        >>> delta, _, _ = Spectral.of(J, r, torch.ones(2, dtype=torch.float64)).step(0.5)
        >>> torch.allclose(delta, damped_step(J, r, 0.5, torch.ones(2, dtype=torch.float64)))
        True
    """

    J: torch.Tensor
    r: torch.Tensor
    scale_sq: torch.Tensor
    d: torch.Tensor
    s2: torch.Tensor
    sc: torch.Tensor
    Vh: torch.Tensor

    @classmethod
    def of(cls, J: torch.Tensor, r: torch.Tensor, scale_sq: torch.Tensor) -> Spectral:
        """Factor J (m ≥ n) for the scaling D² = ``scale_sq``."""
        Q, R = torch.linalg.qr(J)
        d = scale_sq.sqrt()
        U, s, Vh = torch.linalg.svd(R / d, full_matrices=False)
        return cls(J, r, scale_sq, d, s * s, s * (U.mT @ (Q.mT @ r)), Vh)

    def fits(self, J: torch.Tensor, r: torch.Tensor, scale_sq: torch.Tensor) -> bool:
        """True when this factorization is of these very tensors (identity, not values)."""
        return self.J is J and self.r is r and self.scale_sq is scale_sq

    def step(self, lam: float) -> tuple[torch.Tensor, float, float]:
        """(δ(λ), the decrease of ½‖r‖² the linear model predicts for θ − δ, ‖D δ‖)."""
        den = self.s2 + lam
        y = self.sc / den
        pred = 0.5 * float((self.sc * self.sc * (self.s2 + 2 * lam) / (den * den)).sum())
        return (self.Vh.mT @ y) / self.d, pred, float(y.norm())

    def lambda_for_norm(self, radius: float, lam_low: float) -> float:
        """The λ ≥ lam_low with ‖D δ(λ)‖ ≈ radius (within 1 %), as :func:`lambda_for_radius`."""
        return _lambda_for_norm(self.sc, self.s2, radius, lam_low)


def gradient_cosine(J: torch.Tensor, r: torch.Tensor, g: torch.Tensor, col_sq: torch.Tensor | None = None) -> float:
    """max_j |g_j| / (‖J_j‖ ‖r‖): the largest cosine between r and a column of J (MINPACK's gtol test).

    ``col_sq``: the column norms squared, ‖J_j‖², when the caller has them (the solver does).

    Example:
        >>> J = torch.eye(2, dtype=torch.float64); r = torch.tensor([1.0, 0.0], dtype=torch.float64)
        >>> gradient_cosine(J, r, J.T @ r)
        1.0
    """
    r_norm = float(r.norm())
    if r_norm == 0.0:
        return 0.0
    col = ((J * J).sum(0) if col_sq is None else col_sq).sqrt()
    # zero columns carry no direction: 0 there (torch.where, no boolean indexing: fewer small ops)
    return float(torch.where(col > 0, g.abs() / (col * r_norm), 0.0).max())


def converged_at(J: torch.Tensor, r: torch.Tensor, g: torch.Tensor, x: torch.Tensor, cost: float,
                 scale_sq: torch.Tensor) -> tuple[int, str] | None:
    """(status, message) when θ is a least-squares minimum to rounding, else None (SciPy's codes).

    For a step in which no trial lowered the loss: was there nothing left to gain (converged), or
    could the steps not find a decrease that exists (stalled: a wrong Jacobian, a λ at its cap)?
    The tests do not depend on λ, which grows with every failure:

    - gtol (1): max_j |(Jᵀr)_j| / (‖J_j‖ ‖r‖) ≤ √eps — r orthogonal to the columns of J; also r = 0;
    - ftol (2): the Gauss–Newton step δ₀ (λ = 0) promises at most 64 eps of the cost, the
      rounding level of ½‖r‖²;
    - xtol (3): ‖D δ₀‖ ≤ √eps (‖D θ‖ + √eps) — the undamped step is lost in θ's rounding
      (a consistent system solved exactly, whose r is rounding noise).

    A wrong Jacobian fails all three away from the minimum: its gradient and its δ₀ are not small.

    Example:
        >>> A = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
        >>> b = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
        >>> x = torch.linalg.lstsq(A, b.unsqueeze(1)).solution.squeeze(1)
        >>> r = A @ x - b
        >>> converged_at(A, r, A.T @ r, x, 0.5 * float(r @ r), torch.ones(2, dtype=torch.float64))[0]
        1
        >>> r0 = -b
        >>> converged_at(A, r0, A.T @ r0, torch.zeros(2, dtype=torch.float64), 0.5 * float(r0 @ r0),
        ...              torch.ones(2, dtype=torch.float64)) is None
        True
    """
    eps = torch.finfo(J.dtype).eps
    tol = math.sqrt(eps)
    if cost == 0.0 or gradient_cosine(J, r, g) <= tol:
        return STATUS_GTOL, f"gtol: the residual is orthogonal to the columns of J (within {tol:.2g}); converged"
    delta0 = gauss_newton_step(J, r)
    if not bool(torch.isfinite(delta0).all()):
        return None
    if predicted_decrease(J, g, delta0) <= _NOISE * eps * cost:
        return STATUS_FTOL, "ftol: the Gauss-Newton step promises no decrease above rounding; converged"
    d = scale_sq.sqrt()
    if float((d * delta0).norm()) <= tol * (float((d * x).norm()) + tol):
        return STATUS_XTOL, f"xtol: the Gauss-Newton step is below {tol:.2g} of the parameters; converged"
    return None


# ---------------------------------------------------------------- the functional solver


@dataclass
class _Tolerances:
    ftol: float
    xtol: float
    gtol: float
    max_nfev: int


def _finite(r: torch.Tensor) -> bool:
    # A sum is finite only if every term is (inf/nan propagate), and summing is ~15x cheaper than
    # isfinite().all() on a large J; the exact test only runs when the sum is not finite (or overflowed).
    return bool(torch.isfinite(r.sum())) or bool(torch.isfinite(r).all())


def _svd(K: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K = U diag(s) Vh (thin), by LAPACK's gesdd called directly: ``numpy.linalg.svd`` spends
    more in its Python checks than LAPACK spends on NIST's 6 x 2 to 250 x 9 matrices."""
    from scipy.linalg.lapack import dgesdd  # lazily: importing ravine.optim does not load SciPy

    u, s, vh, info = dgesdd(K, compute_uv=1, full_matrices=0)
    if info != 0:  # did not converge (or a bad argument): NumPy's driver raises a LinAlgError with the reason
        return np.linalg.svd(K, full_matrices=False)
    return u, s, vh


def _host(t: torch.Tensor) -> np.ndarray:
    """``t`` as a float64 NumPy array on the host (a view, no copy, for a float64 CPU tensor)."""
    return t.detach().to("cpu", torch.float64).numpy()


def _check_residual(r: Any, m: int | None, where: str) -> torch.Tensor:
    if not isinstance(r, torch.Tensor):
        raise ClosureError(f"{where} must return a tensor of residuals, got {type(r).__name__}")
    r = r.reshape(-1)
    if m is not None and r.numel() != m:
        raise ClosureError(f"{where} returned {r.numel()} residuals, earlier {m}; the residual vector must keep "
                           "its shape")
    return r


def _resolve_method(method: str) -> str:
    key = {"levenberg-marquardt": "lm", "gauss-newton": "gn"}.get(method, method)
    if key not in METHODS:
        raise unknown_name("least-squares method", method, METHODS)
    return key


def _exact_or_user_jac(residual_fn: Callable, jac: Callable | None, jac_mode: JacMode, m: int):
    if jac is None:
        return lambda x: flat_jacobian(residual_fn, x, m=m, mode=jac_mode)[1]

    def user(x: torch.Tensor) -> torch.Tensor:
        J = torch.as_tensor(jac(x), dtype=x.dtype, device=x.device)
        if J.shape != (m, x.numel()):
            raise ClosureError(f"jac returned shape {tuple(J.shape)}; expected ({m}, {x.numel()})")
        return J

    return user


def least_squares(
    residual_fn: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor | Iterable[float],
    method: Method = "lm",
    jac: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    ftol: float = 1e-14,
    xtol: float = 1e-10,
    gtol: float = 1e-10,
    max_nfev: int | None = None,
    lambda0: float = 1e-20,
    jac_mode: JacMode = "auto",
    memory_budget: int | None = None,
    device: str | torch.device | None = None,
) -> OptimizeResult:
    r"""Minimize ½‖r(x)‖² by Gauss–Newton, Levenberg or Levenberg–Marquardt.

    Step rule (see the module docstring): solve (JᵀJ + λ D²) δ = Jᵀr and try
    x − δ; D² = running max of diag(JᵀJ) for ``"lm"``, I for ``"levenberg"``,
    λ = 0 with step halving for ``"gn"``.

    Stopping (the first test met wins; MINPACK's / SciPy's definitions):

    - ``gtol`` (status 1): max_j |(Jᵀr)_j| / (‖J_j‖·‖r‖) ≤ gtol — the residual is
      (nearly) orthogonal to every column of J; also when r = 0.
    - ``ftol`` (status 2): the actual and the predicted relative decrease of the
      cost in the last step are both ≤ ftol.
    - ``xtol`` (status 3): the last (tried) step is small, ‖Dδ‖ ≤ xtol·(‖Dx‖ + xtol).
    - ``max_nfev`` (status 0, ``success=False``): residual evaluations exhausted
      (default max(1000, 100 n²)).

    Args:
        residual_fn: maps a 1-D tensor x (n,) to residuals (any shape, flattened to m).
        x0: the starting point; a list or array becomes float64.
        method: ``"lm"`` (Levenberg–Marquardt), ``"gn"`` (Gauss–Newton) or ``"levenberg"``.
        jac: optional ``jac(x) -> (m, n)`` Jacobian; default: exact, by ``torch.func``.
        ftol, xtol, gtol: relative tolerances above (0 disables one; not all three). ftol's
            default 1e-14 sits just above the cost's rounding level (64 ε ≈ 1.4e-14): a cost test
            stops where the cost is flat, long before the parameters are (NIST's ENSO stopped at
            LRE 5.2 with 1e-12); with it every NIST StRD run reaches LRE ≥ 6 at the defaults.
        max_nfev: cap on residual evaluations (Jacobian evaluations count in ``njev``).
        lambda0: initial damping λ (relative to max diag(JᵀJ) for ``"levenberg"``); the
            default 1e-20 makes the first trial the Gauss–Newton step.
        jac_mode: ``"auto"``, ``"forward"`` or ``"reverse"`` automatic differentiation.
        memory_budget: bytes allowed for J (default: half the free memory).
        device: move x0 here (default: x0's device).

    Returns:
        OptimizeResult with ``x``, ``cost`` = ½‖r‖², ``fun`` = r, ``jac`` = J,
        ``grad_norm`` = ‖Jᵀr‖∞, ``nit`` (accepted steps), ``nfev``, ``njev``,
        ``success``, ``status``, ``message`` and ``extra["lambda"]``.

    Raises:
        DivergenceError: r(x0) or J(x0) is not finite.
        ClosureError: the residual changes shape or ``jac`` has the wrong shape.
        RavineError: J would not fit in ``memory_budget``.
    """
    key = _resolve_method(method)
    x = torch.as_tensor(x0).detach().clone()
    if not x.is_floating_point():
        x = x.to(torch.float64)
    x = x.reshape(-1).to(device) if device is not None else x.reshape(-1)
    n = x.numel()
    if max_nfev is None:
        max_nfev = max(1000, 100 * n * n)
    tol = _Tolerances(check_range("ftol", ftol, 0.0), check_range("xtol", xtol, 0.0),
                      check_range("gtol", gtol, 0.0), check_int("max_nfev", max_nfev, 1))
    if tol.ftol == tol.xtol == tol.gtol == 0.0:
        raise RavineError("Invalid ftol, xtol, gtol: all 0 (allowed: at least one > 0)")
    check_range("lambda0", lambda0, 0.0, low_inclusive=False)
    with torch.no_grad():
        r = _check_residual(residual_fn(x), None, "residual_fn")
    if r.dtype != x.dtype:
        raise ClosureError(f"residual_fn returned {r.dtype} for x of {x.dtype}; use one dtype")
    if not _finite(r):
        raise DivergenceError("residuals at x0 are not finite (nan or inf); check the model and x0")
    check_jacobian_memory(r.numel(), n, x.dtype, x.device, memory_budget)
    jac_fn = _exact_or_user_jac(residual_fn, jac, jac_mode, r.numel())
    if key != "gn" and n <= _HOST_MAX_N and r.numel() >= n and r.numel() * n <= _HOST_MAX_ENTRIES:
        return _solve_host(residual_fn, jac_fn, x, r, key, tol, lambda0)
    return _solve(residual_fn, jac_fn, x, r, key, tol, lambda0)


@dataclass
class Damping:
    """The step rule's state, shared by the solver and the optimizers.

    Attributes:
        key: "lm", "levenberg" or "gn".
        lam: λ (0 for Gauss–Newton).
        nu: ν, Nielsen's growth factor (used on rejections when the problem is too big for an SVD).
        t: Gauss–Newton's step fraction (halved after a failed trial).
        scale_sq: D² (LM: running max of diag(JᵀJ); Levenberg, GN: ones).
        col_max: running max of diag(JᵀJ) (the reference for :meth:`collapsed`).
        radius_cut: on a rejection, solve for the λ that shrinks the scaled step (MINPACK, the
            functional solver); False: Nielsen's λ ← λ·ν only (the optimizers, see :meth:`update`).
        lam_floor: on a Nielsen rejection that leaves λ below this, λ ← lam_floor, ν ← 2 (0: never;
            the optimizers set τ·max diag(JᵀJ), see :meth:`update`).

    Example:
        >>> J = torch.eye(2, dtype=torch.float64); r = torch.ones(2, dtype=torch.float64)
        >>> damp = Damping.start("lm", J, 1e-3)
        >>> [round(v, 9) for v in damp.propose(J, r).tolist()]  # (1 + 1e-3) δ = r
        [0.999000999, 0.999000999]
    """

    key: str
    lam: float
    nu: float
    t: float
    scale_sq: torch.Tensor
    col_max: torch.Tensor
    gn_step: torch.Tensor | None = None
    radius_cut: bool = True
    gram: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    spectral: Spectral | None = None
    # what the radius cut needs from the last trial: (Spectral, ‖Dδ‖) or (J, r, δ)
    last: tuple[Any, ...] | None = None
    just_cut: bool = False
    lam_floor: float = 0.0

    @classmethod
    def start(cls, key: str, J: torch.Tensor, lambda0: float, radius_cut: bool = True) -> Damping:
        """λ0 for LM (D² = diag(JᵀJ), zero columns → 1), λ0·max diag(JᵀJ) for Levenberg (D = I)."""
        col_sq = (J * J).sum(0)
        if key == "lm":
            scale_sq = torch.where(col_sq > 0, col_sq, torch.ones_like(col_sq))
            lam = lambda0
        else:
            scale_sq = torch.ones_like(col_sq)
            lam = lambda0 * max(float(col_sq.max()), torch.finfo(J.dtype).tiny)
        return cls(key=key, lam=lam if key != "gn" else 0.0, nu=2.0, t=1.0, scale_sq=scale_sq, col_max=col_sq,
                   radius_cut=radius_cut)

    def propose(self, J: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """The step δ (θ ← θ − δ) for the current λ (or step fraction t for Gauss–Newton)."""
        return self.trial(J, r)[0]

    def trial(self, J: torch.Tensor, r: torch.Tensor,
              g: torch.Tensor | None = None) -> tuple[torch.Tensor, float, float]:
        """(δ, the decrease of ½‖r‖² the linear model predicts for θ − δ, ‖D δ‖) for the current λ or t.

        ``g`` = Jᵀr is needed for the prediction (nan without it) except on the factored path.
        """
        m, n = J.shape
        if self.key != "gn" and m >= n and n <= _SPECTRAL_MAX:
            if self.spectral is None or not self.spectral.fits(J, r, self.scale_sq):
                self.spectral = Spectral.of(J, r, self.scale_sq)
            delta, pred, step_norm = self.spectral.step(self.lam)
            self.last = (self.spectral, step_norm) if self.radius_cut else None
            return delta, pred, step_norm
        if self.key == "gn":
            if self.gn_step is None:
                self.gn_step = gauss_newton_step(J, r)
            delta = self.t * self.gn_step
        else:
            gram = None
            if m < n:  # J D⁻² Jᵀ does not depend on λ: form it once per (J, D²), not once per trial
                if self.gram is None or self.gram[0] is not J or self.gram[1] is not self.scale_sq:
                    self.gram = (J, self.scale_sq, scaled_gram(J, self.scale_sq))
                gram = self.gram[2]
            delta = damped_step(J, r, self.lam, self.scale_sq, gram)
            self.last = (J, r, delta) if self.radius_cut else None
        pred = predicted_decrease(J, g, delta) if g is not None else math.nan
        return delta, pred, float((self.scale_sq.sqrt() * delta).norm())

    def update(self, rho: float, J_new: torch.Tensor | None, col_sq: torch.Tensor | None = None) -> None:
        """After a trial with gain ratio ρ; ``J_new`` is the Jacobian at the accepted point (None if rejected).

        Accepted: λ ← λ·max(1/3, 1 − (2ρ − 1)³) (Nielsen). Rejected: λ grows until
        the scaled step ‖Dδ‖ is ``_SHRINK`` times the rejected one (MINPACK's
        trust-region cut, found from the SVD of J D⁻¹); for problems with
        min(m, n) > ``_SVD_MAX``, or with ``radius_cut=False``, λ ← λ·ν, ν ← 2ν instead (Nielsen).
        The optimizers use Nielsen's rule: on tanh-MLP fits (sinc, 1-30-30-1, 300 points) the
        radius cut reached MSE 1e-4 in 400 steps where Nielsen's reached 5e-10, and its SVD cost
        more than the rest of the step.

        The first success after a radius cut keeps λ: Nielsen's ÷3 would take the step straight
        back to the length that was just rejected, and the solver zig-zagged reject, accept,
        reject along curved valleys (NIST's Bennett5 took 626 and 193 Jacobians from its two
        starts, 345 and 21 with this rule; 3082 → 2673 Jacobians over the 54 runs at the
        default tolerances, MINPACK 2905, all still at LRE ≥ 6). MINPACK's radius, likewise,
        only grows again after a good step.

        A Nielsen rejection that leaves λ below ``lam_floor`` restarts Nielsen's schedule at the
        floor: λ ← λ_floor, ν ← 2, with λ_floor = τ·max diag(JᵀJ) for Levenberg and τ for LM (its
        λ is relative to D² = diag(JᵀJ)), τ = 1e-3 — the λ0 of Madsen, Nielsen & Tingleff (2004)
        for a poor start. From λ0 = 1e-20, λ·ν alone needs 10 rejections (×2⁵⁵) to reach 1e-3·D², so
        the optimizers' 10 trials per step ran out on a first step of healthy problems (20 of NIST's
        54 runs stalled under levenberg-marquardt); with the floor, the second trial is already
        damped to that scale and the ninth to 2³⁶ times it. Tiny λ is kept until a step fails, so a
        Gauss–Newton step that works is still taken whole.
        """
        if self.key == "gn":
            self.t, self.gn_step = (1.0, None) if rho > _ACCEPT else (self.t * 0.5, self.gn_step)
        else:
            lam = self.lam
            self.lam, self.nu = nielsen_update(self.lam, self.nu, rho)
            if rho <= _ACCEPT and self.lam < self.lam_floor:
                self.lam, self.nu = self.lam_floor, 2.0
            cut = False
            if rho <= _ACCEPT and self.last is not None:
                if isinstance(self.last[0], Spectral):
                    spectral, step_norm = self.last
                    self.lam, cut = spectral.lambda_for_norm(_SHRINK * step_norm, lam), True
                elif min(self.last[0].shape) <= _SVD_MAX:
                    J, r, delta = self.last
                    radius = _SHRINK * float((self.scale_sq.sqrt() * delta).norm())
                    self.lam, cut = lambda_for_radius(J, r, self.scale_sq, radius, lam), True
            if rho > _ACCEPT and self.just_cut:
                self.lam = lam
            self.just_cut = cut
        if J_new is not None:
            self.col_max = torch.maximum(self.col_max, (J_new * J_new).sum(0) if col_sq is None else col_sq)
            if self.key == "lm":
                self.scale_sq = torch.maximum(self.scale_sq, self.col_max)

    def collapsed(self, J_new: torch.Tensor, col_sq: torch.Tensor | None = None) -> bool:
        """True when some parameter has lost (almost) all influence: ‖J_j‖² < 1e-16 · its running max.

        Such a point is a plateau at infinity (e.g. exp(−b·x) with b → ∞), not a
        minimum; the solver treats a step into one as a failed trial.
        """
        return bool((((J_new * J_new).sum(0) if col_sq is None else col_sq) < _COLLAPSE * self.col_max).any())

    def exhausted(self) -> bool:
        """Gauss–Newton halved the step past 2^-40 without a decrease."""
        return self.key == "gn" and self.t < 2.0**-_MAX_HALVINGS


def _converged_before_trial(step_norm: float, x_norm: float, pred: float, exhausted: bool,
                            tol: _Tolerances) -> tuple[int, str] | None:
    # Stop without spending an evaluation when the step (‖Dδ‖ against ‖Dx‖) or the promised
    # decrease is negligible.
    if step_norm <= tol.xtol * (x_norm + tol.xtol) or exhausted:
        return STATUS_XTOL, "xtol: relative step size below xtol"
    if pred <= 0.0:  # the model promises nothing (g = 0 to rounding)
        return STATUS_FTOL, "ftol: predicted relative decrease of the cost below ftol"
    # A small predicted decrease alone does not stop before the trial: the step is taken first and
    # the ftol test applied to it (MINPACK's order). Near the minimum the cost is flat to second
    # order, so this last step, worth ~1e-12 of the cost, still moves the parameters by ~1e-6 of
    # their size: stopping before it left 9 of NIST's 54 runs at LRE 5-5.95 with the defaults.
    return None


def _converged_after_trial(actual: float, pred: float, rho: float, cost: float, tol: _Tolerances,
                           eps: float) -> tuple[int, str] | None:
    if abs(actual) <= tol.ftol * cost and pred <= tol.ftol * cost and rho <= 2:
        return STATUS_FTOL, "ftol: relative decrease of the cost below ftol"
    if rho <= _ACCEPT and abs(actual) <= _NOISE * eps * cost:
        return STATUS_FTOL, "ftol: the cost changes only at rounding level"
    return None


def _solve(residual_fn: Callable, jac_fn: Callable, x: torch.Tensor, r: torch.Tensor, key: str,
           tol: _Tolerances, lambda0: float) -> OptimizeResult:
    m, eps = r.numel(), torch.finfo(x.dtype).eps
    J = jac_fn(x)
    if not _finite(J):
        raise DivergenceError("Jacobian at x0 is not finite (nan or inf); check the model and x0")
    nfev, njev, nit = 1, 1, 0
    cost = 0.5 * float(r @ r)
    damp = Damping.start(key, J, lambda0)
    status, message = STATUS_MAX_ITER, "max_nfev residual evaluations reached"
    no_grad = torch.no_grad()  # one context object for every evaluation (building one costs ~ a tensor op)
    # Small problems (NIST: n ≤ 9, m ≤ 250) spend as much in per-iteration tensor ops as in the
    # Jacobian, so each quantity of a (J, r) is computed once: g, ‖Dx‖ and the gtol test only after
    # an accepted step, ‖J_j‖² shared by the gtol, collapse and scaling updates, and the factorization
    # of J shared by the trials (:class:`Spectral`).
    col_sq, new_point = damp.col_max, True
    while True:
        if new_point:
            g = J.mT @ r
            if gradient_cosine(J, r, g, col_sq) <= tol.gtol:
                status, message = STATUS_GTOL, "gtol: residual orthogonal to the columns of J"
                break
            x_norm = float((damp.scale_sq.sqrt() * x).norm())
        new_point = False
        if nfev >= tol.max_nfev:
            break
        delta, pred, step_norm = damp.trial(J, r, g)
        stop = _converged_before_trial(step_norm, x_norm, pred, damp.exhausted(), tol)
        if stop is not None:
            status, message = stop
            break
        x_new = x - delta
        with no_grad:
            r_new = _check_residual(residual_fn(x_new), m, "residual_fn")
        nfev += 1
        new_cost = 0.5 * float(r_new @ r_new)  # inf or nan when r_new is not finite (or overflows)
        actual = cost - (new_cost if math.isfinite(new_cost) else math.inf)
        rho = actual / pred
        stop = _converged_after_trial(actual, pred, rho, cost, tol, eps)
        if rho > _ACCEPT:
            J_new = jac_fn(x_new)
            njev += 1
            col_sq_new = (J_new * J_new).sum(0)
            if damp.collapsed(J_new, col_sq_new):  # a plateau at infinity: count the step as a failure
                rho, stop = -math.inf, None
            else:
                x, r, cost, J, col_sq, new_point = x_new, r_new, cost - actual, J_new, col_sq_new, True
                nit += 1
                if not (_finite(col_sq) or _finite(J)):
                    raise DivergenceError(f"Jacobian became non-finite (nan or inf) at iteration {nit}")
        damp.update(rho, J if rho > _ACCEPT else None, col_sq if rho > _ACCEPT else None)
        if stop is not None:
            status, message = stop
            break
    g = J.mT @ r
    return OptimizeResult(x=x, cost=cost, grad_norm=float(g.abs().max()), nit=nit, nfev=nfev, njev=njev,
                          success=status > 0, status=status, message=message, fun=r, jac=J,
                          extra={"lambda": damp.lam, "method": METHODS[key]})


def _solve_host(residual_fn: Callable, jac_fn: Callable, x: torch.Tensor, r: torch.Tensor, key: str,
                tol: _Tolerances, lambda0: float) -> OptimizeResult:
    """:func:`_solve` for small problems (m ≥ n, n ≤ ``_HOST_MAX_N``; LM and Levenberg), on the host.

    The same iteration step for step (λ rule, radius cut, scaling, collapse and stopping tests), with
    r and J copied to float64 NumPy once per evaluation and every other quantity computed there:
    a trial is a few NumPy operations on n-vectors (~1 µs each, a torch call costs 3-5 µs), the way
    MINPACK does its n x n algebra in Fortran around the user's callbacks. On NIST StRD (n ≤ 9) the
    solver's own time (r and J served from a cache, 54 runs) fell from 5.3x MINPACK's to 1.8-2.5x,
    and its wall time with the torch Jacobian from 1.35x to 0.98x (benchmarks/nist_walltime.py).
    Each new J is factored once, K = J D⁻¹ = U S Vᵀ (one SVD: the stacked-QR solution with J's
    conditioning, see :class:`Spectral`), and each trial reads δ(λ), ‖Dδ‖ and the predicted
    decrease from it.
    """
    J_t = jac_fn(x)
    if not _finite(J_t):
        raise DivergenceError("Jacobian at x0 is not finite (nan or inf); check the model and x0")
    rh, J = _host(r), _host(J_t)
    cost = 0.5 * float(rh @ rh)
    col_sq = (J * J).sum(0)
    if key == "lm":
        scale_sq, lam = np.where(col_sq > 0, col_sq, 1.0), lambda0
    else:
        scale_sq, lam = np.ones_like(col_sq), lambda0 * max(float(col_sq.max()), torch.finfo(x.dtype).tiny)
    no_grad = torch.no_grad()
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing trial is a rejected step, not news
        return _host_iterations(residual_fn, jac_fn, x, r, J_t, key, tol, lam, scale_sq, col_sq, cost, no_grad)


def _host_iterations(residual_fn: Callable, jac_fn: Callable, x: torch.Tensor, r: torch.Tensor, J_t: torch.Tensor,
                     key: str, tol: _Tolerances, lam: float, scale_sq: np.ndarray, col_sq: np.ndarray, cost: float,
                     no_grad: Any) -> OptimizeResult:
    eps, m = torch.finfo(x.dtype).eps, r.numel()
    xh, rh, J = _host(x), _host(r), _host(J_t)
    nfev, njev, nit = 1, 1, 0
    col_max, nu, just_cut = col_sq, 2.0, False
    status, message = STATUS_MAX_ITER, "max_nfev residual evaluations reached"
    new_point = True
    while True:
        if new_point:
            r_norm = math.sqrt(2.0 * cost)
            col = np.sqrt(col_sq)
            g = J.T @ rh
            # MINPACK's gtol test (gradient_cosine); a zero column has g_j = 0 and counts 0
            if r_norm == 0.0 or float((np.abs(g) / np.maximum(col, np.finfo(np.float64).tiny)).max()) \
                    <= tol.gtol * r_norm:
                status, message = STATUS_GTOL, "gtol: residual orthogonal to the columns of J"
                break
            d = np.sqrt(scale_sq)
            dx = d * xh
            x_norm = math.sqrt(float(dx @ dx))
            U, s, Vh = _svd(J / d)
            sc, s2, V_d = s * (U.T @ rh), s * s, Vh.T / d[:, None]
        new_point = False
        if nfev >= tol.max_nfev:
            break
        den = s2 + lam
        y = sc / den  # D δ = V y
        w = y * y
        step_sq = float(w.sum())
        step_norm, pred = math.sqrt(step_sq), 0.5 * float(w @ s2) + lam * step_sq
        stop = _converged_before_trial(step_norm, x_norm, pred, False, tol)
        if stop is not None:
            status, message = stop
            break
        xh_new = xh - V_d @ y
        x_new = torch.from_numpy(xh_new).to(x)
        with no_grad:
            r_new = _check_residual(residual_fn(x_new), m, "residual_fn")
        nfev += 1
        rh_new = _host(r_new)
        new_cost = 0.5 * float(rh_new @ rh_new)  # inf or nan when r_new is not finite (or overflows)
        actual = cost - (new_cost if math.isfinite(new_cost) else math.inf)
        rho = actual / pred
        stop = _converged_after_trial(actual, pred, rho, cost, tol, eps)
        accepted = False
        if rho > _ACCEPT:
            J_new_t = jac_fn(x_new)
            njev += 1
            J_new = _host(J_new_t)
            col_sq_new = (J_new * J_new).sum(0)
            if bool((col_sq_new < _COLLAPSE * col_max).any()):  # a plateau at infinity: a failed trial
                rho, stop = -math.inf, None
            else:
                accepted, new_point = True, True
                x, xh, r, rh, cost = x_new, xh_new, r_new, rh_new, cost - actual
                J_t, J, col_sq = J_new_t, J_new, col_sq_new
                nit += 1
                if not (math.isfinite(float(col_sq.sum())) or np.isfinite(J).all()):
                    raise DivergenceError(f"Jacobian became non-finite (nan or inf) at iteration {nit}")
        # Damping.update, step for step
        lam_before = lam
        lam, nu = nielsen_update(lam, nu, rho)
        cut = rho <= _ACCEPT
        if cut:
            lam = _lambda_for_norm(sc, s2, _SHRINK * step_norm, lam_before)
        elif just_cut:
            lam = lam_before
        just_cut = cut
        if accepted:
            col_max = np.maximum(col_max, col_sq)
            if key == "lm":
                scale_sq = np.maximum(scale_sq, col_max)
        if stop is not None:
            status, message = stop
            break
    return OptimizeResult(x=x, cost=cost, grad_norm=float(np.abs(J.T @ rh).max()), nit=nit, nfev=nfev, njev=njev,
                          success=status > 0, status=status, message=message, fun=r, jac=J_t,
                          extra={"lambda": lam, "method": METHODS[key]})


# ---------------------------------------------------------------- torch.optim optimizers


class SampleResiduals:
    r"""A residual closure for a module whose samples are independent, with a per-sample Jacobian.

    Calling it returns ``residual_fn(model(inputs), targets)`` flattened, so it is a plain
    ``"residual"`` closure everywhere. The least-squares optimizers recognise it and take J
    sample by sample instead of through the whole batch: ``vmap`` over the samples of
    ``jacrev`` of one sample's residuals (``functional_call`` on the module). An opaque closure
    forces m vector-Jacobian products each through the full batch, O(m²·n) work; per sample it
    is O(m·n), which for a 1-100-100-1 MLP on 1 000 points measured ~30x faster.
    Valid when sample i's residuals depend only on row i of ``inputs`` and ``targets`` (no
    BatchNorm in training mode, no batch-wide losses); rows of J follow the residuals' order.

    Args:
        model: the ``nn.Module``; parameters not handed to the optimizer stay fixed.
        inputs, targets: the batch (first dimension = samples).
        residual_fn: ``residual_fn(outputs, targets) -> residuals`` (default: outputs − targets),
            elementwise over samples.

    Example:
        >>> net = torch.nn.Linear(1, 1, dtype=torch.float64)
        >>> x = torch.linspace(0, 1, 5, dtype=torch.float64).unsqueeze(1)
        >>> opt = LevenbergMarquardt(net.parameters())
        >>> _ = opt.step(SampleResiduals(net, x, 3 * x + 1))
        >>> [round(v, 6) for v in (net.weight.item(), net.bias.item())]
        [3.0, 1.0]
    """

    def __init__(self, model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                 residual_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> None:
        self.model, self.inputs, self.targets = model, inputs, targets
        self.residual_fn = residual_fn if residual_fn is not None else torch.sub

    def __call__(self) -> torch.Tensor:
        return self.residual_fn(self.model(self.inputs), self.targets).reshape(-1)

    def jacobian(self, params: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(r, J) with the columns of J in the order of ``params`` (flattened, concatenated)."""
        from torch.func import functional_call, jacrev, vmap

        names = {id(p): name for name, p in self.model.named_parameters()}
        missing = [i for i, p in enumerate(params) if id(p) not in names]
        if missing:
            raise ClosureError(f"SampleResiduals: parameter {missing[0]} is not a parameter of the model")
        keys, sizes = [names[id(p)] for p in params], [p.numel() for p in params]
        fixed = {**dict(self.model.named_parameters()), **dict(self.model.named_buffers())}
        flat = torch.cat([p.detach().reshape(-1) for p in params])

        def one(z: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            values = {k: t.view(p.shape) for k, t, p in zip(keys, torch.split(z, sizes), params, strict=True)}
            out = functional_call(self.model, {**fixed, **values}, (x.unsqueeze(0),))
            r = self.residual_fn(out, y.unsqueeze(0)).reshape(-1)
            return r, r

        J, r = vmap(jacrev(one, has_aux=True), in_dims=(None, 0, 0))(flat, self.inputs, self.targets)
        return r.reshape(-1).detach(), J.reshape(-1, flat.numel()).detach()


def _check_jac_mode(value: Any) -> None:
    if value not in ("auto", "forward", "reverse"):
        raise HyperparameterError(f"Invalid jac_mode: {value!r} (allowed: auto, forward, reverse)")


def _check_budget(value: Any) -> None:
    if value is not None:
        check_int("memory_budget", value, 1)


_LS_CHECKS: dict[str, Callable[[Any], Any]] = {
    "lr": lambda v: check_range("lr", v, 0.0, low_inclusive=False),
    "lambda0": lambda v: check_range("lambda0", v, 0.0, low_inclusive=False),
    "max_tries": lambda v: check_int("max_tries", v, 1),
    "jac_mode": _check_jac_mode,
    "memory_budget": _check_budget,
}


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """``t`` (rows = residuals) concatenated over the ranks of the default process group, in rank order.

    With one process ``t`` itself. Shards may hold different numbers of rows (padded for the
    collective, trimmed after).

    Example:
        >>> gather_rows(torch.ones(3, 2)).shape
        torch.Size([3, 2])
    """
    world = distributed_world()
    if world == 1:
        return t
    dist = torch.distributed
    rows = torch.tensor([t.shape[0]], device=t.device)
    counts = [torch.zeros_like(rows) for _ in range(world)]
    dist.all_gather(counts, rows)
    most = int(max(int(c) for c in counts))
    padded = torch.cat([t, t.new_zeros(most - t.shape[0], *t.shape[1:])]) if t.shape[0] < most else t.contiguous()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:int(c)] for part, c in zip(parts, counts, strict=True)])


class _LeastSquaresOptimizer(FlatParamOptimizer):
    """Shared ``step`` of the three least-squares optimizers (see the module docstring).

    One ``step(closure)`` takes the Jacobian at the current parameters, then
    tries damped steps until the loss ½‖r‖² falls (at most ``max_tries`` trials;
    λ grows after each failure). The solve is joint over all parameter groups;
    each group's ``lr`` (ε) scales its part of δ; λ settings come from the
    first group. λ, ν, D² and the counters live in ``state`` (``state_dict``
    round-trips them). ``state["status"]`` / ``state["message"]`` say how the last step
    ended, with SciPy's codes: 0 a step was accepted; 1, 2, 3 no trial lowered the loss
    because θ is a minimum to rounding (gtol / ftol / xtol of :func:`converged_at`: λ is
    then left as it was, and there is no warning); −1 no trial lowered the loss away from a
    minimum, which also sets ``state["stalled"]`` (one warning; the trainer stops). Under
    ``torch.distributed`` each rank's residuals and Jacobian rows are gathered, so every rank
    solves the full-batch system (loss ½‖r‖² summed over all shards).
    """

    _key = "lm"
    _checks = _LS_CHECKS
    _group_lr_scales = True

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict], lr: float = 1.0, lambda0: float = 1e-20,
                 max_tries: int = 10, jac_mode: JacMode = "auto", memory_budget: int | None = None) -> None:
        defaults = {"lr": lr, "lambda0": lambda0, "max_tries": max_tries, "jac_mode": jac_mode,
                    "memory_budget": memory_budget}
        super().__init__(params, defaults)

    @property
    def method_name(self) -> str:  # type: ignore[override]
        return METHODS[self._key]

    def _lr_vector(self, like: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.full((p.numel(),), float(group["lr"]), dtype=like.dtype, device=like.device)
                          for group in self.param_groups for p in group["params"] if p.requires_grad])

    def _damping(self, params: list[torch.Tensor], J: torch.Tensor) -> Damping:
        state = self.state[params[0]]
        if "lambda" not in state:
            damp = Damping.start(self._key, J, float(self.param_groups[0].get("lambda0", 1.0)), radius_cut=False)
        else:
            scale_sq = torch.cat([self.state[p]["scale_sq"].reshape(-1) for p in params]).to(J)
            damp = Damping(self._key, float(state["lambda"]), float(state["nu"]), 1.0, scale_sq, scale_sq.clone(),
                           radius_cut=False)
        # a rejection restarts λ at least at τ·max diag(JᵀJ) (Damping.update): λ0 stays tiny for a whole
        # Gauss–Newton first step, yet max_tries = 10 trials reach a useful damping
        damp.lam_floor = _TAU if self._key == "lm" else _TAU * max(float((J * J).sum(0).max()),
                                                                      torch.finfo(J.dtype).tiny)
        return damp

    def _save(self, params: list[torch.Tensor], damp: Damping, **counters: Any) -> None:
        state = self.state[params[0]]
        state["lambda"], state["nu"] = damp.lam, damp.nu
        for key, value in counters.items():
            state[key] = state.get(key, 0) + value
        offset = 0
        for p in params:
            self.state[p]["scale_sq"] = damp.scale_sq[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()

    def _closure_error(self, exc: RuntimeError) -> Exception:
        # A closure that calls backward() (torch's LBFGS convention, Lightning, skorch) fails inside
        # the Jacobian transform or under no_grad; say what the residual closure must be instead.
        text = str(exc)
        if not any(key in text for key in ("functorch", "backward", "does not require grad")):
            return exc
        return ClosureError(
            f"{self.method_name} needs a residual closure: closure() returns the residual vector r(θ) "
            "(e.g. model(X) - y) without calling backward(). Lightning's automatic optimization and "
            "skorch's train_step pass a closure that calls backward() on a scalar loss: under Lightning use "
            "manual optimization (self.automatic_optimization = False; opt.step(lambda: model(X) - y)), under "
            "skorch override NeuralNet.train_step the same way, or use bfgs / lbfgs / line-search-gd, which take "
            "such a closure")

    def _residuals(self, closure: Callable[[], torch.Tensor], m: int | None, where: str) -> torch.Tensor:
        try:
            with torch.no_grad():
                return _check_residual(closure(), m, where)
        except RuntimeError as exc:
            raise self._closure_error(exc) from None

    def _jacobian(self, closure: Callable[[], torch.Tensor], params: list[torch.Tensor],
                  m: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            with torch.enable_grad():
                if isinstance(closure, SampleResiduals):
                    return closure.jacobian(params)
                return params_jacobian(closure, params, m=m, mode=self.param_groups[0]["jac_mode"])
        except RuntimeError as exc:
            raise self._closure_error(exc) from None

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """One accepted step (or ``max_tries`` rejected trials); returns the loss ½‖r‖² before the step.

        Raises:
            ClosureError: no closure, a non-tensor result, or a change in the number of residuals.
            DivergenceError: the residuals or the Jacobian at the current parameters are not finite.
        """
        if closure is None:
            raise ClosureError(f"{type(self).__name__}.step needs a closure that returns the residual vector r(θ)")
        params = self._params
        group = self.param_groups[0]
        first = self.state[params[0]]
        if "m" not in first:  # learn m with one plain evaluation, then check that J fits
            r0 = self._residuals(closure, None, "the closure")
            check_jacobian_memory(r0.numel(), sum(p.numel() for p in params), params[0].dtype, params[0].device,
                                  group["memory_budget"])
            first["m"] = r0.numel()
        m = int(first["m"])
        r, J = self._jacobian(closure, params, m)
        if r.numel() != m:
            raise ClosureError(f"the closure returned {r.numel()} residuals, earlier {m}; the residual vector must "
                               "keep its shape (use drop_last=True for mini-batches)")
        r, J = gather_rows(r), gather_rows(J)  # every rank solves the full-batch system
        step = int(first.get("step", 0))
        if not (_finite(r) and _finite(J)):
            raise DivergenceError(f"residuals or Jacobian are not finite (nan or inf) at step {step}; "
                                  "lower lr or check the model")
        x, g, cost = self._flat_params(), J.mT @ r, 0.5 * float(r @ r)
        damp, lr = self._damping(params, J), self._lr_vector(x)
        lam_before, nu_before = damp.lam, damp.nu
        nfev, accepted, pred = 0, False, 0.0
        for _ in range(int(group["max_tries"])):
            delta = lr * damp.propose(J, r)
            pred = predicted_decrease(J, g, delta)
            if pred <= 0:  # g = 0 (or lr > 2 overshoots the model's minimum): no trial can be accepted
                break
            self._set_flat(x - delta)
            r_new = gather_rows(self._residuals(closure, m, "the closure"))
            nfev += 1
            actual = cost - (0.5 * float(r_new @ r_new) if _finite(r_new) else math.inf)
            rho = actual / pred
            damp.update(rho, None)
            if rho > _ACCEPT:
                accepted = True
                break
            self._set_flat(x)
        verdict = None if accepted else converged_at(J, r, g, x, cost, damp.scale_sq)
        if verdict is not None:  # at the minimum to rounding: the failed trials carry no news about λ
            damp.lam, damp.nu = lam_before, nu_before
        self._save(params, damp, step=1, nfev=nfev + 1, njev=1)
        if accepted:
            self._finish(STATUS_MAX_ITER, "a step lowered the loss; not converged yet")
        elif verdict is not None:
            self._finish(*verdict)
        else:
            self._finish(STATUS_FAILED, "no trial step lowered the loss, away from a minimum")
        # no trial lowered the loss although θ is not at a minimum: say so (GN: its halvings ran out)
        self._set_stalled(not accepted and verdict is None,
                          f"{int(group['max_tries'])} trial steps in a row did not lower the loss ½‖r‖² = "
                          f"{cost:.6g} although the gradient is not small (‖Jᵀr‖∞ = {float(g.abs().max()):.3g}): "
                          "λ needs more increases than max_tries allows, or the closure's derivatives are wrong"
                          + ("; raise max_tries or use levenberg-marquardt" if self._key == "gn" else
                             "; raise max_tries"))
        return torch.tensor(cost, dtype=x.dtype, device=x.device)


class GaussNewton(_LeastSquaresOptimizer):
    r"""Gauss–Newton: solve (JᵀJ) δ = Jᵀr (QR, or the m x m system when m < n); θ ← θ − ε δ.

    A step that does not lower ½‖r‖² is halved (at most ``max_tries`` times, default 30: 2⁻³⁰ of
    the Gauss–Newton step; with 10 a tanh MLP's first steps never got short enough to decrease
    the loss). When every halving fails, ``state["stalled"]`` is set and a warning says so once.

    Example:
        >>> w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
        >>> A = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]], dtype=torch.float64)
        >>> b = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
        >>> opt = GaussNewton([w])
        >>> _ = opt.step(lambda: A @ w - b)
        >>> torch.allclose(w.detach(), torch.linalg.lstsq(A, b.unsqueeze(1)).solution.squeeze(1))
        True
    """

    _key = "gn"
    _checks = {k: v for k, v in _LS_CHECKS.items() if k != "lambda0"}

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict], lr: float = 1.0, max_tries: int = 30,
                 jac_mode: JacMode = "auto", memory_budget: int | None = None) -> None:
        FlatParamOptimizer.__init__(self, params, {"lr": lr, "max_tries": max_tries, "jac_mode": jac_mode,
                                                   "memory_budget": memory_budget})


class Levenberg(_LeastSquaresOptimizer):
    r"""Levenberg: solve (JᵀJ + λ I) δ = Jᵀr, λ0 = ``lambda0``·max diag(JᵀJ), adapted by Nielsen's rule.

    A rejection lifts λ to at least τ·max diag(JᵀJ), τ = 1e-3 (Madsen, Nielsen & Tingleff's λ0).
    """

    _key = "levenberg"


class LevenbergMarquardt(_LeastSquaresOptimizer):
    r"""Levenberg–Marquardt: solve (JᵀJ + λ D²) δ = Jᵀr, D² = running max of diag(JᵀJ); θ ← θ − ε δ.

    λ falls after a step that lowers ½‖r‖² and rises after one that does not
    (Nielsen's rule, see the module docstring); λ0 = ``lambda0`` (default 1e-20: the first
    trial is the Gauss–Newton step), and a rejection lifts λ to at least τ = 1e-3 (relative to
    D², i.e. τ·diag(JᵀJ)), then λ ← λ·ν, ν ← 2ν.

    Example:
        >>> t = torch.linspace(0, 1, 20, dtype=torch.float64)
        >>> b = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
        >>> opt = LevenbergMarquardt([b])
        >>> for _ in range(30):
        ...     _ = opt.step(lambda: b[0] * torch.exp(-b[1] * t) - 2.0 * torch.exp(-3.0 * t))
        >>> [round(v, 4) for v in b.tolist()]
        [2.0, 3.0]
    """

    _key = "lm"


_DEFAULTS = {"lr": 1.0, "lambda0": 1e-20, "max_tries": 10, "jac_mode": "auto", "memory_budget": None}

OPTIMIZERS = [
    OptimizerInfo(
        name="gauss-newton", factory=GaussNewton, formula="(JᵀJ) δ = Jᵀr;  θ ← θ − ε δ",
        defaults={**{k: v for k, v in _DEFAULTS.items() if k != "lambda0"}, "max_tries": 30}, closure="residual", aliases=("gn",), train_lr=1.0, full_batch=True,
    ),
    OptimizerInfo(
        name="levenberg", factory=Levenberg, formula="(JᵀJ + λ I) δ = Jᵀr;  θ ← θ − ε δ;  λ adapted",
        defaults=dict(_DEFAULTS), closure="residual", train_lr=1.0, full_batch=True,
    ),
    OptimizerInfo(
        name="levenberg-marquardt", factory=LevenbergMarquardt,
        formula="(JᵀJ + λ diag(JᵀJ)) δ = Jᵀr;  θ ← θ − ε δ;  λ ↓ on success, ↑ on failure",
        defaults=dict(_DEFAULTS), closure="residual", aliases=("lm",), train_lr=1.0, full_batch=True,
    ),
]

