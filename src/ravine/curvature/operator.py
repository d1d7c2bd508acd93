"""The Hessian of a model's loss as a linear operator: gradient, Hessian-vector products, full Hessian.

Everything here works on the *flat* parameter vector θ ∈ ℝᴾ (the model's trainable
parameters concatenated in ``named_parameters()`` order) and on the **full-data mean
loss**

    J(θ) = Σ_b (n_b / N) · loss_fn(model(x_b; θ), y_b),       N = Σ_b n_b,

so that an iterable of batches gives exactly the Hessian of the mean loss over their
union (``loss_fn`` must return the batch *mean*, as every ravine problem's loss does).

Hessian-vector products H v = ∇(∇J · v) come in three modes, chosen by measurement
(float32, one CPU thread of a shared 2-core machine, ms per product; MLP 784-256-10 with a
batch of 512, and a 20-40-40-5 MLP with 200 samples):

=============  ==================================================  ===========  ==========
mode           how                                                 784-256-10   20-40-40-5
=============  ==================================================  ===========  ==========
``"graph"``    ∇J once with ``create_graph=True``; each product     58           4.5
               is one backward pass through the retained graph
``"recompute"`` the same double backward, graph rebuilt per        111          14
               product (memory of one batch)
``"jvp"``      forward-over-reverse, ``torch.func.jvp`` of         168          26
               ``torch.func.grad``
=============  ==================================================  ===========  ==========

``mode="auto"`` uses ``"graph"`` for a single batch (the fastest by far: the forward and
first backward pass are paid once) and ``"recompute"`` for several batches, whose retained
graphs would grow with the data set. Forward-over-reverse was the slowest here (the
functorch transforms' overhead on small dense layers), so it is offered but never chosen;
it is the mode for models whose ops lack double-backward formulas.

Considered libraries: ``torch.autograd.functional.hvp`` (recomputes the graph on every
call, ≈ 2× slower than a retained graph) and curvlinops' ``HessianLinearOperator`` (the
peer ravine tests against; it pulls BackPACK and torchvision, which the core must not).

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Linear(3, 1, bias=False).double()
    >>> x = torch.eye(3, dtype=torch.float64); y = torch.zeros(3, dtype=torch.float64)
    >>> loss_fn = lambda out, t: ((out.squeeze(1) - t) ** 2).mean()
    >>> H = HessianOperator(model, loss_fn, (x, y))
    >>> torch.allclose(H @ torch.ones(3, dtype=torch.float64), torch.full((3,), 2 / 3, dtype=torch.float64))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from torch import nn
from torch.func import functional_call

from ravine.errors import DataError, RavineError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]
Data = Batch | Iterable[Batch]
Mode = Literal["auto", "graph", "recompute", "jvp"]
MODES = ("auto", "graph", "recompute", "jvp")


def _is_batch(data: Any) -> bool:
    return (isinstance(data, tuple | list) and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data))


def as_batches(data: Data, device: torch.device | None = None) -> list[Batch]:
    """Normalize ``data`` to a list of ``(inputs, targets)`` batches on ``device``.

    ``data`` is one batch ``(inputs, targets)`` or an iterable of them (a list, a
    ``DataLoader``: it is read once and its batches kept, so every product sees the
    same data).

    Raises:
        DataError: empty data, a batch that is not a pair of tensors, or sizes that differ.
    """
    items = [data] if _is_batch(data) else None
    if items is None:
        try:
            items = list(data)  # type: ignore[arg-type]
        except TypeError:
            raise DataError(f"Invalid data: {type(data).__name__} (allowed: a batch (inputs, targets) "
                            "or an iterable of batches)") from None
    batches: list[Batch] = []
    for i, batch in enumerate(items):
        if not _is_batch(batch):
            raise DataError(f"Invalid data: batch {i} is {type(batch).__name__} (allowed: a pair of tensors "
                            "(inputs, targets))")
        x, y = batch
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise DataError(f"Invalid data: batch {i} has {x.shape[0]} inputs and {y.shape[0]} targets "
                            "(allowed: the same number, at least 1)")
        batches.append((x.to(device), y.to(device)) if device is not None else (x, y))
    if not batches:
        raise DataError("Invalid data: no batches (allowed: at least one batch (inputs, targets))")
    return batches


class HessianOperator:
    """H = ∇²J(θ) of a model's full-data mean loss, as a P × P linear operator.

    ``H @ v`` (or ``H.matvec(v)``) takes a flat vector (P,) or a matrix (P, m) in the
    parameters' dtype and device; ``H.to_scipy()`` is a ``scipy.sparse.linalg.LinearOperator``
    (float64 NumPy in and out) for ``eigsh`` and friends. ``n_products`` counts every
    Hessian-vector product applied (one per column).

    The model is not modified: products are evaluated with ``torch.func.functional_call``
    at a detached copy of the parameters taken at construction (``.grad`` is untouched).
    The model's train/eval mode is used as it is: call ``model.eval()`` first if it has
    dropout (a random mask would make H change between products).

    Args:
        model: the network; its trainable parameters (``requires_grad``) are θ.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``, the batch mean.
        data: a batch ``(inputs, targets)`` or an iterable of batches (see :func:`as_batches`).
        mode: ``"auto"``, ``"graph"``, ``"recompute"`` or ``"jvp"`` (see the module docstring).
        params: evaluate at these flat parameters instead of the model's own.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Linear(2, 1).double()
        >>> x, y = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
        >>> H = HessianOperator(model, nn.functional.mse_loss, (x, y))
        >>> H.shape
        (3, 3)
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Data, mode: Mode = "auto",
                 params: torch.Tensor | None = None) -> None:
        if mode not in MODES:
            raise RavineError(f"Invalid mode: {mode!r} (allowed: {', '.join(MODES)})")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise RavineError("Invalid model: no trainable parameters (allowed: a model with requires_grad "
                              "parameters)")
        self.model = model
        self.loss_fn = loss_fn
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.dtype = named[0][1].dtype
        self.device = named[0][1].device
        self.size = sum(self.numels)
        self.shape = (self.size, self.size)
        # copies: a BatchNorm in train mode updates its running statistics in place on every
        # forward pass, which must not touch the model's own
        self.buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        theta = torch.cat([p.detach().reshape(-1) for _, p in named]) if params is None else params.detach()
        if theta.shape != (self.size,):
            raise RavineError(f"Invalid params: shape {tuple(theta.shape)} (allowed: ({self.size},))")
        self.theta = theta.to(self.device, self.dtype)
        self.batches = as_batches(data, self.device)
        sizes = [x.shape[0] for x, _ in self.batches]
        total = float(sum(sizes))
        self.weights = [n / total for n in sizes]
        self.n_samples = int(total)
        self.mode: str = ("graph" if len(self.batches) == 1 else "recompute") if mode == "auto" else mode
        self.n_products = 0
        self._graphs: list[tuple[list[torch.Tensor], torch.Tensor]] | None = None

    # ---------------------------------------------------------------- flat <-> dict
    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a flat vector into ``{name: tensor}`` shaped like the parameters."""
        return {n: t.view(s) for n, t, s in zip(self.names, flat.split(self.numels), self.shapes, strict=True)}

    def _loss_at(self, params: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        x, y = batch
        out = functional_call(self.model, (params, self.buffers), (x,))
        return self.loss_fn(out, y)

    # ---------------------------------------------------------------- values
    def loss(self, params: torch.Tensor | None = None) -> float:
        """J at ``params`` (default: θ), without a graph."""
        p = self.unflatten(self.theta if params is None else params.to(self.device, self.dtype))
        with torch.no_grad():
            return float(sum(w * self._loss_at(p, b) for w, b in zip(self.weights, self.batches, strict=True)))

    def gradient(self) -> torch.Tensor:
        """∇J(θ), flat (P,)."""
        g = torch.zeros(self.size, dtype=self.dtype, device=self.device)
        for w, batch in zip(self.weights, self.batches, strict=True):
            leaves = [t.requires_grad_() for t in self.theta.clone().split(self.numels)]
            params = {n: t.view(s) for n, t, s in zip(self.names, leaves, self.shapes, strict=True)}
            grads = torch.autograd.grad(self._loss_at(params, batch), leaves, allow_unused=True)
            g += w * torch.cat([_zeros_if_none(gr, t).reshape(-1) for gr, t in zip(grads, leaves, strict=True)])
        return g

    # ---------------------------------------------------------------- products
    def _build_graphs(self) -> list[tuple[list[torch.Tensor], torch.Tensor]]:
        return [self._graph(w, batch) for w, batch in zip(self.weights, self.batches, strict=True)]

    def _graph(self, w: float, batch: Batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The leaves θ and the flat gradient w·∇loss_b(θ) with its graph (for a double backward)."""
        # views of θ itself, not of a copy: θ is never written, and the copy was one more
        # parameter-sized buffer held for the operator's lifetime (peak RSS against PyHessian)
        leaves = [t.requires_grad_() for t in self.theta.split(self.numels)]
        params = {n: t.view(s) for n, t, s in zip(self.names, leaves, self.shapes, strict=True)}
        with torch.enable_grad():
            grads = torch.autograd.grad(w * self._loss_at(params, batch), leaves, create_graph=True,
                                        allow_unused=True)
        flat = torch.cat([_zeros_if_none(g, t).reshape(-1) for g, t in zip(grads, leaves, strict=True)])
        return leaves, flat

    def _hvp_graph(self, v: torch.Tensor) -> torch.Tensor:
        if self.mode == "recompute":
            graphs = (self._graph(w, b) for w, b in zip(self.weights, self.batches, strict=True))
        else:
            if self._graphs is None:
                self._graphs = self._build_graphs()
            graphs = iter(self._graphs)
        out: torch.Tensor | None = None
        for leaves, flat_grad in graphs:
            if not flat_grad.requires_grad:  # the loss is linear in θ: no second-order term
                continue
            hv = torch.autograd.grad(flat_grad, leaves, grad_outputs=v, retain_graph=self.mode == "graph",
                                     allow_unused=True)
            part = torch.cat([_zeros_if_none(h, t).reshape(-1) for h, t in zip(hv, leaves, strict=True)])
            del hv
            out = part if out is None else out.add_(part)  # no zero vector and copy for one batch
        return torch.zeros_like(v) if out is None else out

    def _hvp_jvp(self, v: torch.Tensor) -> torch.Tensor:
        primal = self.unflatten(self.theta)
        tangent = self.unflatten(v)
        out = torch.zeros_like(v)
        for w, batch in zip(self.weights, self.batches, strict=True):
            grad_fn = torch.func.grad(lambda p, b=batch: self._loss_at(p, b))
            _, hv = torch.func.jvp(grad_fn, (primal,), (tangent,))
            out += w * torch.cat([hv[n].reshape(-1) for n in self.names])
        return out

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """H v for a flat vector (P,) or each column of a matrix (P, m)."""
        v = torch.as_tensor(v)
        if v.shape[0] != self.size or v.ndim not in (1, 2):
            raise RavineError(f"Invalid vector: shape {tuple(v.shape)} (allowed: ({self.size},) or "
                              f"({self.size}, m))")
        v = v.to(self.device, self.dtype)
        if v.ndim == 2:
            return torch.stack([self.matvec(col) for col in v.T], dim=1)
        self.n_products += 1
        with torch.enable_grad():
            return (self._hvp_jvp(v) if self.mode == "jvp" else self._hvp_graph(v)).detach()

    __matmul__ = matvec

    def dense(self, chunk: int = 256) -> torch.Tensor:
        """The full P × P Hessian, from P products (for small models only).

        With a retained graph the products are batched ``chunk`` columns at a time
        (``is_grads_batched``, a vmap over the double backward): ≈ 10× faster than one by one.
        """
        eye = torch.eye(self.size, dtype=self.dtype, device=self.device)
        cols = []
        for start in range(0, self.size, chunk):
            block = eye[start:start + chunk]
            cols.append(self._batched(block) if self.mode == "graph" else
                        torch.stack([self.matvec(col) for col in block]))
        H = torch.cat(cols).T
        return (H + H.T) / 2  # round-off makes the columns' product asymmetric in the last bits

    def _batched(self, rows: torch.Tensor) -> torch.Tensor:
        """(H rowsᵀ)ᵀ through the retained graphs, all rows at once."""
        if self._graphs is None:
            self._graphs = self._build_graphs()
        out = torch.zeros_like(rows)
        with torch.enable_grad():
            for leaves, flat_grad in self._graphs:
                if not flat_grad.requires_grad:
                    continue
                try:
                    hv = torch.autograd.grad(flat_grad, leaves, grad_outputs=rows, retain_graph=True,
                                             allow_unused=True, is_grads_batched=True)
                except RuntimeError:  # an op without a batching rule: fall back to one product at a time
                    hv = [torch.stack(c) for c in zip(*[torch.autograd.grad(
                        flat_grad, leaves, grad_outputs=r, retain_graph=True, allow_unused=True) for r in rows],
                        strict=True)]
                out += torch.cat([(torch.zeros((rows.shape[0], *t.shape), dtype=t.dtype, device=t.device)
                                   if h is None else h).reshape(rows.shape[0], -1)
                                  for h, t in zip(hv, leaves, strict=True)], dim=1)
        self.n_products += rows.shape[0]
        return out.detach()

    def rows_product(self, rows: torch.Tensor, chunk: int = 16) -> torch.Tensor:
        """H applied to each row of ``rows`` (m, P), returned as rows (m, P).

        With a retained graph the rows go ``chunk`` at a time through one batched double
        backward (measured ≈ 4× faster per product than one at a time on the benchmark MLP);
        otherwise one product per row. Counts one product per row either way.
        """
        rows = rows.to(self.device, self.dtype)
        if self.mode != "graph":
            return torch.stack([self.matvec(r) for r in rows]) if rows.shape[0] else rows.clone()
        return torch.cat([self._batched(rows[i:i + chunk].contiguous()) for i in range(0, rows.shape[0], chunk)])

    def groups(self) -> torch.Tensor:
        """The index of each coordinate's module, in the order modules first own a parameter (P,).

        The trace estimator's probe designs cancel the Hessian's cross-module blocks, which hold
        most of its Frobenius norm (and thus of Hutchinson's variance) in a network at
        initialization.
        """
        modules = [n.rsplit(".", 1)[0] if "." in n else "" for n in self.names]
        order = list(dict.fromkeys(modules))
        return torch.cat([torch.full((k,), order.index(m), dtype=torch.long)
                          for m, k in zip(modules, self.numels, strict=True)])

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.linalg.LinearOperator`` view (float64 NumPy vectors in and out)."""
        import numpy as np
        from scipy.sparse.linalg import LinearOperator

        def mv(x: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
            return self.matvec(t.reshape(self.size, -1).squeeze(1)).cpu().double().numpy().reshape(x.shape)

        return LinearOperator(self.shape, matvec=mv, rmatvec=mv, matmat=mv, dtype=np.float64)

    def release(self) -> None:
        """Free the retained graphs (they are rebuilt on the next product)."""
        self._graphs = None


def _zeros_if_none(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if g is None else g


def as_operator(model: Any, loss_fn: LossFn | None = None, data: Data | None = None,
                mode: Mode = "auto") -> Any:
    """Return ``model`` itself when it already is an operator, else a :class:`HessianOperator`.

    Accepted operators: a :class:`HessianOperator`, a symmetric square ``torch.Tensor``
    (wrapped in :class:`MatrixOperator`), or anything with ``matvec``, ``shape``,
    ``dtype`` and ``device``.
    """
    if isinstance(model, torch.Tensor):
        return MatrixOperator(model)
    if isinstance(model, nn.Module):
        if loss_fn is None or data is None:
            raise RavineError("Invalid arguments: a model needs loss_fn and data (allowed: model, loss_fn, data, "
                              "or a HessianOperator / symmetric matrix alone)")
        return HessianOperator(model, loss_fn, data, mode=mode)
    if hasattr(model, "matvec") and hasattr(model, "shape"):
        return model
    raise RavineError(f"Invalid model: {type(model).__name__} (allowed: nn.Module, HessianOperator, "
                      "symmetric torch.Tensor)")


class MatrixOperator:
    """A dense symmetric matrix with the operator interface (for tests and 2-D functions).

    Example:
        >>> import torch
        >>> A = MatrixOperator(torch.diag(torch.tensor([1.0, 2.0])))
        >>> (A @ torch.ones(2)).tolist(), A.n_products
        ([1.0, 2.0], 1)
    """

    def __init__(self, matrix: torch.Tensor) -> None:
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise RavineError(f"Invalid matrix: shape {tuple(matrix.shape)} (allowed: a square matrix)")
        self.matrix = matrix if matrix.is_floating_point() else matrix.double()
        self.shape = tuple(matrix.shape)
        self.size = matrix.shape[0]
        self.dtype = self.matrix.dtype
        self.device = matrix.device
        self.n_products = 0

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """A v (one product per column)."""
        v = torch.as_tensor(v).to(self.device, self.dtype)
        self.n_products += 1 if v.ndim == 1 else v.shape[1]
        return self.matrix @ v

    __matmul__ = matvec

    def dense(self) -> torch.Tensor:
        """The matrix itself."""
        return self.matrix


# ---------------------------------------------------------------------------------- functions


def gradient(model: nn.Module, loss_fn: LossFn, data: Data) -> torch.Tensor:
    """The flat gradient ∇J(θ) of the full-data mean loss (the model's ``.grad`` is untouched).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> m = nn.Linear(1, 1, bias=False); _ = m.weight.data.fill_(2.0)
        >>> gradient(m, lambda o, t: ((o - t) ** 2).mean(), (torch.ones(4, 1), torch.zeros(4, 1)))
        tensor([4.])
    """
    return HessianOperator(model, loss_fn, data).gradient()


def hvp(model: nn.Module, loss_fn: LossFn, data: Data, v: torch.Tensor, mode: Mode = "auto") -> torch.Tensor:
    """One Hessian-vector product H v = ∇(∇J(θ) · v), flat.

    For many products build a :class:`HessianOperator` once (it keeps the graph).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> m = nn.Linear(1, 1, bias=False)
        >>> hvp(m, lambda o, t: ((o - t) ** 2).mean(), (torch.ones(4, 1), torch.zeros(4, 1)), torch.ones(1))
        tensor([2.])
    """
    return HessianOperator(model, loss_fn, data, mode=mode).matvec(v)


def hessian(model: nn.Module, loss_fn: LossFn, data: Data, mode: Mode = "auto") -> torch.Tensor:
    """The full P × P Hessian ∇²J(θ) (P products: for models up to a few thousand parameters).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> m = nn.Linear(2, 1, bias=False)
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]]); y = torch.zeros(2, 1)
        >>> hessian(m, lambda o, t: ((o - t) ** 2).mean(), (x, y))   # (2/N) XᵀX
        tensor([[1., 0.],
                [0., 4.]])
    """
    return HessianOperator(model, loss_fn, data, mode=mode).dense()


def flat_params(model: nn.Module) -> torch.Tensor:
    """The model's trainable parameters as one flat vector (the θ of this module)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])
