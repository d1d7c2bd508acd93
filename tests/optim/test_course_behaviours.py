"""The behaviours the course attributes to each rule, checked on small problems.

Expected values come from the course's analysis (closed forms such as ε g / (1 − α)),
never from ravine's own output.
"""

from __future__ import annotations

import pytest
import torch

import ravine.optim

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_constant_gradient_velocity_tends_to_eps_g_over_one_minus_alpha(name):
    gen = torch.Generator().manual_seed(0)
    c = torch.randn(5, generator=gen, dtype=torch.float64)
    w = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    lr, alpha = 0.1, 0.9
    opt = ravine.optim.create(name, [w], lr=lr, momentum=alpha)
    for _ in range(400):  # α^400 ≈ 5e-19: the geometric series has converged
        opt.zero_grad()
        (c * w).sum().backward()  # L = cᵀθ, a constant gradient
        opt.step()
    torch.testing.assert_close(opt.state[w]["velocity"], -lr * c / (1 - alpha), rtol=1e-10, atol=0)


def effective_steps(name, grads, **hyper):
    """ε_eff = −Δθ / g per coordinate for each step, feeding the given gradient sequence.

    θ is reset to 0 before every step (the rule's state does not depend on θ), so Δθ is
    read without cancellation error.
    """
    w = torch.nn.Parameter(torch.zeros(grads.shape[1], dtype=torch.float64))
    opt = ravine.optim.create(name, [w], **hyper)
    out = []
    for g in grads:
        with torch.no_grad():
            w.zero_()
        w.grad = g.clone()
        opt.step()
        out.append(-w.detach() / g)
    return torch.stack(out)


def test_adagrad_effective_step_never_grows():
    gen = torch.Generator().manual_seed(1)
    # minibatch-like gradients: random signs, magnitudes over four decades, a quiet stretch in the middle
    grads = torch.randn(60, 8, generator=gen, dtype=torch.float64) * 10 ** (
        4 * torch.rand(60, 8, generator=gen, dtype=torch.float64) - 2)
    grads[20:40] *= 1e-3
    ada = effective_steps("adagrad", grads, lr=0.1)
    assert torch.all(ada[1:] <= ada[:-1] * (1 + 1e-12))
    assert torch.all(ada[-1] < ada[0])
    # the check can fail: RMSProp's effective step does grow while recent gradients are small
    rms = effective_steps("rmsprop", grads, lr=0.1)
    assert torch.all(rms[39] > 2 * rms[19])


# ------------------------------------------------------------------ the course's sparse-feature toy

W_TRUE, B_TRUE, W0 = 2.0, -0.5, -2.0


def sparse_toy(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """100 points, about 80% with x = 0 (the rest in [0.5, 1.5]); y = σ(2x − 0.5) exactly."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(100, generator=gen, dtype=torch.float64) + 0.5
    x[torch.rand(100, generator=gen, dtype=torch.float64) < 0.8] = 0.0
    return x, torch.sigmoid(W_TRUE * x + B_TRUE)


def fit_neuron(name: str, epochs: int, x: torch.Tensor, y: torch.Tensor, lr: float = 0.05) -> float:
    """Full-batch training of y = σ(w x + b) on squared error from w = −2, b = 0; returns w."""
    w = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor(0.0, dtype=torch.float64))
    opt = ravine.optim.create(name, [w, b], lr=lr)
    for _ in range(epochs):
        opt.zero_grad()
        ((torch.sigmoid(w * x + b) - y) ** 2).mean().backward()
        opt.step()
    return w.item()


def test_sparse_feature_adagrad_moves_w_further_than_gd():
    """w only gets gradient from the ~20% of points with x ≠ 0, so GD barely moves it; AdaGrad
    divides by that small gradient's own history and moves it at about ε per step."""
    x, y = sparse_toy()
    assert 10 <= int((x != 0).sum()) <= 30
    moved_gd = abs(fit_neuron("gd", 100, x, y) - W0)
    moved_adagrad = abs(fit_neuron("adagrad", 100, x, y) - W0)
    assert moved_adagrad > 3 * moved_gd


def test_sparse_feature_rmsprop_does_not_stall_where_adagrad_does():
    """AdaGrad's sum r only grows, so its steps shrink like 1/√t and w stops short of the true 2;
    RMSProp's moving average forgets, keeps steps near ε and reaches it in the same epochs."""
    x, y = sparse_toy()
    w_adagrad, w_rmsprop = fit_neuron("adagrad", 1000, x, y), fit_neuron("rmsprop", 1000, x, y)
    assert abs(w_adagrad - W_TRUE) > 0.5
    assert abs(w_rmsprop - W_TRUE) < 0.1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_first_step_has_size_eps_in_every_coordinate(dtype):
    """t = 1: ŝ = g, r̂ = g², so Δθ = −ε g / (|g| + δ) ≈ −ε sign g whatever |g| is."""
    gen = torch.Generator().manual_seed(2)
    magnitude = 10 ** (5 * torch.rand(50, generator=gen, dtype=torch.float64) - 2)  # 1e-2 .. 1e3
    g = (magnitude * torch.randn(50, generator=gen, dtype=torch.float64).sign()).to(dtype)
    w = torch.nn.Parameter(torch.zeros(50, dtype=dtype))
    opt = ravine.optim.create("adam", [w], lr=0.01)
    w.grad = g
    opt.step()
    torch.testing.assert_close(w.detach(), -0.01 * g.sign(), rtol=1e-5, atol=0)


def steps_to_reach(name: str, target: float, max_steps: int = 3000, **hyper) -> int:
    """Steps until ½ θᵀHθ ≤ target on a rotated quadratic with eigenvalues 1 … 100."""
    gen = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=gen, dtype=torch.float64))
    hessian = q @ torch.diag(torch.logspace(0, 2, 10, dtype=torch.float64)) @ q.T
    w = torch.nn.Parameter(torch.randn(10, generator=gen, dtype=torch.float64))
    opt = ravine.optim.create(name, [w], **hyper)
    for k in range(max_steps):
        opt.zero_grad()
        loss = 0.5 * w @ hessian @ w
        if loss.item() <= target:
            return k
        loss.backward()
        opt.step()
    return max_steps


def test_momentum_beats_gd_on_an_ill_conditioned_quadratic():
    """Condition number 100, ε = 1/λ_max for both: GD's slow direction contracts by 1 − 0.01 per
    step; momentum (α = 0.9) contracts it much faster."""
    gd = steps_to_reach("gd", 1e-6, lr=0.01)
    momentum = steps_to_reach("momentum", 1e-6, lr=0.01, momentum=0.9)
    assert gd < 3000  # GD does get there, just slowly
    assert momentum < gd / 2
