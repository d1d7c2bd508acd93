"""line-search-gd against oracles written from its definition, and its plumbing."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import ravine.optim
from ravine.errors import ClosureError, DivergenceError, HyperparameterError
from ravine.optim.line_search_gd import LineSearchGD

pytestmark = pytest.mark.usefixtures("single_thread")

SHAPES = [(3,), (4, 5), (2, 3, 2), (7,)]
SPLIT = 2
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def lr_factor(t: int) -> float:
    return (1.0 + 0.5 * math.sin(t)) / (1.0 + 0.1 * t)


def objective(problem, thetas, hypers):
    """L(θ) + Σ λ/2 ‖θ‖² + λ₁ ‖θ‖₁, the function the search minimizes."""
    value = float(problem.loss(thetas))
    return value + sum(h["weight_decay"] / 2 * float((t * t).sum()) + h["l1"] * float(t.abs().sum())
                       for t, h in zip(thetas, hypers, strict=True))


def oracle_step(problem, thetas, hypers):
    """One step straight from the definition; returns the new θ and the chosen multiplier."""
    grads = problem.grad(thetas)
    d = [g + h["weight_decay"] * t + h["l1"] * t.sign() for g, t, h in zip(grads, thetas, hypers, strict=True)]

    def trial(m):
        return [t - (m * h["lr"]) * di for t, di, h in zip(thetas, d, hypers, strict=True)]

    f0, h0 = objective(problem, thetas, hypers), hypers[0]
    if h0["mode"] == "best":
        m = min(h0["candidates"], key=lambda m: objective(problem, trial(m), hypers))
        return trial(m), m
    slope = sum(h["lr"] * float((di * di).sum()) for di, h in zip(d, hypers, strict=True))
    m = 1.0
    while objective(problem, trial(m), hypers) > f0 - h0["c"] * m * slope:
        m *= h0["shrink"]
    return trial(m), m


CASES = [
    ({"lr": 0.1}, {"lr": 0.05, "weight_decay": 0.05, "l1": 0.01}),
    ({"lr": 0.3, "candidates": (0.2, 1.0, 3.0)}, {"lr": 0.1}),
    ({"lr": 2.0, "mode": "armijo"}, {"lr": 1.0, "weight_decay": 0.05, "l1": 0.01}),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("top", "group1"), CASES, ids=["best-reg", "best-candidates", "armijo-reg"])
def test_matches_oracle_under_changing_lr(helpers, top, group1, dtype):
    problem = helpers.random_problem(SHAPES, dtype, seed=7)
    params = [torch.nn.Parameter(s.clone()) for s in problem.start]
    opt = ravine.optim.create("line-search-gd", [{"params": params[:SPLIT]}, {"params": params[SPLIT:], **group1}],
                              **top)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    base = {**ravine.optim.info("line-search-gd").defaults, **top}
    hypers = [base] * SPLIT + [{**base, **group1}] * (len(SHAPES) - SPLIT)
    thetas = [s.clone() for s in problem.start]
    for t in range(20):
        step_h = [{**h, "lr": h["lr"] * lr_factor(t)} for h in hypers]
        thetas, m = oracle_step(problem, thetas, step_h)
        opt.step(helpers.loss_closure(opt, params, problem.loss))
        sched.step()
        assert opt.last_step_size == pytest.approx(m * step_h[0]["lr"], rel=1e-12)
        assert opt.param_groups[1]["last_step_size"] == pytest.approx(m * step_h[-1]["lr"], rel=1e-12)
        for p, expected in zip(params, thetas, strict=True):
            torch.testing.assert_close(p.detach(), expected, rtol=TOL[dtype], atol=TOL[dtype])


def quadratic_closure(opt, w, a=4.0, record=None):
    def closure():
        if record is not None:
            record.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = 0.5 * a * (w**2).sum()
        if torch.is_grad_enabled():
            loss.backward()
        return loss

    return closure


def test_best_candidate_on_a_quadratic_is_the_one_closest_to_the_newton_step():
    """On ½ a w², θ − η a θ = (1 − η a) θ: the best η minimizes |1 − η a|; here η = 0.25 = 1/a exactly."""
    w = torch.nn.Parameter(torch.tensor([1.0, -3.0], dtype=torch.float64))
    opt = LineSearchGD([w], lr=0.05)  # candidates 0.005, 0.025, 0.05, 0.25, 0.5
    record: list[bool] = []
    loss = opt.step(quadratic_closure(opt, w, record=record))
    assert opt.last_step_size == pytest.approx(0.25)
    assert torch.equal(w.detach(), torch.zeros(2, dtype=torch.float64))
    assert loss.item() == pytest.approx(0.5 * 4 * 10)  # step returns the loss at the start point
    assert record == [True] + [False] * 5  # one gradient evaluation, trial losses without grad
    state = opt.state[w]
    assert state["last_step_size"] == pytest.approx(0.25) and state["last_multiplier"] == 5.0 and state["func_evals"] == 6 and state["last_loss"] == 0.0
    torch.testing.assert_close(w.grad, torch.tensor([4.0, -12.0], dtype=torch.float64))  # g at the start


def test_best_mode_keeps_the_lowest_candidate_even_above_the_start():
    w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = LineSearchGD([w], lr=1.0, candidates=(0.6, 0.7))  # 1 − 0.6·4 = −1.4, 1 − 0.7·4 = −1.8
    opt.step(quadratic_closure(opt, w))
    assert w.item() == pytest.approx(-1.4)


def test_armijo_takes_the_first_step_with_sufficient_decrease():
    """a = 4, lr = 1: η = 1 (θ → −3θ) and η = 0.5 (θ → −θ) fail, η = 0.25 satisfies the condition."""
    w = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    opt = LineSearchGD([w], lr=1.0, mode="armijo")
    opt.step(quadratic_closure(opt, w))
    assert opt.last_step_size == 0.25
    assert w.item() == 0.0


def test_armijo_without_decrease_stays_put():
    w = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    opt = LineSearchGD([w], lr=10.0, mode="armijo", max_backtracks=1)  # η = 10 and 5 both overshoot
    opt.step(quadratic_closure(opt, w))
    assert opt.last_step_size == 0.0
    assert w.item() == 2.0


def test_closure_is_required_and_a_backward_always_closure_gives_the_same_step():
    w = torch.nn.Parameter(torch.ones(2))
    opt = LineSearchGD([w])
    with pytest.raises(ClosureError, match="closure"):
        opt.step()

    def always_backward():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    # skorch's and Lightning's closures call backward() always: trial points then run with autograd on,
    # and the step is the one a closure that skips backward() under no_grad gives
    opt.step(always_backward)
    v = torch.nn.Parameter(torch.ones(2))
    ref = LineSearchGD([v])

    def polite():
        ref.zero_grad()
        loss = (v**2).sum()
        if torch.is_grad_enabled():
            loss.backward()
        return loss

    ref.step(polite)
    assert torch.equal(w.detach(), v.detach()) and opt.last_step_size == ref.last_step_size
    assert torch.equal(w.grad, torch.full((2,), 2.0))  # the gradient at the start point is handed back


def test_non_finite_losses_everywhere_raise_divergence():
    w = torch.nn.Parameter(torch.ones(2))
    opt = LineSearchGD([w])

    def closure():
        opt.zero_grad()
        loss = (w**2).sum() * (float("nan") if not torch.is_grad_enabled() else 1.0)
        if torch.is_grad_enabled():
            loss.backward()
        return loss

    with pytest.raises(DivergenceError, match="not finite"):
        opt.step(closure)
    assert torch.equal(w.detach(), torch.ones(2))


def test_state_dict_round_trip(helpers):
    problem = helpers.random_problem(SHAPES, torch.float64, seed=2)
    runs = []
    for resume in (False, True):
        params = [torch.nn.Parameter(s.clone()) for s in problem.start]
        opt = LineSearchGD(params, lr=0.2, mode="armijo")
        for _ in range(3):
            opt.step(helpers.loss_closure(opt, params, problem.loss))
        if resume:
            saved = copy.deepcopy((opt.state_dict(), [p.detach().clone() for p in params]))
            params = [torch.nn.Parameter(t) for t in saved[1]]
            opt = LineSearchGD(params, lr=0.2, mode="armijo")
            opt.load_state_dict(saved[0])
            assert opt.state[params[0]]["func_evals"] > 3 and opt.last_step_size > 0
        for _ in range(3):
            opt.step(helpers.loss_closure(opt, params, problem.loss))
        runs.append([p.detach() for p in params])
    for p, q in zip(*runs, strict=True):
        assert torch.equal(p, q)


BAD = [("lr", 0.0), ("lr", -1.0), ("candidates", ()), ("candidates", (1.0, -0.5)), ("candidates", 3),
       ("mode", "golden"), ("c", 1.0), ("c", 0.0), ("shrink", 1.0), ("shrink", 0.0), ("max_backtracks", -1),
       ("max_backtracks", 2.5), ("weight_decay", -1.0), ("l1", -1.0)]


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v}" for f, v in BAD])
def test_bad_hyperparameters(field, value):
    w = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(HyperparameterError, match=field):
        ravine.optim.create("line-search-gd", [w], **{field: value})
    with pytest.raises(HyperparameterError, match=field):
        ravine.optim.create("line-search-gd", [{"params": [w], field: value}])
