"""Loss landscapes of a network: 1-D interpolation and 2-D planes in weight space.

:func:`interpolate` evaluates the loss along the segment θ_α = α θ_f + (1 − α) θ_i
(Goodfellow, Vinyals & Saxe 2015); :func:`plane` evaluates it on the plane
θ(a, b) = θ_c + a d₁ + b d₂ through a centre θ_c, with d₁, d₂ one of

- ``"random"``: filter-normalized Gaussian directions (Li et al. 2018): each
  entry drawn from N(0, 1), then each filter (row of a weight matrix, output
  channel of a convolution) rescaled to the norm of the same filter of θ_c, so
  that a step of 1 changes every filter by its own size (a scale-invariant
  picture); bias and normalization parameters (every 1-D parameter) zero by
  default, as the reference code's ``--xignore biasbn``;
- ``"pca"``: the top-2 principal directions of a recorded trajectory
  θ₀, …, θ_T (of the matrix of θ_t − θ_c, centred), with the trajectory
  projected on the plane;
- ``"hessian"``: the eigenvectors of the two largest Hessian eigenvalues at θ_c
  (``ravine.curvature.eigenvalues(..., return_vectors=True)``).

The grid is evaluated in batches of parameter sets: ``torch.func.vmap`` over
``torch.func.functional_call``, so one forward pass computes the loss at many
points of the plane (as many as ``memory_budget`` allows), instead of copying
weights into the model one point at a time. The model is evaluated in eval mode
(BatchNorm uses its running statistics, dropout is off), so the loss at a point
does not depend on the other points of its batch.

``loss-landscapes`` (2019) was considered: its random directions are uniform on
[0, 1] (all positive, not Li et al.'s Gaussian ones), it cannot skip bias or
BatchNorm parameters, has no PCA of a trajectory, and evaluates one point at a
time. Li et al.'s ``loss-landscape`` scripts are tied to their CIFAR model zoo
and MPI; ravine follows their filter normalization and PCA projection.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> X, y = torch.randn(32, 3, generator=g), torch.randn(32, 1, generator=g)
    >>> res = plane(model, None, "random", loss_fn=torch.nn.functional.mse_loss, data=(X, y), resolution=5)
    >>> len(res.loss), len(res.loss[0])
    (5, 5)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from ravine.errors import ConfigError, DataError, check_int, check_range

Tensor = torch.Tensor
Params = dict[str, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]
Batch = tuple[Tensor, Tensor]
DIRECTIONS = ("random", "pca", "hessian")
MEMORY_BUDGET = 256 * 2**20  # bytes per vmapped chunk of parameter sets (weights + activations)


# --- parameters as dicts -----------------------------------------------------------------------


def parameters_of(model: nn.Module) -> Params:
    """Detached copies of the model's parameters, by name (what ``theta_*`` and ``center`` accept).

    Example:
        >>> sorted(parameters_of(torch.nn.Linear(2, 1)))
        ['bias', 'weight']
    """
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def as_params(model: nn.Module, theta: Mapping[str, Tensor] | Tensor | None) -> Params:
    """``theta`` as a dict of tensors shaped like the model's parameters.

    Accepts a dict by parameter name (a ``state_dict`` works: buffers are dropped),
    a flat vector in ``model.parameters()`` order (``parameters_to_vector``), or
    None (the model's current parameters).

    Raises:
        ConfigError: missing names or a vector of the wrong length.
    """
    ref = parameters_of(model)
    if theta is None:
        return ref
    if isinstance(theta, Tensor):
        n = sum(t.numel() for t in ref.values())
        if theta.dim() != 1 or theta.numel() != n:
            raise ConfigError(f"Invalid theta: a tensor of shape {tuple(theta.shape)} (allowed: a flat vector "
                              f"of {n} entries, or a dict of the model's parameters)")
        out, i = {}, 0
        for name, t in ref.items():
            out[name] = theta[i:i + t.numel()].reshape(t.shape).to(t).clone()
            i += t.numel()
        return out
    missing = sorted(set(ref) - set(theta))
    if missing:
        raise ConfigError(f"Invalid theta: no entry for parameter {missing[0]!r} (allowed: a dict with every "
                          f"parameter name, e.g. {', '.join(list(ref)[:3])})")
    return {name: theta[name].detach().to(t).reshape(t.shape).clone() for name, t in ref.items()}


def flatten(params: Mapping[str, Tensor]) -> Tensor:
    """The parameters concatenated into one vector (dict order)."""
    return torch.cat([t.reshape(-1) for t in params.values()])


def _dot(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> Tensor:
    return sum((a[k].double() * b[k].double()).sum() for k in a)  # type: ignore[return-value]


# --- directions --------------------------------------------------------------------------------


def filter_normalize(direction: Mapping[str, Tensor], weights: Mapping[str, Tensor],
                     ignore_1d: bool = True) -> Params:
    """Li et al.'s filter normalization of a direction d against weights θ.

    For every parameter with 2 or more dimensions, each filter i (index along
    the first axis: a row of a Linear weight, an output channel of a Conv):
    d[i] ← d[i] · ‖θ[i]‖ / ‖d[i]‖. One-dimensional parameters (biases,
    BatchNorm/LayerNorm scales and shifts): zero when ``ignore_1d`` (the
    reference code's ``--xignore biasbn``), else d = θ (its ``copy`` rule).

    Example:
        >>> w = {"weight": torch.tensor([[3.0, 4.0]]), "bias": torch.tensor([1.0])}
        >>> d = filter_normalize({"weight": torch.tensor([[1.0, 0.0]]), "bias": torch.tensor([2.0])}, w)
        >>> d["weight"].tolist(), d["bias"].tolist()
        ([[5.0, 0.0]], [0.0])
    """
    out: Params = {}
    for name, w in weights.items():
        d = direction[name]
        if w.dim() <= 1:
            out[name] = torch.zeros_like(w) if ignore_1d else w.clone()
            continue
        w_norm = w.reshape(w.shape[0], -1).norm(dim=1)
        d_norm = d.reshape(d.shape[0], -1).norm(dim=1)
        # 1e-10 only guards a zero row of d (probability 0 for Gaussian entries)
        scale = (w_norm / (d_norm + 1e-10)).reshape(-1, *([1] * (w.dim() - 1)))
        out[name] = d * scale
    return out


def random_directions(model: nn.Module, center: Mapping[str, Tensor] | Tensor | None = None, count: int = 2, *,
                      seed: int = 0, generator: torch.Generator | None = None, ignore_1d: bool = True,
                      ) -> list[Params]:
    """``count`` filter-normalized Gaussian directions at ``center`` (Li et al. 2018).

    Each entry of d is drawn from N(0, 1) (``torch.randn`` with a seeded
    generator, on the CPU so the same seed gives the same directions on any
    device), then :func:`filter_normalize` makes every filter as long as the
    centre's.

    Example:
        >>> m = torch.nn.Linear(3, 2)
        >>> d1, d2 = random_directions(m, seed=1)
        >>> bool((d1["bias"] == 0).all())
        True
    """
    center_params = as_params(model, center)
    count = check_int("count", count, 1, error=ConfigError)
    if generator is None:
        generator = torch.Generator().manual_seed(check_int("seed", seed, 0, error=ConfigError))
    out = []
    for _ in range(count):
        raw = {k: torch.randn(t.shape, generator=generator, dtype=torch.float64).to(t) for k, t in
               center_params.items()}
        out.append(filter_normalize(raw, center_params, ignore_1d))
    return out


def pca_directions(model: nn.Module, trajectory: Sequence[Mapping[str, Tensor] | Tensor],
                   center: Mapping[str, Tensor] | Tensor | None = None,
                   ) -> tuple[list[Params], list[float], list[tuple[float, float]]]:
    """The top-2 principal directions of a trajectory and the trajectory projected on them.

    With M the matrix whose rows are θ_t − θ_c (θ_c defaults to the last point),
    centred column-wise as PCA does, the directions are the top-2 right singular
    vectors of M (``torch.linalg.svd``; orthonormal), the explained-variance
    ratios are σ²ₖ / Σ σ², and point t projects to ((θ_t − θ_c)·d₁, (θ_t − θ_c)·d₂).

    Returns:
        (directions, explained variance ratios, projected points).

    Raises:
        DataError: fewer than 3 distinct points (two directions need them).
    """
    if len(trajectory) < 3:
        raise DataError(f"Invalid trajectory: {len(trajectory)} points (allowed: 3 or more, e.g. one per epoch)")
    c = as_params(model, center if center is not None else trajectory[-1])
    rows = torch.stack([flatten(as_params(model, t)).double() - flatten(c).double() for t in trajectory])
    centred = rows - rows.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    if len(s) < 2 or float(s[1]) <= 1e-12 * max(float(s[0]), 1e-300):
        raise DataError("Invalid trajectory: its points lie on a line (allowed: a trajectory spanning two "
                        "directions; train longer or use directions='random')")
    ratio = (s**2 / (s**2).sum())[:2].tolist()
    dirs = [as_params(model, vh[k].to(next(iter(c.values())).dtype)) for k in range(2)]
    coords = (rows @ vh[:2].T).tolist()
    return dirs, ratio, [(float(a), float(b)) for a, b in coords]


def hessian_directions(model: nn.Module, loss_fn: LossFn, data: Batch,
                       center: Mapping[str, Tensor] | Tensor | None = None,
                       ) -> tuple[list[Params], list[float]]:
    """The eigenvectors of the two largest Hessian eigenvalues of the loss at ``center``.

    Uses ``ravine.curvature.eigenvalues(model, loss_fn, data, k=2, which="largest",
    return_vectors=True)`` with the model's parameters set to ``center`` (then restored).

    Returns:
        (directions, their eigenvalues λ₁ ≥ λ₂).
    """
    from ravine.curvature import eigenvalues

    c = as_params(model, center)
    saved = parameters_of(model)
    was_training = model.training
    try:
        _load(model, c)
        model.eval()
        result = eigenvalues(model, loss_fn, data, k=2, which="largest", return_vectors=True)
    finally:
        _load(model, saved)
        model.train(was_training)
    values, vectors = _values_vectors(result)
    order = torch.argsort(values, descending=True)[:2]
    dirs = [as_params(model, vectors[:, int(i)].to(next(iter(c.values())).dtype)) for i in order]
    return dirs, [float(values[int(i)]) for i in order]


def _values_vectors(result: Any) -> tuple[Tensor, Tensor]:
    """(eigenvalues, eigenvectors as columns) out of ``ravine.curvature.eigenvalues``'s result."""
    if isinstance(result, tuple):
        values, vectors = result[0], result[1]
    elif isinstance(result, Mapping):
        values, vectors = result["values"], result["vectors"]
    else:
        values, vectors = result.values, result.vectors
    values = torch.as_tensor(values).detach().double().cpu()
    vectors = torch.as_tensor(vectors).detach()
    if vectors.shape[0] == len(values) and vectors.shape[1] != len(values):
        vectors = vectors.T  # rows were vectors
    return values, vectors


def _load(model: nn.Module, params: Mapping[str, Tensor]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])


# --- batched evaluation ------------------------------------------------------------------------


class LossGrid:
    """Evaluates the loss at many parameter sets θ_c + a d₁ + b d₂ at once.

    ``torch.func.vmap`` over ``functional_call`` runs one batched forward pass
    for a chunk of parameter sets; the chunk size is as large as
    ``memory_budget`` allows (weights plus activations per set, activations
    measured by one forward pass). The model is put in eval mode during the
    evaluation (BatchNorm running statistics, no dropout) and restored after.

    Args:
        model: the network (its parameters are not changed).
        loss_fn: ``loss_fn(outputs, targets)``, a batch mean.
        data: ``(inputs, targets)``.
        batch_size: parameter sets per vmapped call, or ``"auto"``.
        memory_budget: bytes per chunk for ``"auto"``.
        affine_first: share the first layer's work across the grid (see :meth:`losses`).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Batch, batch_size: int | str = "auto",
                 memory_budget: int = MEMORY_BUDGET, affine_first: bool = True) -> None:
        self.model, self.loss_fn, self.affine_first = model, loss_fn, affine_first
        self.X, self.y = _check_data(data)
        self.buffers = {k: b.detach() for k, b in model.named_buffers()}
        self.batch_size = self._chunk(batch_size, memory_budget)

    def _chunk(self, batch_size: int | str, budget: int) -> int:
        if batch_size != "auto":
            return check_int("batch_size", batch_size, 1, error=ConfigError)
        sizes: list[int] = []
        hooks = [m.register_forward_hook(lambda _m, _i, o: sizes.append(o.numel() if isinstance(o, Tensor) else 0))
                 for m in self.model.modules() if not list(m.children())]
        try:
            with torch.no_grad(), _eval_mode(self.model):
                self.model(self.X)
        finally:
            for h in hooks:
                h.remove()
        item = next(iter(self.model.parameters())).element_size()
        n_params = sum(p.numel() for p in self.model.parameters())
        # ×3: the stacked weights, plus activations kept alive between layers by vmap's batched ops
        per_set = item * (n_params + 3 * (sum(sizes) + self.X.numel()))
        return max(1, int(budget // max(per_set, 1)))

    def losses(self, center: Params, d1: Params, d2: Params | None, a: Tensor, b: Tensor | None = None,
               progress: Callable[[int, int], None] | None = None) -> Tensor:
        """Loss at θ_c + a[k] d₁ + b[k] d₂ for every k (a, b 1-D of equal length), batched.

        When the model is an ``nn.Sequential`` that starts with a Linear or Conv
        layer, that layer's output is affine in (a, b):
        z(a, b) = f(X; W_c) + a f(X; D₁) + b f(X; D₂), with f the layer applied to
        the weights and bias given (both enter linearly). Its three outputs are
        computed once and combined per point, so the first layer — most of an
        MLP's work — costs three forward passes for the whole grid instead of one
        per point; the rest of the network is vmapped as usual.
        """
        out = []
        n = len(a)
        first = self._affine_first()
        with torch.no_grad(), _eval_mode(self.model):
            if first is not None:
                rest, z_c, z_1, z_2 = self._first_layer(first, center, d1, d2)
            for start in range(0, n, self.batch_size):
                ak = a[start:start + self.batch_size]
                bk = b[start:start + self.batch_size] if b is not None else None
                if first is None:
                    stacked = {k: _offset(c, d1[k], ak, None if d2 is None else d2[k], bk)
                               for k, c in center.items()}
                    out.append(vmap(self._loss_of)(stacked))
                else:
                    names = [k for k in center if not k.startswith(first + ".")]
                    stacked = {k: _offset(center[k], d1[k], ak, None if d2 is None else d2[k], bk) for k in names}
                    z = _offset(z_c, z_1, ak, z_2, bk)
                    out.append(vmap(lambda p, zk: self.loss_fn(functional_call(rest, (p, self.buffers), (zk,)),
                                                               self.y))(stacked, z))
                if progress is not None:
                    progress(min(start + self.batch_size, n), n)
        return torch.cat(out).detach()

    def _affine_first(self) -> str | None:
        """The name of the first module when the model is a Sequential starting with Linear / Conv."""
        if not isinstance(self.model, nn.Sequential) or len(self.model) < 2 or not self.affine_first:
            return None
        name, module = next(iter(self.model.named_children()))
        linear = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
        return name if type(module) in linear else None

    def _first_layer(self, first: str, center: Params, d1: Params, d2: Params | None
                     ) -> tuple[nn.Module, Tensor, Tensor, Tensor | None]:
        module = self.model.get_submodule(first)
        rest = self.model[1:]

        def apply(params: Params) -> Tensor:
            local = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(first + ".")}
            return functional_call(module, local, (self.X,))

        return rest, apply(center), apply(d1), None if d2 is None else apply(d2)

    def loss_pointwise(self, center: Params, d1: Params, d2: Params | None, a: Tensor,
                       b: Tensor | None = None) -> Tensor:
        """The same values one point at a time: the weights copied into the model, one forward pass each."""
        saved = parameters_of(self.model)
        out = []
        try:
            with torch.no_grad(), _eval_mode(self.model):
                for k in range(len(a)):
                    point = {n: center[n] + a[k] * d1[n] + (0 if d2 is None else b[k] * d2[n]) for n in center}
                    _load(self.model, point)
                    out.append(self.loss_fn(self.model(self.X), self.y).detach())
        finally:
            _load(self.model, saved)
        return torch.stack(out)

    def _loss_of(self, params: Params) -> Tensor:
        outputs = functional_call(self.model, (params, self.buffers), (self.X,))
        return self.loss_fn(outputs, self.y)


def _offset(c: Tensor, d1: Tensor, a: Tensor, d2: Tensor | None, b: Tensor | None) -> Tensor:
    """c + a[k] d₁ + b[k] d₂ for every k, stacked: shape (len(a), *c.shape).

    Written as one matrix product (K × 3) @ (3 × numel) — [1, a, b] times [c; d₁; d₂] —
    so the K results are written once, without the temporaries of c + a·d₁ + b·d₂.
    """
    rows, coeffs = [c, d1], [torch.ones_like(a), a]
    if d2 is not None and b is not None:
        rows.append(d2)
        coeffs.append(b)
    basis = torch.stack([r.reshape(-1) for r in rows])
    return (torch.stack(coeffs, 1).to(c) @ basis).reshape(len(a), *c.shape)


class _eval_mode:
    """Context manager: the model in eval mode inside, its previous mode after."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.was = model, model.training

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: Any) -> None:
        self.model.train(self.was)


def _check_data(data: Any) -> Batch:
    try:
        X, y = data
    except (TypeError, ValueError):
        raise DataError(f"Invalid data: {type(data).__name__} (allowed: a pair (inputs, targets))") from None
    if not (isinstance(X, Tensor) and isinstance(y, Tensor)) or len(X) == 0 or len(X) != len(y):
        raise DataError("Invalid data: (inputs, targets) must be non-empty tensors with the same number of rows")
    return X, y


# --- 1-D interpolation -------------------------------------------------------------------------


@dataclass
class Interpolation:
    """The loss along θ_α = α θ_f + (1 − α) θ_i.

    Attributes:
        alphas: the α values (0 = θ_i, 1 = θ_f).
        loss: ``{split: [loss at each α]}``.
    """

    alphas: list[float]
    loss: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON."""
        return {"alphas": list(self.alphas), "loss": {k: _finite(v) for k, v in self.loss.items()}}


def interpolate(model: nn.Module, theta_init: Mapping[str, Tensor] | Tensor, theta_final: Mapping[str, Tensor] | Tensor,
                loss_fn: LossFn, data: Batch | Mapping[str, Batch], alphas: Sequence[float] | Tensor | None = None,
                batch_size: int | str = "auto") -> Interpolation:
    """The loss along the straight line from θ_i to θ_f (Goodfellow et al. 2015).

    θ_α = α θ_f + (1 − α) θ_i = θ_i + α (θ_f − θ_i), evaluated in batches of α
    (vmap), the model in eval mode. α ∈ [−0.5, 1.5] (41 points) by default: the
    line runs past both ends, so one sees whether θ_f sits in a basin and
    whether the path from θ_i meets any barrier.

    Args:
        model: the network (its parameters are not changed).
        theta_init, theta_final: dicts by parameter name or flat vectors.
        loss_fn: ``loss_fn(outputs, targets)``.
        data: one ``(X, y)``, or ``{"train": (X, y), "val": (X, y)}``.
        alphas: the α values.

    Example:
        >>> m = torch.nn.Linear(2, 1)
        >>> X, y = torch.randn(16, 2), torch.randn(16, 1)
        >>> res = interpolate(m, torch.zeros(3), parameters_of(m), torch.nn.functional.mse_loss, {"train": (X, y)})
        >>> len(res.loss["train"]) == len(res.alphas)
        True
    """
    a = torch.linspace(-0.5, 1.5, 41, dtype=torch.float64) if alphas is None else \
        torch.as_tensor(alphas, dtype=torch.float64).reshape(-1)
    if a.numel() == 0 or not bool(torch.isfinite(a).all()):
        raise ConfigError(f"Invalid alphas: {a.tolist()} (allowed: one or more finite numbers)")
    start, end = as_params(model, theta_init), as_params(model, theta_final)
    direction = {k: end[k] - start[k] for k in start}
    splits = {"train": data} if not isinstance(data, Mapping) else dict(data)
    loss = {name: LossGrid(model, loss_fn, batch, batch_size).losses(start, direction, None, a).tolist()
            for name, batch in splits.items()}
    return Interpolation([float(v) for v in a], loss)


# --- 2-D plane ---------------------------------------------------------------------------------


@dataclass
class Plane:
    """The loss on the plane θ(a, b) = θ_c + a d₁ + b d₂.

    Attributes:
        alphas, betas: the grid's coordinates along d₁ and d₂.
        loss: ``loss[j][i]`` at (alphas[i], betas[j]) (rows along d₂, as ``contour`` wants).
        directions: ``"random"``, ``"pca"``, ``"hessian"`` or ``"given"``.
        trajectory: the projected trajectory (a, b) per recorded point, or empty.
        explained_variance: PCA's explained-variance ratios of d₁, d₂ (pca only).
        eigenvalues: the Hessian eigenvalues of d₁, d₂ (hessian only).
        center_loss: the loss at θ_c.
        direction_norms: ‖d₁‖, ‖d₂‖ and their cosine.
        mode: ``"eval"`` (BatchNorm running statistics, no dropout).
    """

    alphas: list[float]
    betas: list[float]
    loss: list[list[float]]
    directions: str
    trajectory: list[tuple[float, float]] = field(default_factory=list)
    explained_variance: list[float] = field(default_factory=list)
    eigenvalues: list[float] = field(default_factory=list)
    center_loss: float = math.nan
    direction_norms: dict[str, float] = field(default_factory=dict)
    mode: str = "eval"

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON."""
        return {"directions": self.directions, "alphas": self.alphas, "betas": self.betas,
                "loss": [_finite(row) for row in self.loss], "trajectory": [list(p) for p in self.trajectory],
                "explained_variance": self.explained_variance, "eigenvalues": self.eigenvalues,
                "center_loss": _finite([self.center_loss])[0], "direction_norms": self.direction_norms,
                "mode": self.mode}


def plane(model: nn.Module, center: Mapping[str, Tensor] | Tensor | None = None,
          directions: str | tuple[Any, Any] = "random", *,
          loss_fn: LossFn, data: Batch, trajectory: Sequence[Mapping[str, Tensor] | Tensor] | None = None,
          resolution: int = 21, span: float | tuple[tuple[float, float], tuple[float, float]] | None = None,
          seed: int = 0, ignore_1d: bool = True, batch_size: int | str = "auto", batched: bool = True,
          affine_first: bool = True, progress: Callable[[int, int], None] | None = None) -> Plane:
    """The loss on a 2-D slice of weight space through ``center``.

    L(a, b) = loss(θ_c + a d₁ + b d₂) on a ``resolution × resolution`` grid.

    Args:
        model: the network (its parameters are not changed; evaluated in eval mode).
        center: θ_c (default: the model's parameters; for ``"pca"``, the trajectory's last point).
        directions: ``"random"`` (filter-normalized Gaussian), ``"pca"`` (needs ``trajectory``) or
            ``"hessian"`` (top-2 eigenvectors), or a pair (d₁, d₂) of dicts / flat vectors.
        loss_fn: ``loss_fn(outputs, targets)``.
        data: ``(inputs, targets)`` to evaluate on (e.g. the training split).
        trajectory: recorded parameters (dicts or flat vectors), e.g. one per epoch; projected on
            the plane (least squares on d₁, d₂) for any kind of directions.
        resolution: grid points per axis.
        span: half-width of a square grid (a, b ∈ [−span, span]) or ``((a_lo, a_hi), (b_lo, b_hi))``;
            default 1 for random directions (one filter norm), the trajectory's extent plus 25 % for
            pca, and 1 for hessian (unit eigenvectors).
        seed: for the random directions.
        ignore_1d: zero the random directions' bias and normalization entries (``--xignore biasbn``).
        batch_size: parameter sets per vmapped forward pass, or ``"auto"``.
        batched: False evaluates one point at a time (the reference the benchmark compares against).
        affine_first: compute a leading Linear / Conv layer once for the whole grid (exact; see
            :meth:`LossGrid.losses`); False vmaps the whole network per point.
        progress: ``progress(done, total)`` after each chunk.

    Example:
        >>> m = torch.nn.Linear(2, 1)
        >>> X, y = torch.randn(16, 2), torch.randn(16, 1)
        >>> traj = [torch.randn(3) for _ in range(4)]
        >>> p = plane(m, None, "pca", loss_fn=torch.nn.functional.mse_loss, data=(X, y), trajectory=traj,
        ...           resolution=3)
        >>> len(p.trajectory)
        4
    """
    given = not isinstance(directions, str)
    if not given and directions not in DIRECTIONS:
        raise ConfigError(f"Invalid directions: {directions!r} (allowed: {', '.join(DIRECTIONS)}, or a pair "
                          "of directions)")
    resolution = check_int("resolution", resolution, 2, error=ConfigError)
    X, y = _check_data(data)
    extra: dict[str, Any] = {}
    if directions == "pca":
        if not trajectory:
            raise ConfigError("Invalid directions: 'pca' needs a trajectory (allowed without one: random, hessian)")
        c = as_params(model, center if center is not None else trajectory[-1])
        (d1, d2), extra["explained_variance"], coords = pca_directions(model, trajectory, c)
    else:
        c = as_params(model, center)
        if given:
            try:
                first, second = directions
            except (TypeError, ValueError):
                raise ConfigError("Invalid directions: a pair (d1, d2) of dicts or flat vectors is needed") from None
            d1, d2 = as_params(model, first), as_params(model, second)
        elif directions == "random":
            d1, d2 = random_directions(model, c, seed=seed, ignore_1d=ignore_1d)
        else:
            (d1, d2), extra["eigenvalues"] = hessian_directions(model, loss_fn, (X, y), c)
        coords = project(model, trajectory, c, d1, d2) if trajectory else []
    (a_lo, a_hi), (b_lo, b_hi) = _window(span, "given" if given else directions, coords)
    alphas = torch.linspace(a_lo, a_hi, resolution, dtype=torch.float64)
    betas = torch.linspace(b_lo, b_hi, resolution, dtype=torch.float64)
    bb, aa = torch.meshgrid(betas, alphas, indexing="ij")
    grid = LossGrid(model, loss_fn, (X, y), batch_size, affine_first=affine_first)
    if batched:
        values = grid.losses(c, d1, d2, aa.reshape(-1), bb.reshape(-1), progress)
    else:
        values = grid.loss_pointwise(c, d1, d2, aa.reshape(-1), bb.reshape(-1))
    zero = torch.zeros(1, dtype=torch.float64)
    center_loss = float(grid.losses(c, d1, d2, zero, zero)[0])
    n1, n2 = float(_dot(d1, d1).sqrt()), float(_dot(d2, d2).sqrt())
    norms = {"d1": n1, "d2": n2, "cosine": float(_dot(d1, d2)) / max(n1 * n2, 1e-300)}
    return Plane(alphas.tolist(), betas.tolist(), values.reshape(resolution, resolution).double().tolist(),
                 "given" if given else directions, coords, extra.get("explained_variance", []),
                 extra.get("eigenvalues", []), center_loss, norms)


def project(model: nn.Module, trajectory: Sequence[Mapping[str, Tensor] | Tensor], center: Params,
            d1: Params, d2: Params) -> list[tuple[float, float]]:
    """Coordinates (a, b) of each θ_t on the plane: least squares of θ_t − θ_c on [d₁ d₂].

    For orthonormal directions (PCA) this is ((θ_t − θ_c)·d₁, (θ_t − θ_c)·d₂).
    """
    basis = torch.stack([flatten(d1).double(), flatten(d2).double()], dim=1)
    rows = torch.stack([flatten(as_params(model, t)).double() - flatten(center).double() for t in trajectory])
    coef = torch.linalg.lstsq(basis, rows.T).solution.T
    return [(float(a), float(b)) for a, b in coef]


def _window(span: Any, directions: str, coords: list[tuple[float, float]]
            ) -> tuple[tuple[float, float], tuple[float, float]]:
    if span is None:
        if directions in ("pca", "given") and coords:
            pad = []
            for k in range(2):
                lo, hi = min(p[k] for p in coords + [(0.0, 0.0)]), max(p[k] for p in coords + [(0.0, 0.0)])
                margin = 0.25 * max(hi - lo, 1e-8)
                pad.append((lo - margin, hi + margin))
            return pad[0], pad[1]
        span = 1.0
    if isinstance(span, int | float):
        s = check_range("span", span, 0.0, low_inclusive=False, error=ConfigError)
        return (-s, s), (-s, s)
    try:
        (a_lo, a_hi), (b_lo, b_hi) = ((float(u), float(v)) for u, v in span)
    except (TypeError, ValueError):
        raise ConfigError(f"Invalid span: {span!r} (allowed: a positive number or ((a_lo, a_hi), (b_lo, b_hi)))") \
            from None
    if not (a_lo < a_hi and b_lo < b_hi):
        raise ConfigError(f"Invalid span: {span!r} (allowed: lo < hi on both axes)")
    return (a_lo, a_hi), (b_lo, b_hi)


def _finite(values: Sequence[float]) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]
