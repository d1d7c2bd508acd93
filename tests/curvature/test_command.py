"""``ravine curvature`` end to end, on the convex diabetes regression whose Hessian is written out."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from typer.testing import CliRunner

from ravine import problems
from ravine.cli import app
from ravine.train.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _ravine(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RAVINE_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ravine", "curvature", *args], capture_output=True, text=True,
                          env=full_env, timeout=600)


def _exact_hessian() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """H = (2/N) AᵀA with A = [X 1] for the mse of a linear model (weights then bias)."""
    inst = problems.get("diabetes-linreg").build(seed=0, dtype=torch.float64)
    X, y = inst.data.X_train, inst.data.y_train
    A = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)
    return 2 / len(X) * A.T @ A, A, y.reshape(-1)


def test_curvature_command_writes_the_exact_numbers_and_figures(tmp_path):
    out = tmp_path / "run"
    proc = _ravine("--problem", "diabetes-linreg", "--k", "2", "--samples", "0", "--tol", "1e-8",
                   "--trace-products", "50", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "curvature.json").read_text())
    H, A, y = _exact_hessian()
    eig = torch.linalg.eigvalsh(H)
    expected = [eig[-1], eig[-2], eig[1], eig[0]]
    assert len(res["eigenvalues"]["values"]) == 4 and res["eigenvalues"]["converged"]
    for got, want in zip(res["eigenvalues"]["values"], expected, strict=True):
        assert math.isclose(got, float(want), rel_tol=1e-8)
    assert math.isclose(res["trace"]["value"], float(torch.trace(H)), rel_tol=1e-10)  # 50 ≥ P = 11: exact
    assert math.isclose(res["condition_number"], float(eig[-1] / eig[0]), rel_tol=1e-7)
    # at the zero initial weights: g = −(2/N) Aᵀy, the point is not critical, the curvature is convex
    g = -2 / len(y) * A.T @ y
    assert math.isclose(res["grad_norm"], float(g.norm()), rel_tol=1e-10)
    assert res["critical_point"]["kind"] == "minimum" and res["critical_point"]["critical"] is False
    t = res["taylor"]
    assert math.isclose(t["eps_star"], float(g @ g / (g @ H @ g)), rel_tol=1e-10)
    assert math.isclose(t["lr_max"], 2 / float(eig[-1]), rel_tol=1e-7)
    for pred, act in zip(t["predicted"], t["actual"], strict=True):  # a quadratic: Taylor is exact
        assert math.isclose(pred, act, rel_tol=1e-9, abs_tol=1e-12)
    assert res["hvp_count"] >= res["eigenvalues"]["n_products"] + res["trace"]["n_products"]
    for name in ("density.png", "eigenvalues.png", "taylor.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert "saddle" not in proc.stdout and "not a critical point" in proc.stdout


def test_checkpoint_written_by_fit_is_read_with_its_problem_and_weights(tmp_path):
    from ravine.train import fit

    run = tmp_path / "train"
    fit("breast-cancer-logreg", "sgd", epochs=1, seed=2, out_dir=run, tensorboard=False)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    inst = problems.get("breast-cancer-logreg").build(seed=2)
    inst.model.load_state_dict(state["model"])
    out = tmp_path / "curv"
    result = CliRunner().invoke(app, ["curvature", "--checkpoint", str(run / "checkpoint.pt"), "--k", "1",
                                      "--samples", "0", "--trace-products", "40", "--out", str(out)])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "curvature.json").read_text())
    assert res["problem"] == "breast-cancer-logreg"
    # oracle: the logistic-regression Hessian (1/N) Aᵀ diag(p(1−p)) A at the trained weights
    X, y = inst.data.X_train.double(), inst.data.y_train.double()
    A = torch.cat([X, torch.ones(len(X), 1, dtype=torch.float64)], dim=1)
    theta = torch.cat([inst.model[0].weight.detach().reshape(-1), inst.model[0].bias.detach()]).double()
    p = torch.sigmoid(A @ theta)
    H = A.T @ (A * (p * (1 - p))[:, None]) / len(X)
    eig = torch.linalg.eigvalsh(H)
    assert math.isclose(res["eigenvalues"]["values"][0], float(eig[-1]), rel_tol=1e-4)
    assert math.isclose(res["eigenvalues"]["values"][-1], float(eig[0]), rel_tol=1e-4)


def test_checkpoint_at_the_least_squares_solution_is_a_critical_minimum(tmp_path):
    H, A, y = _exact_hessian()
    theta = torch.linalg.lstsq(A, y.reshape(-1, 1)).solution.reshape(-1)
    weights = {"0.weight": theta[:-1].reshape(1, -1).float(), "0.bias": theta[-1:].float()}
    inst = problems.get("diabetes-linreg").build(seed=0)
    assert set(weights) == set(inst.model.state_dict())
    ckpt = tmp_path / "checkpoint.pt"
    save_checkpoint(ckpt, {"model": weights, "config": {"problem": "diabetes-linreg", "seed": 0,
                                                         "problem_options": {}}})
    out = tmp_path / "at-minimum"
    result = CliRunner().invoke(app, ["curvature", "--checkpoint", str(ckpt), "--k", "1", "--samples", "0",
                                      "--trace-products", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "curvature.json").read_text())
    assert res["problem"] == "diabetes-linreg"
    assert res["grad_norm"] < 1e-5  # float32 weights of the float64 solution
    assert res["critical_point"]["kind"] == "minimum"


@pytest.mark.parametrize("args,field", [
    (["--which", "top"], "--which"),
    (["--k", "0"], "--k"),
    (["--tol", "-1"], "--tol"),
    (["--problem", "nope"], "problem"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, field):
    result = CliRunner().invoke(app, ["curvature", *args, "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2
    assert field in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_foreign_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(app, ["curvature", "--checkpoint", str(bad), "--problem", "diabetes-linreg",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "checkpoint" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_runs_under_a_real_terminal_and_without_colour(tmp_path):
    # `script` gives the command a pseudo-terminal (the Rich progress bar is live there)
    cmd = (f"{sys.executable} -m ravine curvature --problem breast-cancer-logreg --k 1 --samples 64 "
           f"--trace-products 12 --out {tmp_path / 'tty'}")
    proc = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stdout
    assert (tmp_path / "tty" / "curvature.json").exists()
    proc = _ravine("--problem", "breast-cancer-logreg", "--k", "1", "--samples", "64", "--trace-products", "12",
                   "--out", str(tmp_path / "dumb"), env={"NO_COLOR": "1", "TERM": "dumb"})
    assert proc.returncode == 0 and "\x1b[" not in proc.stdout


def test_device_defaults_to_auto_like_the_other_training_commands():
    # curvature alone defaulted to cpu; the code is device-agnostic, so it now takes CUDA when there is one
    import inspect

    from ravine.commands.compare import compare
    from ravine.commands.curvature import curvature
    from ravine.commands.diagnose import diagnose

    defaults = {fn.__name__: inspect.signature(fn).parameters["device"].default
                for fn in (curvature, compare, diagnose)}
    assert defaults == {"curvature": "auto", "compare": "auto", "diagnose": "auto"}
    result = CliRunner().invoke(app, ["curvature", "--help"], env={"COLUMNS": "200"})
    assert "[default: auto]" in result.output
