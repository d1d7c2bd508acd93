"""Linear systems Ax = b to solve: SPD with a chosen κ, diagonally dominant, least squares, user files.

Every builder returns a :class:`System` in float64 by default (a residual of 1e-8 needs more digits
than float32 has). Randomness comes from a seeded ``torch.Generator``; nothing touches the global RNG.

Example:
    >>> sys_ = spd(50, kappa=100.0, seed=0)
    >>> round(sys_.kappa, 6)
    100.0
    >>> bool(torch.allclose(sys_.A, sys_.A.T))
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ravine.errors import DataError, check_int, check_range

_FILE_KINDS = ".npy, .npz (an array A, optional b; or a SciPy sparse matrix), .mtx (Matrix Market)"


@dataclass
class System:
    """A linear system ``A x = b``.

    Attributes:
        name: a short label for tables and figures.
        A: the matrix, shape ``(n, n)``.
        b: the right-hand side, shape ``(n,)``.
        x_star: the exact solution when it is known by construction, else None.
        eigenvalues: A's eigenvalues in ascending order when A is symmetric (None otherwise).
        spd: True when A is symmetric positive definite (Cholesky, CG, GD apply).
        notes: where the system came from.
    """

    name: str
    A: torch.Tensor
    b: torch.Tensor
    x_star: torch.Tensor | None = None
    eigenvalues: torch.Tensor | None = None
    spd: bool = False
    notes: str = ""
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """The number of unknowns."""
        return int(self.A.shape[-1])

    @property
    def kappa(self) -> float:
        """The 2-norm condition number κ = λ_max / λ_min (symmetric A) or σ_max / σ_min."""
        if self.eigenvalues is not None:
            lam = self.eigenvalues.abs()
            return float(lam.max() / lam.min())
        sv = torch.linalg.svdvals(self.A)
        return float(sv.max() / sv.min())


def _symmetric_info(A: torch.Tensor) -> tuple[torch.Tensor | None, bool]:
    if A.shape[-1] != A.shape[-2] or not torch.allclose(A, A.mT, rtol=1e-10, atol=1e-12 * float(A.abs().max())):
        return None, False
    lam = torch.linalg.eigvalsh(A)
    return lam, bool(lam.min() > 0)


def spd(n: int = 500, kappa: float = 1e3, seed: int = 0, *, spectrum: str = "linear", dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu") -> System:
    """A symmetric positive definite system with condition number exactly ``kappa``.

    ``A = Q diag(λ) Qᵀ`` with Q a random orthogonal matrix (QR of a seeded Gaussian matrix, signs fixed
    so that Q is Haar-distributed) and eigenvalues in [1, κ] (both ends included):

    - ``spectrum="linear"``: evenly spaced, ``λ_i = 1 + (κ − 1) i / (n − 1)``;
    - ``spectrum="chebyshev"``: at the Chebyshev points of [1, κ], crowded at both ends — the
      spectrum on which CG's (√κ − 1)/(√κ + 1) bound is nearly tight (with an evenly spaced one, the
      few isolated small eigenvalues are removed in a few steps and CG then runs at a smaller
      effective κ).

    ``x*`` is drawn from N(0, I) and ``b = A x*``.

    Example:
        >>> s = spd(10, kappa=4.0, seed=1)
        >>> float(s.eigenvalues[0]), float(s.eigenvalues[-1])
        (1.0, 4.0)
    """
    n = check_int("n", n, 2)
    kappa = check_range("kappa", kappa, 1.0)
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    G = torch.randn(n, n, generator=gen, dtype=torch.float64)
    Q, R = torch.linalg.qr(G)
    Q = Q * torch.sign(torch.diagonal(R))  # Haar measure: fix the signs QR leaves arbitrary
    if spectrum == "linear":
        lam = torch.linspace(1.0, kappa, n, dtype=torch.float64)
    elif spectrum == "chebyshev":
        t = torch.cos(torch.arange(n, dtype=torch.float64) * torch.pi / (n - 1))  # 1 ... -1, ends included
        lam = torch.sort((kappa + 1) / 2 - (kappa - 1) / 2 * t).values
        lam[0], lam[-1] = 1.0, kappa
    else:
        raise DataError(f"Invalid spectrum: {spectrum!r} (allowed: linear, chebyshev)")
    A = (Q * lam) @ Q.T
    A = (A + A.T) / 2
    x_star = torch.randn(n, generator=gen, dtype=torch.float64)
    b = A @ x_star
    return System(f"spd(n={n}, κ={kappa:g}, {spectrum})", A.to(device, dtype), b.to(device, dtype), x_star.to(device, dtype),
                  lam.to(device, dtype), spd=True, notes=f"Q diag(λ) Qᵀ, {spectrum} λ in [1, κ]")


def diagonally_dominant(n: int = 500, seed: int = 0, *, dominance: float = 2.0, symmetric: bool = True,
                        dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> System:
    """A strictly diagonally dominant system: ``a_ii = dominance · Σ_{j≠i} |a_ij|``.

    Strict diagonal dominance is the textbook condition under which Jacobi and Gauss–Seidel
    converge; with ``symmetric=True`` the matrix is also SPD (Gershgorin), so every method applies.
    Off-diagonal entries are U(−1, 1) (symmetrized).

    Example:
        >>> s = diagonally_dominant(20, seed=0)
        >>> d = s.A.diagonal(); off = s.A.abs().sum(1) - d.abs()
        >>> bool((d.abs() > off).all())
        True
    """
    n = check_int("n", n, 2)
    dominance = check_range("dominance", dominance, 1.0, low_inclusive=False)
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    A = 2 * torch.rand(n, n, generator=gen, dtype=torch.float64) - 1
    if symmetric:
        A = (A + A.T) / 2
    A.fill_diagonal_(0.0)
    A += torch.diag(dominance * A.abs().sum(1))
    x_star = torch.randn(n, generator=gen, dtype=torch.float64)
    b = A @ x_star
    lam, is_spd = _symmetric_info(A)
    return System(f"diag-dominant(n={n})", A.to(device, dtype), b.to(device, dtype), x_star.to(device, dtype),
                  None if lam is None else lam.to(device, dtype), spd=is_spd,
                  notes=f"a_ii = {dominance:g} Σ|a_ij|")


def _diabetes() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = torch.as_tensor(X, dtype=torch.float64)
    X = torch.cat([torch.ones(X.shape[0], 1, dtype=torch.float64), X], dim=1)  # intercept column
    return X, torch.as_tensor(y, dtype=torch.float64)


def least_squares_normal(*, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> System:
    """Linear regression on scikit-learn's diabetes set as the normal equations ``XᵀX w = Xᵀy``.

    X is the 442 × 10 design (sklearn's scaled features) with an intercept column. The normal
    equations square the condition number (κ(XᵀX) = κ(X)²), the reason to prefer QR.
    ``extra`` holds ``X`` and ``y``.

    Example:
        >>> s = least_squares_normal()
        >>> s.n, s.spd
        (11, True)
    """
    X, y = _diabetes()
    A, b = X.T @ X, X.T @ y
    lam = torch.linalg.eigvalsh(A)
    return System("diabetes normal equations", A.to(device, dtype), b.to(device, dtype), None, lam.to(device, dtype),
                  spd=True, notes="XᵀX w = Xᵀy, X = [1, diabetes features]",
                  extra={"X": X.to(device, dtype), "y": y.to(device, dtype)})


def least_squares_qr(*, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> System:
    """Linear regression on diabetes by QR: ``X = QR``, then the triangular system ``R w = Qᵀ y``.

    ``torch.linalg.qr`` (reduced) gives Q (442 × 11) and R (11 × 11); R is upper triangular with
    κ(R) = κ(X), the square root of the normal equations' κ. ``extra`` holds ``X``, ``y``, ``Q``.

    Example:
        >>> s = least_squares_qr()
        >>> bool(torch.allclose(s.A, s.A.triu()))
        True
    """
    X, y = _diabetes()
    Q, R = torch.linalg.qr(X)
    return System("diabetes QR (R w = Qᵀy)", R.to(device, dtype), (Q.T @ y).to(device, dtype), None, None,
                  spd=False, notes="X = QR, R w = Qᵀy",
                  extra={"X": X.to(device, dtype), "y": y.to(device, dtype), "Q": Q.to(device, dtype)})


def load_matrix(path: str | Path, seed: int = 0, *, dtype: torch.dtype = torch.float64,
                device: str | torch.device = "cpu") -> System:
    """A user's matrix from ``.npy``, ``.npz`` or Matrix Market (``.mtx``, via ``scipy.io.mmread``).

    A ``.npz`` may hold arrays ``A`` (and optionally ``b``) or be a SciPy sparse matrix saved with
    ``scipy.sparse.save_npz``. Without ``b``, ``x*`` is drawn from N(0, I) (seeded) and ``b = A x*``.
    Sparse matrices are densified: the solvers here are dense.

    Raises:
        DataError: missing file, unknown extension, not a square finite matrix, or a zero row.
    """
    import numpy as np
    import scipy.io
    import scipy.sparse

    p = Path(path)
    if not p.is_file():
        raise DataError(f"Invalid matrix: {str(path)!r} (no such file; allowed: {_FILE_KINDS})")
    suffix = p.suffix.lower()
    b = None
    try:
        if suffix == ".npy":
            A = np.load(p, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if "A" in z.files:
                    A = z["A"]
                    b = z["b"] if "b" in z.files else None
                elif {"data", "indices", "indptr", "format", "shape"} <= set(z.files):
                    A = scipy.sparse.load_npz(p).toarray()
                else:
                    raise DataError(f"Invalid matrix: {str(path)!r} (the .npz holds {', '.join(z.files) or 'nothing'}; "
                                    "allowed: an array named A, optional b, or a scipy.sparse.save_npz file)")
        elif suffix == ".mtx":
            A = scipy.io.mmread(p)
            A = A.toarray() if scipy.sparse.issparse(A) else np.asarray(A)
        else:
            raise DataError(f"Invalid matrix: {str(path)!r} (allowed: {_FILE_KINDS})")
    except DataError:
        raise
    except Exception as exc:  # numpy / scipy say why the file is unreadable
        raise DataError(f"Invalid matrix: {str(path)!r} (unreadable: {str(exc).splitlines()[0]})") from None
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] < 1:
        raise DataError(f"Invalid matrix: shape {A.shape} (allowed: a square n × n matrix)")
    if not np.issubdtype(A.dtype, np.number) or np.iscomplexobj(A) or not np.isfinite(A).all():
        raise DataError(f"Invalid matrix: dtype {A.dtype} or non-finite entries (allowed: finite real numbers)")
    At = torch.as_tensor(A.astype(np.float64))
    if bool((At.abs().sum(1) == 0).any()):
        raise DataError("Invalid matrix: a zero row (allowed: a non-singular matrix)")
    x_star = None
    if b is None:
        gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
        x_star = torch.randn(At.shape[0], generator=gen, dtype=torch.float64)
        bt = At @ x_star
    else:
        bt = torch.as_tensor(np.asarray(b, dtype=np.float64)).reshape(-1)
        if bt.shape[0] != At.shape[0]:
            raise DataError(f"Invalid b: length {bt.shape[0]} (allowed: length n = {At.shape[0]})")
    lam, is_spd = _symmetric_info(At)
    return System(p.name, At.to(device, dtype), bt.to(device, dtype),
                  None if x_star is None else x_star.to(device, dtype),
                  None if lam is None else lam.to(device, dtype), spd=is_spd, notes=f"from {p.name}")



def poisson1d(n: int = 100, *, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
              seed: int = 0) -> System:
    """The 1-D Poisson matrix tridiag(−1, 2, −1), whose spectrum is known in closed form.

    ``λ_j = 2 − 2 cos(jπ/(n + 1))``; Jacobi's iteration matrix has spectral radius cos(π/(n + 1)) and
    Gauss–Seidel's cos²(π/(n + 1)) — the textbook oracle for both. b = A x*, x* ~ N(0, I) (seeded).

    Example:
        >>> s = poisson1d(5)
        >>> s.A[1, :3].tolist()
        [-1.0, 2.0, -1.0]
    """
    n = check_int("n", n, 2)
    off = -torch.ones(n - 1, dtype=torch.float64)
    A = torch.diag(torch.full((n,), 2.0, dtype=torch.float64)) + torch.diag(off, 1) + torch.diag(off, -1)
    j = torch.arange(1, n + 1, dtype=torch.float64)
    lam = 2 - 2 * torch.cos(j * torch.pi / (n + 1))
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    x_star = torch.randn(n, generator=gen, dtype=torch.float64)
    return System(f"poisson1d(n={n})", A.to(device, dtype), (A @ x_star).to(device, dtype), x_star.to(device, dtype),
                  torch.sort(lam).values.to(device, dtype), spd=True, notes="tridiag(−1, 2, −1)")
