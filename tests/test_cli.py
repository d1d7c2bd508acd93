"""The command-line contract: --help, the registry listings, exit codes."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import ravine
from ravine.cli import app

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("compare", "train", "bench", "optimizers", "problems", "schedules"):
        assert command in result.output


def test_optimizers_lists_the_registry() -> None:
    result = runner.invoke(app, ["optimizers"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ravine.optim.names():
        assert name in result.output


def test_problems_lists_the_registry() -> None:
    from ravine import problems

    result = runner.invoke(app, ["problems"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in problems.names():
        assert name in result.output


def test_schedules_lists_the_registry() -> None:
    result = runner.invoke(app, ["schedules"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ravine.schedules.names():
        assert name in result.output


def test_console_script_bad_input_is_one_line_and_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from ravine.cli import main; main()", "compare", "--optimizers", "nope",
         "--epochs", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "nope" in proc.stderr
    assert "adam" in proc.stderr  # the known names are listed


def test_errors_are_value_errors() -> None:
    assert issubclass(ravine.RavineError, ValueError)
    for cls in (ravine.HyperparameterError, ravine.UnknownNameError, ravine.ConfigError, ravine.DataError,
                ravine.CheckpointError, ravine.DivergenceError):
        assert issubclass(cls, ravine.RavineError)
