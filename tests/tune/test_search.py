"""Spaces, k-fold CV and the rule that a search never reads the test split."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest
import torch

from ravine import problems, tune
from ravine.data import Splits
from ravine.errors import RavineError


def test_kfold_validation_folds_partition_the_rows() -> None:
    y = np.arange(103) % 7
    for stratified in (False, True):
        folds = tune.kfold_indices(y, 5, stratified=stratified, seed=1)
        seen = np.concatenate([va for _, va in folds])
        assert sorted(seen.tolist()) == list(range(103))  # every row in exactly one validation fold
        for tr, va in folds:
            assert not set(tr) & set(va) and len(tr) + len(va) == 103


def test_stratified_folds_keep_class_proportions() -> None:
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    for _, va in tune.kfold_indices(y, 5, stratified=True, seed=0):
        for c, n_c in ((0, 60), (1, 30), (2, 10)):
            assert abs(int((y[va] == c).sum()) - n_c / 5) <= 1


def test_spaces_parse_and_refuse_bad_input() -> None:
    dims = tune.parse_space(["lr=1e-3:1:log:4", "momentum=0.5,0.9", "batch_size=16,32"])
    configs = tune.grid(dims)
    assert len(configs) == 16
    assert sorted({c["lr"] for c in configs}) == pytest.approx([1e-3, 1e-2, 1e-1, 1.0])
    draws = tune.random_configs(tune.parse_space(["lr=1e-4:1:log", "weight_decay=0:0.1"]), 50, seed=3)
    assert all(1e-4 <= d["lr"] <= 1 and 0 <= d["weight_decay"] <= 0.1 for d in draws)
    assert draws == tune.random_configs(tune.parse_space(["lr=1e-4:1:log", "weight_decay=0:0.1"]), 50, seed=3)
    logs = np.log10([d["lr"] for d in draws])
    assert logs.min() < -2.5 and logs.max() > -1.5  # log-uniform, not crowded at the top
    for bad in (["lr=0:1:log"], ["lr=1:0.1"], ["momentum=1.5"], ["colour=1,2"], ["lr"], ["lr=a:b"],
                ["schedule=nope"], ["lr=1e-3", "lr=1e-2"]):
        with pytest.raises(RavineError):
            tune.parse_space(bad)


def test_run_config_maps_the_space_names() -> None:
    rc = tune.run_config("adam", {"lr": 0.01, "beta2": 0.99, "weight_decay": 1e-4, "epochs": 3})
    assert rc.lr == 0.01 and rc.hyper == {"betas": (0.9, 0.99), "weight_decay": 1e-4} and rc.epochs == 3


class _Guarded(Splits):
    """Splits whose test tensors raise on any read: the instrument of the next test."""

    def __getattribute__(self, name: str) -> object:
        if name in ("X_test", "y_test"):
            raise AssertionError(f"the search read {name}")
        return super().__getattribute__(name)


def test_a_search_never_reads_the_test_split(tmp_path) -> None:
    inst = problems.get("breast-cancer-logreg").build(seed=0)
    d = inst.data
    values = {f.name: object.__getattribute__(d, f.name) for f in fields(Splits)}
    inst.data = _Guarded(**values)
    with pytest.raises(AssertionError):
        _ = inst.data.X_test  # the instrument works
    for folds in (None, 3):
        ctx = tune.prepare(inst, "sgd", folds=folds, epochs=2)
        trials = tune.evaluate(ctx, [{"lr": 0.01}, {"lr": 0.1, "batch_size": 16}])
        assert all(math.isfinite(t.score) for t in trials) and len(trials[0].folds) == (folds or 1)
    tune.log_then_fine(ctx, coarse_points=3, fine_points=2, coarse_epochs=1)
    from ravine.tune import study as st

    study, _ = st.open_study(None, "guard", higher_is_better=True, folder=tmp_path)
    st.run_tpe(ctx, study, tune.parse_space(["lr=1e-3:1:log"]), 3, batch=3)


def test_folds_train_on_train_and_validation_pooled() -> None:
    inst = problems.get("breast-cancer-logreg").build(seed=0)
    folds = tune.search_instances(inst, 4, seed=0)
    n = len(inst.data.X_train) + len(inst.data.X_val)
    for f in folds:
        assert len(f.data.X_train) + len(f.data.X_val) == n and len(f.data.X_test) == 0
    pooled = torch.cat([inst.data.X_train, inst.data.X_val])
    val_rows = torch.cat([f.data.X_val for f in folds])
    assert sorted(map(tuple, val_rows.tolist())) == sorted(map(tuple, pooled.tolist()))


def test_rerun_reports_median_and_spread() -> None:
    ctx = tune.prepare("breast-cancer-logreg", "sgd", epochs=2)
    rr = tune.rerun(ctx, {"lr": 0.05}, seeds=3)
    assert rr["seeds"] == 3 and len(rr["test_metric"]) == 3
    assert rr["val"]["median"] == pytest.approx(float(np.median(rr["val_metric"])))
    assert rr["val"]["min"] <= rr["val"]["median"] <= rr["val"]["max"]


@pytest.mark.parametrize("problem", ["breast-cancer-logreg", "digits-mlp"])
def test_rerun_says_when_every_seed_starts_from_the_same_weights(problem) -> None:
    """The oracle: the problem's models built with two seeds, compared weight by weight."""
    recipe = problems.get(problem)
    a, b = (recipe.build(seed=s).model for s in (0, 1))
    identical = all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    ctx = tune.prepare(problem, "sgd", epochs=1)
    rr = tune.rerun(ctx, {"lr": 0.05}, seeds=3)
    assert rr["same_start"] is identical
    if identical:  # then the reruns are one run repeated
        assert len(set(rr["val_metric"])) == 1 and rr["val"]["iqr"] == 0
