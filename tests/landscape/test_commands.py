"""``ravine trajectories`` and ``ravine landscape`` from the command line: piped, under a real terminal
(``script``), with NO_COLOR / TERM=dumb, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ravine.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _ravine(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from ravine.cli import main; main()", *args],
                          capture_output=True, text=True, env=_env(**env), timeout=300)


def test_trajectories_piped_writes_json_and_figures(tmp_path: Path) -> None:
    proc = _ravine(["trajectories", "--function", "rosenbrock", "--optimizers", "gd,adam,newton,lm",
                    "--start=-1.2,1", "--steps", "60", "--out", str(tmp_path)], NO_COLOR="1")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout  # piped: no colour, no progress bars
    data = json.loads((tmp_path / "trajectories.json").read_text())
    assert data["start"] == [-1.2, 1.0] and data["minima"] == [[1.0, 1.0]]
    assert list(data["runs"]) == ["gd", "adam", "newton", "lm"]
    for run in data["runs"].values():
        final = run["final"]
        assert run["path"][0] == [-1.2, 1.0] and run["path"][-1] == final
        assert run["distance_to_nearest_minimum"] == pytest.approx(math.dist(final, (1.0, 1.0)), abs=1e-15)
    assert data["runs"]["lm"]["steps_to_within_1e-6"] is not None
    assert data["runs"]["gd"]["steps_to_within_1e-6"] is None
    assert (tmp_path / "trajectories.png").read_bytes()[:4] == b"\x89PNG"


def test_gif_is_an_animation(tmp_path: Path) -> None:
    from PIL import Image

    from ravine.landscape import functions, trajectories
    from ravine.landscape.figures import animate_paths

    runs = trajectories("quadratic", ["gd", "newton"], steps=8)
    path = animate_paths(functions.get("quadratic"), runs, tmp_path / "paths.gif", max_frames=4, dpi=30)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4


@pytest.mark.slow
def test_trajectories_under_a_real_terminal(tmp_path: Path) -> None:
    cmd = (f"{sys.executable} -c 'from ravine.cli import main; main()' trajectories --function himmelblau "
           f"--optimizers gd,newton --steps 20 --out {tmp_path}")
    assert shutil.which("script"), "util-linux `script` provides the pseudo-terminal"
    proc = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                          env=_env(TERM="xterm-256color", COLUMNS="120"), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout
    assert "ravine trajectories" in proc.stdout
    assert (tmp_path / "trajectories.json").exists()
    cmd = (f"{sys.executable} -c 'from ravine.cli import main; main()' landscape --problem diabetes-linreg "
           f"--epochs 2 --resolution 4 --out {tmp_path / 'land'}")
    proc = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                          env=_env(TERM="xterm-256color", COLUMNS="120"), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout and "ravine landscape" in proc.stdout
    assert (tmp_path / "land" / "landscape.json").exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cases = [
        ["trajectories", "--function", "banana"],
        ["trajectories", "--optimizers", "gd,nope"],
        ["trajectories", "--function", "rastrigin", "--optimizers", "lm"],
        ["trajectories", "--start", "1"],
        ["trajectories", "--lr", "gd=fast"],
        ["landscape", "--problem", "nope"],
        ["landscape", "--problem", "sparse-sigmoid", "--directions", "uniform", "--epochs", "1"],
        ["landscape", "--problem", "sparse-sigmoid", "--checkpoint", str(tmp_path / "missing.pt")],
    ]
    for args in cases:
        result = runner.invoke(app, [*args, "--out", str(tmp_path / "x")])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert "error:" in result.output or "Error" in result.output


def test_landscape_trains_and_writes_everything(tmp_path: Path) -> None:
    result = runner.invoke(app, ["landscape", "--problem", "sparse-sigmoid", "--epochs", "3", "--resolution", "6",
                                 "--out", str(tmp_path)], env={"TERM": "dumb"})
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "landscape.json").read_text())
    assert data["problem"] == "sparse-sigmoid" and data["n_params"] == 2
    interp = data["interpolation"]
    assert interp["alphas"][0] == -0.5 and set(interp["loss"]) == {"train", "val"}
    plane = data["plane"]
    assert plane["directions"] == "pca" and plane["mode"] == "eval"
    assert len(plane["trajectory"]) == 4  # epoch 0 (the initialization) and three epochs
    assert len(plane["loss"]) == 6 and len(plane["loss"][0]) == 6
    two = data["two_parameter"]
    assert set(two["paths"]) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop"}
    assert {tuple(p[0]) for p in two["paths"].values()} == {(-2.0, 2.0)}  # one start for all
    for name in ("interpolation.png", "plane_contour.png", "plane_surface.png", "two_parameter_paths.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_landscape_from_a_checkpoint(tmp_path: Path) -> None:
    from ravine.train import fit

    run_dir = tmp_path / "run"
    fit("diabetes-linreg", "adam", epochs=2, seed=0, out_dir=run_dir, tensorboard=False)
    result = runner.invoke(app, ["landscape", "--problem", "diabetes-linreg", "--checkpoint",
                                 str(run_dir / "checkpoint.pt"), "--resolution", "4", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "o" / "landscape.json").read_text())
    assert data["plane"]["directions"] == "random" and data["plane"]["trajectory"] == []
    # α = 1 of the interpolation is the checkpoint's model: its training loss, computed here directly
    from ravine import problems

    inst = problems.get("diabetes-linreg").build(seed=0)
    inst.model.load_state_dict(torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"])
    with torch.no_grad():
        expected = float(inst.loss_fn(inst.model(inst.data.X_train), inst.data.y_train))
    alphas = data["interpolation"]["alphas"]
    assert alphas[30] == pytest.approx(1.0)
    assert data["interpolation"]["loss"]["train"][30] == pytest.approx(expected, rel=1e-5)
    wrong = runner.invoke(app, ["landscape", "--problem", "sparse-sigmoid", "--checkpoint",
                                str(run_dir / "checkpoint.pt"), "--out", str(tmp_path / "w")])
    assert wrong.exit_code == 2 and "diabetes-linreg" in wrong.output
    # without --problem the checkpoint's own problem is used
    same = runner.invoke(app, ["landscape", "--checkpoint", str(run_dir / "checkpoint.pt"), "--resolution", "3",
                               "--out", str(tmp_path / "s")])
    assert same.exit_code == 0, same.output
    assert json.loads((tmp_path / "s" / "landscape.json").read_text())["problem"] == "diabetes-linreg"
