"""Exact Jacobians of residual functions and residual closures, via ``torch.func``.

Two entry points:

- :func:`flat_jacobian` for a function of one flat tensor, ``r = fn(x)``
  (the functional ``least_squares`` API);
- :func:`params_jacobian` for an opaque closure ``r = closure()`` that reads a
  list of parameter tensors (the optimizers). ``torch.func`` transforms need the
  parameters as *inputs*; ``torch.func.functional_call`` does that swap for an
  ``nn.Module``, but an optimizer only sees the tensors. So the closure runs
  under a ``TorchFunctionMode`` that replaces each parameter, wherever it is
  passed to a torch function, by the transform's input — the same substitution,
  keyed on the tensor instead of on a module attribute.

Forward mode (``jacfwd``: n Jacobian-vector products, vectorized) is used when
there are no more parameters than residuals and J has at least 4096 entries,
reverse mode (``jacrev``: m vector-Jacobian products) otherwise. The Jacobian is a dense m x n matrix; its
size is checked against a memory budget first (:func:`check_jacobian_memory`).

Example:
    >>> import torch
    >>> r, J = flat_jacobian(lambda x: torch.stack([x[0] * x[1], x[0] ** 2]), torch.tensor([2.0, 3.0]))
    >>> J.tolist()
    [[3.0, 2.0], [4.0, 0.0]]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch.func import jacfwd, jacrev
from torch.overrides import TorchFunctionMode

from ravine.errors import ClosureError, RavineError

JacMode = Literal["auto", "forward", "reverse"]
_FORWARD_MIN_ENTRIES = 4096


def jacobian_bytes(m: int, n: int, dtype: torch.dtype) -> int:
    """Bytes of a dense m x n Jacobian of ``dtype``: ``m * n * itemsize``.

    Example:
        >>> jacobian_bytes(1000, 100, torch.float64)
        800000
    """
    return int(m) * int(n) * torch.empty((), dtype=dtype).element_size()


def memory_budget(device: torch.device) -> int:
    """Default budget for one Jacobian on ``device``: half the free memory.

    CUDA: half of ``torch.cuda.mem_get_info``'s free bytes; CPU: half the
    physical memory (the solver needs J plus a factorization of similar size).
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free // 2
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def check_jacobian_memory(m: int, n: int, dtype: torch.dtype, device: torch.device,
                          budget: int | None = None) -> int:
    """Return the Jacobian's size in bytes, or raise when it would not fit.

    Raises:
        RavineError: naming m, n, the bytes needed and the budget.

    Example:
        >>> check_jacobian_memory(10, 3, torch.float32, torch.device("cpu"))
        120
    """
    need = jacobian_bytes(m, n, dtype)
    limit = memory_budget(device) if budget is None else int(budget)
    if need > limit:
        raise RavineError(
            f"Jacobian too large: {m} residuals x {n} parameters in {dtype} needs {need / 2**30:.3g} GiB, "
            f"budget {limit / 2**30:.3g} GiB on {device}; use fewer residuals (a mini-batch), fewer parameters, "
            "or a first-order optimizer"
        )
    return need


def _use_forward(m: int, n: int, mode: JacMode) -> bool:
    if mode not in ("auto", "forward", "reverse"):
        raise RavineError(f"Invalid jac_mode: {mode!r} (allowed: auto, forward, reverse)")
    # Forward mode costs n JVPs, reverse m VJPs; below ~4096 entries functorch's
    # vmap-over-JVP overhead dominates and reverse mode measured faster.
    return mode == "forward" or (mode == "auto" and n <= m and m * n >= _FORWARD_MIN_ENTRIES)


def _as_residual(out: Any, where: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise ClosureError(f"{where} must return a tensor of residuals, got {type(out).__name__}")
    if not out.is_floating_point():
        raise ClosureError(f"{where} must return a floating-point tensor, got {out.dtype}")
    return out.reshape(-1)


def flat_jacobian(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, m: int | None = None,
                  mode: JacMode = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals ``r = fn(x)`` (flattened) and the Jacobian ``J[i, j] = ∂r_i/∂x_j``, in one pass.

    Args:
        fn: maps a 1-D tensor of n parameters to residuals (any shape; flattened).
        x: the point, 1-D.
        m: the number of residuals if known (picks forward vs reverse mode).
        mode: "forward" (``jacfwd``), "reverse" (``jacrev``) or "auto".

    Example:
        >>> r, J = flat_jacobian(lambda x: x ** 2, torch.tensor([1.0, 2.0]))
        >>> J.tolist()
        [[2.0, 0.0], [0.0, 4.0]]
    """
    def both(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = _as_residual(fn(z), "the residual function")
        return r, r

    forward = _use_forward(m if m is not None else x.numel(), x.numel(), mode)
    J, r = (jacfwd if forward else jacrev)(both, has_aux=True)(x)
    return r.detach(), J.detach()


class _Substitute(TorchFunctionMode):
    """Replace given tensors (matched by identity) by others in every torch call."""

    def __init__(self, mapping: dict[int, torch.Tensor]) -> None:
        super().__init__()
        self.mapping = mapping

    def _sub(self, a: Any) -> Any:
        if isinstance(a, torch.Tensor):
            return self.mapping.get(id(a), a)
        if isinstance(a, list | tuple):
            return type(a)(self._sub(v) for v in a)
        if isinstance(a, dict):
            return {k: self._sub(v) for k, v in a.items()}
        return a

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        return func(*self._sub(args), **self._sub(kwargs or {}))


def params_jacobian(closure: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], m: int | None = None,
                    mode: JacMode = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals of ``closure()`` and their Jacobian w.r.t. ``params`` (flattened, concatenated).

    Column ``j`` of ``J`` is parameter entry ``j`` of ``torch.cat([p.reshape(-1) for p in params])``.
    A closure that mutates captured tensors (BatchNorm's running statistics in
    training mode) cannot run under ``torch.func``; it gets the Jacobian from
    plain autograd instead (one forward pass, m vector-Jacobian products batched
    with ``is_grads_batched``).

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
        >>> r, J = params_jacobian(lambda: 3 * w, [w])
        >>> J.tolist()
        [[3.0, 0.0], [0.0, 3.0]]
    """
    sizes = [p.numel() for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def fn(z: torch.Tensor) -> torch.Tensor:
        parts = torch.split(z, sizes)
        mapping = {id(p): q.view(p.shape) for p, q in zip(params, parts, strict=True)}
        with _Substitute(mapping):
            out = closure()
        return _as_residual(out, "the closure")

    try:
        return flat_jacobian(fn, flat, m=m, mode=mode)
    except RuntimeError as exc:
        if "in-place" not in str(exc) and "inplace" not in str(exc):
            raise
    return _autograd_jacobian(closure, params)


def _autograd_jacobian(closure: Callable[[], torch.Tensor],
                       params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    leaves = [p for p in params if p.requires_grad]
    if len(leaves) != len(params):
        raise ClosureError("every parameter must require grad for the Jacobian of a mutating closure")
    with torch.enable_grad():
        r = _as_residual(closure(), "the closure")
        eye = torch.eye(r.numel(), dtype=r.dtype, device=r.device)
        rows = torch.autograd.grad(r, leaves, eye, is_grads_batched=True, allow_unused=True)
    J = torch.cat([(g if g is not None else torch.zeros(r.numel(), *p.shape, dtype=r.dtype, device=r.device))
                   .reshape(r.numel(), -1) for g, p in zip(rows, params, strict=True)], 1)
    return r.detach(), J
