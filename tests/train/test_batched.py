"""Batched runs: each member must end where the same run trained alone ends (the oracle is ravine.train.fit)."""

from __future__ import annotations

import warnings

import torch

from ravine import problems
from ravine.models import cnn, mlp
from ravine.models.ensemble import ensemble, ensemble_kind
from ravine.train import fit, make_instance
from ravine.train.batched import RunConfig, batched_loss, fit_batched

RUNS = [
    RunConfig("sgd", lr=0.05),
    RunConfig("momentum", lr=0.01, hyper={"momentum": 0.8}),
    RunConfig("nesterov", lr=0.01),
    RunConfig("adagrad", lr=0.05),
    RunConfig("rmsprop", lr=1e-3, schedule={"name": "step", "every": 1, "factor": 0.5}),
    RunConfig("adam", lr=1e-3, hyper={"weight_decay": 1e-3}),
]


def _flat(params: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.flatten() for p in params.values()])


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _alone(cfg: RunConfig, dtype: torch.dtype, epochs: int) -> object:
    return fit("digits-mlp", cfg.optimizer, lr=cfg.lr, hyper=dict(cfg.hyper), schedule=cfg.schedule, epochs=epochs,
               seed=3, dtype=dtype, tensorboard=False)


def test_each_batched_run_matches_the_run_trained_alone_float32() -> None:
    res = fit_batched("digits-mlp", RUNS, epochs=2, seed=3)
    assert res.mode == "baddbmm"
    for cfg, run in zip(RUNS, res.runs, strict=True):
        alone = _alone(cfg, torch.float32, 2)
        assert _rel(_flat(run.final_params), _flat(alone.final_params)) < 1e-4, cfg.optimizer
        assert run.history["epoch"]["val_metric"] == alone.history["epoch"]["val_metric"], cfg.optimizer
        assert run.history["test"]["metric"] == alone.history["test"]["metric"]
        assert len(run.history["iteration"]["loss"]) == len(alone.history["iteration"]["loss"])
        assert run.history["iteration"]["lr"] == alone.history["iteration"]["lr"]


def test_each_batched_run_matches_the_run_trained_alone_float64() -> None:
    runs = RUNS[1::2]
    res = fit_batched("digits-mlp", runs, epochs=1, seed=3, dtype=torch.float64)
    for cfg, run in zip(runs, res.runs, strict=True):
        alone = _alone(cfg, torch.float64, 1)
        assert _rel(_flat(run.final_params), _flat(alone.final_params)) < 1e-9, cfg.optimizer


def test_a_diverging_run_stops_alone_and_the_others_finish() -> None:
    res = fit_batched("digits-mlp", [RunConfig("sgd", lr=1e4), RunConfig("adam", lr=1e-3)], epochs=2)
    bad, good = res.runs
    assert bad.history["status"] == "diverged" and "diverged at epoch 1" in bad.history["message"]
    assert good.history["status"] == "ok" and good.history["epoch"]["epoch"] == [0, 1, 2]
    alone = fit("digits-mlp", "adam", lr=1e-3, epochs=2, tensorboard=False)
    assert _rel(_flat(good.final_params), _flat(alone.final_params)) < 1e-4


def test_runs_with_fewer_epochs_stop_earlier() -> None:
    res = fit_batched("digits-mlp", [RunConfig("sgd", lr=0.05, epochs=1), RunConfig("sgd", lr=0.05)], epochs=2)
    assert res.runs[0].history["epoch"]["epoch"] == [0, 1]
    assert res.runs[1].history["epoch"]["epoch"] == [0, 1, 2]
    alone = fit("digits-mlp", "sgd", lr=0.05, epochs=1, tensorboard=False)
    assert _rel(_flat(res.runs[0].final_params), _flat(alone.final_params)) < 1e-4


def test_dropout_draws_differ_per_run() -> None:
    # two identical configurations: with dropout only the masks can tell them apart
    res = fit_batched("digits-mlp", [RunConfig("sgd", lr=0.05), RunConfig("sgd", lr=0.05)], epochs=1,
                      problem_options={"dropout": 0.5})
    a, b = (_flat(r.final_params) for r in res.runs)
    assert not torch.equal(a, b)
    no_drop = fit_batched("digits-mlp", [RunConfig("sgd", lr=0.05), RunConfig("sgd", lr=0.05)], epochs=1)
    assert torch.equal(*(_flat(r.final_params) for r in no_drop.runs))


def test_batchnorm_falls_back_to_one_at_a_time_and_says_why() -> None:
    res = fit_batched("digits-mlp", ["sgd", "adam"], epochs=1, problem_options={"norm": "batch"})
    assert res.mode == "sequential" and "BatchNorm1d" in res.message
    alone = fit("digits-mlp", "adam", epochs=1, problem_options={"norm": "batch"}, tensorboard=False)
    assert torch.equal(_flat(res.runs[1].final_params), _flat(alone.final_params))


def test_closure_optimizers_run_one_at_a_time() -> None:
    res = fit_batched("breast-cancer-logreg", ["sgd", "lbfgs"], epochs=1)
    assert res.mode == "sequential" and "lbfgs" in res.message


def test_cnn_runs_through_vmap_and_matches() -> None:
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(40, 64, generator=g), torch.randint(0, 10, (40,), generator=g)
    model = cnn((1, 8, 8), 10, channels=(4,), hidden=8, seed=1)
    assert ensemble_kind(model)[0] == "vmap"
    inst = make_instance(model, (X, y, X, y, X, y), problems.cross_entropy, metric_fn=problems.accuracy)
    res = fit_batched(inst, [RunConfig("adam", lr=1e-2), RunConfig("sgd", lr=0.1, init=cnn((1, 8, 8), 10,
                                                                                               channels=(4,), hidden=8,
                                                                                               seed=2))],
                      epochs=2, batch_size=8)
    assert res.mode == "vmap"
    for cfg, run, init_seed in zip(("adam", "sgd"), res.runs, (1, 2), strict=True):
        inst2 = make_instance(cnn((1, 8, 8), 10, channels=(4,), hidden=8, seed=init_seed), (X, y, X, y, X, y),
                              problems.cross_entropy, metric_fn=problems.accuracy)
        alone = fit(inst2, cfg, lr=1e-2 if cfg == "adam" else 0.1, epochs=2, batch_size=8, tensorboard=False)
        assert _rel(_flat(run.final_params), _flat(alone.final_params)) < 1e-4


def test_ensemble_forward_and_losses_match_each_model() -> None:
    nets = [mlp([5, 7, 3], activation=act, norm=norm, seed=s)
            for s, (act, norm) in enumerate([("prelu", "layer")] * 3)]
    ens = ensemble(nets)
    x, y = torch.randn(4, 5), torch.randint(0, 3, (4,))
    out = ens(x)
    for i, net in enumerate(nets):
        torch.testing.assert_close(out[i], net(x))
        torch.testing.assert_close(batched_loss(problems.cross_entropy)(out, y)[i], problems.cross_entropy(net(x), y))
    yr = torch.randn(4, 3)
    torch.testing.assert_close(batched_loss(problems.mse)(out, yr)[1], ((out[1] - yr) ** 2).mean())
    custom = batched_loss(lambda o, t: (o - t).abs().mean())  # any other loss: vmap
    torch.testing.assert_close(custom(out, yr)[2], (out[2] - yr).abs().mean())


def test_compare_batched_matches_compare_sequential() -> None:
    import numpy as np

    from ravine.compare import compare

    names = ["sgd", "momentum", "adam", "lbfgs"]  # lbfgs: a full-batch closure method, trained alone
    batched = compare("digits-mlp", names, epochs=1, device="cpu")
    alone = compare("digits-mlp", names, epochs=1, device="cpu", sequential=True)
    for name in names:
        a, b = batched.runs[name], alone.runs[name]
        assert a.history.epochs.val_metric == b.history.epochs.val_metric, name
        np.testing.assert_allclose(a.history.iterations.loss, b.history.iterations.loss, rtol=1e-4)
        ea, eb = a.extras["effective_step"], b.extras["effective_step"]
        assert ea["step"] == eb["step"] and ea["epoch_end_step"] == eb["epoch_end_step"]
        np.testing.assert_allclose(ea["value"], eb["value"], rtol=1e-3)


def test_a_learning_rate_sweep_updated_as_one_stack_matches_each_run_alone() -> None:
    # Adam, SGD and AdaGrad runs skip Optimizer.step (Adam and SGD runs that differ only in ε are one
    # stack off the CPU); the oracle is each run trained alone by ravine.train.fit (torch's fused kernels)
    sweep = [RunConfig("adam", lr=lr, hyper={"weight_decay": 1e-3}) for lr in (3e-4, 1e-3, 3e-3)]
    sweep += [RunConfig("adam", lr=1e-3, hyper={"weight_decay": 1e-3}, schedule={"name": "step", "every": 1,
                                                                                 "factor": 0.5})]
    sweep += [RunConfig("sgd", lr=lr) for lr in (0.02, 0.05)] + [RunConfig("adagrad", lr=0.03)]
    sweep += [RunConfig("adam", lr=2e-3, epochs=1), RunConfig("adam", lr=5e-4)]  # one stops: the stack splits
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "lr_scheduler.step() before optimizer.step()"
        res = fit_batched("digits-mlp", sweep, epochs=2, seed=3)
    for cfg, run in zip(sweep, res.runs, strict=True):
        alone = _alone(cfg, torch.float32, cfg.epochs or 2)
        assert _rel(_flat(run.final_params), _flat(alone.final_params)) < 1e-5, cfg
        assert run.history["iteration"]["lr"] == alone.history["iteration"]["lr"]
        if cfg.optimizer == "adam":  # the optimizer's own state: the run's own tensors, at the run's step
            state = run.optimizer.state_dict()["state"]
            assert float(state[0]["step"]) == len(run.history["iteration"]["loss"])
            for p in run.optimizer.param_groups[0]["params"]:
                m = run.optimizer.state[p]["exp_avg"]
                assert m.untyped_storage().nbytes() == m.numel() * m.element_size()


def test_fused_loss_and_grad_equals_autograd_for_each_activation_and_loss() -> None:
    # oracle: torch.autograd on each member alone
    from torch import nn

    acts = [nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.LeakyReLU(0.1), nn.ELU(0.7), nn.GELU("tanh"), nn.SiLU(),
            nn.Identity()]
    gen = torch.Generator().manual_seed(0)
    for act in acts:
        for loss, out_dim in (("cross_entropy", 4), ("mse", 2), ("bce", 1)):
            torch.manual_seed(1)
            nets = [nn.Sequential(nn.Linear(5, 7), act, nn.Linear(7, 6, bias=False), act, nn.Linear(6, out_dim))
                    .double() for _ in range(3)]
            x = torch.randn(9, 5, generator=gen, dtype=torch.float64)
            y = {"cross_entropy": torch.randint(0, 4, (9,), generator=gen),
                 "mse": torch.randn(9, 2, generator=gen, dtype=torch.float64),
                 "bce": torch.randint(0, 2, (9,), generator=gen).double()}[loss]
            fn = getattr(problems, loss)
            ens = ensemble(nets)
            losses = ens.loss_and_grad(x, y, loss)
            for k, net in enumerate(nets):
                value = fn(net(x), y)
                grads = torch.autograd.grad(value, list(net.parameters()))
                torch.testing.assert_close(losses[k], value.detach())
                for stacked, g in zip(ens.stacked, grads, strict=True):
                    torch.testing.assert_close(stacked.grad[k], g)


def test_fused_step_refuses_models_it_has_no_form_for() -> None:
    import pytest

    from ravine.errors import ConfigError

    ens = ensemble([mlp([4, 8, 3], dropout=0.5, seed=s) for s in range(2)])
    assert not ens.has_fused_step
    with pytest.raises(ConfigError, match="Invalid ensemble for a fused step"):
        ens.loss_and_grad(torch.randn(5, 4), torch.zeros(5, dtype=torch.long), "cross_entropy")


def test_the_foreach_stack_used_off_the_cpu_matches_each_run_alone() -> None:
    # off the CPU (no fused CPU kernels) Adam / SGD runs that differ in ε are one stack of foreach ops with
    # ε a per-run factor: the fused kernel's arithmetic, equal to the run alone to rounding
    import pytest

    from ravine.optim import first_order

    sweep = [RunConfig("adam", lr=lr) for lr in (3e-4, 1e-3, 3e-3)]
    sweep += [RunConfig("sgd", lr=lr) for lr in (0.02, 0.05)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(first_order, "fused_cpu_tensors", lambda lists: False)
        res = fit_batched("digits-mlp", sweep, epochs=1, seed=3)
    for cfg, run in zip(sweep, res.runs, strict=True):
        alone = _alone(cfg, torch.float32, 1)
        assert _rel(_flat(run.final_params), _flat(alone.final_params)) < 1e-5, cfg
