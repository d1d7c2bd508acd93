"""The first-order rules against oracles written straight from the course's table.

Each oracle is a few lines of plain torch on one tensor: g is the exact gradient
(autograd on fresh leaves) plus the regularizers λθ + λ₁ sign θ. ravine and the
oracle take 20 steps on random problems (several shapes, two param groups with
different hyperparameters, an lr schedule that changes ε every step).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

import ravine.optim
from ravine.errors import HyperparameterError
from ravine.optim import first_order

pytestmark = pytest.mark.usefixtures("single_thread")

SHAPES = [(3,), (4, 5), (2, 3, 2), (7,)]
SPLIT = 2  # the first two tensors form group 0, the rest group 1
STEPS = 20
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def lr_factor(t: int) -> float:
    """The multiplier of each group's base lr at step t: changes every step."""
    return (1.0 + 0.5 * math.sin(t)) / (1.0 + 0.1 * t)


# ---------------------------------------------------------------- oracles (one tensor, one step)


def sgd(theta, g, st, h):
    return theta - h["lr"] * g


def momentum(theta, g, st, h):
    st["v"] = h["momentum"] * st.get("v", torch.zeros_like(theta)) - h["lr"] * g
    return theta + st["v"]


def adagrad(theta, g, st, h):
    st["r"] = st.get("r", torch.zeros_like(theta)) + g * g
    return theta - h["lr"] * g / (h["eps"] + st["r"].sqrt())


def rmsprop(theta, g, st, h):
    st["r"] = h["rho"] * st.get("r", torch.zeros_like(theta)) + (1 - h["rho"]) * g * g
    if h["eps_inside_sqrt"]:
        return theta - h["lr"] * g / (h["eps"] + st["r"]).sqrt()
    return theta - h["lr"] * g / (st["r"].sqrt() + h["eps"])


def adam(theta, g, st, h):
    (rho1, rho2), t = h["betas"], st.get("t", 0) + 1
    st["t"] = t
    st["s"] = rho1 * st.get("s", torch.zeros_like(theta)) + (1 - rho1) * g
    st["r"] = rho2 * st.get("r", torch.zeros_like(theta)) + (1 - rho2) * g * g
    s_hat, r_hat = st["s"] / (1 - rho1**t), st["r"] / (1 - rho2**t)
    return theta - h["lr"] * s_hat / (r_hat.sqrt() + h["eps"])


# Nesterov's velocity rule is momentum's; only the point where g is taken differs.
ORACLES = {"sgd": sgd, "gd": sgd, "momentum": momentum, "nesterov": momentum, "adagrad": adagrad,
           "rmsprop": rmsprop, "adam": adam}


def gradient_point(name, theta, st, h):
    """Where the rule evaluates ∇L: θ, or the look-ahead θ + α v for Nesterov."""
    if name == "nesterov":
        return theta + h["lookahead"] * st.get("v", torch.zeros_like(theta))
    return theta


# (registry name, hyperparameters for the whole optimizer, overrides for group 1)
REG = {"weight_decay": 0.05, "l1": 0.01}
CASES = [
    ("sgd", {"lr": 0.05}, {"lr": 0.02, **REG}),
    ("gd", {"lr": 0.05, "l1": 0.02}, {"lr": 0.1}),
    ("momentum", {"lr": 0.03, "momentum": 0.9}, {"lr": 0.01, "momentum": 0.5, **REG}),
    ("nesterov", {"lr": 0.03, "momentum": 0.9}, {"lr": 0.01, "momentum": 0.5, **REG}),
    ("adagrad", {"lr": 0.05}, {"lr": 0.2, "eps": 1e-3, **REG}),
    ("rmsprop", {"lr": 0.01}, {"lr": 0.003, "rho": 0.5, "eps": 1e-3, **REG}),
    ("rmsprop", {"lr": 0.01, "eps_inside_sqrt": False}, {"lr": 0.003, "rho": 0.5, "eps": 1e-3, **REG}),
    ("adam", {"lr": 0.01}, {"lr": 0.003, "betas": (0.8, 0.99), "eps": 1e-4, **REG}),
]
FIRST_ORDER_NAMES = [n for info in first_order.OPTIMIZERS for n in (info.name, *info.aliases)]


def test_every_first_order_rule_has_an_oracle_case():
    assert set(FIRST_ORDER_NAMES) <= {name for name, _, _ in CASES}
    assert set(FIRST_ORDER_NAMES) <= set(ORACLES)


def build(name, problem, top, group1):
    params = [torch.nn.Parameter(s.clone()) for s in problem.start]
    opt = ravine.optim.create(name, [{"params": params[:SPLIT]}, {"params": params[SPLIT:], **group1}], **top)
    return params, opt


def oracle_hyper(name, top, group1):
    base = {**ravine.optim.info(name).defaults, **top}
    return [base] * SPLIT + [{**base, **group1}] * (len(SHAPES) - SPLIT)


def regularized_grad(problem, point, hypers):
    grads = problem.grad(point)
    return [g + h["weight_decay"] * p + h["l1"] * p.sign() for g, p, h in zip(grads, point, hypers, strict=True)]


def assert_matches_oracle(helpers, name, params, opt, problem, hypers, step_hyper, dtype):
    """``STEPS`` steps of ``opt`` and of the oracle side by side. Before step t, ``step_hyper(t, bases)`` returns
    each group's hyperparameters for that step from its base ones (and sets them in ``opt``, or steps a schedule)."""
    thetas, states = [s.clone() for s in problem.start], [{} for _ in SHAPES]
    group_of = [0] * SPLIT + [1] * (len(SHAPES) - SPLIT)
    for t in range(STEPS):
        per_group = step_hyper(t, [hypers[0], hypers[SPLIT]])
        step_h = [{**per_group[k], "lookahead": per_group[k].get("momentum")} for k in group_of]
        point = [gradient_point(name, th, st, h) for th, st, h in zip(thetas, states, step_h, strict=True)]
        grads = regularized_grad(problem, point, step_h)
        thetas = [ORACLES[name](th, g, st, h) for th, g, st, h in zip(thetas, grads, states, step_h, strict=True)]

        opt.step(helpers.loss_closure(opt, params, problem.loss))
        ours = opt.theta() if name == "nesterov" else [p.detach() for p in params]
        for mine, expected in zip(ours, thetas, strict=True):
            torch.testing.assert_close(mine, expected, rtol=TOL[dtype], atol=TOL[dtype])
    if name == "nesterov":  # the parameter itself holds the look-ahead point θ + α v
        for p, th, st, h in zip(params, thetas, states, hypers, strict=True):
            torch.testing.assert_close(p.detach(), th + h["momentum"] * st["v"], rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "top", "group1"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_oracle_under_changing_lr(helpers, name, top, group1, dtype):
    problem = helpers.random_problem(SHAPES, dtype, seed=len(name))
    params, opt = build(name, problem, top, group1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)

    def step_hyper(t, bases):
        if t:
            sched.step()
        return [{**base, "lr": base["lr"] * lr_factor(t)} for base in bases]

    assert_matches_oracle(helpers, name, params, opt, problem, oracle_hyper(name, top, group1), step_hyper, dtype)


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls of torch's fused SGD and Adam ops (which still run)."""
    calls = {"_fused_sgd_": 0, "_fused_adam_": 0}
    for name in calls:
        op = getattr(torch, name)

        def counted(*args, _op=op, _name=name, **kwargs):
            calls[_name] += 1
            return _op(*args, **kwargs)

        monkeypatch.setattr(torch, name, counted)
    return calls


def fused_calls(calls):
    return calls["_fused_sgd_"] + calls["_fused_adam_"]


def alpha_schedule(t: int) -> float:
    return [0.5, 0.5, 0.9, 0.9, 0.9, 0.0, 0.7][t % 7]


@pytest.mark.parametrize("lr", [0.05, 0.0625], ids=["foreach", "fused-kernel"])  # 1 + ε exact in float64
@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_is_read_from_the_group_every_step(helpers, kernel_calls, name, lr):
    """α changes between steps (as a momentum schedule does). Momentum follows the course exactly;
    Nesterov's look-ahead uses the α of the step that formed it (documented in ``Nesterov``)."""
    problem = helpers.random_problem(SHAPES, torch.float64, seed=3)
    params, opt = build(name, problem, {"lr": lr, "momentum": alpha_schedule(0)}, {})
    thetas, states = [s.clone() for s in problem.start], [{} for _ in SHAPES]
    for t in range(STEPS):
        h = {"lr": lr, "momentum": alpha_schedule(t), "lookahead": alpha_schedule(t - 1) if t else 0.0}
        point = [gradient_point(name, th, st, h) for th, st in zip(thetas, states, strict=True)]
        thetas = [momentum(th, g, st, h) for th, g, st in zip(thetas, problem.grad(point), states, strict=True)]
        opt.step(helpers.loss_closure(opt, params, problem.loss))
        for group in opt.param_groups:
            group["momentum"] = alpha_schedule(t + 1)
        ours = opt.theta() if name == "nesterov" else [p.detach() for p in params]
        for mine, expected in zip(ours, thetas, strict=True):
            torch.testing.assert_close(mine, expected, rtol=1e-12, atol=1e-12)
    assert (fused_calls(kernel_calls) > 0) == (lr == 0.0625)


def test_nesterov_with_constant_alpha_takes_the_gradient_at_theta_plus_alpha_v():
    """One scalar by hand: after two steps the parameter is θ₂ + α v₂ of the course's recursion."""
    w = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    opt = first_order.Nesterov([w], lr=0.1, momentum=0.5)
    theta, v = 2.0, 0.0
    for _ in range(2):
        opt.zero_grad()
        (w**2).sum().backward()  # ∇L = 2 w, taken at the parameter = look-ahead point
        opt.step()
        v = 0.5 * v - 0.1 * 2 * (theta + 0.5 * v)
        theta += v
    assert w.item() == pytest.approx(theta + 0.5 * v, abs=1e-14)
    assert opt.theta()[0].item() == pytest.approx(theta, abs=1e-14)


# ---------------------------------------------------------------- kernels and plumbing


@pytest.mark.parametrize(("name", "cls"), [("sgd", torch.optim.SGD), ("adagrad", torch.optim.Adagrad),
                                           ("adam", torch.optim.Adam)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_delegated_rules_use_torch_fused_kernel_on_cpu(name, cls, dtype):
    opt = ravine.optim.create(name, [torch.nn.Parameter(torch.ones(3, dtype=dtype))])
    assert isinstance(opt, cls)
    assert opt.param_groups[0]["fused"] is True


def test_fused_can_be_turned_off_and_gives_the_same_steps():
    start = torch.linspace(-1, 1, 11, dtype=torch.float64)
    results = []
    for fused in (True, False):
        w = torch.nn.Parameter(start.clone())
        opt = first_order.Adam([w], lr=0.1, fused=fused)
        assert opt.param_groups[0]["fused" if fused else "foreach"] is True
        for _ in range(5):
            opt.zero_grad()
            (w.sin() * w).sum().backward()
            opt.step()
        results.append(w.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)


def test_rmsprop_picks_its_form_and_rho_drives_torch_alpha():
    w = torch.nn.Parameter(torch.ones(2))
    assert isinstance(ravine.optim.create("rmsprop", [w]), first_order.RMSProp)
    opt = ravine.optim.create("rmsprop", [w], eps_inside_sqrt=False, rho=0.8)
    assert isinstance(opt, torch.optim.RMSprop)
    opt.param_groups[0]["rho"] = 0.3
    w.grad = torch.ones(2)
    opt.step()
    assert opt.param_groups[0]["alpha"] == 0.3


@pytest.mark.parametrize("name", ["sgd", "adam", "adagrad", "momentum", "rmsprop"])
def test_l1_leaves_the_callers_gradient_alone(name):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.0]))
    opt = ravine.optim.create(name, [w], l1=0.5, weight_decay=0.1)
    grad = torch.tensor([0.1, 0.2, 0.3])
    w.grad = grad
    opt.step()
    assert w.grad is grad
    torch.testing.assert_close(grad, torch.tensor([0.1, 0.2, 0.3]))


def test_parameters_without_gradient_do_not_move():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    for name in FIRST_ORDER_NAMES:
        opt = ravine.optim.create(name, [a, b], weight_decay=0.1)
        a.grad, b.grad = torch.ones(2), None
        opt.step()
        assert torch.equal(b.detach(), torch.ones(2)), name


def test_state_dict_round_trip_with_two_groups_and_a_schedule(helpers):
    """Resume after 5 steps from a saved state: bit-identical to the uninterrupted run."""
    for name, top, group1 in CASES:
        problem = helpers.random_problem(SHAPES, torch.float32, seed=1)
        params, opt = build(name, problem, top, group1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
        for _ in range(5):
            opt.step(helpers.loss_closure(opt, params, problem.loss))
            sched.step()
        saved = copy.deepcopy((opt.state_dict(), sched.state_dict(), [p.detach().clone() for p in params]))
        problem.start = saved[2]
        params2, opt2 = build(name, problem, top, group1)
        sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lr_factor)
        opt2.load_state_dict(saved[0])
        sched2.load_state_dict(saved[1])
        for o, s, ps in ((opt, sched, params), (opt2, sched2, params2)):
            for _ in range(5):
                o.step(helpers.loss_closure(o, ps, problem.loss))
                s.step()
        for p, q in zip(params, params2, strict=True):
            assert torch.equal(p, q), name


# ---------------------------------------------------------------- bad hyperparameters

BAD = [
    ("lr", -0.1), ("lr", float("nan")), ("momentum", 1.0), ("momentum", -0.1), ("rho", 1.0), ("rho", -0.5),
    ("betas", (1.0, 0.9)), ("betas", (0.9, -0.1)), ("betas", (0.9,)), ("betas", 0.9),
    ("eps", 0.0), ("eps", -1e-8), ("weight_decay", -1.0), ("l1", -0.01), ("eps_inside_sqrt", "yes"),
]


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v}" for f, v in BAD])
def test_bad_hyperparameters_are_rejected_with_the_field_named(field, value):
    prefix = field.split("[")[0]
    tried = 0
    for name in FIRST_ORDER_NAMES:
        if field not in ravine.optim.info(name).defaults:
            continue
        tried += 1
        w = torch.nn.Parameter(torch.ones(2))
        with pytest.raises(HyperparameterError, match=prefix):
            ravine.optim.create(name, [w], **{field: value})
        with pytest.raises(HyperparameterError, match=prefix):  # in a param group
            ravine.optim.create(name, [{"params": [w], field: value}])
        opt = ravine.optim.create(name, [w])
        with pytest.raises(HyperparameterError, match=prefix):  # in a group added later
            opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))], field: value})
    assert tried


def test_unknown_hyperparameter_and_empty_params():
    with pytest.raises(HyperparameterError, match="momentum"):
        ravine.optim.create("adam", [torch.nn.Parameter(torch.ones(1))], momentum=0.9)
    with pytest.raises(HyperparameterError, match="params"):
        ravine.optim.create("momentum", [])


@pytest.mark.parametrize(("name", "hyper"), [("sgd", {}), ("rmsprop", {"eps_inside_sqrt": False})])
def test_torch_momentum_key_cannot_switch_on_torchs_heavy_ball(name, hyper):
    """torch's SGD / RMSprop groups carry a ``momentum`` key; a schedule writing it must not
    silently change the rule."""
    w = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(HyperparameterError, match="momentum"):
        ravine.optim.create(name, [{"params": [w], "momentum": 0.5}], **hyper)
    opt = ravine.optim.create(name, [w], **hyper)
    opt.param_groups[0]["momentum"] = 0.5
    w.grad = torch.ones(2)
    with pytest.raises(HyperparameterError, match="momentum"):
        opt.step()


def test_step_hooks_run_once_per_step():
    """ravine's step wraps torch's; torch's own step may itself be hook-wrapped (after any plain
    torch instance exists), and the hooks must still run once."""
    torch.optim.Adam([torch.nn.Parameter(torch.ones(1))])  # makes torch hook-wrap Adam.step
    w = torch.nn.Parameter(torch.ones(2))
    opt = ravine.optim.create("adam", [w])
    calls = []
    opt.register_step_post_hook(lambda *_: calls.append(1))
    w.grad = torch.ones(2)
    opt.step()
    assert len(calls) == 1


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "kernels"])
@pytest.mark.parametrize("name", ["momentum", "nesterov", "rmsprop"])
def test_cache_chunking_changes_no_bit(helpers, name, fused, monkeypatch):
    """The rules written here cut CPU work into cache-sized views; with tiny chunks (tensors split
    mid-way, several per call) foreach ops give a trajectory bit-identical to one call per step.
    torch's fused kernels round their vectorized body and their scalar tail differently, so
    there the split moves the last bits only."""
    runs = []
    for chunk in (1 << 30, 5):
        monkeypatch.setattr(first_order, "CPU_CHUNK", chunk)
        problem = helpers.random_problem(SHAPES, torch.float32, seed=4)
        params, opt = build(name, problem, {"lr": 0.05}, {"lr": 0.02, **REG})
        for group in opt.param_groups:
            group["fused"] = fused
        for _ in range(5):
            opt.step(helpers.loss_closure(opt, params, problem.loss))
        runs.append([p.detach().clone() for p in params])
    for p, q in zip(*runs, strict=True):
        if fused:
            torch.testing.assert_close(p, q, rtol=TOL[torch.float32], atol=TOL[torch.float32])
        else:
            assert torch.equal(p, q)


@pytest.mark.parametrize("name", ["sgd", "adam", "adagrad"])
def test_l1_under_grad_scaler_matches_the_unscaled_run(name):
    """GradScaler hands fused kernels scaled gradients; the L1 term must be scaled with them."""
    runs = []
    for enabled in (False, True):
        w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
        opt = ravine.optim.create(name, [w], lr=0.1, l1=0.3)
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, enabled=enabled)
        for _ in range(3):
            opt.zero_grad()
            scaler.scale(0.01 * (w**2).sum()).backward()
            scaler.step(opt)
            scaler.update()
        runs.append(w.detach())
    torch.testing.assert_close(runs[1], runs[0], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- torch's fused kernels under the rules written here

RULES_HERE = {"momentum": first_order.Momentum, "nesterov": first_order.Nesterov, "rmsprop": first_order.RMSProp}
HERE_CASES = [c for c in CASES if c[0] in RULES_HERE and c[1].get("eps_inside_sqrt", True)]


def kernel_switching_hyper(opt):
    """Per step: ε = 2⁻ᵏ (exact for the fused SGD kernel in float64 too), an ε with low bits, or 0; δ changes
    every other step; ``fused`` is off every third step — so runs switch between kernel and foreach ops."""
    factors = [1.0, 0.7, 0.5, 0.0, 2.0, 0.3]

    def step_hyper(t, bases):
        out = []
        for group, base in zip(opt.param_groups, bases, strict=True):
            lr = 2.0 ** round(math.log2(base["lr"])) * factors[t % len(factors)]
            eps = base.get("eps", 1.0) * (1 + t % 2)
            group.update(lr=lr, eps=eps, fused=t % 3 != 2)
            out.append({**base, "lr": lr, "eps": eps})
        return out

    return step_hyper


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "top", "group1"), HERE_CASES, ids=[c[0] for c in HERE_CASES])
def test_rules_written_here_match_the_oracle_switching_between_kernel_and_foreach(
        helpers, kernel_calls, name, top, group1, dtype, layout):
    """Same oracle, while ε (including 0), δ and the kernel change from step to step; a transposed
    (non-contiguous) parameter keeps its group on foreach ops."""
    problem = helpers.random_problem(SHAPES, dtype, seed=7)
    params, opt = build(name, problem, top, group1)
    if layout == "transposed":
        params[1].data = params[1].data.t().contiguous().t()
    assert_matches_oracle(helpers, name, params, opt, problem, oracle_hyper(name, top, group1),
                          kernel_switching_hyper(opt), dtype)
    assert fused_calls(kernel_calls) > 0


@pytest.mark.parametrize("name", list(RULES_HERE))
def test_fused_kernel_runs_on_cpu_and_can_be_turned_off(kernel_calls, name):
    for fused, expected in ((True, 1), (False, 0)):
        w = torch.nn.Parameter(torch.ones(3))
        opt = RULES_HERE[name]([w], lr=0.1, fused=fused)
        w.grad = torch.ones(3)
        before = fused_calls(kernel_calls)
        opt.step()
        assert fused_calls(kernel_calls) - before == expected
    with pytest.raises(HyperparameterError, match="fused"):
        RULES_HERE[name]([w], fused="yes")


def test_momentum_kernel_takes_alpha_zero_and_lr_zero(kernel_calls):
    """α = 0 (the kernel would drop its buffer: foreach) is plain GD; ε = 0 (kernel) still moves θ by α v."""
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = first_order.Momentum([w], lr=0.5, momentum=0.0)
    w.grad = torch.tensor([1.0, 1.0])
    opt.step()
    assert torch.equal(w.detach(), torch.tensor([0.5, -2.5]))
    opt.param_groups[0].update(momentum=0.5, lr=0.0)
    opt.step()  # v = 0.5 · (−0.5) − 0 · g
    assert torch.equal(opt.state[w]["velocity"], torch.tensor([-0.25, -0.25]))
    assert torch.equal(w.detach(), torch.tensor([0.25, -2.75]))
    assert kernel_calls["_fused_sgd_"] == 1


@pytest.mark.parametrize("fused", [True, False])
def test_rmsprop_state_reads_back_r_and_the_callers_gradient_is_unchanged(fused):
    """The kernel's first moment is the gradient tensor itself: 0 · g + 1 · g leaves its values as they were."""
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.randn(1000, generator=gen))
    opt = first_order.RMSProp([w], lr=0.01, rho=0.8, eps=1e-3, fused=fused)
    r = torch.zeros(1000)
    for t in range(3):
        grad = torch.randn(1000, generator=gen) * 10.0**-t
        kept = grad.clone()
        w.grad = grad
        opt.step()
        assert w.grad is grad and torch.equal(grad, kept)
        r = 0.8 * r + 0.2 * kept * kept
        torch.testing.assert_close(opt.squared_grad_avg()[0], r, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", list(RULES_HERE))
def test_resume_mid_run_while_switching_kernels_is_bit_identical(helpers, name):
    """As the round-trip test above, in float64 with ε, δ and the kernel changing every step."""
    top, group1 = next((t, g) for n, t, g in HERE_CASES if n == name)
    hypers = oracle_hyper(name, top, group1)

    def run(params, opt, steps, start):
        step_hyper = kernel_switching_hyper(opt)
        for t in range(start, start + steps):
            step_hyper(t, [hypers[0], hypers[SPLIT]])
            opt.step(helpers.loss_closure(opt, params, problem.loss))

    problem = helpers.random_problem(SHAPES, torch.float64, seed=2)
    params, opt = build(name, problem, top, group1)
    run(params, opt, 5, 0)
    saved = copy.deepcopy((opt.state_dict(), [p.detach().clone() for p in params]))
    problem.start = saved[1]
    params2, opt2 = build(name, problem, top, group1)
    opt2.load_state_dict(saved[0])
    run(params, opt, 7, 5)
    run(params2, opt2, 7, 5)
    for p, q in zip(params, params2, strict=True):
        assert torch.equal(p, q)
