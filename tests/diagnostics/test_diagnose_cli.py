"""``ravine diagnose`` on the command line: under a terminal, piped, on user CSV data, and bad input."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ravine.cli import app

runner = CliRunner()
ENV = {**os.environ, "COLUMNS": "100"}


def _check_outputs(folder: Path) -> dict:
    result = json.loads((folder / "diagnose.json").read_text())
    assert result["findings"] and all(f["suggestion"] for f in result["findings"])
    assert result["instruments"]["steps"] and result["instruments"]["layers"]
    page = (folder / "report.html").read_text()
    assert "<h2>Findings</h2>" in page and "data:image/png;base64" in page
    return result


@pytest.mark.slow
def test_diagnose_piped_without_colour_on_user_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((240, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,c,d,label\n" + "\n".join(",".join(f"{v:.5f}" for v in row) + f",{t}"
                                                 for row, t in zip(X, y, strict=True)) + "\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "ravine", "diagnose", "--problem", "csv", "--data", str(csv),
                           "--target-column", "label", "--epochs", "3", "--every", "4", "--out", str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**ENV, "NO_COLOR": "1", "TERM": "dumb"})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "\x1b[" not in proc.stdout
    result = _check_outputs(out)
    assert result["problem"] == "csv" and result["noise"]["end"]["b_simple"] > 0
    assert "wrote" in proc.stdout


@pytest.mark.slow
def test_diagnose_under_a_real_terminal(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = shlex.join([sys.executable, "-m", "ravine", "diagnose", "--epochs", "2", "--no-noise",
                          "--activation", "tanh", "--init", "small-normal", "--out", str(out)])
    proc = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=300,
                          env={**ENV, "TERM": "xterm-256color"})
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stdout
    result = _check_outputs(out)
    assert result["activation"] == "tanh" and result["init"] == "small-normal"


BAD = [
    (["--problem", "nope"], "nope"),
    (["--optimizer", "nope"], "nope"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "0.1,0.2"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--init", "bogus"], "bogus"),
    (["--init", "constant:x"], "constant:x"),
    (["--activation", "bogus"], "bogus"),
    (["--batch-size", "x"], "--batch-size"),
    (["--batch-size", "0"], "--batch-size"),
    (["--epochs", "0"], "epochs"),
    (["--every", "0"], "every"),
    (["--data", "x.csv"], "Invalid data: 'x.csv' (no such file"),  # --data alone means the csv problem
    (["--problem", "breast-cancer-logreg", "--activation", "relu"], "activation"),
    (["--problem", "breast-cancer-logreg", "--compare-inits"], "compare-inits"),
    (["--problem", "csv"], "data"),
]


@pytest.mark.parametrize(("args", "word"), BAD)
def test_bad_input_is_one_line_and_exit_2(args: list[str], word: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["diagnose", *args, "--epochs" if "--epochs" not in args else "--seed",
                                 "1" if "--epochs" not in args else "0", "--out", str(tmp_path / "o")], env=ENV)
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert word in text


def test_compare_inits_runs_the_five_and_shows_the_depth_effect(tmp_path: Path) -> None:
    from ravine.diagnostics.run import diagnose

    res = diagnose("digits-mlp", "sgd", epochs=1, activation="tanh", noise=False, compare_inits=True,
                   problem_options={"hidden": (64, 64, 64)})
    runs = res["compare_inits"]
    assert list(runs) == ["constant", "small-normal", "xavier-uniform", "xavier-normal", "he-normal"]
    small, xavier = runs["small-normal"]["std_start"], runs["xavier-normal"]["std_start"]
    assert small[-1] / small[0] < 0.05 < 0.4 < xavier[-1] / xavier[0]
    assert "symmetry" in runs["constant"]["findings"]



@pytest.mark.parametrize("problem", ["breast-cancer-logreg", "sparse-sigmoid"])
def test_diagnose_names_the_activation_the_model_has_and_never_prints_none(tmp_path: Path, problem: str) -> None:
    # logistic regression has no activation module (its sigmoid is inside the loss) and no init option;
    # sparse-sigmoid's network has sigmoid modules but no activation option: it used to say "activation None"
    import warnings

    import torch.nn as nn

    from ravine import problems

    torch_names = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu", nn.LeakyReLU: "leaky-relu",
                   nn.ELU: "elu", nn.GELU: "gelu", nn.PReLU: "prelu"}
    model = problems.get(problem).build(seed=0).model
    kinds = ", ".join(dict.fromkeys(torch_names[type(m)] for m in model.modules() if type(m) in torch_names))
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, ["diagnose", "--problem", problem, "--epochs", "1", "--no-noise",
                                     "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the header may wrap at the runner's width
    header = text.split(" epochs")[1].split(":")[0]
    saved = json.loads((out / "diagnose.json").read_text())
    meta = (out / "report.html").read_text().split("class='meta'>")[1].split("<")[0]
    assert "None" not in text and "None" not in meta
    if kinds:
        assert f"· activation {kinds}" in text and saved["activation"] == kinds and f"activation {kinds}" in meta
    else:
        assert "activation" not in header and saved["activation"] is None and "activation" not in meta
    assert "init" not in header and saved["init"] is None
    assert not [w for w in caught if "legend" in str(w.message)]  # no empty activation-histogram figure
