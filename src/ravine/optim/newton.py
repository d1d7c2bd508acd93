"""Newton's method with an exact Hessian, and Hessian-free Newton-CG.

Both take a ``"graph"`` closure: ``closure()`` returns the loss computed from the parameters
*without* calling ``backward()``; the optimizer differentiates it twice itself.

Example:
    >>> import torch, ravine
    >>> X = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    >>> w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    >>> opt = ravine.optim.create("newton", [w])
    >>> _ = opt.step(lambda: ((X @ w - y) ** 2).mean())
    >>> torch.allclose(w, torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ravine.errors import HyperparameterError, check_int, check_range
from ravine.optim._flat import DESCENT_CHECKS, DescentMethod, Point
from ravine.optim.line_search import check_finite
from ravine.optim.registry import OptimizerInfo

_COMMON_DEFAULTS: dict[str, Any] = {
    "lr": 1.0, "max_iter": 1, "tolerance_grad": 1e-7, "tolerance_change": 1e-9, "tolerance_step": 1e-9,
    "c1": 1e-4, "c2": 0.9, "max_ls": 30, "line_search": "strong_wolfe",
}


class _NewtonBase(DescentMethod):
    """Newton and Newton-CG: a ``"graph"`` closure, the direction from second derivatives.

    The line search starts at ε = lr (1: the full Newton step; Newton-CG may start shorter, see
    ``NewtonCG._first_trial``). ``line_search="strong_wolfe"`` (default) evaluates the gradient at
    trial points, which the next iteration reuses, and may extrapolate past 1; ``"armijo"``
    backtracks on values only. Measured on n-D Rosenbrock from (−1.2, 1, ...), gtol 1e-5: Newton
    29 vs 69 evaluations (n = 10) and 174 vs 872 (n = 100), Newton-CG 169 vs 166 and 336 vs 939
    (strong Wolfe vs Armijo, both from ε = 1), hence the default. Inside one call, the loss
    accepted by the line search (evaluated with its graph) is reused by the next iteration, so an
    iteration usually costs one loss evaluation. The iteration itself is
    :class:`~ravine.optim._flat.DescentMethod`'s.
    """

    closure_kind = "graph"


class Newton(_NewtonBase):
    r"""Newton's method with the exact Hessian: θ ← θ − ε H⁻¹ g, ε by a line search from 1.

    .. math::
        g = \nabla f(\theta),\quad H = \nabla^2 f(\theta),\quad
        (H + \tau I)\,\delta = g,\quad \theta \leftarrow \theta - \varepsilon\,\delta

    τ = ``damping`` when H (+ damping) is positive definite (Cholesky succeeds). Otherwise the
    modified Newton of Nocedal & Wright (Alg. 3.3, "Cholesky with added multiple of the identity"):
    τ₀ = max(damping, −min Hᵢᵢ + β), then τ ← max(2τ, β) until Cholesky succeeds
    (β = 10⁻³ max|Hᵢᵢ|),
    so at a saddle or a maximum the step is still a descent direction.

    H is built row by row from one batched double backward (``torch.autograd.grad`` with
    ``is_grads_batched=True`` over the identity), n² memory: above ``max_params`` parameters it
    refuses and points to ``newton-cg``. Only ``torch.func.hessian`` was considered as an
    alternative; it needs a functional rewrite of the closure, which the ``"graph"`` closure
    contract does not give.

    Args:
        params: the parameters (groups must share hyperparameters; lr = 0 freezes one).
        lr: first trial step ε of the line search (1 = the full Newton step).
        max_iter: Newton iterations per ``step`` call (default 1).
        tolerance_grad, tolerance_change, tolerance_step: early stops inside a ``step`` on
            ‖g‖∞, |Δf| and max|Δθ| (absolute, as in ``torch.optim.LBFGS``).
        c1, c2: line-search constants (c2 only for strong Wolfe). max_ls: evaluations at most.
        line_search: ``"strong_wolfe"`` (default), ``"armijo"`` (backtracking on values) or a
            callable ``(theta, d, f, g) -> t``.
        damping: τ added to H at least (0: pure Newton where H is positive definite).
        max_params: largest parameter count for which the dense Hessian is formed.
    """

    method_name = "newton"

    _checks = {**DESCENT_CHECKS, "damping": lambda v: check_range("damping", v, 0.0),
               "max_params": lambda v: check_int("max_params", v, 1)}

    def __init__(self, params: Any, lr: float = 1.0, max_iter: int = 1, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, tolerance_step: float = 1e-9, c1: float = 1e-4, c2: float = 0.9,
                 max_ls: int = 30, line_search: str = "strong_wolfe", damping: float = 0.0,
                 max_params: int = 5000) -> None:
        defaults = dict(lr=lr, max_iter=max_iter, tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        tolerance_step=tolerance_step, c1=c1, c2=c2, max_ls=max_ls, line_search=line_search,
                        damping=damping, max_params=max_params)
        super().__init__(params, defaults)
        if self._numel > max_params:
            raise HyperparameterError(
                f"Invalid params: newton forms the dense {self._numel}x{self._numel} Hessian, above "
                f"max_params={max_params}; use 'newton-cg' (Hessian-free) or raise max_params")

    def _direction(self, point: Point) -> torch.Tensor:
        with torch.enable_grad():
            hessian = self.mean_across_ranks(hessian_from_grads(point.grads, self._params))
        self.flat_state["hess_evals"] += 1
        check_finite(float(hessian.abs().sum()), "the Hessian", self.method_name, self.flat_state["n_iter"])
        return -modified_newton_solve(hessian, point.g, self.param_groups[0]["damping"])


def hessian_from_grads(grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> torch.Tensor:
    """The dense Hessian from gradients computed with ``create_graph=True``.

    Rows come from one batched double backward (``is_grads_batched=True`` over the identity);
    if an op has no vmap rule, one backward per row. Symmetrized, n×n, parameters in order.

    Example:
        >>> w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
        >>> grads = torch.autograd.grad((w[0] ** 2 * w[1]), [w], create_graph=True)
        >>> hessian_from_grads(grads, [w]).tolist()
        [[4.0, 2.0], [2.0, 0.0]]
    """
    g = torch.cat([gr.reshape(-1) for gr in grads])
    n = g.numel()
    if not g.requires_grad:  # the loss is linear in θ
        return torch.zeros(n, n, dtype=g.dtype, device=g.device)
    eye = torch.eye(n, dtype=g.dtype, device=g.device)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # vmap's "performance drop" fallback notes
            rows = torch.autograd.grad(g, params, grad_outputs=eye, retain_graph=True, is_grads_batched=True,
                                       allow_unused=True)
    except RuntimeError:  # an op without a batching rule: one row at a time
        per_row = [torch.autograd.grad(g, params, grad_outputs=e, retain_graph=True, allow_unused=True) for e in eye]
        rows = [None if per_row[0][j] is None else torch.stack([row[j] for row in per_row])
                for j in range(len(params))]
    blocks = [torch.zeros(n, p.numel(), dtype=g.dtype, device=g.device) if r is None else r.reshape(n, -1)
              for r, p in zip(rows, params, strict=True)]
    hessian = torch.cat(blocks, dim=1)
    return 0.5 * (hessian + hessian.T)


def hessian_vector_product(grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor],
                           v: torch.Tensor) -> torch.Tensor:
    """H v = ∇θ(gᵀv) by one double backward through gradients made with ``create_graph=True``.

    Example:
        >>> w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
        >>> grads = torch.autograd.grad((w[0] ** 2 * w[1]), [w], create_graph=True)
        >>> hessian_vector_product(grads, [w], torch.tensor([1.0, 0.0], dtype=torch.float64)).tolist()
        [4.0, 2.0]
    """
    # Only gradient pieces that depend on θ carry a graph (a parameter entering linearly does not).
    live = [i for i, gr in enumerate(grads) if gr.requires_grad]
    if not live:  # the loss is linear in θ
        return torch.zeros_like(v)
    pieces = [piece.view_as(p) for piece, p in zip(v.split([p.numel() for p in params]), params, strict=True)]
    with torch.enable_grad():
        out = torch.autograd.grad([grads[i] for i in live], params, grad_outputs=[pieces[i] for i in live],
                                  retain_graph=True, allow_unused=True)
    return torch.cat([torch.zeros_like(p).reshape(-1) if o is None else o.reshape(-1)
                      for o, p in zip(out, params, strict=True)])


def modified_newton_solve(hessian: torch.Tensor, g: torch.Tensor, damping: float = 0.0,
                          max_tries: int = 80) -> torch.Tensor:
    """Solve (H + τI) δ = g with the smallest τ ≥ damping (doubling) for which Cholesky succeeds.

    Nocedal & Wright Alg. 3.3: τ₀ = damping if min Hᵢᵢ > 0 else max(damping, −min Hᵢᵢ + β),
    τ ← max(2τ, β), β = 10⁻³ max|Hᵢᵢ| (a tiny floor when H = 0). Never forms H⁻¹.

    Example:
        >>> H = torch.tensor([[2.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
        >>> d = modified_newton_solve(H, torch.tensor([1.0, 1.0], dtype=torch.float64))
        >>> bool((d @ torch.tensor([1.0, 1.0], dtype=torch.float64)) > 0)   # -d is a descent direction
        True
    """
    n = hessian.shape[0]
    eye = torch.eye(n, dtype=hessian.dtype, device=hessian.device)
    diag = hessian.diagonal()
    beta = max(1e-3 * float(diag.abs().max()), float(torch.finfo(hessian.dtype).eps) ** 0.5)
    tau = damping if float(diag.min()) > 0 else max(damping, -float(diag.min()) + beta)
    for _ in range(max_tries):
        chol, info = torch.linalg.cholesky_ex(hessian + tau * eye)
        if int(info) == 0:
            delta = torch.cholesky_solve(g.reshape(-1, 1), chol).reshape(-1)
            if torch.isfinite(delta).all():
                return delta
        tau = max(2.0 * tau, beta)
    return g.clone()  # hopeless conditioning: a gradient step (the line search scales it)


class NewtonCG(_NewtonBase):
    r"""Hessian-free truncated Newton: CG on H δ = g with Hessian-vector products, then a line search.

    .. math::
        Hv = \nabla_\theta (g^\top v),\quad
        \text{CG on } H\delta = g \text{ until } \|H\delta - g\| \le \eta\|g\|,\
        \eta = \min(0.5, \sqrt{\|g\|}),\quad \theta \leftarrow \theta - \varepsilon\,\delta

    Nocedal & Wright Alg. 7.1: CG stops at the forcing tolerance (superlinear convergence),
    on negative curvature pᵀHp ≤ 0 (returning the iterate so far, or −g on the first CG step),
    or after ``cg_max_iter`` products. Each product is one double backward through the graph
    of g, so memory is that of a gradient, not n². SciPy's ``minimize(method="Newton-CG")`` is
    the same algorithm on NumPy arrays; this one runs on the parameters' device from a closure.

    Args: as :class:`Newton`, plus ``cg_max_iter`` (None: 20·n, SciPy's choice) instead of
    ``damping`` / ``max_params``.
    """

    method_name = "newton-cg"

    _checks = {**DESCENT_CHECKS, "cg_max_iter": lambda v: v is None or check_int("cg_max_iter", v, 1)}

    def __init__(self, params: Any, lr: float = 1.0, max_iter: int = 1, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, tolerance_step: float = 1e-9, c1: float = 1e-4, c2: float = 0.9,
                 max_ls: int = 30, line_search: str = "strong_wolfe", cg_max_iter: int | None = None) -> None:
        defaults = dict(lr=lr, max_iter=max_iter, tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        tolerance_step=tolerance_step, c1=c1, c2=c2, max_ls=max_ls, line_search=line_search,
                        cg_max_iter=cg_max_iter)
        super().__init__(params, defaults)

    def _direction(self, point: Point) -> torch.Tensor:
        g = point.g
        cg_max_iter = self.param_groups[0]["cg_max_iter"] or 20 * g.numel()
        state, params = self.flat_state, self._params

        def hvp(v: torch.Tensor) -> torch.Tensor:
            state["hess_evals"] += 1
            return self.mean_across_ranks(hessian_vector_product(point.grads, params, v))

        return truncated_cg(hvp, g, cg_max_iter)

    def _first_trial(self, point: Point, gtd: float) -> float:
        """min(lr, 1.01 · 2(f − f_prev)/φ'(0)): Nocedal & Wright eq. 3.60, capped at lr.

        A truncated-CG step is not always well scaled; starting where the last decrease
        predicts cut n-D Rosenbrock evaluations from 169 to 149 (n = 10) and 336 to 250 (n = 100),
        while it cost exact Newton 1-11% (so Newton keeps the unit step).
        """
        lr, f = self.param_groups[0]["lr"], point.f
        prev = self.flat_state.get("prev_loss")
        if prev is None or not prev > f or not gtd < 0:
            return lr
        return min(lr, 1.01 * 2.0 * (f - prev) / gtd)


def truncated_cg(hvp: Callable[[torch.Tensor], torch.Tensor], g: torch.Tensor, max_iter: int) -> torch.Tensor:
    """Approximately solve H d = −g by CG, truncated (Nocedal & Wright Alg. 7.1).

    Stops when ‖Hd + g‖₁ ≤ η‖g‖₁ with the forcing term η = min(0.5, √‖g‖₁), at negative
    curvature pᵀHp ≤ 0 (returns d so far; on the first product, steepest descent scaled by
    ‖g‖²/|gᵀHg|), or after ``max_iter`` products. The L1 norm is SciPy's Newton-CG choice; with the
    L2 norm, n-D Rosenbrock (n = 100) took 2.3x the evaluations (measured for issue 4).

    Example:
        >>> A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
        >>> g = torch.tensor([1.0, -1.0], dtype=torch.float64)
        >>> d = truncated_cg(lambda v: A @ v, g, 10)
        >>> bool((A @ d + g).abs().sum() <= 0.5 * g.abs().sum()), bool(g @ d < 0)   # forcing tolerance, descent
        (True, True)
    """
    g_l1 = float(g.abs().sum())
    tol = min(0.5, math.sqrt(g_l1)) * g_l1
    d = torch.zeros_like(g)
    r = g.clone()  # residual H d + g
    p = -r
    rr = float(r @ r)
    for j in range(max_iter):
        if float(r.abs().sum()) <= tol:
            break
        hp = hvp(p)
        curvature = float(p @ hp)
        if curvature <= 0:
            return -(rr / max(-curvature, torch.finfo(g.dtype).tiny)) * g if j == 0 else d
        alpha = rr / curvature
        d = d + alpha * p
        r = r + alpha * hp
        rr_new = float(r @ r)
        p = -r + (rr_new / rr) * p
        rr = rr_new
    return d


OPTIMIZERS: list[OptimizerInfo] = [
    OptimizerInfo(
        name="newton", factory=Newton,
        formula="(H + τI) δ = g by Cholesky (τ > 0 only where H is not positive definite), θ ← θ − ε δ",
        defaults={**_COMMON_DEFAULTS, "damping": 0.0, "max_params": 5000},
        closure="graph", train_lr=1.0, full_batch=True,
    ),
    OptimizerInfo(
        name="newton-cg", factory=NewtonCG,
        formula="H δ ≈ g by truncated CG on Hv products, θ ← θ − ε δ, ε by line search from 1",
        defaults={**_COMMON_DEFAULTS, "cg_max_iter": None},
        closure="graph", train_lr=1.0, full_batch=True,
    ),
]
