"""Shared helpers for the optimizer tests: random problems, closures per closure kind.

Test modules get them through the ``helpers`` fixture (``helpers.random_problem(...)``)
rather than ``import conftest``, which is ambiguous when several test folders have
a conftest.py. Everything is seeded through ``torch.Generator``; no global RNG.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
import torch

import ravine.optim

Loss = Callable[[Sequence[torch.Tensor]], torch.Tensor]


@dataclass
class RandomProblem:
    """A smooth, non-quadratic loss over several tensors, with coupling between them.

    L(θ) = Σ_k Σ log(1 + (a_k ⊙ θ_k − b_k)²) + 0.1 (Σ θ_0)(Σ θ_last)
    """

    shapes: list[tuple[int, ...]]
    scales: list[torch.Tensor]
    targets: list[torch.Tensor]
    start: list[torch.Tensor]

    def loss(self, thetas: Sequence[torch.Tensor]) -> torch.Tensor:
        total = sum(torch.log1p((a * t - b) ** 2).sum() for a, t, b in zip(self.scales, thetas, self.targets,
                                                                         strict=True))
        return total + 0.1 * thetas[0].sum() * thetas[-1].sum()

    def grad(self, thetas: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """∇L at ``thetas`` by autograd on fresh leaves (the oracle's gradient)."""
        leaves = [t.detach().clone().requires_grad_(True) for t in thetas]
        return list(torch.autograd.grad(self.loss(leaves), leaves))


def random_problem(shapes: Sequence[tuple[int, ...]], dtype: torch.dtype, seed: int) -> RandomProblem:
    """A :class:`RandomProblem` with the given tensor shapes, drawn from ``seed``."""
    gen = torch.Generator().manual_seed(seed)

    def draw(shape: tuple[int, ...], scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
        return (torch.randn(shape, generator=gen, dtype=torch.float64) * scale + shift).to(dtype)

    return RandomProblem(
        shapes=list(shapes),
        scales=[draw(s, 0.5, 1.0) for s in shapes],
        targets=[draw(s) for s in shapes],
        start=[draw(s) for s in shapes],
    )


def loss_closure(opt: torch.optim.Optimizer, params: Sequence[torch.Tensor], loss: Loss) -> Callable[[], torch.Tensor]:
    """The ``"loss"`` closure: zero grads, loss, backward (only when grad is enabled), return loss."""

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = loss(params)
        if torch.is_grad_enabled():
            value.backward()
        return value

    return closure


@dataclass
class LeastSquares:
    """r(θ) = A θ − b, θ the concatenation of the parameter tensors; loss ½‖r‖² is a convex quadratic."""

    A: torch.Tensor
    b: torch.Tensor

    def residual(self, thetas: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.A @ torch.cat([t.reshape(-1) for t in thetas]) - self.b

    def loss(self, thetas: Sequence[torch.Tensor]) -> torch.Tensor:
        return 0.5 * self.residual(thetas).pow(2).sum()

    def min_loss(self) -> float:
        """½‖A θ* − b‖² at the least-squares solution (SciPy-free: torch.linalg.lstsq)."""
        A64, b64 = self.A.double(), self.b.double()
        theta = torch.linalg.lstsq(A64, b64.unsqueeze(1)).solution.squeeze(1)
        return float(0.5 * (A64 @ theta - b64).pow(2).sum())


def least_squares(n: int = 6, m: int = 10, dtype: torch.dtype = torch.float64, seed: int = 0) -> LeastSquares:
    """A well-conditioned least-squares problem: A = [I; 0] + small noise, m × n."""
    gen = torch.Generator().manual_seed(seed)
    A = torch.zeros(m, n, dtype=torch.float64)
    A[:n] = torch.eye(n, dtype=torch.float64)
    A += 0.2 * torch.randn(m, n, generator=gen, dtype=torch.float64)
    b = torch.randn(m, generator=gen, dtype=torch.float64)
    return LeastSquares(A.to(dtype), b.to(dtype))


def stepper(name: str, opt: torch.optim.Optimizer, params: Sequence[torch.Tensor],
            problem: LeastSquares) -> Callable[[], float]:
    """One optimizer step on ``problem``, driven the way ``info(name).closure`` says; returns the loss before it."""
    kind = ravine.optim.info(name).closure

    def step() -> float:
        if kind == "none":
            opt.zero_grad()
            value = problem.loss(params)
            value.backward()
            opt.step()
        elif kind == "loss":
            value = opt.step(loss_closure(opt, params, problem.loss))
        elif kind == "graph":
            value = opt.step(lambda: problem.loss(params))
        elif kind == "residual":
            value = opt.step(lambda: problem.residual(params))
        else:  # pragma: no cover - a new closure kind needs a branch here
            raise AssertionError(f"unknown closure kind {kind!r} for {name}")
        return float(problem.loss(params).detach()) if value is None else float(_as_loss(value, kind))

    return step


def _as_loss(value: torch.Tensor | float, kind: str) -> torch.Tensor | float:
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if kind == "residual" and value.ndim:
            return 0.5 * value.pow(2).sum()
    return value


def contract_hyper(name: str) -> dict:
    """Registry defaults, with ``lr`` = ``train_lr`` where the default has none."""
    entry = ravine.optim.info(name)
    hyper: dict = {}
    if "lr" in entry.defaults and entry.defaults["lr"] is None:
        hyper["lr"] = entry.train_lr or 0.01
    return hyper


@pytest.fixture
def single_thread():
    """Run the test on one intra-op thread, then restore the setting.

    Thousands of tiny steps on a busy 2-core machine spend most of their time waking
    torch's thread pool (fused CPU kernels open a parallel region per step).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def helpers() -> types.SimpleNamespace:
    """The helpers above, as one namespace."""
    return types.SimpleNamespace(
        random_problem=random_problem, loss_closure=loss_closure, least_squares=least_squares,
        stepper=stepper, contract_hyper=contract_hyper,
    )
