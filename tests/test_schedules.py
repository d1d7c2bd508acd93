"""Schedules: each matches its formula (oracles written here from the formula), round-trips its state,
and rejects bad hyperparameters."""

from __future__ import annotations

import io
import math

import pytest
import torch

import ravine
from ravine import schedules
from ravine.errors import ConfigError, HyperparameterError, RavineError, UnknownNameError

LR0 = (0.1, 0.03)  # two param groups with their own ε0

# name -> (hyperparameters, oracle(ε0, t)) — each oracle is the formula, typed straight from the issue.
CASES = {
    "constant": ({}, lambda e0, t: e0),
    "inverse-time": ({"k": 0.3}, lambda e0, t: e0 / (1 + 0.3 * t)),
    "exponential": ({"k": 0.02}, lambda e0, t: e0 * math.exp(-0.02 * t)),
    "step": ({"every": 3, "factor": 0.5}, lambda e0, t: e0 * 0.5 ** (t // 3)),
    "piecewise": ({"boundaries": [5, 100], "values": [1.0, 0.3, 0.01]},
                  lambda e0, t: e0 * (1.0 if t < 5 else 0.3 if t < 100 else 0.01)),
    "inverse-sqrt": ({}, lambda e0, t: e0 / math.sqrt(t + 1)),
    "power": ({"s": 4.0, "c": 0.6}, lambda e0, t: e0 * (1 + t / 4.0) ** -0.6),
}


def make_optimizer(momentum: float = 0.5) -> torch.optim.SGD:
    w = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    return torch.optim.SGD([{"params": [w], "lr": LR0[0]}, {"params": [b], "lr": LR0[1]}], momentum=momentum)


def advance(opt: torch.optim.Optimizer, sched, steps: int, metric=None) -> None:
    for i in range(steps):
        opt.step()  # no grads: a no-op, but keeps torch's "optimizer.step() first" order
        sched.step() if metric is None else sched.step(metric(i))


def test_registry_lists_every_schedule_with_formula_and_defaults():
    assert set(schedules.names()) == set(CASES) | {"halve-on-plateau", "sutskever-momentum"}
    for name in schedules.names():
        entry = schedules.info(name)
        assert entry.name == name and entry.formula and isinstance(entry.defaults, dict)
        assert entry.per in ("epoch", "iteration") and entry.sets in ("lr", "momentum")
    assert schedules.info("sutskever-momentum").per == "iteration"
    assert schedules.info("halve-on-plateau").needs_metric


@pytest.mark.parametrize("name", schedules.names())
def test_every_schedule_builds_with_defaults(name):
    opt = make_optimizer()
    sched = schedules.create(name, opt)
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    advance(opt, sched, 3, metric=(lambda i: 1.0) if schedules.info(name).needs_metric else None)


@pytest.mark.parametrize("t", [0, 1, 10, 1000])
@pytest.mark.parametrize("name", list(CASES))
def test_lr_schedule_matches_formula(name, t):
    hyper, oracle = CASES[name]
    opt = make_optimizer()
    sched = schedules.create(name, opt, **hyper)
    advance(opt, sched, t)
    for group, e0 in zip(opt.param_groups, LR0, strict=True):
        assert group["lr"] == pytest.approx(oracle(e0, t), rel=1e-10, abs=0)
    assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]


def test_constant_keeps_an_lr_changed_from_outside():
    opt = make_optimizer()
    sched = schedules.create("constant", opt)
    opt.param_groups[0]["lr"] = 0.007
    advance(opt, sched, 5)
    assert opt.param_groups[0]["lr"] == 0.007 and opt.param_groups[1]["lr"] == LR0[1]


def test_halve_on_plateau_halves_exactly_when_the_error_rises():
    errors = [1.0, 0.8, 0.9, 0.85, 0.85, 0.7, 0.75, 0.8, 0.5, 0.6]
    opt = make_optimizer()
    sched = schedules.create("halve-on-plateau", opt)
    expected, previous = list(LR0), None
    for err in errors:
        if previous is not None and err > previous:  # the rule, from the course
            expected = [e / 2 for e in expected]
        previous = err
        opt.step()
        sched.step(torch.tensor(err))
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(expected, rel=1e-15)
    assert opt.param_groups[0]["lr"] == pytest.approx(LR0[0] / 16)  # 4 rises in the sequence


def test_halve_on_plateau_max_mode_floor_and_missing_metric():
    opt = make_optimizer()
    sched = schedules.create("halve-on-plateau", opt, mode="max", factor=0.1, min_lr=0.05)
    advance(opt, sched, 3, metric=lambda i: [0.5, 0.6, 0.4][i])  # accuracy falls once
    # 0.1·0.1 is floored at 0.05; the group at 0.03 is already below the floor and is left alone.
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.03]
    with pytest.raises(ConfigError, match="metric"):
        sched.step()


def sutskever(t: int, mu_max: float, period: int = 250) -> float:
    return min(1 - 2 ** (-1 - math.log2(math.floor(t / period) + 1)), mu_max)


@pytest.mark.parametrize("t, value", [(0, 0.5), (249, 0.5), (250, 0.75), (499, 0.75), (500, 1 - 1 / 6),
                                      (750, 0.875), (1000, 0.9)])
def test_sutskever_momentum_values(t, value):
    opt = make_optimizer(momentum=0.1)
    sched = schedules.create("sutskever-momentum", opt, max_momentum=0.995)
    advance(opt, sched, t)
    assert sutskever(t, 0.995) == pytest.approx(value, rel=1e-14)  # the oracle agrees with the hand values
    for group, e0 in zip(opt.param_groups, LR0, strict=True):
        assert group["momentum"] == pytest.approx(value, rel=1e-14)
        assert group["lr"] == e0  # lr untouched


def test_sutskever_momentum_is_capped():
    opt = make_optimizer()
    sched = schedules.create("sutskever-momentum", opt, max_momentum=0.9, period=1)
    seen = [opt.param_groups[0]["momentum"]]
    for _ in range(12):
        advance(opt, sched, 1)
        seen.append(opt.param_groups[0]["momentum"])
    assert seen == pytest.approx([sutskever(t, 0.9, 1) for t in range(13)], rel=1e-14)
    assert max(seen) == pytest.approx(0.9) and seen[-1] == 0.9 and seen[3] < 0.9


@pytest.mark.parametrize("momentum_first", [True, False])
def test_sutskever_momentum_combines_with_an_lr_schedule(momentum_first):
    opt = make_optimizer()
    if momentum_first:
        mom = schedules.create("sutskever-momentum", opt, period=2)
        lr = schedules.create("inverse-time", opt, k=1.0)
    else:
        lr = schedules.create("inverse-time", opt, k=1.0)
        mom = schedules.create("sutskever-momentum", opt, period=2)
    for _ in range(6):
        opt.step()
        lr.step()
        mom.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(LR0[0] / 7)
    assert opt.param_groups[1]["momentum"] == pytest.approx(sutskever(6, 0.99, 2))


@pytest.mark.parametrize("name", [n for n in ravine.optim.names() if "momentum" in ravine.optim.info(n).defaults])
def test_sutskever_momentum_drives_ravine_momentum_optimizers(name):
    w = torch.nn.Parameter(torch.ones(4))
    opt = ravine.optim.create(name, [w], lr=0.1, momentum=0.9)
    sched = schedules.create("sutskever-momentum", opt, period=2)
    for t in range(1, 6):
        w.grad = torch.ones(4)
        opt.step()
        sched.step()
        assert opt.param_groups[0]["momentum"] == pytest.approx(sutskever(t, 0.99, 2))
    assert torch.isfinite(w).all() and (w < 1).all()


def test_sutskever_momentum_needs_a_momentum_optimizer():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(HyperparameterError, match="momentum"):
        schedules.create("sutskever-momentum", opt)


METRIC = {"halve-on-plateau": lambda i: [1.0, 2.0, 1.5, 1.8, 1.0, 1.2, 0.9, 1.1, 1.3, 0.2, 0.3, 0.1][i]}
CUSTOM = {**{name: hyper for name, (hyper, _) in CASES.items()},
          "halve-on-plateau": {"factor": 0.3}, "sutskever-momentum": {"period": 3, "max_momentum": 0.95}}


@pytest.mark.parametrize("name", schedules.names())
def test_state_dict_round_trip_resumes_identically(name):
    metric = METRIC.get(name)
    opt = make_optimizer()
    sched = schedules.create(name, opt, **CUSTOM[name])
    advance(opt, sched, 7, metric)
    buffer = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    resumed_opt = make_optimizer()
    # Built with the *defaults*: the saved state must carry the hyperparameters.
    resumed = schedules.create(name, resumed_opt)
    resumed_opt.load_state_dict(saved["opt"])
    resumed.load_state_dict(saved["sched"])
    shifted = None if metric is None else (lambda i: metric(i + 7))
    advance(opt, sched, 5, shifted)
    advance(resumed_opt, resumed, 5, shifted)
    for a, b in zip(opt.param_groups, resumed_opt.param_groups, strict=True):
        assert (a["lr"], a["momentum"]) == (b["lr"], b["momentum"])
    assert resumed.last_epoch == sched.last_epoch == 12


BAD = [
    ("inverse-time", {"k": -0.1}, "k"),
    ("inverse-time", {"k": float("nan")}, "k"),
    ("exponential", {"k": -1}, "k"),
    ("step", {"every": 0}, "every"),
    ("step", {"every": 2.5}, "every"),
    ("step", {"factor": 0.0}, "factor"),
    ("step", {"factor": 1.5}, "factor"),
    ("piecewise", {"boundaries": [10, 5], "values": [1, 0.1, 0.01]}, "boundaries"),
    ("piecewise", {"boundaries": [0], "values": [1, 0.1]}, "boundaries"),
    ("piecewise", {"boundaries": [10], "values": [1.0]}, "values"),
    ("piecewise", {"boundaries": [10], "values": [1.0, -0.1]}, "values"),
    ("piecewise", {"boundaries": "10", "values": [1.0, 0.1]}, "boundaries"),
    ("power", {"s": 0.0}, "s"),
    ("power", {"c": -1.0}, "c"),
    ("halve-on-plateau", {"factor": 1.0}, "factor"),
    ("halve-on-plateau", {"mode": "lowest"}, "mode"),
    ("halve-on-plateau", {"min_lr": -1e-3}, "min_lr"),
    ("sutskever-momentum", {"max_momentum": 1.0}, "max_momentum"),
    ("sutskever-momentum", {"period": 0}, "period"),
    ("constant", {"k": 0.1}, "'k'"),
    ("exponential", {"gamma": 0.9}, "'gamma'"),
]


@pytest.mark.parametrize("name, hyper, field", BAD)
def test_bad_hyperparameters_are_rejected_naming_the_field(name, hyper, field):
    with pytest.raises(HyperparameterError, match=field) as err:
        schedules.create(name, make_optimizer(), **hyper)
    assert "\n" not in str(err.value) and ("allowed" in str(err.value))


def test_unknown_name_and_non_optimizer():
    with pytest.raises(UnknownNameError, match="cosine.*allowed: constant"):
        schedules.create("cosine", make_optimizer())
    with pytest.raises(UnknownNameError):
        schedules.info("cosine")
    with pytest.raises(RavineError, match="optimizer"):
        schedules.create("step", [torch.zeros(2)])
