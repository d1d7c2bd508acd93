"""Quasi-Newton methods: dense BFGS and limited-memory L-BFGS, both with a strong-Wolfe search.

Both take a ``"loss"`` closure (the ``torch.optim.LBFGS`` convention): ``closure()`` zeroes the
gradients, computes the loss, calls ``backward()`` and returns the loss.

Example:
    >>> import torch, ravine
    >>> x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    >>> opt = ravine.optim.create("bfgs", [x], max_iter=100)
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> torch.allclose(x, torch.ones(2, dtype=torch.float64), atol=1e-6)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ravine.errors import HyperparameterError, check_int
from ravine.optim._flat import DESCENT_CHECKS, DescentMethod, Point
from ravine.optim.registry import OptimizerInfo

LineSearch = Callable[[torch.Tensor, torch.Tensor, float, torch.Tensor], float]
"""A custom line search: ``line_search(theta, d, f, g) -> t`` (e.g. the exact step on a quadratic)."""

_COMMON_DEFAULTS: dict[str, Any] = {
    "lr": 1.0, "max_iter": 1, "tolerance_grad": 1e-7, "tolerance_change": 1e-9, "tolerance_step": 1e-9,
    "c1": 1e-4, "c2": 0.9, "max_ls": 25, "line_search": "strong_wolfe",
}


class _QuasiNewtonBase(DescentMethod):
    """BFGS and L-BFGS: d = −H̃ g, a line search (strong Wolfe by default), store (s, y).

    One ``step(closure)`` runs up to ``max_iter`` iterations (default 1: one iteration per call,
    as ``ravine compare`` calls ``step`` once per iteration; ``torch.optim.LBFGS`` defaults to
    20). The curvature pair (s, y) of the last step is completed with the gradient at the start of
    the next iteration, also across ``step`` calls (so full-batch training keeps its curvature
    memory). The first step is lr·min(1, 1/‖g‖₁), later ones start at lr. The iteration itself
    is :class:`~ravine.optim._flat.DescentMethod`'s.
    """

    closure_kind = "loss"

    # -- the two methods differ only here -------------------------------------------------------
    def _update(self, s: torch.Tensor, y: torch.Tensor) -> None:
        raise NotImplementedError

    def _quasi_newton_direction(self, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -------------------------------------------------------------------------------------------
    def _direction(self, point: Point) -> torch.Tensor:
        return self._quasi_newton_direction(point.g)

    def _new_gradient(self, g: torch.Tensor) -> None:
        state = self.flat_state
        if "s" in state:  # complete the pair of the previous step with this gradient
            self._update(state.pop("s"), g - state.pop("prev_grad"))

    def _accepted(self, s: torch.Tensor, g: torch.Tensor) -> None:
        self.flat_state["s"], self.flat_state["prev_grad"] = s, g

    def _first_trial(self, point: Point, gtd: float) -> float:
        lr = self.param_groups[0]["lr"]
        return lr * (min(1.0, 1.0 / float(point.g.abs().sum())) if self.flat_state["n_iter"] == 0 else 1.0)


class BFGS(_QuasiNewtonBase):
    r"""Dense BFGS on the inverse Hessian H̃ with a strong-Wolfe line search.

    .. math::
        d = -\tilde H g,\quad s = \varepsilon d,\ y = g_{+} - g,\ \rho = 1/(y^\top s),\quad
        \tilde H \leftarrow (I - \rho s y^\top)\,\tilde H\,(I - \rho y s^\top) + \rho s s^\top

    H̃₀ = I for the first step, rescaled to (yᵀs / yᵀy) I before the first update (Nocedal &
    Wright eq. 6.20). The update is skipped when yᵀs ≤ eps·‖s‖‖y‖ (curvature condition fails,
    which the strong-Wolfe search prevents except at the precision limit). n² memory.

    Args:
        params: the parameters (groups must share hyperparameters; lr = 0 freezes one).
        lr: first trial step of each line search (1: the quasi-Newton step).
        max_iter: iterations per ``step`` call (default 1).
        tolerance_grad, tolerance_change, tolerance_step: early stops on ‖g‖∞, |Δf|, max|Δθ|.
        c1, c2: strong-Wolfe constants. max_ls: line-search evaluations at most.
        line_search: ``"strong_wolfe"``, ``"armijo"`` or a callable ``(theta, d, f, g) -> t`` (one
            evaluation at the step it returns; used e.g. for an exact line search on a quadratic).
        max_params: largest parameter count for the dense n×n matrix (use ``lbfgs`` above).
    """

    method_name = "bfgs"
    _checks = {**DESCENT_CHECKS, "max_params": lambda v: check_int("max_params", v, 1)}

    def __init__(self, params: Any, lr: float = 1.0, max_iter: int = 1, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, tolerance_step: float = 1e-9, c1: float = 1e-4, c2: float = 0.9,
                 max_ls: int = 25, line_search: str | LineSearch = "strong_wolfe", max_params: int = 10000) -> None:
        defaults = dict(lr=lr, max_iter=max_iter, tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        tolerance_step=tolerance_step, c1=c1, c2=c2, max_ls=max_ls, line_search=line_search,
                        max_params=max_params)
        super().__init__(params, defaults)
        if self._numel > max_params:
            raise HyperparameterError(f"Invalid params: bfgs keeps a dense {self._numel}x{self._numel} matrix, "
                                      f"above max_params={max_params}; use 'lbfgs' or raise max_params")

    def _update(self, s: torch.Tensor, y: torch.Tensor) -> None:
        state = self.flat_state
        ys = float(y @ s)
        if not ys > torch.finfo(s.dtype).eps * float(s.norm() * y.norm()):
            return
        rho = 1.0 / ys
        if state.get("inv_hessian") is None:
            state["inv_hessian"] = (ys / float(y @ y)) * torch.eye(s.numel(), dtype=s.dtype, device=s.device)
        h = state["inv_hessian"]
        hy = h @ y
        # (I − ρsyᵀ) H (I − ρysᵀ) + ρssᵀ expanded, O(n²) without forming the products.
        h += (rho * rho * float(y @ hy) + rho) * torch.outer(s, s) - rho * (torch.outer(hy, s) + torch.outer(s, hy))

    def _quasi_newton_direction(self, g: torch.Tensor) -> torch.Tensor:
        h = self.flat_state.get("inv_hessian")
        return -g if h is None else -(h @ g)

    def _reset_curvature(self) -> None:
        self.flat_state["inv_hessian"] = None


class LBFGS(_QuasiNewtonBase):
    r"""L-BFGS: the two-loop recursion over the last m pairs (s, y), strong-Wolfe line search.

    .. math::
        q \leftarrow g;\ \text{for } i = k-1..k-m:\ a_i = \rho_i s_i^\top q,\ q \leftarrow q - a_i y_i;\quad
        r \leftarrow \gamma q,\ \gamma = \frac{s^\top y}{y^\top y};\
        \text{for } i = k-m..k-1:\ r \leftarrow r + s_i (a_i - \rho_i y_i^\top r);\quad d = -r

    ravine's own implementation, not ``torch.optim.LBFGS``. Measured for issue 4
    (benchmarks/second_order_minimize.py, float64, one thread, gtol 1e-5, strong Wolfe, m = 10):
    function evaluations 89 vs 89 (Rosenbrock n = 10), 627 vs 606 (n = 100), 39 vs 39 (logistic
    regression, breast cancer); interleaved timings equal within noise (min of 7: 99 vs 120 ms,
    759 vs 787 ms, 42 vs 47 ms). Performance is a tie, so the choice rests on behaviour: torch's
    strong-Wolfe search interpolates through an inf/NaN trial loss, so on f(x) = −x − 10⁻³ log(2 − x)
    it returns x ≈ 10⁹² with f = NaN and no error, where this one shrinks the step and reaches the
    minimizer x = 1.999 (see tests/optim/test_quasi_newton.py). It also shares BFGS's code path,
    stopping rules (tolerance_step, status / message) and counters (grad_evals), and accepts a
    custom ``line_search``.

    Args: as :class:`BFGS`, with ``history_size`` (m, default 10) instead of ``max_params``.
    """

    method_name = "lbfgs"
    _checks = {**DESCENT_CHECKS, "history_size": lambda v: check_int("history_size", v, 1)}

    def __init__(self, params: Any, lr: float = 1.0, max_iter: int = 1, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, tolerance_step: float = 1e-9, c1: float = 1e-4, c2: float = 0.9,
                 max_ls: int = 25, line_search: str | LineSearch = "strong_wolfe", history_size: int = 10) -> None:
        defaults = dict(lr=lr, max_iter=max_iter, tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        tolerance_step=tolerance_step, c1=c1, c2=c2, max_ls=max_ls, line_search=line_search,
                        history_size=history_size)
        super().__init__(params, defaults)

    def _update(self, s: torch.Tensor, y: torch.Tensor) -> None:
        ys = float(y @ s)
        if not ys > torch.finfo(s.dtype).eps * float(s.norm() * y.norm()):
            return
        state = self.flat_state
        steps, grad_diffs = state.setdefault("steps", []), state.setdefault("grad_diffs", [])
        if len(steps) == self.param_groups[0]["history_size"]:
            steps.pop(0)
            grad_diffs.pop(0)
        steps.append(s)
        grad_diffs.append(y)
        state["gamma"] = ys / float(y @ y)

    def _quasi_newton_direction(self, g: torch.Tensor) -> torch.Tensor:
        state = self.flat_state
        steps, grad_diffs = state.get("steps", []), state.get("grad_diffs", [])
        q = g.clone()
        rhos = [1.0 / float(y @ s) for s, y in zip(steps, grad_diffs, strict=True)]
        alphas = []
        for s, y, rho in zip(reversed(steps), reversed(grad_diffs), reversed(rhos), strict=True):
            a = rho * float(s @ q)
            q.add_(y, alpha=-a)
            alphas.append(a)
        r = q.mul_(state.get("gamma", 1.0))
        for s, y, rho, a in zip(steps, grad_diffs, rhos, reversed(alphas), strict=True):
            r.add_(s, alpha=a - rho * float(y @ r))
        return -r

    def _reset_curvature(self) -> None:
        state = self.flat_state
        state["steps"], state["grad_diffs"], state["gamma"] = [], [], 1.0


OPTIMIZERS: list[OptimizerInfo] = [
    OptimizerInfo(
        name="bfgs", factory=BFGS,
        formula="d = −H̃g, ε by strong Wolfe, H̃ ← (I − ρsyᵀ)H̃(I − ρysᵀ) + ρssᵀ, ρ = 1/yᵀs",
        defaults={**_COMMON_DEFAULTS, "max_params": 10000},
        closure="loss", train_lr=1.0, full_batch=True,
    ),
    OptimizerInfo(
        name="lbfgs", factory=LBFGS,
        formula="d = −H̃g by the two-loop recursion over the last m pairs (s, y), ε by strong Wolfe",
        defaults={**_COMMON_DEFAULTS, "history_size": 10},
        closure="loss", train_lr=1.0, full_batch=True, aliases=("l-bfgs",),
    ),
]
