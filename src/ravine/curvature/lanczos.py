"""Extreme eigenvalues of a Hessian: thick-restart Lanczos in torch, with a tolerance that is met.

The Lanczos process builds an orthonormal basis V of the Krylov space {v, Hv, H²v, …}
and the projected matrix T = Vᵀ H V; the eigenvalues θ of T (Ritz values) approach the
extreme eigenvalues of H first. Here every new vector is orthogonalized against the whole
basis twice (classical Gram–Schmidt, twice is enough), so V stays orthonormal to working
precision and no ghost copies of converged eigenvalues appear, and T is read off as the
projection coefficients themselves. When the basis is full, it is restarted from the
wanted Ritz vectors and the last residual (thick restart, Wu & Simon 2000), so memory is
bounded by ``max_basis`` vectors.

**Stopping rule.** With the last residual r (β = ‖r‖) and the Ritz pair (θ, y = V s),
‖H y − θ y‖ = β |s_last| =: ρ. Two classical bounds give an eigenvalue λ of H with

    |λ − θ| ≤ ρ                     (Krylov–Bogoliubov)
    |λ − θ| ≤ ρ² / gap              (Kato–Temple; gap = distance from θ to the rest of the spectrum)

The gap is estimated from the other Ritz values, less their own residuals (so it is not
over-estimated by an unconverged neighbour). A wanted value is accepted when
min(ρ, ρ²/gap) ≤ tol · max(|θ|, floor), with floor = ‖H‖·√ε (ε the dtype's machine
epsilon): the tolerance is relative, except for eigenvalues too close to 0 to have
relative digits in that dtype. Because the error goes as ρ², the process stops long before
the residual itself is small (the issue measured 17 products for a 2·10⁻⁷ error on the top
eigenvalue of the benchmark MLP).

Considered: ``scipy.sparse.linalg.eigsh`` (ARPACK, implicitly restarted Lanczos). It is the
reference in the tests and is offered as ``method="eigsh"``, but it stops on ρ ≤ tol·|θ|
(not ρ²/gap), moves every vector through float64 NumPy, and cannot run on a GPU.

Example:
    >>> import torch
    >>> A = torch.diag(torch.arange(1.0, 101.0, dtype=torch.float64))
    >>> res = eigenvalues(A, k=2, which="both_ends", tol=1e-8)
    >>> [round(v, 6) for v in res.values.tolist()]
    [100.0, 99.0, 2.0, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ravine.curvature.operator import Data, LossFn, Mode, as_operator
from ravine.errors import RavineError, check_int, check_range

Which = Literal["largest", "smallest", "both_ends"]
WHICH = ("largest", "smallest", "both_ends")
METHODS = ("lanczos", "eigsh", "dense")


@dataclass
class Eigen:
    """Extreme eigenvalues of a Hessian.

    Attributes:
        values: the eigenvalues found, in **descending** order (for ``both_ends`` the k
            largest, then the k smallest).
        vectors: (P, m) unit eigenvectors matching ``values`` column by column, or None.
        error_bounds: per value, the bound on |λ − θ| the stopping rule certified.
        n_products: Hessian-vector products used.
        converged: every value met ``tol``.
        which, tol, method: what was asked for and how it was computed.
    """

    values: torch.Tensor
    vectors: torch.Tensor | None
    error_bounds: torch.Tensor
    n_products: int
    converged: bool
    which: str
    tol: float
    method: str

    @property
    def lambda_max(self) -> float:
        """The largest value found (the top eigenvalue when ``which`` includes the largest)."""
        return float(self.values[0])

    @property
    def lambda_min(self) -> float:
        """The smallest value found (the bottom eigenvalue when ``which`` includes the smallest)."""
        return float(self.values[-1])


def _wanted(theta: torch.Tensor, k: int, which: str) -> torch.Tensor:
    """Indices (into ascending ``theta``) of the wanted Ritz values, in descending value order."""
    n = theta.numel()
    idx = torch.arange(n, device=theta.device)
    if which == "largest":
        sel = idx[max(n - k, 0):]
    elif which == "smallest":
        sel = idx[:min(k, n)]
    else:
        sel = idx if 2 * k >= n else torch.cat([idx[:k], idx[n - k:]])
    return sel.flip(0)


def _keep(theta: torch.Tensor, count: int, which: str) -> torch.Tensor:
    n = theta.numel()
    count = min(count, n)
    if which == "largest":
        return torch.arange(n - count, n)
    if which == "smallest":
        return torch.arange(count)
    low = count // 2
    return torch.cat([torch.arange(low), torch.arange(n - (count - low), n)])


def _bounds(theta: torch.Tensor, rho: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """min(ρ, ρ²/gap) for the selected Ritz values (gap from the others, less their residuals)."""
    out = rho[sel].clone()
    if theta.numel() < 2:
        return out
    for j, i in enumerate(sel.tolist()):
        others = torch.cat([torch.arange(i), torch.arange(i + 1, theta.numel())])
        gap = ((theta[others] - theta[i]).abs() - rho[others]).min()
        if gap > 0:
            out[j] = torch.minimum(out[j], rho[i] ** 2 / gap)
    return out


SMALL_EIGH = 24  # projected problems up to this size are solved by _jacobi_eigh


def _jacobi_eigh(T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of a small symmetric matrix, cyclic Jacobi in Python floats.

    Why not ``torch.linalg.eigh``: its first calls page in MKL's LAPACK code, +24 MiB of
    resident memory (RssFile, measured for sizes 1–40), more than the whole Lanczos basis of a
    top-1 run; PyHessian's power iteration never calls LAPACK and its peak RSS was lower for
    that reason. Jacobi is accurate to the last bits, and at this size it costs milliseconds.
    """
    n = T.shape[0]
    A = T.double().tolist()
    V = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    scale = max((abs(A[i][i]) for i in range(n)), default=0.0) or 1.0
    for _ in range(60):
        off = sum(A[i][j] * A[i][j] for i in range(n) for j in range(i + 1, n))
        if off <= (1e-17 * scale) ** 2:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = A[p][q]
                if apq == 0.0:
                    continue
                theta = (A[q][q] - A[p][p]) / (2.0 * apq)
                t = math.copysign(1.0, theta) / (abs(theta) + math.sqrt(theta * theta + 1.0))
                c = 1.0 / math.sqrt(t * t + 1.0)
                sn = t * c
                for row in A:  # A ← A J (columns p, q)
                    akp, akq = row[p], row[q]
                    row[p], row[q] = c * akp - sn * akq, sn * akp + c * akq
                Ap, Aq = A[p], A[q]  # A ← Jᵀ A (rows p, q)
                A[p] = [c * x - sn * y for x, y in zip(Ap, Aq, strict=True)]
                A[q] = [sn * x + c * y for x, y in zip(Ap, Aq, strict=True)]
                for row in V:
                    vkp, vkq = row[p], row[q]
                    row[p], row[q] = c * vkp - sn * vkq, sn * vkp + c * vkq
    T0 = T.double().tolist()
    rayleigh = []  # vᵀTv of the computed vectors: the rotations' rounding enters squared
    for i in range(n):
        col = [row[i] for row in V]
        rayleigh.append(math.fsum(col[a] * T0[a][b] * col[b] for a in range(n) for b in range(n)))
    order = sorted(range(n), key=lambda i: rayleigh[i])
    values = torch.tensor([rayleigh[i] for i in order], dtype=T.dtype, device=T.device)
    vectors = torch.tensor([[row[i] for i in order] for row in V], dtype=T.dtype, device=T.device)
    return values, vectors


def _eigh(T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return _jacobi_eigh(T) if T.shape[0] <= SMALL_EIGH else torch.linalg.eigh(T)


LEAN_STEPS = 60  # the three-vector Lanczos of a lone extreme eigenvalue hands over after this many steps


def _lanczos_lean(op: Any, which: str, tol: float, max_steps: int, seed: int, min_steps: int) -> Eigen:
    """One extreme eigenvalue by Lanczos holding three vectors, not a basis.

    The three-term recurrence (each new vector orthogonalized, twice, against the last two
    only) gives the same tridiagonal T, and the same stopping rule min(ρ, ρ²/gap) on its Ritz
    values, as the full process while orthogonality holds; it is lost only as the wanted Ritz
    value converges (Paige), after which a copy of it can appear among the Ritz values — that
    shrinks the gap estimate and so only makes the bound more cautious. Why: the basis of
    the full process was the largest buffer of a top-1 run (18 vectors, 15 MiB, of the
    benchmark MLP) and made its peak RSS exceed PyHessian's power iteration.
    """
    n, dtype, device = op.size, op.dtype, op.device
    eps = torch.finfo(dtype).eps
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=gen, dtype=torch.float64).to(device, dtype)
    v /= v.norm()
    v_prev: torch.Tensor | None = None
    alphas: list[float] = []
    betas: list[float] = []
    start = op.n_products
    while True:
        w = op.matvec(v)
        alpha = float(w @ v)
        w.sub_(v, alpha=alpha)
        if v_prev is not None:
            w.sub_(v_prev, alpha=betas[-1])
        for _ in range(2):  # local reorthogonalization against the last two vectors
            c = float(w @ v)
            w.sub_(v, alpha=c)
            alpha += c
            if v_prev is not None:
                w.sub_(v_prev, alpha=float(w @ v_prev))
        alphas.append(alpha)
        beta = float(w.norm())
        j = len(alphas)
        T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if j > 1:
            off = torch.tensor(betas, dtype=torch.float64)
            T += torch.diag(off, 1) + torch.diag(off, -1)
        theta, S = _eigh(T)
        rho = beta * S[-1, :].abs()
        sel = _wanted(theta, 1, which)
        bounds = _bounds(theta, rho, sel)
        scale = float(theta.abs().max())
        target = tol * max(abs(float(theta[sel[0]])), scale * math.sqrt(eps))
        done = float(bounds[0]) <= target and j >= min_steps
        if done or j >= max_steps or beta <= n * eps * max(scale, 1e-300):
            # an invariant subspace (β ≈ 0) is not continued here: the full process does that
            return Eigen(theta[sel].to(dtype), None, bounds.to(dtype), op.n_products - start, done, which, tol,
                         "lanczos")
        betas.append(beta)
        v_prev, v = v, w.div_(beta)


def lanczos(op: Any, k: int = 1, which: str = "largest", tol: float = 1e-4, *,
            max_basis: int | None = None, max_products: int | None = None, seed: int = 0,
            return_vectors: bool = False, min_steps: int | None = None) -> Eigen:
    """Thick-restart Lanczos with full reorthogonalization on any symmetric operator.

    Args:
        op: an operator with ``matvec``, ``size`` (P), ``dtype``, ``device``.
        k: how many eigenvalues at each wanted end.
        which: ``"largest"``, ``"smallest"`` or ``"both_ends"`` (algebraic order).
        tol: relative accuracy of each eigenvalue (see the module docstring).
        max_basis: basis vectors kept in memory (default max(4k + 20, 40), at most P).
        max_products: give up after this many products (default 50·max_basis).
        seed: seed of the Gaussian start vector (drawn on the CPU, so every device agrees).
        return_vectors: also return the Ritz vectors.
        min_steps: at least this many products before a stop (default min(P, 2·wanted + 4)).

    Returns:
        :class:`Eigen` (``converged`` False if ``max_products`` ran out first).
    """
    n = op.size
    dtype, device = op.dtype, op.device
    n_want = k if which != "both_ends" else 2 * k
    m = min(n, max_basis if max_basis is not None else max(4 * n_want + 20, 40))
    m = max(m, min(n, n_want + 2))
    max_products = max_products if max_products is not None else 50 * m
    min_steps = min(n, min_steps if min_steps is not None else 2 * n_want + 4)
    if k == 1 and which != "both_ends" and not return_vectors and max_basis is None and n > LEAN_STEPS:
        lean = _lanczos_lean(op, which, tol, min(max_products, LEAN_STEPS), seed, min_steps)
        if lean.converged or lean.n_products >= max_products:
            return lean
        used = lean.n_products  # not converged in LEAN_STEPS: the full process takes over
        rest = lanczos(op, k, which, tol, max_basis=m, max_products=max_products - used, seed=seed,
                       min_steps=min_steps)
        rest.n_products += used
        return rest
    eps = torch.finfo(dtype).eps
    gen = torch.Generator().manual_seed(seed)

    # basis vectors are the *rows* of V: each is contiguous in memory (columns of an (n, m)
    # matrix would be strided, and reading / writing them dominated the run time)
    # torch.empty, not zeros: a row's pages become resident only when it is written, so a run
    # that converges in 18 steps holds 18 vectors, not max_basis (measured: −15 MiB peak RSS on
    # the benchmark MLP). Only rows [0, j] are ever read.
    V = torch.empty(m, n, dtype=dtype, device=device)
    T = torch.zeros(m, m, dtype=dtype, device=device)
    v0 = torch.randn(n, generator=gen, dtype=torch.float64).to(device, dtype)
    V[0] = v0 / v0.norm()
    start = op.n_products
    j = 0  # index of the vector being multiplied
    total_steps = 0
    while True:
        w = op.matvec(V[j])
        total_steps += 1
        basis = V[:j + 1]
        h = basis @ w
        w.addmv_(basis.T, h, alpha=-1)  # in place: no vector-sized temporaries
        h2 = basis @ w  # second Gram–Schmidt pass: keeps V orthonormal to working precision
        w.addmv_(basis.T, h2, alpha=-1)
        h = h + h2
        T[:j + 1, j] = h
        T[j, :j + 1] = h
        beta = w.norm()
        theta, S = _eigh(T[:j + 1, :j + 1])
        rho = beta * S[j, :].abs()
        sel = _wanted(theta, k, which)
        bounds = _bounds(theta, rho, sel)
        scale = theta.abs().max()
        floor = scale * math.sqrt(eps)
        target = tol * torch.maximum(theta[sel].abs(), floor)
        exhausted = j + 1 == n
        done = bool((bounds <= target).all()) and total_steps >= min_steps
        if done or exhausted or op.n_products - start >= max_products:
            converged = done or exhausted
            if exhausted:
                bounds = torch.zeros_like(bounds)
            vectors = (S[:, sel].T @ basis).T if return_vectors else None
            return Eigen(theta[sel].clone(), vectors, bounds.clone(), op.n_products - start, converged,
                         which, tol, "lanczos")
        if beta <= n * eps * max(float(scale), 1e-300):
            # invariant subspace: continue with a fresh random direction orthogonal to V
            w = torch.randn(n, generator=gen, dtype=torch.float64).to(device, dtype)
            w = w - (basis @ w) @ basis
            w = w - (basis @ w) @ basis
            beta = w.norm()
        if j + 1 == m:  # thick restart: keep the Ritz vectors nearest the wanted end(s)
            keep = _keep(theta, max(n_want + (m - n_want) // 2, n_want), which)
            keep = keep[: m - 1]
            l_keep = keep.numel()
            V[:l_keep] = S[:, keep].T @ basis
            T.zero_()
            T[:l_keep, :l_keep] = torch.diag(theta[keep])
            j = l_keep - 1
        torch.div(w, beta, out=V[j + 1])
        j += 1


def eigenvalues(model: Any, loss_fn: LossFn | None = None, data: Data | None = None, k: int = 5,
                which: Which = "largest", tol: float = 1e-4, return_vectors: bool = False, *,
                method: str = "lanczos", mode: Mode = "auto", seed: int = 0,
                max_products: int | None = None, max_basis: int | None = None) -> Eigen:
    """The k largest and/or smallest eigenvalues of the loss Hessian, to a relative tolerance.

    Args:
        model: an ``nn.Module`` (with ``loss_fn`` and ``data``), or an operator: a
            :class:`~ravine.curvature.HessianOperator` or a symmetric ``torch.Tensor``.
        loss_fn: ``loss_fn(outputs, targets)``, the batch mean.
        data: a batch ``(inputs, targets)`` or an iterable of batches (accumulated exactly).
        k: eigenvalues at each wanted end.
        which: ``"largest"``, ``"smallest"`` or ``"both_ends"`` (algebraic order: the
            smallest is the most negative, the one that reveals a saddle).
        tol: relative accuracy |λ − λ_true| ≤ tol·|λ_true| (see :mod:`ravine.curvature.lanczos`
            for the floor near 0). ``method="dense"`` is exact to round-off.
        return_vectors: also return unit eigenvectors (columns of ``vectors``).
        method: ``"lanczos"`` (ravine's torch Lanczos, the default: fastest, any device),
            ``"eigsh"`` (SciPy ARPACK on the float64 view) or ``"dense"`` (the full Hessian and
            ``torch.linalg.eigh``; P products, small models only).
        mode: Hessian-vector product mode of the operator built from ``model``.
        seed: seed of the start vector.
        max_products, max_basis: limits of the Lanczos process.

    Returns:
        :class:`Eigen` with ``values`` in descending order, ``n_products`` and the error bounds.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> m = nn.Linear(2, 1, bias=False).double()
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
        >>> y = torch.zeros(2, 1, dtype=torch.float64)
        >>> res = eigenvalues(m, nn.functional.mse_loss, (x, y), k=1)   # H = (2/N) XᵀX = diag(1, 4)
        >>> round(float(res.values[0]), 12)
        4.0
    """
    if which not in WHICH:
        raise RavineError(f"Invalid which: {which!r} (allowed: {', '.join(WHICH)})")
    if method not in METHODS:
        raise RavineError(f"Invalid method: {method!r} (allowed: {', '.join(METHODS)})")
    k = check_int("k", k, 1)
    tol = check_range("tol", tol, 0.0, low_inclusive=False)
    op = as_operator(model, loss_fn, data, mode=mode)
    if method == "dense" or (which == "both_ends" and 2 * k >= op.size) or k >= op.size:
        return _dense(op, k, which, tol, return_vectors)
    if method == "eigsh":
        return _eigsh(op, k, which, tol, return_vectors, seed)
    return lanczos(op, k, which, tol, max_basis=max_basis, max_products=max_products, seed=seed,
                   return_vectors=return_vectors)


def _dense(op: Any, k: int, which: str, tol: float, return_vectors: bool) -> Eigen:
    start = op.n_products
    H = op.dense()
    theta, S = torch.linalg.eigh(H)
    sel = _wanted(theta, k, which)
    return Eigen(theta[sel], S[:, sel] if return_vectors else None, torch.zeros(sel.numel(), dtype=theta.dtype),
                 op.n_products - start, True, which, tol, "dense")


def _eigsh(op: Any, k: int, which: str, tol: float, return_vectors: bool, seed: int) -> Eigen:
    import numpy as np
    from scipy.sparse.linalg import eigsh

    from ravine.curvature.operator import HessianOperator

    lin = op.to_scipy() if isinstance(op, HessianOperator) else _scipy_view(op)
    v0 = np.random.default_rng(seed).standard_normal(op.size)
    start = op.n_products
    parts = {"largest": ["LA"], "smallest": ["SA"], "both_ends": ["LA", "SA"]}[which]
    vals, vecs = [], []
    for part in parts:
        w, U = eigsh(lin, k=k, which=part, tol=tol, v0=v0)
        vals.append(w)
        vecs.append(U)
    values = np.concatenate(vals)
    vectors = np.concatenate(vecs, axis=1)
    order = np.argsort(-values, kind="stable")
    values, vectors = values[order], vectors[:, order]
    out_v = torch.from_numpy(values).to(op.dtype)
    return Eigen(out_v, torch.from_numpy(vectors).to(op.device, op.dtype) if return_vectors else None,
                 tol * out_v.abs(), op.n_products - start, True, which, tol, "eigsh")


def _scipy_view(op: Any) -> Any:
    import numpy as np
    from scipy.sparse.linalg import LinearOperator

    def mv(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).reshape(op.size, -1).squeeze(1)
        return op.matvec(t).cpu().double().numpy().reshape(x.shape)

    return LinearOperator(op.shape, matvec=mv, rmatvec=mv, matmat=mv, dtype=np.float64)
