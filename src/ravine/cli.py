"""The ``ravine`` command line: a thin Typer shell over the public functions.

Every command takes ``--out DIR`` (default ``runs/<command>-<timestamp>``),
``--seed``, ``--device`` and ``--debug``; bad input prints one line and exits
with code 2 (a traceback only with ``--debug``). Each command's body lives in
``ravine.commands.<name>`` and calls one public function.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from typing import Any

# Nothing heavy is imported at module level: `ravine` starts by importing torch and Typer
# (seconds on a busy machine), and main() must already be catching Ctrl-C while they load.


def build_app() -> Any:
    """The Typer app with every command registered (imports Typer and the command modules)."""
    import typer

    from ravine.commands.activations import activations
    from ravine.commands.autodiff import autodiff
    from ravine.commands.bench import bench
    from ravine.commands.compare import compare
    from ravine.commands.curvature import curvature
    from ravine.commands.diagnose import diagnose
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
    return app


def _app() -> Any:
    if "app" not in globals():
        globals()["app"] = build_app()
    return globals()["app"]


def __getattr__(name: str) -> Any:
    """``from ravine.cli import app`` builds the app on first use (PEP 562)."""
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


#: how far the command line got: "starting" (imports, parsing), "running" (the command), "finished"
_stage = "starting"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ravine`` console script; ``argv`` defaults to ``sys.argv[1:]``.

    Typer's own usage errors (an unknown option, ``--epochs one``) become one line on
    stderr and exit code 2 like every other bad input, instead of a boxed usage panel.

    Ctrl-C at any moment prints one line on stderr and exits with 130, never a traceback;
    what a command had finished stays on disk (each command says what it kept and how to
    continue). ``argv=None`` means running as the program, which owns SIGINT: while torch
    and Typer load, and after the work is done, a Ctrl-C ends the process at once (nothing
    is half-written then, and a KeyboardInterrupt inside a library's import can be swallowed
    there and resurface as an unrelated crash); during the command it is a KeyboardInterrupt,
    delayed until a module being imported has finished loading. Called in-process with a
    list, the caller's own SIGINT handler stays in place. In the last moments of the
    interpreter's shutdown a Ctrl-C is ignored: the outputs are written and the exit code stands.
    """
    global _stage
    previous = signal.getsignal(signal.SIGINT)
    program = argv is None
    _stage = "starting"
    if program:
        _on_sigint(_exit_now)
        # atexit runs this last (it is registered before torch's hooks): from then on the interpreter
        # tears down in C, where a Python handler no longer runs and SIGINT would kill it without a word
        atexit.register(_on_sigint, signal.SIG_IGN)
    try:
        code = _run(argv, program)
    except KeyboardInterrupt as exc:  # one that no command caught (in-process, or in a command's last lines)
        _on_sigint(signal.SIG_IGN)  # one line, however often the user presses Ctrl-C
        _interrupted_line(str(exc))
        code = 130
    finally:
        _stage = "finished"
        _on_sigint(_exit_now if program else previous)
    sys.exit(code)


def _run(argv: list[str] | None, program: bool) -> int:
    """Parse ``argv`` and run the command; the exit code."""
    global _stage
    import warnings

    import typer
    from typer._click import exceptions as click_exc  # typer >= 0.26 vendors click
    from typer.exceptions import Abort

    from ravine.commands import common
    from ravine.commands import help as help_pages

    _set_threads()
    warnings.showwarning = common.warning_line  # a library warning is one plain line, not a source excerpt
    command = typer.main.get_command(_app())
    _flags_without_value(command)
    help_pages.install(command)  # help that wraps between words at any width (see its docstring)
    _stage = "running"
    if program:
        _on_sigint(_interrupt_outside_imports)
    try:
        code = command.main(args=argv, prog_name="ravine", standalone_mode=False)
    except click_exc.NoArgsIsHelpError:  # bare `ravine`: Typer has printed the help already
        code = 2
    except click_exc.UsageError as exc:
        ctx = exc.ctx
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        common.error_line(common.bad_value_message(exc) or f"{exc.format_message()}{hint}")
        code = 2
    except click_exc.ClickException as exc:
        common.error_line(exc.format_message())
        code = exc.exit_code
    except Abort:  # Ctrl-C while click itself was prompting or parsing
        common.error_line("interrupted")
        code = 130
    return code if isinstance(code, int) else 0


def _on_sigint(handler: Any) -> None:
    try:
        signal.signal(signal.SIGINT, handler)
    except (ValueError, TypeError):  # not the main thread, or no Python-level handler to restore
        pass


def _interrupted_line(message: str = "") -> None:
    """The one line of a Ctrl-C that no command reported (plain text: Rich may be half-imported)."""
    if not message:
        message = {"starting": "interrupted while starting; nothing was written",
                   "finished": "interrupted as the command ended; what it wrote is on disk"}.get(
                       _stage, "interrupted")
    try:
        sys.stdout.flush()
        sys.stderr.write(f"error: {' '.join(message.split())}\n")
        sys.stderr.flush()
    except (OSError, ValueError, RuntimeError):  # a closed pipe, or a write the Ctrl-C itself cut short
        pass


def _exit_now(signum: int, frame: Any) -> None:
    """SIGINT while starting or shutting down: say so and leave at once."""
    _interrupted_line()
    os._exit(130)


def _interrupt_outside_imports(signum: int, frame: Any) -> None:
    """SIGINT during a command: a KeyboardInterrupt, unless a module is being imported.

    A KeyboardInterrupt raised inside an import can leave the module half-initialised (and
    some libraries catch it there); so it is sent again 50 ms later, until no import runs.
    """
    caller = frame
    while caller is not None:
        if caller.f_code.co_filename.startswith("<frozen importlib"):
            import threading

            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
            return
        caller = caller.f_back
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    main()
