"""Gradient checks: autograd against central finite differences, per tensor, in float64.

``torch.autograd.gradcheck`` compares whole Jacobians of a function of its inputs and stops at the
first mismatch with a message; it gives no table, and a model's *parameters* are not its inputs.
:func:`gradcheck` checks every parameter tensor of a model under a loss and reports, per tensor, the
largest absolute and relative error, the worst coordinate and pass / fail; :func:`gradcheck_function`
does the same for the inputs of a function or a custom ``torch.autograd.Function``.

The finite difference is central, ``(L(θ + h eᵢ) − L(θ − h eᵢ)) / 2h``, whose error is O(h²) plus
rounding O(u·|L| / h); with h = 1e-6 in float64 both are ~1e-10 relative, far below the errors of a
wrong backward. A coordinate passes when ``|g_auto − g_fd| ≤ atol + rtol · |g_fd|``.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> X, y = torch.randn(8, 3), torch.randn(8, 2)
    >>> res = gradcheck(model, torch.nn.functional.mse_loss, (X, y))
    >>> res.passed, [row.name for row in res.tensors]
    (True, ['weight', 'bias'])
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ravine.errors import DataError, check_int, check_range


@dataclass
class TensorCheck:
    """The check of one tensor.

    Attributes:
        name: the parameter's name (``"0.weight"``) or ``"input i"``.
        shape: the tensor's shape.
        checked: coordinates compared (all, or a seeded random subset plus the largest gradient).
        max_abs_error: max |g_auto − g_fd| over the checked coordinates.
        max_rel_error: max |g_auto − g_fd| / max(|g_auto|, |g_fd|, atol).
        worst_index: the coordinate (multi-index) with the largest violation of the tolerance.
        worst_autograd: g_auto there.
        worst_fd: g_fd there.
        passed: every checked coordinate is within ``atol + rtol · |g_fd|``.
    """

    name: str
    shape: list[int]
    checked: int
    max_abs_error: float
    max_rel_error: float
    worst_index: list[int]
    worst_autograd: float
    worst_fd: float
    passed: bool


@dataclass
class GradcheckResult:
    """Per-tensor checks and the settings used."""

    tensors: list[TensorCheck]
    eps: float
    rtol: float
    atol: float

    @property
    def passed(self) -> bool:
        """Every tensor passed."""
        return all(t.passed for t in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON."""
        return {"passed": self.passed, "eps": self.eps, "rtol": self.rtol, "atol": self.atol,
                "tensors": [asdict(t) for t in self.tensors]}


def _coordinates(numel: int, grad: torch.Tensor, max_coords: int, gen: torch.Generator) -> list[int]:
    if numel <= max_coords:
        return list(range(numel))
    chosen = torch.randperm(numel, generator=gen)[: max_coords - 1].tolist()
    largest = int(grad.reshape(-1).abs().argmax())  # the biggest entry always gets checked
    return sorted(set(chosen) | {largest})


def _check_tensor(name: str, tensor: torch.Tensor, grad: torch.Tensor, evaluate: Callable[[], float],
                  eps: float, rtol: float, atol: float, max_coords: int, gen: torch.Generator) -> TensorCheck:
    flat = tensor.detach().view(-1)  # a view: writing to it perturbs the tensor itself
    g = grad.reshape(-1)
    best = (-float("inf"), 0, 0.0, 0.0)
    max_abs = max_rel = 0.0
    coords = _coordinates(flat.numel(), grad, max_coords, gen)
    for i in coords:
        orig = float(flat[i])
        with torch.no_grad():
            flat[i] = orig + eps
            up = evaluate()
            flat[i] = orig - eps
            down = evaluate()
            flat[i] = orig
        fd, auto = (up - down) / (2 * eps), float(g[i])
        err = abs(auto - fd)
        max_abs = max(max_abs, err)
        max_rel = max(max_rel, err / max(abs(auto), abs(fd), atol))
        excess = err - (atol + rtol * abs(fd))
        if excess > best[0]:
            best = (excess, i, auto, fd)
    index = list(torch.unravel_index(torch.tensor(best[1]), tuple(tensor.shape))) if tensor.ndim else []
    return TensorCheck(name, list(tensor.shape), len(coords), max_abs, max_rel, [int(v) for v in index],
                       best[2], best[3], best[0] <= 0)


def _settings(eps: float, rtol: float, atol: float, max_coords: int, seed: int) -> torch.Generator:
    check_range("eps", eps, 0.0, 1.0, low_inclusive=False, error=DataError)
    check_range("rtol", rtol, 0.0, error=DataError)
    check_range("atol", atol, 0.0, error=DataError)
    check_int("max_coords", max_coords, 1, error=DataError)
    return torch.Generator().manual_seed(check_int("seed", seed, 0, error=DataError))


def _to64(t: Any) -> Any:
    return t.detach().to(torch.float64) if isinstance(t, torch.Tensor) and t.is_floating_point() else t


def gradcheck(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              data: tuple[torch.Tensor, torch.Tensor], *, eps: float = 1e-6, rtol: float = 1e-4,
              atol: float = 1e-7, max_coords: int = 20, seed: int = 0) -> GradcheckResult:
    """Check ∂L/∂θ of every parameter tensor of ``model`` against central finite differences.

    The model is copied and moved to float64 (the original is untouched) and put in eval mode, so
    that dropout is off and batch norm uses its running statistics (the loss is then a deterministic
    function of θ). ``data = (X, y)``; floating tensors go to float64, integer labels stay.

    Args:
        model: the network.
        loss_fn: ``loss_fn(model(X), y) -> scalar``.
        data: a batch ``(X, y)``.
        eps: the finite-difference step h.
        rtol, atol: a coordinate passes when ``|g_auto − g_fd| ≤ atol + rtol · |g_fd|``.
        max_coords: tensors with more entries are checked on a seeded random subset of this size
            (always including the entry with the largest gradient).
        seed: seeds the choice of coordinates.

    Returns:
        A :class:`GradcheckResult` with one :class:`TensorCheck` per parameter that requires grad.
    """
    gen = _settings(eps, rtol, atol, max_coords, seed)
    net = copy.deepcopy(model).to(torch.float64).eval()
    X, y = (_to64(t) for t in data)

    def evaluate() -> float:
        return float(loss_fn(net(X), y))

    params = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    if not params:
        raise DataError("Invalid model: no parameter requires grad (allowed: a model with trainable parameters)")
    net.zero_grad(set_to_none=True)
    loss = loss_fn(net(X), y)
    if loss.ndim != 0:
        raise DataError(f"Invalid loss: shape {tuple(loss.shape)} (allowed: a scalar loss)")
    grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
    rows = [_check_tensor(n, p, torch.zeros_like(p) if g is None else g, evaluate, eps, rtol, atol, max_coords, gen)
            for (n, p), g in zip(params, grads, strict=True)]
    return GradcheckResult(rows, eps, rtol, atol)


def gradcheck_function(fn: Callable[..., Any] | type[torch.autograd.Function], inputs: Sequence[torch.Tensor], *,
                       eps: float = 1e-6, rtol: float = 1e-4, atol: float = 1e-7, max_coords: int = 50,
                       seed: int = 0) -> GradcheckResult:
    """Check the backward of ``fn`` (a function or a ``torch.autograd.Function`` subclass) per input tensor.

    A function with tensor outputs y_j is reduced to the scalar ``s = Σ_j ⟨v_j, y_j⟩`` with seeded
    random v_j ~ N(0, I); ∂s/∂x = Σ_j J_jᵀ v_j is a vector–Jacobian product, so a wrong backward
    shows up (with probability 1) as a mismatch against finite differences of s. Floating inputs
    are checked in float64.

    Example:
        >>> class Square(torch.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.save_for_backward(x)
        ...         return x * x
        ...     @staticmethod
        ...     def backward(ctx, g):
        ...         (x,) = ctx.saved_tensors
        ...         return 3 * x * g  # wrong: should be 2 x g
        >>> gradcheck_function(Square, [torch.randn(4)]).passed
        False
    """
    gen = _settings(eps, rtol, atol, max_coords, seed)
    call = fn.apply if isinstance(fn, type) and issubclass(fn, torch.autograd.Function) else fn
    xs = [_to64(x).clone().requires_grad_(x.is_floating_point()) if isinstance(x, torch.Tensor) else x
          for x in inputs]
    checked = [i for i, x in enumerate(xs) if isinstance(x, torch.Tensor) and x.requires_grad]
    if not checked:
        raise DataError("Invalid inputs: no floating-point tensor (allowed: at least one float tensor input)")
    out = call(*xs)
    outs = [out] if isinstance(out, torch.Tensor) else [o for o in out if isinstance(o, torch.Tensor)]
    vs = [torch.randn(o.shape, generator=gen, dtype=torch.float64) for o in outs]

    def scalar(outputs: Any) -> torch.Tensor:
        outputs = [outputs] if isinstance(outputs, torch.Tensor) else [o for o in outputs if isinstance(o, torch.Tensor)]
        return sum((o.to(torch.float64) * v).sum() for o, v in zip(outputs, vs, strict=True))

    grads = torch.autograd.grad(scalar(out), [xs[i] for i in checked], allow_unused=True)

    def evaluate() -> float:
        with torch.no_grad():
            return float(scalar(call(*xs)))

    rows = [_check_tensor(f"input {i}", xs[i], torch.zeros_like(xs[i]) if g is None else g, evaluate, eps, rtol, atol,
                          max_coords, gen) for i, g in zip(checked, grads, strict=True)]
    return GradcheckResult(rows, eps, rtol, atol)
