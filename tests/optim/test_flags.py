"""Flags torch.optim's classes take (maximize, foreach, fused, capturable, differentiable), torch.compile,
schedulers that write momentum, and torch state loaded into ravine's own rules."""

from __future__ import annotations

import pytest
import torch

import ravine.optim as ro
from ravine.errors import CheckpointError, HyperparameterError
from ravine.optim import create

FIRST_ORDER = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]


def _run(name: str, grad_sign: float, steps: int = 3, **flags) -> torch.Tensor:
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = create(name, [w], lr=0.1, weight_decay=0.01, l1=0.02, **flags)
    for _ in range(steps):
        w.grad = grad_sign * (2 * w.detach() + 1)  # oracle: maximizing −f is minimizing f
        opt.step()
    return w.detach()


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_maximize_equals_minimizing_the_negated_objective(name):
    # gradient of f = ‖w‖² + Σw; maximize −f with regularizers that still *shrink* θ (torch's convention)
    torch.testing.assert_close(_run(name, -1.0, maximize=True), _run(name, 1.0))


@pytest.mark.parametrize("name", FIRST_ORDER)
@pytest.mark.parametrize("flag", ["foreach", "fused"])
def test_kernel_flags_give_the_same_rule(name, flag):
    torch.testing.assert_close(_run(name, 1.0, **{flag: False if flag == "fused" else True}), _run(name, 1.0))


@pytest.mark.parametrize("name", FIRST_ORDER)
@pytest.mark.parametrize("flag", ["capturable", "differentiable"])
def test_flags_are_honoured_or_refused_by_name_through_create_and_the_class(name, flag):
    classes = {"sgd": ro.SGD, "momentum": ro.Momentum, "nesterov": ro.Nesterov, "adagrad": ro.AdaGrad,
               "rmsprop": ro.RMSProp, "adam": ro.Adam}
    for build in (lambda **kw: create(name, [torch.nn.Parameter(torch.ones(2))], **kw),
                  lambda **kw: classes[name]([torch.nn.Parameter(torch.ones(2))], **kw)):
        try:
            opt = build(**{flag: True})
        except HyperparameterError as exc:
            assert flag in str(exc)
            continue
        assert opt.param_groups[0][flag] is True


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_bad_flag_values_are_refused_by_name(name):
    with pytest.raises(HyperparameterError, match="maximize"):
        create(name, [torch.nn.Parameter(torch.ones(2))], maximize="yes")
    with pytest.raises(HyperparameterError, match="fused, foreach"):
        create(name, [torch.nn.Parameter(torch.ones(2))], fused=True, foreach=True)


def test_rmsprop_eps_outside_refuses_fused():
    with pytest.raises(HyperparameterError, match="fused"):
        create("rmsprop", [torch.nn.Parameter(torch.ones(2))], eps_inside_sqrt=False, fused=True)


def test_classes_are_exported_and_modules_not_shadowed():
    import importlib

    assert ro.Adam is importlib.import_module("ravine.optim.first_order").Adam
    assert callable(ro.least_squares) and callable(ro.minimize)
    mod = importlib.import_module("ravine.optim.levenberg_marquardt")
    assert mod.LevenbergMarquardt is ro.LevenbergMarquardt


@pytest.mark.slow
@pytest.mark.parametrize("name", FIRST_ORDER)
def test_torch_compile_of_step_matches_eager(name):
    torch._dynamo.reset()
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    ref = torch.nn.Parameter(w.detach().clone())
    opt, ref_opt = create(name, [w], lr=0.1), create(name, [ref], lr=0.1)
    compiled = torch.compile(opt.step)
    for _ in range(2):
        for p in (w, ref):
            p.grad = 2 * p.detach() + 1
        compiled()
        ref_opt.step()
    torch.testing.assert_close(w.detach(), ref.detach())


def test_one_cycle_defaults_on_sgd_name_cycle_momentum():
    w = torch.nn.Parameter(torch.ones(2))
    opt = create("sgd", [w], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=5)
    w.grad = torch.ones(2)
    with pytest.raises(HyperparameterError, match="cycle_momentum=False"):
        opt.step()
    del sched
    opt = create("sgd", [w], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=5, cycle_momentum=False)
    opt.step()
    sched.step()


def test_one_cycle_defaults_work_on_momentum():
    w = torch.nn.Parameter(torch.ones(2))
    opt = create("momentum", [w], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=5)
    w.grad = torch.ones(2)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["momentum"] < 0.95


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_sutskever_momentum_refuses_an_optimizer_without_momentum_at_construction(name):
    from ravine.schedules import SutskeverMomentum

    opt = create(name, [torch.nn.Parameter(torch.ones(2))])
    with pytest.raises(HyperparameterError, match="sutskever-momentum"):
        SutskeverMomentum(opt)


@pytest.mark.parametrize(("torch_opt", "name", "why"), [
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), "momentum", "momentum_buffer"),
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), "nesterov", "ε never changed"),
    (lambda p: torch.optim.RMSprop(p, lr=0.1), "rmsprop", "eps_inside_sqrt=False"),
])
def test_torch_state_loaded_into_a_ravine_rule_is_refused_with_the_reason(torch_opt, name, why):
    w = torch.nn.Parameter(torch.ones(2))
    source = torch_opt([w])
    w.grad = torch.ones(2)
    source.step()
    opt = create(name, [w])
    with pytest.raises(CheckpointError, match=why):
        opt.load_state_dict(source.state_dict())


def test_a_fused_kernel_missing_on_a_device_falls_back_to_foreach_or_is_refused_by_name():
    """torch.optim.Adagrad's fused kernel is CPU-only although torch's generic device list names
    CUDA; the same mechanism, exercised here with the CPU marked missing."""
    from ravine.errors import HyperparameterError
    from ravine.optim.first_order import FUSED_DEVICES_MISSING, kernel_flags

    assert FUSED_DEVICES_MISSING[torch.optim.Adagrad] == ("cuda",)
    x = [torch.zeros(3)]
    assert kernel_flags(x, fused=None, has_fused=True) == {"fused": True}
    assert kernel_flags(x, fused=None, has_fused=True, missing=("cpu",)) == {"foreach": True}
    with pytest.raises(HyperparameterError, match=r"^Invalid fused for adagrad on cpu: True"):
        kernel_flags(x, fused=True, has_fused=True, missing=("cpu",), who="adagrad")
