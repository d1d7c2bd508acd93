"""The contract every registered optimizer keeps, whatever family it is from.

Iterates ``ravine.optim.names()``: an optimizer added to the registry is tested here
without touching this file. Each one is driven the way its ``info(name).closure``
says (plain backward, a "loss" closure, a "graph" closure or a "residual" closure)
on a least-squares problem r(θ) = Aθ − b, whose loss ½‖r‖² is a convex quadratic.
"""

from __future__ import annotations

import copy
import inspect
import math

import pytest
import torch

import ravine.optim
from ravine.errors import HyperparameterError, RavineError

pytestmark = pytest.mark.usefixtures("single_thread")

NAMES = ravine.optim.names()
SHAPES = [(2,), (2, 2)]  # θ split over two tensors (6 numbers in all)


def setup(helpers, name, dtype=torch.float64, seed=0, groups=False, **extra):
    """Problem, parameters and optimizer; ``groups=True`` puts each tensor in its own param group."""
    problem = helpers.least_squares(n=6, m=10, dtype=dtype, seed=seed)
    gen = torch.Generator().manual_seed(seed + 100)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)) for s in SHAPES]
    hyper = {**helpers.contract_hyper(name), **extra}
    if "seed" in ravine.optim.info(name).defaults:
        hyper.setdefault("seed", seed)
    spec = [{"params": [p]} for p in params] if groups else params
    opt = ravine.optim.create(name, spec, **hyper)
    return problem, params, opt, helpers.stepper(name, opt, params, problem)


def loss_of(problem, params) -> float:
    with torch.no_grad():
        return float(problem.loss(params))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_steps_and_decreases_a_convex_quadratic(helpers, name, dtype):
    problem, params, opt, step = setup(helpers, name, dtype)
    assert isinstance(opt, torch.optim.Optimizer)
    start, best = loss_of(problem, params), problem.min_loss()
    for _ in range(100):
        step()
    end = loss_of(problem, params)
    assert math.isfinite(end)
    assert all(p.dtype == dtype for p in params)
    assert end - best < 0.95 * (start - best), f"{name}: {start:.4g} -> {end:.4g} (minimum {best:.4g})"


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_bit_identically(helpers, name):
    runs = []
    for resume in (False, True):
        problem, params, opt, step = setup(helpers, name)
        for _ in range(4):
            step()
        if resume:
            saved = copy.deepcopy((opt.state_dict(), [p.detach().clone() for p in params]))
            _, params, opt, step = setup(helpers, name)
            with torch.no_grad():
                for p, value in zip(params, saved[1], strict=True):
                    p.copy_(value)
            opt.load_state_dict(saved[0])
        for _ in range(4):
            step()
        runs.append([p.detach().clone() for p in params])
    for p, q in zip(*runs, strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_a_seed(helpers, name):
    runs = []
    for _ in range(2):
        _, params, _, step = setup(helpers, name, seed=5)
        for _ in range(5):
            step()
        runs.append(torch.cat([p.detach().reshape(-1) for p in params]))
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_split_changes_nothing_and_lr_zero_freezes(helpers, name):
    """Two groups with the same hyperparameters follow the one-group trajectory; a group with
    lr = 0 does not move, and the loss does not rise."""
    try:
        setup(helpers, name, groups=True)
    except RavineError as exc:  # e.g. a method that solves for all parameters jointly, like torch's LBFGS
        if "group" not in str(exc):
            raise
        pytest.skip(f"{name} refuses param groups: {exc}")
    runs = []
    for groups in (False, True):
        problem, params, opt, step = setup(helpers, name, groups=groups)
        assert len(opt.param_groups) == (2 if groups else 1)
        for _ in range(5):
            step()
        runs.append(torch.cat([p.detach().reshape(-1) for p in params]))
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-10, atol=1e-12)
    if "lr" in ravine.optim.info(name).defaults:
        problem, params, opt, step = setup(helpers, name, groups=True)
        moving, frozen = params[0].detach().clone(), params[1].detach().clone()
        start = loss_of(problem, params)
        opt.param_groups[1]["lr"] = 0.0
        for _ in range(3):
            step()
        assert torch.equal(params[1].detach(), frozen)
        assert loss_of(problem, params) <= start
        if ravine.optim.info(name).closure in ("none", "loss"):
            # a first-order rule moves the other group on its own gradient; a joint (second-order)
            # solve may find no descent left in the remaining coordinates and stay put
            assert not torch.equal(params[0].detach(), moving)


def schedule_names() -> list[str]:
    import ravine.schedules as schedules  # a missing registry must fail, not skip

    return list(schedules.names())


def _schedule_step(sched, loss: float) -> None:
    """``scheduler.step()``, passing the validation metric to schedules that take one."""
    wants_metric = any(p in inspect.signature(sched.step).parameters for p in ("metric", "metrics"))
    sched.step(loss) if wants_metric else sched.step()


@pytest.mark.parametrize("name", NAMES)
def test_works_with_every_schedule(helpers, name):
    names = schedule_names()
    assert names
    import ravine.schedules as schedules

    takes_momentum = "momentum" in ravine.optim.info(name).defaults
    for sched_name in names:
        problem, params, opt, step = setup(helpers, name)
        sets = getattr(schedules.info(sched_name), "sets", "lr") if hasattr(schedules, "info") else "lr"
        if sets == "momentum" and not takes_momentum:
            # a momentum schedule on a rule without momentum is refused, never silently ignored
            with pytest.raises(RavineError):
                schedules.create(sched_name, opt)
                step()
            continue
        sched = schedules.create(sched_name, opt)
        start = loss_of(problem, params)
        for _ in range(6):
            _schedule_step(sched, step())
        assert math.isfinite(loss_of(problem, params)), f"{name} with {sched_name}"
        for group in opt.param_groups:
            assert math.isfinite(float(group.get("lr", 0.0))) and float(group.get("lr", 0.0)) >= 0
        assert loss_of(problem, params) <= start * (1 + 1e-6), f"{name} with {sched_name}"


BAD_VALUES = {
    "lr": -1.0, "momentum": 1.0, "rho": 1.5, "betas": (1.0, 0.5), "eps": -1.0, "weight_decay": -1.0, "l1": -1.0,
}


@pytest.mark.parametrize("name", NAMES)
def test_rejects_bad_hyperparameters(name):
    w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    defaults = ravine.optim.info(name).defaults
    checked = [key for key in BAD_VALUES if key in defaults]
    for key in checked:
        with pytest.raises(HyperparameterError, match=key):
            ravine.optim.create(name, [w], **{key: BAD_VALUES[key]})
    with pytest.raises(HyperparameterError, match="no_such_hyperparameter"):
        ravine.optim.create(name, [w], no_such_hyperparameter=1.0)
