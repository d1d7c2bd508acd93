"""The typed result every linear-system solver returns."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch


@dataclass
class SolveResult:
    """What a solver did on ``A x = b``.

    Attributes:
        method: the solver's name.
        x: the solution, shape ``(..., n)`` (a batch of systems gives a batch of solutions).
        residuals: relative residuals ‖b − A x_k‖ / ‖b‖, shape ``(k + 1, ...)``: row 0 is the start
            (x₀ = 0, so 1), the last row the final iterate. Direct solvers have one row.
        iterations: iterations (sweeps) taken; 0 for a direct solver.
        matvecs: matrix–vector products with A.
        time: wall-clock seconds of the solve (CUDA synchronized).
        flops: floating-point operations, counted from the algorithm (factorization + solves for a
            direct solver; 2n² per matvec and n² per triangular solve for an iterative one).
        converged: the final relative residual is ≤ the tolerance (every system of a batch).
        status: ``"converged"``, ``"max_iter"``, ``"diverged"`` or ``"direct"``.
        info: the constants used (ε, α, ω, ...).
    """

    method: str
    x: torch.Tensor
    residuals: torch.Tensor
    iterations: int
    matvecs: int
    time: float
    flops: float
    converged: bool
    status: str
    info: dict[str, float] = field(default_factory=dict)

    @property
    def final_residual(self) -> float:
        """The worst final relative residual over a batch."""
        return float(self.residuals[-1].max())

    def history(self) -> list[float]:
        """The relative residual per iteration (the worst of a batch), as floats."""
        r = self.residuals.reshape(self.residuals.shape[0], -1).amax(dim=1)
        return [float(v) for v in r]


def mv(A: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Batched matrix–vector product ``A x`` for ``A (..., n, n)`` and ``x (..., n)``."""
    return (A @ x.unsqueeze(-1)).squeeze(-1)


def norm(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last dimension."""
    return torch.linalg.vector_norm(v, dim=-1)


def sync(t: torch.Tensor) -> None:
    """Wait for the device so that wall-clock times are honest."""
    if t.is_cuda:
        torch.cuda.synchronize(t.device)


class Clock:
    """A wall-clock timer that synchronizes CUDA at both ends."""

    def __init__(self, like: torch.Tensor) -> None:
        self.like = like
        sync(like)
        self.start = time.perf_counter()

    def stop(self) -> float:
        """Seconds since construction."""
        sync(self.like)
        return time.perf_counter() - self.start
