"""``minimize``: SciPy-style functional front end to ravine's Newton and quasi-Newton optimizers.

For users who have a function of a vector rather than an ``nn.Module``: gradients (and Hessians or
Hessian-vector products) come from autograd, so ``fn`` must be written in torch operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ravine.errors import ConfigError, DataError, check_int, check_range, unknown_name
from ravine.optim.registry import create
from ravine.optim.result import STATUS_FAILED, STATUS_FTOL, STATUS_GTOL, STATUS_XTOL, OptimizeResult

METHODS = ("newton", "newton-cg", "bfgs", "lbfgs")


def minimize(fn: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor | Any, method: str = "bfgs", *,
             gtol: float = 1e-5, ftol: float = 0.0, xtol: float = 0.0, max_iter: int = 1000,
             dtype: torch.dtype | None = None, device: str | torch.device | None = None,
             **options: Any) -> OptimizeResult:
    """Minimize a scalar function of a vector with Newton, Newton-CG, BFGS or L-BFGS.

    Stops at the first of (all absolute, checked every iteration):

    - ``gtol``: ‖∇f(x)‖∞ ≤ gtol (status 1, success);
    - ``ftol``: |f(xₖ₊₁) − f(xₖ)| ≤ ftol (status 2, success; 0 turns it off);
    - ``xtol``: max |xₖ₊₁ − xₖ| ≤ xtol (status 3, success; 0 turns it off);
    - ``max_iter`` iterations (status 0, not a success);
    - a line search that cannot decrease f any more (status −1, not a success — usually the
      precision limit of the dtype was reached before ``gtol``).

    Args:
        fn: maps a 1-D tensor x to a scalar tensor, in differentiable torch operations.
        x0: the starting point (anything ``torch.as_tensor`` takes); flattened; not modified.
        method: ``"newton"``, ``"newton-cg"``, ``"bfgs"`` or ``"lbfgs"``.
        gtol, ftol, xtol, max_iter: stopping rules (above).
        dtype: computation dtype (default: ``x0``'s if floating, else float64).
        device: where to compute (default: ``x0``'s device).
        **options: the optimizer's other hyperparameters (``c1``, ``c2``, ``history_size``,
            ``damping``, ``cg_max_iter``, ``line_search`` ...; see ``ravine optimizers``).

    Returns:
        An :class:`~ravine.optim.result.OptimizeResult`; ``jac`` is the gradient at ``x``,
        ``nfev``/``njev`` count evaluations of f and of its gradient, ``extra["nhev"]`` the
        Hessians (newton) or Hessian-vector products (newton-cg).

    Raises:
        UnknownNameError: unknown method. HyperparameterError: bad tolerance or option.
        DataError: ``fn`` does not return a scalar. DivergenceError: f or ∇f is NaN/inf at an
        accepted point (the starting point included).

    Example:
        >>> import torch
        >>> res = minimize(lambda x: (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum(),
        ...                torch.zeros(5, dtype=torch.float64), method="newton", max_iter=100)
        >>> res.success, torch.allclose(res.x, torch.ones(5, dtype=torch.float64), atol=1e-5)
        (True, True)
    """
    if method not in METHODS:
        raise unknown_name("method", method, METHODS)
    check_range("gtol", gtol, 0.0)
    check_range("ftol", ftol, 0.0)
    check_range("xtol", xtol, 0.0)
    max_iter = check_int("max_iter", max_iter, 1)
    for key in ("max_iter", "tolerance_grad", "tolerance_change", "tolerance_step"):
        if key in options:
            raise ConfigError(f"Invalid option {key!r}: minimize sets it from max_iter / gtol / ftol / xtol")
    x = _start(x0, dtype, device).requires_grad_(True)
    opt = create(method, [x], max_iter=max_iter, tolerance_grad=gtol, tolerance_change=ftol,
                 tolerance_step=xtol, **options)
    closure = _closure(fn, x, opt, graph=method.startswith("newton"))
    opt.step(closure)
    return _result(fn, x, opt)


def _start(x0: Any, dtype: torch.dtype | None, device: str | torch.device | None) -> torch.Tensor:
    try:
        x = torch.as_tensor(x0).detach()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"Invalid x0: cannot make a tensor of it ({exc})") from None
    if dtype is None:
        dtype = x.dtype if x.is_floating_point() else torch.float64
    if not dtype.is_floating_point:
        raise DataError(f"Invalid dtype: {dtype} (allowed: a floating dtype)")
    if x.numel() == 0:
        raise DataError("Invalid x0: empty")
    return x.to(dtype=dtype, device=device if device is not None else x.device).reshape(-1).clone()


def _closure(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, opt: torch.optim.Optimizer,
             graph: bool) -> Callable[[], torch.Tensor]:
    def value() -> torch.Tensor:
        out = fn(x)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise DataError(f"Invalid fn: it must return a scalar tensor (got {shape})")
        return out.reshape(())

    def loss_closure() -> torch.Tensor:
        opt.zero_grad()
        loss = value()
        loss.backward()
        return loss

    return value if graph else loss_closure


def _result(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, opt: Any) -> OptimizeResult:
    state = opt.flat_state
    # The final gradient, for the report only (not counted in njev).
    with torch.enable_grad():
        xr = x.detach().clone().requires_grad_(True)
        cost = fn(xr).reshape(())
        (grad,) = torch.autograd.grad(cost, xr)
    status = state.get("status", 0)
    message = state.get("message", "")
    success = status in (STATUS_GTOL, STATUS_FTOL, STATUS_XTOL)
    if status == STATUS_FAILED and float(grad.abs().max()) <= opt.param_groups[0]["tolerance_grad"]:
        success = True  # the search stalled exactly at a point that meets gtol
    return OptimizeResult(
        x=x.detach().clone(), cost=float(cost.detach()), grad_norm=float(grad.abs().max()),
        nit=state["n_iter"], nfev=state["func_evals"], njev=state["grad_evals"], success=success,
        status=status, message=message, jac=grad.detach(), extra={"nhev": state["hess_evals"]},
    )


__all__ = ["METHODS", "minimize"]
