"""``ravine tune`` on the command line: every method, bundled problems and a user CSV, bad input, a terminal."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ravine.cli import app

runner = CliRunner()
FAST = ["--problem", "breast-cancer-logreg", "--optimizer", "sgd", "--epochs", "2", "--seeds", "2"]


def _run(args: list[str], out: Path) -> dict:
    result = runner.invoke(app, ["tune", *args, "--out", str(out)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert (out / "report.html").stat().st_size > 1000
    return json.loads((out / "tune.json").read_text())


def test_grid_with_folds_records_every_trial_and_fold(tmp_path: Path) -> None:
    res = _run([*FAST, "--method", "grid", "--space", "lr=0.01,0.1", "--space", "momentum=0.0,0.5",
                "--optimizer", "momentum", "--folds", "3"], tmp_path / "g")
    assert len(res["trials"]) == 4 and all(len(t["folds"]) == 3 for t in res["trials"])
    for t in res["trials"]:
        assert t["score"] == pytest.approx(np.mean([f["val_metric"] for f in t["folds"]]))
        assert t["time"] > 0
    best = max(res["trials"], key=lambda t: t["score"])
    assert res["best"]["config"] == best["config"]
    assert res["rerun"]["seeds"] == 2 and math.isfinite(res["rerun"]["test"]["median"])
    assert (tmp_path / "g" / "figures" / "parallel.png").exists()


@pytest.mark.slow
def test_range_test_random_and_log_then_fine(tmp_path: Path) -> None:
    rt = _run([*FAST, "--method", "range-test", "--iterations", "80"], tmp_path / "rt")
    assert rt["range_test"]["suggestion"] == pytest.approx(rt["range_test"]["lr_at_min"] / 10)
    assert (tmp_path / "rt" / "figures" / "loss_vs_lr.png").exists()
    rnd = _run([*FAST, "--method", "random", "--trials", "4", "--space", "lr=1e-3:1:log",
                "--space", "weight_decay=0:0.01"], tmp_path / "rnd")
    assert len(rnd["trials"]) == 4 and all(1e-3 <= t["config"]["lr"] <= 1 for t in rnd["trials"])
    ltf = _run([*FAST, "--method", "log-then-fine"], tmp_path / "ltf")
    coarse = [t for t in ltf["trials"] if t["stage"] == "coarse"]
    fine = [t for t in ltf["trials"] if t["stage"] == "fine"]
    assert [t["config"]["lr"] for t in coarse] == pytest.approx(list(np.geomspace(1e-4, 1, 9)))
    best_coarse = max(coarse, key=lambda t: t["score"] if math.isfinite(t["score"] or math.nan) else -1)
    lrs = [t["config"]["lr"] for t in fine]
    assert min(lrs) == pytest.approx(best_coarse["config"]["lr"] / 10 ** 0.5)
    assert max(lrs) == pytest.approx(best_coarse["config"]["lr"] * 10 ** 0.5)


@pytest.mark.slow
def test_optuna_on_a_user_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,c,label\n" + "\n".join(f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{c}" for r, c in zip(X, y)))
    res = _run(["--problem", "csv", "--data", str(csv), "--target-column", "label", "--optimizer", "adam",
                "--method", "optuna", "--trials", "4", "--batch", "2", "--epochs", "2", "--seeds", "2",
                "--space", "lr=1e-3:0.1:log", "--space", "beta1=0.8:0.95"], tmp_path / "opt")
    assert len(res["trials"]) == 4 and res["study"] and (tmp_path / "opt").exists()
    assert all({"lr", "beta1"} <= set(t["config"]) for t in res["trials"])


@pytest.mark.parametrize("args", [
    ["--method", "nope"],
    ["--optimizer", "lbfgs"],
    ["--space", "lr=0:1:log"],
    ["--space", "colour=1"],
    ["--folds", "1000"],
    ["--workers", "100000"],
    ["--method", "log-then-fine", "--workers", "2"],
    ["--batch-size", "many"],
    ["--problem", "digits-mlp", "--data", "x.csv"],
    ["--storage", "nosuchdb://x"],
    ["--method", "range-test", "--lr-min", "-1"],
    ["--method", "range-test", "--lr-min", "1", "--lr-max", "0.1"],
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["tune", *FAST, *args, "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len([ln for ln in result.output.strip().splitlines() if ln.strip()]) == 1, result.output


@pytest.mark.slow
def test_under_a_terminal_piped_and_dumb(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "ravine", "tune", *FAST, "--method", "grid", "--space", "lr=0.01,0.1"]
    env = {**os.environ, "COLUMNS": "80"}
    piped = subprocess.run([*base, "--out", str(tmp_path / "p")], capture_output=True, text=True, env=env,
                           timeout=300)
    assert piped.returncode == 0 and "Traceback" not in piped.stderr + piped.stdout
    dumb = subprocess.run([*base, "--out", str(tmp_path / "d")], capture_output=True, text=True,
                          env={**env, "NO_COLOR": "1", "TERM": "dumb"}, timeout=300)
    assert dumb.returncode == 0 and "\x1b[" not in dumb.stdout
    assert shutil.which("script"), "util-linux `script` runs the command under a pseudo-terminal"
    cmd = " ".join([*base, "--out", str(tmp_path / "t")])
    tty = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, env=env, timeout=300)
    assert tty.returncode == 0, tty.stdout
    assert "Traceback" not in tty.stdout and (tmp_path / "t" / "tune.json").exists()


def test_a_too_narrow_range_test_warns_and_says_how_to_widen_it(tmp_path: Path) -> None:
    out = tmp_path / "narrow"
    proc = subprocess.run([sys.executable, "-m", "ravine", "tune", *FAST, "--method", "range-test", "--iterations",
                           "40", "--lr-min", "1e-5", "--lr-max", "1e-3", "--out", str(out)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    warning = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "raise lr_max" in warning[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert "--lr-max" in proc.stdout and "unreliable" in proc.stdout
    result = json.loads((out / "tune.json").read_text())
    assert result["range_test"]["at_edge"] == "high"
    assert result["range_test"]["settings"]["lr_max"] == pytest.approx(1e-3)
    assert "widen the range" in (out / "report.html").read_text()
