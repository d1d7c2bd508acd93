"""``ravine compare``: the main job, end to end on small budgets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ravine.cli import app
from ravine.compare import compare, diagnose_history, summarize
from ravine.errors import ConfigError, UnknownNameError
from ravine.train import Callback
from ravine.train.results import CompareInterrupted, CompareResult, History


def test_compare_writes_results_and_a_self_contained_report(tmp_path) -> None:
    res = compare("breast-cancer-logreg", ["sgd", "adagrad"], epochs=3, seed=1, device="cpu", out_dir=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["runs"]) == {"sgd", "adagrad"} and saved["complete"] is True and saved["missing"] == []
    for run in saved["runs"].values():
        assert {"spec", "history", "summary", "diagnosis", "extras"} <= set(run)
        assert run["history"]["epoch"]["epoch"] == [0, 1, 2, 3]
        assert (tmp_path / "runs" / "sgd" / "epochs.csv").exists()
    assert CompareResult.from_json(saved).to_json() == json.loads(json.dumps(saved))  # the file reads back
    # Same seed, same initial weights: the untrained (epoch 0) validation loss is the same for both.
    v0 = [run.history.epochs.val_loss[0] for run in res.runs.values()]
    assert v0[0] == v0[1]
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "src=\"http" not in html and "href=\"http" not in html
    for name in ("sgd", "adagrad"):
        assert name in html
        assert res.runs[name].diagnosis.kind in html
    assert 'id="learning_curves"' in html and "Settings (resolved)" in html


def test_results_record_resolved_settings(tmp_path) -> None:
    """Not "auto", not a missing default: the numbers that ran."""
    from ravine import optim, problems

    res = compare("breast-cancer-logreg", ["adam", "momentum"], epochs=1, device="cpu", out_dir=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    recipe = problems.get("breast-cancer-logreg")
    adam = saved["runs"]["adam"]["spec"]
    assert adam["batch_size"] == recipe.batch_size and isinstance(adam["batch_size"], int)
    assert adam["lr"] == recipe.lr["adam"]
    assert adam["hyper"]["betas"] == list(optim.info("adam").defaults["betas"])
    assert adam["hyper"]["eps"] == optim.info("adam").defaults["eps"]
    assert saved["runs"]["momentum"]["spec"]["hyper"]["momentum"] == optim.info("momentum").defaults["momentum"]
    assert res.runs["adam"].spec.epochs == 1
    html = (tmp_path / "report.html").read_text()
    assert "betas=[0.9, 0.999]" in html


def test_sgd_effective_rate_is_its_learning_rate() -> None:
    # Oracle: θ ← θ − ε g moves every coordinate by exactly ε |g_i|.
    res = compare("diabetes-linreg", ["sgd"], epochs=2, lr={"sgd": 0.05}, device="cpu")
    values = res.runs["sgd"].effective_step["value"]
    assert values and all(math.isclose(v, 0.05, rel_tol=1e-4) for v in values)


def test_adagrad_effective_rate_never_grows() -> None:
    res = compare("diabetes-linreg", ["adagrad"], epochs=3, device="cpu")
    values = res.runs["adagrad"].effective_step["value"]
    assert len(values) > 10
    assert values[-1] < values[0]


def test_a_diverging_optimizer_is_reported_and_the_others_finish(tmp_path) -> None:
    res = compare("digits-mlp", ["sgd", "adam"], epochs=2, lr={"sgd": 1e6}, device="cpu", out_dir=tmp_path)
    assert res.runs["sgd"].summary.status == "diverged"
    assert res.runs["sgd"].diagnosis.kind == "diverging"
    assert "iteration" in res.runs["sgd"].summary.message
    assert res.runs["adam"].summary.status == "ok"
    assert (tmp_path / "report.html").exists()


def _linear_csv(path: Path, rows: int = 200) -> Path:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=rows), rng.normal(size=rows)
    path.write_text("a,b,y\n" + "".join(f"{x},{z},{x + 2 * z}\n" for x, z in zip(a, b, strict=True)))
    return path


def test_a_loss_that_grows_by_orders_of_magnitude_is_diverging_not_ok(tmp_path) -> None:
    """y = a + 2b with sgd 0.1: the whole-split loss went 1.6 -> 424 in one epoch and the status said ok."""
    data = _linear_csv(tmp_path / "lin.csv")
    res = compare("csv", ["sgd"], epochs=3, lr={"sgd": 0.1}, device="cpu",
                  problem_options={"data": str(data), "target": "y"})
    run = res.runs["sgd"]
    ep = run.history.epochs
    grew = max(v for v in ep.train_loss if math.isfinite(v)) / ep.train_loss[0]
    assert grew > 100  # the independent reading of the curve: orders of magnitude
    assert run.history.status == "diverged" and run.diagnosis.kind == "diverging"
    assert "times the untrained model's" in run.history.message


def test_user_regression_diagnosis_states_its_unit_and_does_not_assume_a_reference(tmp_path) -> None:
    data = _linear_csv(tmp_path / "lin.csv")
    res = compare("csv", ["adam"], epochs=15, device="cpu", problem_options={"data": str(data), "target": "y"})
    run = res.runs["adam"]
    assert math.isnan(res.reference_error)
    assert run.history.status == "ok"
    assert run.diagnosis.kind not in ("underfitting", "plateau")
    assert "target standard deviations" in run.diagnosis.explanation
    assert "unknown" in run.diagnosis.explanation
    assert run.diagnosis.numbers["reference_error"] is None


def test_unknown_reference_never_calls_a_small_rmse_underfitting() -> None:
    h = History("rmse", False)
    h.epochs.append(epoch=1, iteration=10, time=1.0, train_loss=6e-4, train_metric=0.025, val_loss=7e-4,
                    val_metric=0.026, lr=0.01, grad_evals=1.0)
    assert diagnose_history(h, 0.0).kind == "underfitting"  # what assuming 0 says
    verdict = diagnose_history(h, math.nan, "rmse in target standard deviations")
    assert verdict.kind == "healthy" and "unknown" in verdict.explanation
    assert verdict.extra["unit"] == "rmse in target standard deviations"


class _StopAfter(Callback):
    """Ctrl-C, for real: raises KeyboardInterrupt in the given run's second epoch."""

    def __init__(self) -> None:
        self.fits = 0

    def on_fit_start(self, state) -> None:
        self.fits += 1

    def on_epoch_end(self, state) -> None:
        if self.fits == 2 and state.epoch == 1:
            raise KeyboardInterrupt


def test_ctrl_c_writes_what_finished_and_resume_finishes_the_rest(tmp_path) -> None:
    names = ["sgd", "adam", "adagrad"]
    with pytest.raises(CompareInterrupted) as stop:
        compare("breast-cancer-logreg", names, epochs=1, device="cpu", out_dir=tmp_path, callbacks=[_StopAfter()])
    partial = stop.value.result
    assert isinstance(stop.value, KeyboardInterrupt)  # code that knows only Ctrl-C still stops
    assert list(partial.runs) == ["sgd"] and partial.missing == ["adam", "adagrad"] and not partial.complete
    saved = CompareResult.load(tmp_path / "results.json")
    assert list(saved.runs) == ["sgd"] and saved.missing == ["adam", "adagrad"]
    html = (tmp_path / "report.html").read_text()
    assert "Partial" in html and "adam" in html
    sgd_before = saved.runs["sgd"].history.to_json()

    class Count(Callback):
        fits = 0

        def on_fit_start(self, state) -> None:
            Count.fits += 1

    done = compare("breast-cancer-logreg", names, epochs=1, device="cpu", out_dir=tmp_path, resume=True,
                   callbacks=[Count()])
    assert Count.fits == 2  # only the missing runs trained
    assert done.complete and list(done.runs) == names
    assert done.runs["sgd"].history.to_json() == sgd_before  # kept as it was
    fresh = compare("breast-cancer-logreg", ["adam"], epochs=1, device="cpu")
    # the resumed run is the run an uninterrupted call makes (same seed, same settings)
    assert done.runs["adam"].history.epochs.val_loss == fresh.runs["adam"].history.epochs.val_loss
    final = json.loads((tmp_path / "results.json").read_text())
    assert final["complete"] is True and list(final["runs"]) == names


def test_resume_refuses_other_settings_and_a_missing_folder(tmp_path) -> None:
    compare("breast-cancer-logreg", ["sgd"], epochs=1, device="cpu", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="other settings.*lr"):
        compare("breast-cancer-logreg", ["sgd"], epochs=1, lr={"sgd": 0.3}, device="cpu", out_dir=tmp_path,
                resume=True)
    with pytest.raises(ConfigError, match="does not exist"):
        compare("breast-cancer-logreg", ["sgd"], epochs=1, device="cpu", out_dir=tmp_path / "nothing", resume=True)


def test_unknown_names_fail_before_training() -> None:
    with pytest.raises(UnknownNameError, match="allowed: .*adam"):
        compare("digits-mlp", ["sgd", "adamx"], epochs=1)
    with pytest.raises(UnknownNameError, match="allowed: .*digits-mlp"):
        compare("digits-mlpx", ["sgd"], epochs=1)


def test_compare_and_train_share_the_ranges() -> None:
    for kwargs in ({"epochs": 0}, {"lr": {"sgd": 0.0}}, {"batch_size": 0}):
        with pytest.raises(ConfigError):
            compare("breast-cancer-logreg", ["sgd"], device="cpu", **kwargs)


def test_summarize_epochs_to_target_lower_is_better() -> None:
    h = History("rmse", False)
    for e, (t, v) in enumerate(zip([3.0, 2.0, 1.0, 0.5], [5.0, 2.0, 0.9, 0.8], strict=True)):
        h.epochs.append(epoch=e, iteration=e, time=float(e), train_loss=t, train_metric=v, val_loss=v,
                        val_metric=v, lr=0.1, grad_evals=float(e))
    h.wall_time = 3.0
    s = summarize(h, 1.0)
    assert s.epochs_to_target == 2 and s.time_to_target == 2.0
    assert s.best_val_metric == 0.8 and s.best_val_epoch == 3
    assert summarize(h, 0.1).epochs_to_target is None


def test_cli_compare_runs_and_rejects_bad_batch_size(tmp_path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd,momentum",
                             "--epochs", "2", "--out", str(tmp_path), "--lr", "0.05"])
    assert ok.exit_code == 0, ok.output
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["runs"]["momentum"]["spec"]["lr"] == 0.05
    again = runner.invoke(app, ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd,momentum",
                                "--epochs", "2", "--out", str(tmp_path), "--lr", "0.05", "--resume"])
    assert again.exit_code == 0, again.output
    bad = runner.invoke(app, ["compare", "--batch-size", "many", "--out", str(tmp_path)])
    assert bad.exit_code == 2
    assert "--batch-size" in bad.output
    opt = runner.invoke(app, ["compare", "--problem", "digits-mlp", "--data", "x.csv", "--out", str(tmp_path)])
    assert opt.exit_code == 2
    assert "--data" in opt.output


def test_compare_uses_the_problems_batch_size_and_full_batch_for_second_order(tmp_path) -> None:
    from ravine import problems

    recipe = problems.get("breast-cancer-logreg")
    n_train = len(recipe.build(seed=0).data.X_train)
    res = compare("breast-cancer-logreg", ["sgd", "newton"], epochs=2, device="cpu", out_dir=tmp_path)
    per_epoch = -(-n_train // recipe.batch_size)  # ceil
    assert res.runs["sgd"].history.epochs.iteration == [0, per_epoch, 2 * per_epoch]
    assert res.runs["newton"].history.epochs.iteration == [0, 1, 2]
    assert res.runs["newton"].spec.batch_size == n_train and res.runs["newton"].spec.full_batch
    # one batch per epoch: the smoothed curve is the raw loss, not a lagging average
    it = res.runs["newton"].history.iterations
    assert it.loss_ema == it.loss
    # gradient evaluations: every Newton closure call is a whole training set (its line search adds trials);
    # a minibatch step costs b / n
    assert all(g == int(g) for g in it.grad_evals) and it.grad_evals[0] >= 1
    assert it.grad_evals[1] - it.grad_evals[0] >= 1
    sgd = res.runs["sgd"].history.iterations
    assert sgd.grad_evals[0] == pytest.approx(recipe.batch_size / n_train)
    assert sgd.grad_evals[-1] == pytest.approx(2.0)
    assert (tmp_path / "report.html").exists()


def test_schedule_args_parse_numbers_and_lists() -> None:
    from ravine.commands.compare import parse_kv

    assert parse_kv(["k=0.5", "every=3", "boundaries=1,2", "mode=min"], "x") == {
        "k": 0.5, "every": 3, "boundaries": [1, 2], "mode": "min"}


_SIGINT_SCRIPT = r"""
import os, signal, sys
import ravine.compare as c

calls = []
original = c.EffectiveStep.on_fit_start


def on_fit_start(self, state):
    calls.append(1)
    original(self, state)
    if len(calls) == 2:  # a real Ctrl-C, delivered by the kernel, as the second run starts
        os.kill(os.getpid(), signal.SIGINT)


c.EffectiveStep.on_fit_start = on_fit_start
from ravine.cli import app
sys.argv[0] = "ravine"
app()
"""


@pytest.mark.slow
def test_a_real_sigint_under_the_command_line_then_resume(tmp_path) -> None:
    import os
    import subprocess
    import sys

    out = tmp_path / "cmp"
    # --sequential: one run finishes before the other starts, so Ctrl-C falls between them
    args = ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd,adam", "--epochs", "1",
            "--sequential", "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    first = subprocess.run([sys.executable, "-c", _SIGINT_SCRIPT, *args], capture_output=True, text=True,
                           env=env, timeout=300)
    text = first.stdout + first.stderr
    assert first.returncode == 130, text
    assert "Traceback" not in text and "--resume" in text
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] is False and list(saved["runs"]) == ["sgd"] and saved["missing"] == ["adam"]
    assert (out / "report.html").exists()
    again = subprocess.run([sys.executable, "-c", "import sys; from ravine.cli import app; sys.argv[0] = 'ravine'; "
                            "app()", *args, "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    done = json.loads((out / "results.json").read_text())
    assert done["complete"] is True and list(done["runs"]) == ["sgd", "adam"]
    assert done["runs"]["sgd"]["history"] == saved["runs"]["sgd"]["history"]


def test_batched_runs_say_their_times_are_shared(tmp_path):
    """Runs trained as one batched computation record it (results.json round-trips it) and the
    report says their times are the shared computation's; --sequential runs record nothing."""
    res = compare("breast-cancer-logreg", ["sgd", "adam"], epochs=1, out_dir=tmp_path / "b")
    assert [run.batched_with for run in res.runs.values()] == [["sgd", "adam"]] * 2
    back = CompareResult.from_json(json.loads((tmp_path / "b" / "results.json").read_text()))
    assert back.runs["adam"].batched_with == ["sgd", "adam"]
    assert "one batched computation (sgd, adam;" in (tmp_path / "b" / "report.html").read_text()
    alone = compare("breast-cancer-logreg", ["sgd", "adam"], epochs=1, sequential=True, out_dir=tmp_path / "s")
    assert all(run.batched_with == [] for run in alone.runs.values())
    assert "batched computation" not in (tmp_path / "s" / "report.html").read_text()
