"""Gradient noise: per-sample gradients, the variance of the minibatch gradient, and B_simple.

With per-sample gradients g_i (``torch.func``: ``vmap(grad(loss_of_one_sample))``)
over a pool of N training examples, their mean G and covariance
Σ = 1/(N−1) Σ_i (g_i − G)(g_i − G)ᵀ:

- the minibatch gradient g_S of S examples drawn without replacement from the
  pool has E‖g_S − G‖² = tr(Σ)/S · (N − S)/N — the course's Var ∝ 1/S (the
  second factor, sampling without replacement, is ≈ 1 for S ≪ N). It is
  *measured* here by splitting random permutations of the pool into disjoint
  minibatches of each size S;
- the simple gradient noise scale of McCandlish et al. (2018),
  ``B_simple = tr(Σ) / |G|²``, with |G|² estimated without bias as
  ‖Ḡ‖² − tr(Σ)/N: below B_simple a step is dominated by noise (a larger batch
  helps almost linearly); well above it, a larger batch buys little.

Considered: BackPACK's ``BatchGrad`` (per-sample gradients via extended
backward hooks; an extra dependency that needs its own module extensions)
and Opacus's ``GradSampleModule``; ``torch.func`` is part of PyTorch and covers
every layer.

Example:
    >>> import torch
    >>> net = torch.nn.Linear(3, 2)
    >>> X, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    >>> res = gradient_noise(net, torch.nn.functional.cross_entropy, X, y, batch_sizes=(2, 4, 8), seed=0)
    >>> len(res["variance"])
    3
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from ravine.errors import ConfigError, check_int

DEFAULT_BATCH_SIZES = (2, 4, 8, 16, 32, 64)


def per_sample_grads(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     X: torch.Tensor, y: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Per-sample gradients of ``loss_fn`` as a matrix ``(len(X), n_params)`` (model in eval mode).

    Each row is ∇_θ loss_fn(model(x_i), y_i), flattened over the trainable parameters.

    Example:
        >>> lin = nn.Linear(2, 1)
        >>> G = per_sample_grads(lin, torch.nn.functional.mse_loss, torch.randn(5, 2), torch.randn(5, 1))
        >>> G.shape
        torch.Size([5, 3])
    """
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def one(p: dict[str, torch.Tensor], x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return loss_fn(out, t.unsqueeze(0))

    per = vmap(grad(one), in_dims=(None, 0, 0))
    was_training = model.training
    model.eval()  # batch norm / dropout: one sample's gradient must not depend on the others
    try:
        rows = []
        for start in range(0, len(X), chunk):
            g = per(params, X[start:start + chunk], y[start:start + chunk])
            rows.append(torch.cat([g[k].reshape(g[k].shape[0], -1) for k in params], dim=1))
        return torch.cat(rows)
    finally:
        model.train(was_training)


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log y against log x (the exponent of a power law y ∝ x^slope).

    Example:
        >>> round(loglog_slope([1, 2, 4, 8], [8, 4, 2, 1]), 6)
        -1.0
    """
    lx = [math.log(v) for v in x]
    ly = [math.log(v) for v in y]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sxx if sxx > 0 else math.nan


@torch.no_grad()
def _minibatch_variances(g: torch.Tensor, mean: torch.Tensor, sizes: Sequence[int], repeats: int,
                         generator: torch.Generator) -> list[float]:
    """E‖g_S − G‖² for each S: split ``repeats`` random permutations into disjoint minibatches of size S.

    Block sums of one permutation are reused: when S divides the next size, the
    next size's blocks are sums of whole blocks of S (same sample, far less work).
    """
    n = len(g)
    totals = [0.0] * len(sizes)
    counts = [0] * len(sizes)
    for _ in range(repeats):
        order = torch.randperm(n, generator=generator).to(g.device)
        sums, block = None, 0
        for k, size in enumerate(sizes):
            m = n // size
            if sums is not None and size % block == 0 and (n // block) * block >= m * size:
                sums = sums[: m * (size // block)].reshape(m, size // block, -1).sum(dim=1)
            else:
                sums = g[order[: m * size]].reshape(m, size, -1).sum(dim=1)
            block = size
            totals[k] += float((sums / size - mean).square().sum())
            counts[k] += m
    return [t / c for t, c in zip(totals, counts, strict=True)]


def gradient_noise(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   X: torch.Tensor, y: torch.Tensor, batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, *,
                   pool: int = 512, repeats: int = 8, seed: int = 0) -> dict[str, Any]:
    """Measure the minibatch gradient's variance at several batch sizes, and B_simple.

    Args:
        model, loss_fn: the network and its batch-mean loss ``loss_fn(outputs, y)``.
        X, y: training data; a random pool of ``pool`` rows is used.
        batch_sizes: the sizes S (each at most pool / 2).
        repeats: random permutations of the pool per size (each gives pool // S minibatches).
        seed: seeds the pool and the permutations.

    Returns:
        ``{"batch_sizes", "variance" (measured E‖g_S − G‖²), "predicted" (tr(Σ)/S · (N−S)/N),
        "slope" (log-log slope of variance vs S; −1 for Var ∝ 1/S), "trace_sigma", "grad_norm_sq"
        (unbiased |G|²), "b_simple", "pool", "n_params"}``.

    Example:
        >>> net = nn.Linear(4, 3)
        >>> r = gradient_noise(net, torch.nn.functional.cross_entropy, torch.randn(256, 4),
        ...                    torch.randint(0, 3, (256,)), batch_sizes=(2, 4, 8, 16), seed=1)
        >>> -1.3 < r["slope"] < -0.7
        True
    """
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0, error=ConfigError))
    n_pool = min(check_int("pool", pool, 4, error=ConfigError), len(X))
    sizes = sorted({check_int("batch_sizes", s, 1, error=ConfigError) for s in batch_sizes})
    if not sizes or sizes[-1] > n_pool // 2:
        raise ConfigError(f"Invalid batch_sizes: {list(batch_sizes)} (allowed: 1 ≤ S ≤ {n_pool // 2}, half the "
                          f"pool of {n_pool} examples)")
    idx = torch.randperm(len(X), generator=gen)[:n_pool].to(X.device)
    g = per_sample_grads(model, loss_fn, X[idx], y[idx])
    with torch.no_grad():
        mean = g.mean(dim=0)
        trace = float((g - mean).square().sum()) / (n_pool - 1)
        norm_sq_biased = float(mean.square().sum())
    norm_sq = norm_sq_biased - trace / n_pool
    if norm_sq <= 0:  # the noise swamps the signal: fall back to the biased estimate
        norm_sq = norm_sq_biased
    variance = _minibatch_variances(g, mean, sizes, repeats, gen)
    predicted = [trace / s * (n_pool - s) / n_pool for s in sizes]
    b_simple = trace / norm_sq if norm_sq > 0 else math.inf
    return {"batch_sizes": sizes, "variance": variance, "predicted": predicted,
            "slope": loglog_slope(sizes, variance), "trace_sigma": trace, "grad_norm_sq": norm_sq,
            "b_simple": b_simple, "pool": n_pool, "n_params": int(g.shape[1])}


def noise_finding(noise: dict[str, Any], batch_size: int | None, n_train: int | None = None) -> dict[str, Any]:
    """A plain-word note on the batch size from :func:`gradient_noise` (B_simple vs the batch used).

    Below B_simple / 4 the batch is called noise-dominated, above 4 · B_simple wasteful
    (a factor 4 either side: B_simple is an order-of-magnitude guide, McCandlish et al. 2018).
    The suggested batch is B_simple rounded, at most ``n_train``.
    """
    b = noise["b_simple"]
    best = max(1, round(min(b, n_train or b))) if math.isfinite(b) else None
    evidence = {"b_simple": b, "batch_size": batch_size, "slope": noise["slope"]}
    used = f"the batch size {batch_size}" if batch_size else "the full batch"
    if not math.isfinite(b):
        text, tip = "The gradient noise could not be measured (zero mean gradient).", "Nothing to change."
    elif batch_size and batch_size < b / 4:
        text = (f"The gradient noise scale B_simple ≈ {b:.3g} is well above {used}: each step's gradient is "
                "mostly noise.")
        tip = (f"A larger batch (up to ≈ {best}{' = the whole training set' if n_train and best == n_train else ''}) "
                   "with a proportionally larger learning rate would need fewer steps.")
    elif batch_size and batch_size > 4 * b:
        text = f"The gradient noise scale B_simple ≈ {b:.3g} is well below {used}: a larger batch buys little."
        tip = f"A smaller batch (≈ {best}) would make as much progress per example at lower cost."
    else:
        text = f"The gradient noise scale B_simple ≈ {b:.3g} is close to {used}."
        tip = "The batch size is about right for this stage of training."
    return {"kind": "gradient noise", "layer": None, "began_at": None, "unit": "epoch", "message": text,
            "suggestion": tip, "evidence": evidence}
