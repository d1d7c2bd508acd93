"""``ravine autodiff`` in a subprocess and under a real terminal."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from typer.testing import CliRunner

from ravine.cli import app

ENV = {**os.environ, "RAVINE_NUM_THREADS": "1"}


def _ravine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ravine", *args], capture_output=True, text=True, timeout=300, env=ENV)


def test_course_example_prints_the_adjoints(tmp_path) -> None:
    proc = _ravine("autodiff", "--example", "course", "--x1", "2", "--x2", "0.5", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert f"{2 + math.cos(0.5):.10g}" in proc.stdout  # x̄2 = x1 + cos x2, both paths summed
    assert "match" in proc.stdout and "…" not in proc.stdout
    data = json.loads((tmp_path / "autodiff.json").read_text())
    assert data["course"]["match"]


def test_problem_gradcheck_and_graph(tmp_path) -> None:
    proc = _ravine("autodiff", "--problem", "diabetes-linreg", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "autodiff.json").read_text())
    res = data["problems"]["diabetes-linreg"]
    assert res["gradcheck"]["passed"]
    assert {t["name"] for t in res["gradcheck"]["tensors"]} == {"0.weight", "0.bias"}
    assert (tmp_path / res["graph"]["file"]).is_file()
    assert "pass" in proc.stdout


def test_bad_input_one_line_exit_2(tmp_path) -> None:
    proc = _ravine("autodiff", "--problem", "nope", "--out", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "digits-mlp" in proc.stderr
    for args in (["--example", "other"], ["--example", "course", "--problem", "digits-mlp"],
                 ["--problem", "digits-mlp", "--batch", "0"], ["--problem", "digits-mlp", "--eps", "-1"]):
        result = CliRunner().invoke(app, ["autodiff", *args, "--out", str(tmp_path)])
        assert result.exit_code == 2, (args, result.output)



def test_help_lists_the_three_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in ("linsys", "autodiff", "activations"):
        assert command in result.output
        sub = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert sub.exit_code == 0 and ".json" in sub.output
