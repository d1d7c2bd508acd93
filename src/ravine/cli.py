"""The ``ravine`` command line: a thin Typer shell over the public functions.

Every command takes ``--out DIR`` (default ``runs/<command>-<timestamp>``),
``--seed``, ``--device`` and ``--debug``; bad input prints one line and exits
with code 2 (a traceback only with ``--debug``). Each command's body lives in
``ravine.commands.<name>`` and calls one public function.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from ravine.commands import common
from ravine.commands.activations import activations
from ravine.commands.autodiff import autodiff
from ravine.commands.bench import bench
from ravine.commands.compare import compare
from ravine.commands.diagnose import diagnose
from ravine.commands.curvature import curvature
from ravine.commands.landscape import landscape
from ravine.commands.linsys import linsys
from ravine.commands.listing import optimizers, problems, schedules
from ravine.commands.train import train
from ravine.commands.trajectories import trajectories
from ravine.commands.tune import tune

app = typer.Typer(
    name="ravine",
    help="Train networks with the course's optimizers and see why training behaves as it does.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

app.command("compare")(compare)
app.command("train")(train)
app.command("diagnose")(diagnose)
app.command("tune")(tune)
app.command("bench")(bench)
app.command("curvature")(curvature)
app.command("landscape")(landscape)
app.command("trajectories")(trajectories)
app.command("optimizers")(optimizers)
app.command("problems")(problems)
app.command("schedules")(schedules)
app.command("linsys")(linsys)
app.command("autodiff")(autodiff)
app.command("activations")(activations)


def _set_threads() -> None:
    # ravine's problems are small networks: a second intra-op thread costs more in wake-ups
    # than it gains (measured: digits-mlp 0.6 s per run on 1 thread, ~40 s on 2 threads of a
    # busy 2-core machine). RAVINE_NUM_THREADS or OMP_NUM_THREADS override this.
    import os

    import torch

    wanted = os.environ.get("RAVINE_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    try:
        torch.set_num_threads(max(1, int(wanted)) if wanted else 1)
    except ValueError:
        torch.set_num_threads(1)


def _flags_without_value(command: Any) -> None:
    """Show boolean flags in --help as ``--debug``, not ``--debug <bool>`` (they take no value)."""
    from typer._click.decorators import help_option

    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    if getattr(command, "_help_option", 0) is None and getattr(command, "add_help_option", False):
        # click builds --help lazily (and caches it here); build it now to blank its "<bool>" too
        help_option(["--help"])(command)
        command._help_option = command.params.pop()
        command._help_option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _flags_without_value(sub)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ravine`` console script; ``argv`` defaults to ``sys.argv[1:]``.

    Typer's own usage errors (an unknown option, ``--epochs one``) become one line on
    stderr and exit code 2 like every other bad input, instead of a boxed usage panel.
    """
    from typer._click import exceptions as click_exc  # typer >= 0.26 vendors click
    from typer.exceptions import Abort

    import warnings

    _set_threads()
    warnings.showwarning = common.warning_line  # a library warning is one plain line, not a source excerpt
    command = typer.main.get_command(app)
    _flags_without_value(command)
    from ravine.commands import help as help_pages

    help_pages.install(command)  # help that wraps between words at any width (see its docstring)
    try:
        code = command.main(args=argv, prog_name="ravine", standalone_mode=False)
    except click_exc.NoArgsIsHelpError:  # bare `ravine`: Typer has printed the help already
        code = 2
    except click_exc.UsageError as exc:
        ctx = exc.ctx
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        common.error_line(f"{exc.format_message()}{hint}")
        code = 2
    except click_exc.ClickException as exc:
        common.error_line(exc.format_message())
        code = exc.exit_code
    except Abort:  # Ctrl-C while click itself was prompting or parsing
        common.error_line("interrupted")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
