"""Every command under a real terminal (pty), piped, and on a dumb terminal: exit 0, no traceback, outputs written.

To add a command, append one ``Command`` to ``COMMANDS``: its arguments (a function of the
test's ``tmp_path``) and the files it must write under ``--out``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli_helpers import run_cli

CONFIG = 'problem = "breast-cancer-logreg"\noptimizer = "momentum"\nepochs = 2\n[hyper]\nmomentum = 0.9\n'


def _config(tmp: Path) -> str:
    path = tmp / "run.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


@dataclass
class Command:
    """One row of the table: ``args(tmp_path)`` and the files it writes under ``tmp_path / "out"``."""

    name: str
    args: Callable[[Path], list[str]]
    writes: list[str] = field(default_factory=list)
    prints: list[str] = field(default_factory=list)  # words the output must contain


COMMANDS = [
    Command("compare", lambda t: ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd,adam",
                                  "--epochs", "2", "--out", str(t / "out")],
            ["results.json", "report.html", "runs/sgd/epochs.csv"], ["sgd", "adam", "wall s"]),
    Command("train", lambda t: ["train", _config(t), "--out", str(t / "out")],
            ["checkpoint.pt", "history.json", "epochs.csv", "config.json", "report.html"], ["diagnosis"]),
    Command("bench-nist", lambda t: ["bench", "nist", "--problems", "Misra1a", "--out", str(t / "out")],
            ["nist.json"], ["scipy-lm-fd"]),
    Command("diagnose", lambda t: ["diagnose", "--problem", "breast-cancer-logreg", "--epochs", "2", "--no-noise",
                                   "--out", str(t / "out")], ["diagnose.json", "report.html"], ["wrote"]),
    Command("tune", lambda t: ["tune", "--problem", "breast-cancer-logreg", "--optimizer", "sgd", "--method", "grid",
                               "--space", "lr=0.01,0.1", "--epochs", "1", "--seeds", "2", "--out", str(t / "out")],
            ["tune.json", "report.html", "figures/sensitivity.png"], ["best", "rerun"]),
    Command("trajectories", lambda t: ["trajectories", "--function", "himmelblau", "--optimizers", "gd,newton,lm",
                                       "--steps", "30", "--out", str(t / "out")],
            ["trajectories.json", "trajectories.png"], ["newton", "converged"]),
    Command("landscape", lambda t: ["landscape", "--problem", "diabetes-linreg", "--epochs", "3", "--resolution", "5",
                                    "--out", str(t / "out")],
            ["landscape.json", "interpolation.png", "plane_contour.png", "plane_surface.png"], ["pca"]),
    Command("optimizers", lambda t: ["optimizers"], [], ["adam", "nesterov"]),
    Command("problems", lambda t: ["problems"], [], ["digits-mlp"]),
    Command("schedules", lambda t: ["schedules"], [], ["piecewise"]),
    Command("help", lambda t: ["--help"], [], ["compare", "train"]),
    Command("compare-help", lambda t: ["compare", "--help"], [], ["--optimizers"]),
    Command("linsys", lambda t: ["linsys", "--n", "40", "--kappa", "20", "--methods", "lu,cg,gd", "--sweep-kappas",
                                 "10,20", "--sweep-n", "40", "--out", str(t / "out")],
            ["linsys.json", "report.html"], ["cg", "slope"]),
    Command("autodiff-course", lambda t: ["autodiff", "--example", "course", "--out", str(t / "out")],
            ["autodiff.json"], ["match"]),
    Command("autodiff-problem", lambda t: ["autodiff", "--problem", "breast-cancer-logreg", "--out", str(t / "out")],
            ["autodiff.json", "graph-breast-cancer-logreg.dot"], ["pass"]),
    Command("activations", lambda t: ["activations", "--samples", "1000", "--repeats", "1", "--out", str(t / "out")],
            ["activations.json", "activations.png"], ["gelu"]),
]

MODES = ["pty", "pipe", "dumb"]
# The command that crashed under a terminal stays in the quick suite;
# the rest of the matrix (about 3 s per process) is marked slow.
FAST = {("compare", "pty")}


def _params() -> list:
    return [pytest.param(command, mode, id=f"{command.name}-{mode}",
                         marks=() if (command.name, mode) in FAST else (pytest.mark.slow,))
            for command in COMMANDS for mode in MODES]


@pytest.mark.parametrize(("command", "mode"), _params())
def test_command_runs_in_every_terminal_mode(tmp_path, command, mode):
    run = run_cli(command.args(tmp_path), mode, cwd=tmp_path)
    assert run.returncode == 0, run.describe()
    assert "Traceback" not in run.output, run.describe()
    for name in command.writes:
        assert (tmp_path / "out" / name).is_file(), f"{name} missing\n{run.describe()}"
    for word in command.prints:
        assert word in run.text, f"{word!r} not printed\n{run.describe()}"
    if mode == "dumb":  # NO_COLOR: no colour escapes at all
        assert not re.search(r"\x1b\[[0-9;]*m", run.output), run.describe()
    if mode == "pipe":  # piped output holds no cursor movement from a live progress bar
        assert "\x1b[" not in run.stdout, run.describe()


@pytest.mark.parametrize("mode", ["pipe", pytest.param("pty", marks=pytest.mark.slow)])
def test_compare_table_keeps_every_digit_at_80_columns(tmp_path, mode):
    # lr values with many significant digits: the table must show them whole (not 0.0007…)
    args = ["compare", "--problem", "breast-cancer-logreg", "--optimizers", "sgd,adam,rmsprop", "--epochs", "1",
            "--lr", "sgd=0.0123456,adam=0.000712345,rmsprop=0.00098765", "--out", str(tmp_path / "out")]
    run = run_cli(args, mode)
    assert run.returncode == 0, run.describe()
    assert "…" not in run.text, run.describe()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    for name, run_result in results["runs"].items():
        lr = run_result["spec"]["lr"]  # the resolved lr (results.json schema: ravine.train.results)
        assert f"{lr:g}" in run.text, (name, lr, run.describe())  # as typed: 0.000712345
        loss = run_result["summary"]["final_train_loss"]
        assert f"{loss:.4g}" in run.text, (name, loss, run.describe())
    assert "wall s: wall-clock seconds" in run.text  # the console says what its time column is
    if mode == "pipe":  # (under a pty the live bar's redraws join into long lines once escapes are removed)
        # every line fits, but the path of what was written: it stays whole so it can be copied
        assert all(len(line) <= 80 for line in run.text.splitlines() if not line.startswith("wrote ")), \
            run.describe()


def test_print_table_falls_back_instead_of_cutting(monkeypatch):
    from rich.console import Console

    from ravine.commands import common

    for width in (30, 50, 80, 200):
        console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)  # noqa: SIM115
        monkeypatch.setattr(common, "console", console)
        rows = [["momentum-very-long-name", "0.000712345", "1.23456e-07", "a long diagnosis in several words"]]
        common.print_table("t", [("optimizer", "name"), ("lr", "num"), ("loss", "num"), ("diagnosis", "text")],
                           rows)
        text = console.export_text()
        assert "…" not in text
        for cell in rows[0][:3]:
            assert cell in text, (width, text)
        assert all(len(line) <= width for line in text.splitlines()), (width, text)


@pytest.mark.parametrize("mode", ["pty", "pipe"])
def test_the_written_path_is_one_unbroken_line_a_user_can_copy(tmp_path, mode):
    """A long --out path (with a '[' that Rich would read as markup) is printed whole on one line."""
    out = tmp_path / ("a-rather-long-folder-name-for-the-results-of-this-run-[x]" * 2) / "out"
    run = run_cli(["activations", "--out", out], mode)
    assert run.returncode == 0, run.stdout + run.stderr
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run.stdout)
    assert any(line.startswith("wrote ") and str(out / "activations.json") in line for line in plain.splitlines()), plain
