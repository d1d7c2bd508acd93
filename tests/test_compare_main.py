"""``ravine compare``: the main job, end to end on small budgets."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from ravine.cli import app
from ravine.compare import compare, summarize
from ravine.errors import UnknownNameError


def test_compare_writes_results_and_a_self_contained_report(tmp_path) -> None:
    res = compare("breast-cancer-logreg", ["sgd", "adagrad"], epochs=3, seed=1, device="cpu", out_dir=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["runs"]) == {"sgd", "adagrad"}
    for run in saved["runs"].values():
        assert {"hyper", "history", "summary", "diagnosis", "effective_step"} <= set(run)
        assert run["history"]["epoch"]["epoch"] == [0, 1, 2, 3]
        assert (tmp_path / "runs" / "sgd" / "epochs.csv").exists()
    # Same seed, same initial weights: the untrained (epoch 0) validation loss is the same for both.
    v0 = [run["history"]["epoch"]["val_loss"][0] for run in res["runs"].values()]
    assert v0[0] == v0[1]
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "src=\"http" not in html and "href=\"http" not in html
    for name in ("sgd", "adagrad"):
        assert name in html
        assert res["runs"][name]["diagnosis"]["kind"] in html


def test_sgd_effective_rate_is_its_learning_rate() -> None:
    # Oracle: θ ← θ − ε g moves every coordinate by exactly ε |g_i|.
    res = compare("diabetes-linreg", ["sgd"], epochs=2, lr={"sgd": 0.05}, device="cpu")
    values = res["runs"]["sgd"]["effective_step"]["value"]
    assert values and all(math.isclose(v, 0.05, rel_tol=1e-4) for v in values)


def test_adagrad_effective_rate_never_grows() -> None:
    res = compare("diabetes-linreg", ["adagrad"], epochs=3, device="cpu")
    values = res["runs"]["adagrad"]["effective_step"]["value"]
    assert len(values) > 10
    assert values[-1] < values[0]


def test_a_diverging_optimizer_is_reported_and_the_others_finish(tmp_path) -> None:
    res = compare("digits-mlp", ["sgd", "adam"], epochs=2, lr={"sgd": 1e6}, device="cpu", out_dir=tmp_path)
    assert res["runs"]["sgd"]["summary"]["status"] == "diverged"
    assert res["runs"]["sgd"]["diagnosis"]["kind"] == "diverged"
    assert "iteration" in res["runs"]["sgd"]["summary"]["message"]
    assert res["runs"]["adam"]["summary"]["status"] == "ok"
    assert (tmp_path / "report.html").exists()


def test_unknown_names_fail_before_training() -> None:
    with pytest.raises(UnknownNameError, match="known: .*adam"):
        compare("digits-mlp", ["sgd", "adamx"], epochs=1)
    with pytest.raises(UnknownNameError, match="known: .*digits-mlp"):
        compare("digits-mlpx", ["sgd"], epochs=1)


def test_summarize_epochs_to_target_lower_is_better() -> None:
    h = {"epoch": {"epoch": [0, 1, 2, 3], "time": [0.0, 1.0, 2.0, 3.0], "train_loss": [3.0, 2.0, 1.0, 0.5],
                   "val_metric": [5.0, 2.0, 0.9, 0.8]},
         "iteration": {"step": [1, 2, 3]}, "test": None, "status": "ok", "wall_time": 3.0,
         "higher_is_better": False}
    s = summarize(h, 1.0)
    assert s["epochs_to_target"] == 2 and s["time_to_target"] == 2.0
    assert s["best_val_metric"] == 0.8 and s["best_val_epoch"] == 3
    assert summarize(h, 0.1)["epochs_to_target"] is None


def test_cli_compare_runs_and_rejects_bad_batch_size(tmp_path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd,momentum",
                             "--epochs", "2", "--out", str(tmp_path), "--lr", "0.05"])
    assert ok.exit_code == 0, ok.output
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["runs"]["momentum"]["hyper"]["lr"] == 0.05
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
    assert res["runs"]["sgd"]["history"]["epoch"]["iteration"] == [0, per_epoch, 2 * per_epoch]
    assert res["runs"]["newton"]["history"]["epoch"]["iteration"] == [0, 1, 2]
    # one batch per epoch: the smoothed curve is the raw loss, not a lagging average
    it = res["runs"]["newton"]["history"]["iteration"]
    assert it["loss_ema"] == it["loss"]
    assert (tmp_path / "report.html").exists()


def test_schedule_args_parse_numbers_and_lists() -> None:
    from ravine.commands.compare import parse_kv

    assert parse_kv(["k=0.5", "every=3", "boundaries=1,2", "mode=min"], "x") == {
        "k": 0.5, "every": 3, "boundaries": [1, 2], "mode": "min"}
