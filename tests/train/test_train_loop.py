"""ravine.train.fit: minibatches, history, full batch, closures, divergence."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from train_helpers import classification, regression

from ravine.errors import ClosureError, ConfigError, DivergenceError
from ravine.train import Callback, fit, load_checkpoint


def _recording(inst, seen):
    """Wrap the loss so every training call records the targets it saw (targets = sample ids)."""
    base = inst.loss_fn

    def loss_fn(out, y):
        if torch.is_grad_enabled():
            seen.append(y.clone())
        return base(out, y)

    inst.loss_fn = loss_fn
    return inst


def _id_problem(n=50):
    inst = regression(n=n)
    # Targets are the sample ids, so the batches show which samples were drawn.
    ids = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    inst.data.y_train = ids
    return inst


def test_shuffle_covers_every_sample_once_per_epoch_and_is_seeded():
    orders = []
    for seed in (0, 0, 1):
        seen: list[torch.Tensor] = []
        inst = _recording(_id_problem(), seen)
        fit(inst, torch.optim.SGD(inst.model.parameters(), lr=1e-4), epochs=3, batch_size=8, seed=seed)
        assert len(seen) == 3 * 7  # ceil(50 / 8) batches per epoch
        assert [len(b) for b in seen[:7]] == [8] * 6 + [2]
        epochs = [torch.cat(seen[7 * e:7 * (e + 1)]).flatten() for e in range(3)]
        for order in epochs:
            assert sorted(order.long().tolist()) == list(range(50))
        assert not torch.equal(epochs[0], epochs[1])  # reshuffled each epoch
        orders.append(torch.cat(epochs))
    assert torch.equal(orders[0], orders[1])
    assert not torch.equal(orders[0], orders[2])


def test_history_format_and_ema():
    inst = classification()
    result = fit(inst, torch.optim.Adam(inst.model.parameters(), lr=0.01),
                 epochs=3, batch_size=32, ema=0.8, eval_every=2)
    h = result.history
    assert set(h.to_json()) >= {"iteration", "epoch", "test", "status", "message", "wall_time", "metric_name",
                                "higher_is_better"}
    it, ep = h.iterations, h.epochs
    assert it.grad_evals == pytest.approx([(i + 1) / 3 for i in range(9)])  # 32 of 96 rows per step
    assert it.time == sorted(it.time)
    assert it["step"] == list(range(1, 10))
    assert it["epoch"] == pytest.approx([(i + 1) / 3 for i in range(9)])
    assert all(len(v) == 9 for v in it.values())
    assert it["lr"] == [0.01] * 9 and it["momentum"] == [0.9] * 9  # Adam: betas[0]
    ema = it["loss"][0]
    for raw, smooth in zip(it["loss"], it["loss_ema"], strict=True):
        ema = 0.8 * ema + 0.2 * raw
        assert smooth == pytest.approx(ema)
    assert ep["epoch"] == [0, 1, 2, 3] and ep["iteration"] == [0, 3, 6, 9]
    assert all(len(v) == 4 for v in ep.values())
    assert ep["time"] == sorted(ep["time"])
    assert h["eval"]["step"] == [2, 4, 6, 8]
    assert h["status"] == "ok" and h["metric_name"] == "accuracy" and h["higher_is_better"] is True
    # Epoch rows are eval-mode measurements on the whole split: recompute the last one independently.
    with torch.no_grad():
        out = result.model(inst.data.X_val)
        assert ep["val_loss"][-1] == pytest.approx(float(torch.nn.functional.cross_entropy(out, inst.data.y_val)))
        out = result.model(inst.data.X_test)
        assert h["test"]["metric"] == pytest.approx(float((out.argmax(1) == inst.data.y_test).float().mean()))


def test_test_split_is_touched_only_at_the_end():
    inst = classification()
    test_ptr = inst.data.y_test.data_ptr()
    calls = []
    base = inst.metric_fn
    inst.metric_fn = lambda out, y: calls.append(y.data_ptr() == test_ptr) or base(out, y)
    fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.1), epochs=2, batch_size=16)
    assert calls[-1] is True and sum(calls) == 1


def test_full_batch_is_gradient_descent():
    inst = regression()
    model0 = copy.deepcopy(inst.model)
    result = fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.1), epochs=3, batch_size=None)
    assert result.history["iteration"]["step"] == [1, 2, 3]
    # Oracle: θ ← θ − ε ∇L(θ) on the whole training split, three times.
    X, y = inst.data.X_train, inst.data.y_train
    params = [p.detach().clone().requires_grad_() for p in model0.parameters()]
    first_loss = None
    for _ in range(3):
        loss = ((X @ params[0].T + params[1] - y) ** 2).sum() / (2 * len(y))
        first_loss = first_loss if first_loss is not None else float(loss.detach())
        grads = torch.autograd.grad(loss, params)
        params = [(p - 0.1 * g).detach().requires_grad_() for p, g in zip(params, grads, strict=True)]
    assert result.history["iteration"]["loss"][0] == pytest.approx(first_loss)
    for got, want in zip(result.model.parameters(), params, strict=True):
        torch.testing.assert_close(got, want.detach())


class _Dummy(torch.optim.Optimizer):
    """Plain gradient descent that checks what the trainer hands to ``step`` for one closure kind."""

    def __init__(self, params, kind, lr=0.1):
        super().__init__(params, {"lr": lr})
        self.kind, self.closure_values = kind, []

    def step(self, closure=None):
        params = [p for g in self.param_groups for p in g["params"]]
        if self.kind == "none":
            assert closure is None and all(p.grad is not None for p in params)
            grads = [p.grad for p in params]
        elif self.kind == "loss":
            loss = closure()
            assert all(p.grad is not None for p in params)  # the closure ran backward
            grads = [p.grad for p in params]
            self.closure_values.append(float(loss.detach()))
        else:
            out = closure()
            assert all(p.grad is None for p in params)  # no backward inside the closure
            loss = 0.5 * out.square().sum() if self.kind == "residual" else out
            assert out.ndim == (1 if self.kind == "residual" else 0)
            grads = torch.autograd.grad(loss, params)
            self.closure_values.append(float(loss.detach()))
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= self.param_groups[0]["lr"] * g


@pytest.mark.parametrize("kind", ["none", "loss", "graph", "residual"])
def test_closure_kinds_give_the_same_gradient_descent(kind):
    reference = regression()
    want = fit(reference, torch.optim.SGD(reference.model.parameters(), lr=0.1), epochs=2, batch_size=20)
    inst = regression()
    opt = _Dummy(inst.model.parameters(), kind)
    got = fit(inst, opt, epochs=2, batch_size=20, closure=kind)
    for a, b in zip(got.final_params.values(), want.final_params.values(), strict=True):
        torch.testing.assert_close(a, b)
    assert got.history["iteration"]["loss"] == pytest.approx(want.history["iteration"]["loss"])
    if kind != "none":
        assert opt.closure_values == pytest.approx(got.history["iteration"]["loss"])


def test_residual_closure_without_residual_fn_is_refused():
    inst = classification()
    with pytest.raises(ClosureError, match="residual"):
        fit(inst, _Dummy(inst.model.parameters(), "residual"), epochs=1, closure="residual")


def _one_per_closure_kind() -> list[str]:
    """The registry drives it: the first optimizer of every closure kind (a kind with none fails below)."""
    import ravine.optim

    first: dict[str, str] = {}
    for name in ravine.optim.names():
        first.setdefault(ravine.optim.info(name).closure, name)
    return [first.get(kind, f"<no optimizer with closure {kind}>") for kind in ("none", "loss", "graph", "residual")]


@pytest.mark.parametrize("name", ["sgd", "line-search-gd", "newton", "lbfgs", *_one_per_closure_kind()])
def test_registry_optimizers_by_name(name):
    import ravine.optim

    entry = ravine.optim.info(name)  # a renamed optimizer fails here instead of skipping
    inst = regression()
    result = fit(inst, name, epochs=2, batch_size=None if entry.full_batch else 20)
    h = result.history
    assert h["status"] == "ok"
    assert h["epoch"]["train_loss"][-1] < 0.5 * h["epoch"]["train_loss"][0]
    if entry.train_lr is not None:
        assert h["iteration"]["lr"][0] == entry.train_lr


class _BlowUpAfter(Callback):
    """Raise the learning rate enormously after ``epoch`` so that the next epoch diverges."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, state):
        if state.epoch == self.epoch:
            state.optimizer.param_groups[0]["lr"] = 1e12


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    inst = regression()
    result = fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.05), epochs=6, batch_size=20,
                 out_dir=tmp_path, callbacks=[_BlowUpAfter(2)])
    h = result.history
    last = h["iteration"]["step"][-1]
    assert h["status"] == "diverged" and h["test"] is None
    assert h["message"].startswith(f"diverged at epoch 3, iteration {last}: loss = ")
    bad = h["iteration"]["loss"][-1]
    assert not math.isfinite(bad) or bad > 1e6 * h["iteration"]["loss"][0]
    assert h["epoch"]["epoch"] == [0, 1, 2]
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 2
    # Oracle: the same run stopped after 2 epochs.
    ref = regression()
    want = fit(ref, torch.optim.SGD(ref.model.parameters(), lr=0.05), epochs=2, batch_size=20)
    for name, value in want.final_params.items():
        assert torch.equal(ckpt["model"][name], value)


def test_divergence_raises_when_asked():
    inst = regression()
    with pytest.raises(DivergenceError, match=r"diverged at epoch 1, iteration \d+: loss = "):
        fit(inst, torch.optim.SGD(inst.model.parameters(), lr=1e9), epochs=3, batch_size=20,
            raise_on_divergence=True)


def test_bad_arguments_are_refused():
    inst = regression(n=30)
    opt = torch.optim.SGD(inst.model.parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="batch_size"):
        fit(inst, opt, epochs=1, batch_size=31)
    with pytest.raises(ConfigError, match="ema"):
        fit(inst, opt, epochs=1, ema=1.0)
    with pytest.raises(ConfigError, match="epochs"):
        fit(inst, opt, epochs=-1)


def test_callbacks_can_stop_and_see_every_iteration():
    class Stop(Callback):
        def __init__(self):
            self.steps = []

        def on_iteration_end(self, state):
            self.steps.append(state.iteration)

        def on_epoch_end(self, state):
            state.stop = state.epoch == 2

    inst = classification()
    cb = Stop()
    progress = []
    result = fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.1), epochs=5, batch_size=32,
                 callbacks=[cb], progress=lambda done, total, info: progress.append((done, total)))
    assert result.history["epoch"]["epoch"] == [0, 1, 2]
    assert cb.steps == list(range(1, 7))
    assert progress[0] == (0, 15) and progress[-1] == (6, 15)


def test_global_rng_is_left_alone():
    inst = classification(dropout=0.5)  # (building the model draws from the global RNG; fit must not)
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.1), epochs=1, batch_size=32)
    assert torch.equal(torch.rand(3), want)


def test_named_problem_uses_its_defaults():
    from ravine import problems

    recipe = problems.get("breast-cancer-logreg")
    result = fit("breast-cancer-logreg", "sgd", epochs=1, seed=0, device="cpu")
    inst = recipe.build(seed=0)
    batches = len(inst.data.X_train) if recipe.batch_size is None else -(-len(inst.data.X_train) // recipe.batch_size)
    assert result.history["iteration"]["step"][-1] == batches
    assert result.history["metric_name"] == inst.metric_name
    assert result.history.iterations.lr[0] == recipe.lr["sgd"]  # the problem's own table
    assert result.spec.lr == recipe.lr["sgd"] and result.spec.lr_source == "problem"
    assert result.spec.batch_size == recipe.batch_size and result.spec.epochs == 1


def test_parts_and_misplaced_arguments():
    inst = regression()
    parts = (inst.model, inst.data, inst.loss_fn)
    result = fit(parts, torch.optim.SGD(inst.model.parameters(), lr=1.0), lr=0.05, epochs=1, batch_size=None)
    assert result.history["iteration"]["lr"] == [0.05]
    with pytest.raises(ConfigError, match="hyper"):
        fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.1), hyper={"momentum": 0.9}, epochs=1)
    with pytest.raises(ConfigError, match="problem_options"):
        fit(inst, torch.optim.SGD(inst.model.parameters(), lr=0.1), problem_options={"standardize": False})


def test_iteration_schedule_moves_the_recorded_momentum():
    inst = classification()
    opt = torch.optim.SGD(inst.model.parameters(), lr=0.05, momentum=0.5)
    result = fit(inst, opt, epochs=2, batch_size=16, schedule={"name": "sutskever-momentum", "period": 2})
    recorded = result.history["iteration"]["momentum"]
    # Oracle (Sutskever et al. 2013): α_t = min(1 − 2^(−1 − log2(⌊t/period⌋ + 1)), 0.99), t = steps so far.
    want = [min(1 - 2 ** (-1 - math.log2(t // 2 + 1)), 0.99) for t in range(len(recorded))]
    assert recorded == pytest.approx(want)


def test_halve_on_plateau_gets_the_validation_error():
    inst = classification(n=48)
    opt = torch.optim.SGD(inst.model.parameters(), lr=3.0)
    result = fit(inst, opt, epochs=8, batch_size=8, schedule={"name": "halve-on-plateau"})
    ep = result.history["epoch"]
    errors = [1 - m for m in ep["val_metric"]]
    halvings = 0
    for e in range(2, 8):  # the step after epoch e sets the lr used in epoch e + 1
        rose = errors[e] > errors[e - 1]
        halvings += rose
        assert ep["lr"][e + 1] == pytest.approx(ep["lr"][e] * (0.5 if rose else 1.0))
    assert ep["lr"][2] == ep["lr"][1] == 3.0
    assert halvings >= 1


class _BreaksOnStep(torch.optim.SGD):
    """SGD that writes inf into the weights on one given step (after its loss was computed, finite)."""

    def __init__(self, params, lr, bad_step):
        super().__init__(params, lr=lr)
        self.count, self.bad_step = 0, bad_step

    def step(self, closure=None):
        super().step(closure)
        self.count += 1
        if self.count == self.bad_step:
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        p.fill_(math.inf)


def test_weights_broken_by_an_epochs_last_step_are_never_checkpointed(tmp_path):
    inst = regression()  # 60 samples, batch 20: steps 4-6 are epoch 2
    opt = _BreaksOnStep(inst.model.parameters(), lr=0.05, bad_step=6)
    h = fit(inst, opt, epochs=4, batch_size=20, out_dir=tmp_path).history
    assert h["status"] == "diverged"
    assert h["message"].startswith("diverged at epoch 2, iteration 6: train loss after the epoch = ")
    assert all(math.isfinite(v) for v in h["iteration"]["loss"])  # no minibatch loss saw it
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())


def test_nesterov_is_evaluated_at_theta_not_at_the_lookahead_point() -> None:
    # ravine's Nesterov stores φ = θ + αv in the parameters; reported losses must be L(θ).
    import torch

    from ravine.problems import get
    from ravine.train import Callback, fit

    seen: dict = {}

    class Grab(Callback):
        def on_epoch_end(self, state) -> None:
            seen["theta"] = [t.clone() for t in state.optimizer.theta()]
            seen["phi"] = [p.detach().clone() for p in state.model.parameters()]

    inst = get("diabetes-linreg").build(seed=0)
    res = fit(inst, "nesterov", epochs=2, lr=0.01, hyper={"momentum": 0.9}, callbacks=[Grab()])
    assert any(not torch.equal(a, b) for a, b in zip(seen["theta"], seen["phi"], strict=True))
    d = inst.data
    with torch.no_grad():
        for p, t in zip(inst.model.parameters(), seen["theta"], strict=True):
            p.copy_(t)
        oracle = float(inst.loss_fn(inst.model(d.X_val), d.y_val))
    assert abs(res.history["epoch"]["val_loss"][-1] - oracle) < 1e-6
