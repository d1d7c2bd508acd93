"""Typed results and the run spec: JSON round trips through real JSON text, schema keys, old files."""

from __future__ import annotations

import json
import math

import pytest

from ravine.errors import ConfigError
from ravine.train.results import (CompareResult, EpochRows, History, IterationRows, RunResult, Summary,
                                  TestResult, TrainResult, Verdict)
from ravine.train.spec import RunSpec, resolve_batch_size, resolve_hyper, resolve_schedule, resolve_spec
from ravine.utils import write_json


def _history() -> History:
    h = History("accuracy", True)
    h.iterations.append(step=1, epoch=0.5, loss=2.3, loss_ema=2.3, lr=0.1, momentum=None, grad_evals=0.5, time=0.01)
    h.iterations.append(step=2, epoch=1.0, loss=math.inf, loss_ema=1.9, lr=0.1, momentum=None, grad_evals=1.0,
                        time=0.02)
    for e in (0, 1):
        h.epochs.append(epoch=e, iteration=2 * e, time=0.1 * e, train_loss=2.0 - e, train_metric=math.nan,
                        val_loss=2.1 - e, val_metric=0.1 + 0.5 * e, lr=0.1, grad_evals=float(e))
    h.test = TestResult(0.9, 0.6)
    h.status, h.message, h.wall_time = "diverged", "loss = inf", 0.25
    return h


def _spec() -> RunSpec:
    return RunSpec(problem="digits-mlp", optimizer="adam", lr=1e-3, batch_size=32, n_train=1078, epochs=2,
                   lr_source="registry", schedule=[{"name": "step", "every": 10, "gamma": 0.5}],
                   hyper={"betas": (0.9, 0.999), "eps": 1e-8}, closure="none", problem_options={"hidden": (128,)})


def _through_file(obj: dict, tmp_path) -> dict:
    """What a reader of the written file gets (NaN/inf become null)."""
    path = tmp_path / "x.json"
    write_json(path, obj)
    return json.loads(path.read_text())


def test_history_round_trips_through_a_json_file(tmp_path) -> None:
    h = _history()
    back = History.from_json(_through_file(h.to_json(), tmp_path))
    assert back.iterations.step == [1, 2]
    assert math.isnan(back.iterations.loss[1])  # inf was written as null: reads back as NaN, never None
    assert back.iterations.momentum == [None, None]  # "no momentum" stays None
    assert math.isnan(back.epochs.train_metric[0])
    assert back.epochs.val_metric == [0.1, 0.6]
    assert back.test == TestResult(0.9, 0.6)
    assert (back.status, back.message, back.wall_time) == ("diverged", "loss = inf", 0.25)
    assert back.metric_name == "accuracy" and back.higher_is_better is True


def test_history_keeps_the_old_dict_reads() -> None:
    h = _history()
    assert h["epoch"]["val_metric"] is h.epochs.val_metric
    assert h["iteration"]["step"] == [1, 2]
    assert h["test"]["metric"] == 0.6
    assert h["status"] == "diverged" and h.get("nothing", 7) == 7
    with pytest.raises(KeyError):
        h["iterations"]


def test_an_old_history_file_without_the_new_columns_reads() -> None:
    old = {"iteration": {"step": [1], "epoch": [1.0], "loss": [1.0], "loss_ema": [1.0], "lr": [0.1],
                         "momentum": [0.9]},
           "epoch": {"epoch": [0], "iteration": [0], "time": [0.0], "train_loss": [1.0], "train_metric": [0.5],
                     "val_loss": [1.0], "val_metric": [0.5], "lr": [0.1]},
           "eval": {"step": [], "epoch": [], "val_loss": [], "val_metric": []},
           "test": None, "status": "ok", "message": "", "wall_time": 1.0, "metric_name": "rmse",
           "higher_is_better": False}
    h = History.from_json(old)
    assert len(h.iterations) == 1 and math.isnan(h.iterations.grad_evals[0])
    assert h.test is None


def test_rows_refuse_a_partial_row() -> None:
    with pytest.raises(ValueError, match="columns"):
        EpochRows().append(epoch=0)


def test_columns_are_the_documented_schema() -> None:
    assert IterationRows.columns() == ("step", "epoch", "loss", "loss_ema", "lr", "momentum", "grad_evals", "time")
    assert set(History().to_json()) == {"iteration", "epoch", "eval", "test", "status", "message", "wall_time",
                                        "metric_name", "higher_is_better"}


def test_compare_result_round_trips(tmp_path) -> None:
    run = RunResult("adam", _spec(), _history(), Summary(status="diverged", best_val_metric=0.6, best_val_epoch=1,
                                                          epochs_to_target=None),
                    Verdict("diverged", "too large", {"train_error": 0.5}, {"curves": [1, 2]}),
                    {"effective_step": {"step": [1], "value": [0.001]}})
    res = CompareResult("digits-mlp", "accuracy", True, 0.95, math.nan, seed=3, device="cpu", epochs=2,
                        requested={"lr": {"*": 0.1}}, optimizers=["adam", "sgd"], runs={"adam": run},
                        missing=["sgd"], wall_time=1.5)
    data = _through_file(res.to_json(), tmp_path)
    assert data["schema"] == 1 and data["complete"] is False and data["missing"] == ["sgd"]
    assert data["reference_error"] is None
    back = CompareResult.from_json(data)
    assert not back.complete and back.missing == ["sgd"]
    assert math.isnan(back.reference_error)
    r = back.runs["adam"]
    assert r.spec == _spec()
    assert r.spec.hyper["betas"] == [0.9, 0.999]
    assert r.diagnosis.kind == "diverged" and r.diagnosis.extra == {"curves": [1, 2]}
    assert r.summary.best_val_epoch == 1 and r.summary.epochs_to_target is None
    assert r.effective_step == {"step": [1], "value": [0.001]}
    assert back.to_json() == CompareResult.from_json(back.to_json()).to_json()


def test_train_result_round_trips_and_draws_as_a_comparison(tmp_path) -> None:
    res = TrainResult(_spec(), _history(), Summary(), Verdict("good fit", "fine"), target=0.95, out_dir="runs/x")
    back = TrainResult.from_json(_through_file(res.to_json(), tmp_path))
    assert back.spec == res.spec and back.target == 0.95 and back.out_dir == "runs/x"
    assert list(back.as_compare().runs) == ["adam"]


# --- the run spec -------------------------------------------------------------------------------


def test_batch_size_rules() -> None:
    assert resolve_batch_size("auto", 1000, default=32) == (32, False)
    assert resolve_batch_size("auto", 5, default=32) == (5, True)  # never a number the user did not set
    assert resolve_batch_size("auto", 100, default=32, full_batch_method=True) == (100, True)
    assert resolve_batch_size("full", 7, default=32) == (7, True)
    assert resolve_batch_size(None, 7, default=32) == (7, True)
    with pytest.raises(ConfigError, match=r"Invalid batch_size: 64 \(allowed: 1 to 5"):
        resolve_batch_size(64, 5, default=32)
    with pytest.raises(ConfigError, match="batch_size"):
        resolve_batch_size("half", 5, default=32)
    with pytest.raises(ConfigError, match="batch_size"):
        resolve_batch_size(0, 5, default=32)


def test_every_hyperparameter_is_resolved_with_its_default() -> None:
    import torch

    hyper = resolve_hyper("momentum", 0.1, {})
    # the oracle: torch's own SGD defaults for a momentum optimizer
    assert hyper["momentum"] == 0.9
    adam = resolve_hyper("adam", 1e-3, {"eps": 1e-6})
    assert adam["eps"] == 1e-6 and adam["betas"] == [0.9, 0.999]
    assert "lr" not in adam
    with pytest.raises(ConfigError, match="lr"):
        resolve_hyper("adam", 1e-3, {"lr": 0.1})
    del torch


def test_schedule_defaults_are_filled() -> None:
    from ravine import schedules

    table = resolve_schedule({"name": "exponential"})
    assert table == [{"name": "exponential", **schedules.info("exponential").defaults}]
    assert resolve_schedule(None) == []


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, 1e-400, "x"])
def test_a_bad_lr_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="Invalid lr"):
        resolve_spec("digits-mlp", "sgd", lr=bad, n_train=100)  # type: ignore[arg-type]


def test_epochs_range_is_the_same_for_every_caller() -> None:
    for bad in (0, -1, 10**9):
        with pytest.raises(ConfigError, match="epochs"):
            resolve_spec("digits-mlp", "sgd", epochs=bad, n_train=100)


def test_spec_records_resolved_values() -> None:
    from ravine import optim, problems

    spec = resolve_spec("digits-mlp", "nesterov", n_train=1078)
    recipe = problems.get("digits-mlp")
    assert spec.lr == optim.info("nesterov").train_lr and spec.lr_source == "registry"
    assert spec.batch_size == recipe.batch_size and not spec.full_batch
    assert spec.epochs == recipe.epochs
    assert spec.problem_options["hidden"] == list(recipe.options["hidden"])
    assert spec.hyper["momentum"] == 0.9
    assert spec.device == "cpu" or spec.device.startswith("cuda")
    newton = resolve_spec("diabetes-linreg", "newton", n_train=264)
    assert newton.full_batch and newton.batch_size == 264 and newton.closure == "graph" and newton.ema == 0.0
    given = resolve_spec("digits-mlp", "sgd", lr=0.5, n_train=100)
    assert given.lr == 0.5 and given.lr_source == "given"


def test_unknown_problem_option_is_refused() -> None:
    with pytest.raises(ConfigError, match="Invalid option for problem 'digits-mlp': 'colour'"):
        resolve_spec("digits-mlp", "sgd", problem_options={"colour": 1}, n_train=100)


def test_older_dict_shapes_still_read() -> None:
    """Code written against the nested dicts (results["runs"][name]["summary"]) keeps working."""
    h = _history()
    old = {"problem": "toy", "target": 0.9, "epochs": 1,
           "runs": {"sgd": {"hyper": {"lr": 0.1, "momentum": 0.5}, "history": h, "summary": Summary(status="ok"),
                            "diagnosis": {"kind": "good fit", "explanation": "x"},
                            "effective_step": {"step": [1], "value": [0.1]}}}}
    res = CompareResult.from_json(old)
    run = res.runs["sgd"]
    assert run.spec.lr == 0.1 and run.spec.hyper == {"momentum": 0.5}
    assert run.history is h and run.effective_step == {"step": [1], "value": [0.1]}
    assert res.metric_name == "accuracy"
    assert res["runs"]["sgd"]["summary"]["status"] == "ok"
    assert res["runs"]["sgd"]["hyper"]["lr"] == 0.1 and res.get("metric_name") == "accuracy"
    assert res["runs"]["sgd"]["diagnosis"]["kind"] == "good fit"
